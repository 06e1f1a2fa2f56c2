// libFuzzer target for the venue parsers: the first byte picks the venue, the rest is one frame.
// Built only with clang (preset `fuzz`); scripts/test runs it for a bounded time when clang++ is
// installed. tests/feeds/fuzz_test.cpp drives the same decoders with a bounded mutation loop in
// every ctest run.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/fixed.h"
#include "feeds/decoder.h"

namespace {

struct State {
  lam::InstrumentTable table;
  std::vector<std::unique_ptr<lam::feeds::Decoder>> decoders;
  std::vector<lam::feeds::FeedEvent> out;
  std::vector<char> buf;
  State() {
    for (lam::feeds::Venue v : lam::feeds::kAllVenues) {
      decoders.push_back(lam::feeds::make_decoder(v, lam::feeds::SymbolMap(v, &table)));
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static State s;
  if (size == 0) return 0;
  auto& dec = *s.decoders[data[0] % s.decoders.size()];
  const std::size_t len = size - 1;
  // An exact-size allocation plus the padding: ASan catches any read beyond it.
  s.buf.assign(len + lam::feeds::kFramePadding, '\0');
  if (len > 0) std::memcpy(s.buf.data(), data + 1, len);
  s.out.clear();
  dec.decode(s.buf.data(), len, s.buf.size(), 1, s.out);
  for (const auto& e : s.out) {
    if (e.kind != lam::feeds::FeedEventKind::tick) continue;
    if (e.tick.kind == lam::TickKind::funding) {  // a signed rate, a settlement time
      if (e.tick.price > lam::kMaxRate || e.tick.price < -lam::kMaxRate || e.tick.size <= 0)
        __builtin_trap();
    } else if (e.tick.price <= 0) {
      __builtin_trap();
    }
  }
  if (s.table.size() > 100'000) {  // bound memory: interned junk symbols
    s = State();
  }
  return 0;
}
