// Loopback ingest: the mock exchange blasts one Binance /market connection as fast as the socket
// takes frames; the feed runner decodes into the tick queue; a consumer drains it. Reports the
// sustained rate with zero loss: frames sent == ticks dequeued, no queue drops, no bad frames.
// Baseline in the same run: decoding the same generated frames in memory (no socket, no queue).
//
//   build/release/bench/feeds_ingest_bench [--frames=N] [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <cstring>
#include <thread>

#include "bench/ratio_report.h"
#include "feeds/feed_runner.h"
#include "tools/mockex/frames.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::bench {
namespace {

using feeds::Venue;
std::uint64_t g_frames = 300'000;
const std::vector<std::string> kSymbols = {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"};

void BM_LoopbackIngest(benchmark::State& state) {
  for (auto _ : state) {
    mockex::Options mo;
    mo.rate = 0;
    mo.max_frames = g_frames;
    mockex::MockExchange ex(mo);
    ex.start();
    InstrumentTable table;
    feeds::TickQueue q(1 << 16);
    feeds::RunnerOptions ro;
    ro.housekeeping = feeds::Millis{50};
    feeds::FeedRunner runner(ro, q);
    const feeds::Route route = feeds::venue_routes(Venue::binance)[0];  // /market
    feeds::ConnectionConfig c;
    c.venue = Venue::binance;
    c.route = route.name;
    c.url = ex.url(Venue::binance, route.name);
    c.kinds = route.kinds;
    c.rules = feeds::default_rules(Venue::binance);
    c.rules.max_msgs_per_s = 50;  // subscribe quickly; the mock's limit is 10 msgs/s
    c.rules.topics_per_msg = 100;
    feeds::SymbolMap map(Venue::binance, nullptr);
    for (const std::string& s : kSymbols) map.add(table, s);
    runner.add(c, std::move(map));

    std::uint64_t ticks = 0;
    std::int64_t first_ns = 0, last_ns = 0;
    std::vector<feeds::FeedEvent> buf(4096);
    runner.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (ticks < g_frames && std::chrono::steady_clock::now() < deadline) {
      const std::size_t n = q.pop_bulk(buf.data(), buf.size());
      if (n == 0) {
        std::this_thread::yield();
        continue;
      }
      for (std::size_t i = 0; i < n; ++i) {
        // One price tick per frame (a markPrice frame's funding rate rides beside its mark).
        if (buf[i].kind != feeds::FeedEventKind::tick || buf[i].tick.kind == TickKind::funding)
          continue;
        if (ticks++ == 0) first_ns = buf[i].tick.recv_ts;
        last_ns = buf[i].tick.recv_ts;
      }
    }
    runner.stop();
    const auto& ctr = runner.counters(0);
    const std::uint64_t sent = ex.counters(Venue::binance).frames.load();
    ex.stop();
    if (ticks != g_frames || sent != g_frames || ctr.queue_drops.load() != 0 ||
        ctr.malformed.load() != 0 || ctr.gaps.load() != 0) {
      state.SkipWithError("loss: frames sent != ticks received (or drops/bad frames/gaps)");
      return;
    }
    // Receive-to-receive time of the first and last tick: the sustained rate of the pipeline.
    state.SetIterationTime(static_cast<double>(last_ns - first_ns) / 1e9);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * g_frames));
  state.counters["frames"] = static_cast<double>(g_frames);
}

void BM_DecodeOnly(benchmark::State& state) {
  mockex::FrameGenerator gen(Venue::binance, 42);
  std::vector<std::string> frames;
  std::int64_t ms = 1'788'658'200'000;
  for (int i = 0; i < 4096; ++i) {
    const auto& sym = kSymbols[static_cast<std::size_t>(i) % kSymbols.size()];
    std::string f = gen.next({i % 2 ? mockex::Stream::trade : mockex::Stream::mark, sym}, ms++);
    f.append(feeds::kFramePadding, '\0');
    frames.push_back(std::move(f));
  }
  InstrumentTable table;
  feeds::SymbolMap map(Venue::binance, nullptr);
  for (const std::string& s : kSymbols) map.add(table, s);
  auto dec = feeds::make_decoder(Venue::binance, std::move(map));
  std::vector<feeds::FeedEvent> out;
  out.reserve(8);
  std::size_t i = 0;
  std::uint64_t ticks = 0;
  for (auto _ : state) {
    if (i == frames.size()) {
      i = 0;
      dec->reset();
    }
    const std::string& f = frames[i++];
    out.clear();
    // Frames that gave ticks (a markPrice frame gives two: the mark and its funding rate).
    ticks += dec->decode(f.data(), f.size() - feeds::kFramePadding, f.size(), 1, out).ticks > 0;
  }
  if (ticks != static_cast<std::uint64_t>(state.iterations()))
    state.SkipWithError("a generated frame did not decode");
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_LoopbackIngest)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_DecodeOnly);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--frames=", 9) == 0) {
      lam::bench::g_frames = std::strtoull(argv[i] + 9, nullptr, 10);
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
    }
  }
  return lam::bench::run_with_ratios(argc, argv, {});
}
