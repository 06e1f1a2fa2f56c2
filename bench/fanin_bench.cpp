// Scale-out's cost on loopback: one shard daemon publishing to a real `nats-server -js` and
// `laminator gateway` serving its events, against the same daemon's own stream in the same run.
// The workload (bench/fanin_workload.h) is the one `laminator bench fanin` runs.
//
//  * BM_Fanin: --burst alerts cross at one price move, --repetitions times: events/s on the
//    daemon's stream (baseline) and through JetStream + the gateway, and their ratio; then
//    --probes alerts crossed one at a time: the latency JetStream and the gateway add (p50/p99).
//
//   build/release/bench/fanin_bench [--burst=20000] [--repetitions=3] [--probes=500]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "bench/ratio_report.h"
#include "tests/support/pg_cluster.h"
#include "workloads/fanin_workload.h"
#include "workloads/pipeline_workload.h"

namespace lam::bench {
namespace {

FaninOptions g_opt;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void BM_Fanin(benchmark::State& state) {
  const std::string url = make_fanin_db(test::shared_cluster(), "bench_fanin");
  FaninRun r;
  for (auto _ : state) {
    try {
      r = run_fanin(url, g_opt);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
  }
  std::vector<double> added = r.added_us;
  std::sort(added.begin(), added.end());
  state.counters["direct_events_per_s"] = median(r.direct_eps);
  state.counters["gateway_events_per_s"] = median(r.gateway_eps);
  state.counters["stored_events_per_s"] = median(r.stored_eps);
  state.counters["ratio_gateway_vs_direct"] =
      median(r.gateway_eps) / std::max(1.0, median(r.direct_eps));
  state.counters["added_p50_us"] = sorted_quantile(added, 0.5);
  state.counters["added_p99_us"] = sorted_quantile(added, 0.99);
  state.counters["probes"] = static_cast<double>(added.size());
  state.counters["missing"] = static_cast<double>(r.missing);
  if (r.missing > 0) state.SkipWithError("an event reached one subscriber and not the other");
}

BENCHMARK(BM_Fanin)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--burst=", 0) == 0) {
      lam::bench::g_opt.burst = std::stoi(a.substr(8));
    } else if (a.rfind("--repetitions=", 0) == 0) {
      lam::bench::g_opt.repetitions = std::stoi(a.substr(14));
    } else if (a.rfind("--probes=", 0) == 0) {
      lam::bench::g_opt.probes = std::stoi(a.substr(9));
    } else {
      rest.push_back(argv[i]);
    }
  }
  return lam::bench::run_with_ratios(static_cast<int>(rest.size()), rest.data(), {});
}
