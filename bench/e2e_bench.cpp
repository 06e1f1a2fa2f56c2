// End to end on loopback: mock exchange -> daemon (feeds, matcher, writer, stream server) ->
// subscriber, against the test PostgreSQL cluster, with 100k alerts and 100k positions loaded. The
// workload (bench/pipeline_workload.h) is the one `laminator bench pipeline` runs.
//
//  * BM_E2E_WireToSubscriber: background ticks at --rate ticks/s (two Binance connections, 50
//    symbols); every 3 ms a probe moves BTCUSDT's mark across exactly one alert. Latency = the
//    subscriber's receive time - the time the mock handed the crossing frame to its socket.
//    Reports p50/p99/p99.9 (us) and, as the in-run baseline, the daemon's own receive -> publish
//    histogram (so the ratio shows what the sockets on both sides cost). --wire-frames-per-write=N:
//    the mock sends the frames due each millisecond N per socket write (default 1: one write per
//    frame, which costs the load generator far more CPU than the daemon's feed).
//  * BM_E2E_MaxRate: both connections blast --frames frames each as fast as they go (frames
//    generated before the run unless --generate; --frames-per-write pre-encoded WebSocket frames
//    per socket write); reports the ticks/s the matcher evaluated and whether anything was lost
//    (ticks != frames sent).
//
//   build/release/bench/e2e_bench [--rate=100000] [--probes=2000] [--frames=500000]
//                                 [--warmup-ms=3000] [--frames-per-write=64] [--generate]
//                                 [--wire-frames-per-write=1] [--idle=sleep|spin]
//                                 [--off=marks,refresh,maintenance] [--pin-matcher=CPU]
//                                 [--load-nice=N]
//  (--off, --pin-matcher, --load-nice: the stall table's A/B arms, docs/performance.md)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "bench/ratio_report.h"
#include "tests/support/pg_cluster.h"
#include "workloads/pipeline_workload.h"

namespace lam::bench {
namespace {

PipelineOptions g_opt;

db::LocalCluster& cluster() {
  return test::shared_cluster();
}

void BM_E2E_WireToSubscriber(benchmark::State& state) {
  const std::string url = make_pipeline_db(cluster(), "bench_e2e_latency", g_opt.probes);
  LatencyRun r;
  for (auto _ : state) r = run_wire_latency(url, g_opt);
  std::sort(r.wire_us.begin(), r.wire_us.end());
  if (r.wire_us.empty()) {
    state.SkipWithError("no probe came back");
    return;
  }
  const auto q = [&](double p) { return sorted_quantile(r.wire_us, p); };
  state.counters["p50_us"] = q(0.50);
  state.counters["p99_us"] = q(0.99);
  state.counters["p999_us"] = q(0.999);
  state.counters["probes"] = static_cast<double>(r.wire_us.size());
  state.counters["lost"] = static_cast<double>(r.lost);
  state.counters["daemon_p50_us"] = r.after.p50_us;
  state.counters["daemon_p99_us"] = r.after.p99_us;
  state.counters["daemon_p999_us"] = r.after.p999_us;
  state.counters["ticks"] = static_cast<double>(r.after.ticks - r.before.ticks);
  // Where the slow events' time went (stream/stage_latency.h): p99 of each stage, and the events
  // slower than 1 ms counted under the stage that took most of their time.
  for (std::size_t i = 0; i < daemon::kStages; ++i) {
    const std::string stage = daemon::stage_name(static_cast<daemon::Stage>(i));
    state.counters[stage + "_p50_us"] = r.after.stage_p50_us[i];
    state.counters[stage + "_p99_us"] = r.after.stage_p99_us[i];
    state.counters["slow_" + stage] =
        static_cast<double>(r.after.slow_events[i] - r.before.slow_events[i]);
  }
  // Same-run baseline: the daemon's own receive -> publish p99 (its histogram's bucket bound).
  state.counters["p99_ratio_vs_daemon"] = q(0.99) / std::max(1.0, r.after.p99_us);
  // Read-committed mode (committed=1) on the same probes: what waiting for the journal costs.
  std::sort(r.committed_us.begin(), r.committed_us.end());
  state.counters["committed_p50_us"] = sorted_quantile(r.committed_us, 0.50);
  state.counters["committed_p99_us"] = sorted_quantile(r.committed_us, 0.99);
  state.counters["committed_probes"] = static_cast<double>(r.committed_us.size());
}

void BM_E2E_MaxRate(benchmark::State& state) {
  const std::string url = make_pipeline_db(cluster(), "bench_e2e_rate", 10);
  for (auto _ : state) {
    RateRun r;
    try {
      r = run_max_rate(url, g_opt);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    state.SetIterationTime(r.seconds);
    state.counters["ticks_per_s"] = r.ticks_per_s;
    state.counters["frames_sent"] = static_cast<double>(r.frames_sent);
    state.counters["ticks"] = static_cast<double>(r.ticks);
    state.counters["lost"] = static_cast<double>(r.lost);
  }
}

BENCHMARK(BM_E2E_WireToSubscriber)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_E2E_MaxRate)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--rate=", 0) == 0) {
      lam::bench::g_opt.rate = std::stod(a.substr(7));
    } else if (a.rfind("--probes=", 0) == 0) {
      lam::bench::g_opt.probes = std::stoi(a.substr(9));
    } else if (a.rfind("--frames-per-write=", 0) == 0) {
      lam::bench::g_opt.frames_per_write = static_cast<std::uint32_t>(std::stoul(a.substr(19)));
    } else if (a.rfind("--wire-frames-per-write=", 0) == 0) {
      lam::bench::g_opt.wire_frames_per_write =
          static_cast<std::uint32_t>(std::stoul(a.substr(24)));
    } else if (a.rfind("--off=", 0) == 0) {  // marks,refresh,maintenance (the stall A/B)
      const std::string off = a.substr(6);
      lam::bench::g_opt.market_marks = off.find("marks") == std::string::npos;
      lam::bench::g_opt.position_refresh = off.find("refresh") == std::string::npos;
      lam::bench::g_opt.maintenance = off.find("maintenance") == std::string::npos;
    } else if (a.rfind("--load-nice=", 0) == 0) {
      lam::bench::g_opt.load_nice = std::stoi(a.substr(12));
    } else if (a.rfind("--pin-matcher=", 0) == 0) {
      lam::bench::g_opt.pin_matcher = std::stoi(a.substr(14));
    } else if (a.rfind("--idle=", 0) == 0) {
      lam::bench::g_opt.idle = a.substr(7);
    } else if (a == "--generate") {
      lam::bench::g_opt.pregenerate = false;
    } else if (a.rfind("--warmup-ms=", 0) == 0) {
      lam::bench::g_opt.warmup = std::chrono::milliseconds(std::stoll(a.substr(12)));
    } else if (a.rfind("--frames=", 0) == 0) {
      lam::bench::g_opt.frames = std::stoull(a.substr(9));
    } else {
      rest.push_back(argv[i]);
    }
  }
  return lam::bench::run_with_ratios(static_cast<int>(rest.size()), rest.data(), {});
}
