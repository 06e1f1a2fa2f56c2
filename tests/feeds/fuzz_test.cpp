// Bounded randomized mutation fuzzing of every venue parser (the same entry point as the libFuzzer
// target in fuzz/): fixture frames and mock-exchange frames, mutated by byte flips, inserts,
// deletes, truncation and splices. Nothing may crash or trip a sanitizer; every tick produced must
// be sane.
#include <gtest/gtest.h>

#include <random>

#include "feeds/decoder.h"
#include "feeds/protocol.h"
#include "tests/feeds/frames.h"
#include "tools/mockex/frames.h"

namespace lam::feeds {
namespace {

constexpr int kIterationsPerVenue = 50'000;

std::vector<std::string> corpus(Venue v) {
  std::vector<std::string> c = test::load_frames(std::string(venue_name(v)));
  mockex::FrameGenerator gen(v, 1);
  const std::string syms = sample_symbols(v).front();
  for (mockex::Stream s : {mockex::Stream::mark, mockex::Stream::trade, mockex::Stream::book,
                           mockex::Stream::heartbeat}) {
    for (int i = 0; i < 3; ++i) c.push_back(gen.next({s, syms}, 1'788'658'200'000 + i));
  }
  return c;
}

std::string mutate(std::string s, const std::vector<std::string>& pool, std::mt19937_64& rng) {
  static constexpr char kTokens[][8] = {"\"",   "{",     "}", "[",  "]",    ",",  ":",
                                        "null", "1e999", "-", "\\", "\"\"", "0.", "true"};
  const int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds && !s.empty(); ++r) {
    const std::size_t at = rng() % s.size();
    switch (rng() % 6) {
      case 0:
        s[at] = static_cast<char>(rng() & 0xFF);
        break;
      case 1:
        s.insert(at, kTokens[rng() % std::size(kTokens)]);
        break;
      case 2:
        s.erase(at, 1 + rng() % 8);
        break;
      case 3:
        s.resize(at);
        break;
      case 4: {
        const std::string& o = pool[rng() % pool.size()];
        const std::size_t from = rng() % o.size();
        s = s.substr(0, at) + o.substr(from);
        break;
      }
      default:
        s.insert(at, std::string(1 + rng() % 3, s[at]));
        break;
    }
  }
  return s;
}

class FuzzVenue : public ::testing::TestWithParam<Venue> {};

TEST_P(FuzzVenue, MutatedFramesNeverCrashAndYieldOnlySaneTicks) {
  const Venue v = GetParam();
  const auto pool = corpus(v);
  std::mt19937_64 rng(0xF022 + static_cast<unsigned>(v));
  InstrumentTable table;
  auto dec = make_decoder(v, SymbolMap(v, &table));  // intern mode: every symbol is "known"
  std::vector<FeedEvent> out;
  std::uint64_t ticks = 0;
  for (int i = 0; i < kIterationsPerVenue; ++i) {
    const std::string frame = mutate(pool[rng() % pool.size()], pool, rng);
    out.clear();
    test::decode(*dec, frame, 1, out);
    for (const FeedEvent& e : out) {
      if (e.kind != FeedEventKind::tick) continue;
      ++ticks;
      ASSERT_LT(e.tick.instrument, table.size());
      if (e.tick.kind == TickKind::funding) {  // a signed rate, a settlement time, a price or 0
        ASSERT_LE(e.tick.price, kMaxRate);
        ASSERT_GE(e.tick.price, -kMaxRate);
        ASSERT_GT(e.tick.size, 0);
        ASSERT_GE(e.tick.ask, 0);
        continue;
      }
      ASSERT_GT(e.tick.price, 0);
      ASSERT_LE(e.tick.price, kMaxRaw);
      ASSERT_GE(e.tick.size, 0);
    }
    if (i % 1000 == 0) dec->reset();
  }
  const DecoderStats& s = dec->stats();
  EXPECT_EQ(s.frames, static_cast<std::uint64_t>(kIterationsPerVenue));
  EXPECT_GT(s.malformed, 0u);
  EXPECT_GT(ticks, 0u);  // some mutants stay valid: the fuzzer reaches the tick paths
}

INSTANTIATE_TEST_SUITE_P(Feeds, FuzzVenue,
                         ::testing::Values(Venue::binance, Venue::bybit, Venue::okx,
                                           Venue::hyperliquid, Venue::coinbase, Venue::pyth),
                         [](const ::testing::TestParamInfo<Venue>& p) {
                           return std::string(venue_name(p.param));
                         });

}  // namespace
}  // namespace lam::feeds
