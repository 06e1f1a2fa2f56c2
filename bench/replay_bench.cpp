// laminator replay end to end over a generated tick file (default 10M ticks), against a
// parse-only pass over the same file in the same run. The workload (bench/replay_workload.h) is
// the one `laminator bench replay` runs.
//
//   build/release/bench/replay_bench [--ticks=N] [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <cstring>
#include <exception>
#include <string>

#include "bench/ratio_report.h"
#include "workloads/replay_workload.h"

namespace lam::bench {
namespace {

std::size_t g_ticks = 10'000'000;

const ReplayFiles& files() {
  static const ReplayFiles f = make_replay_files(g_ticks, 1);
  return f;
}

void run(benchmark::State& state, bool validate_only) {
  const ReplayFiles& f = files();
  app::ReplaySummary last;
  try {
    for (auto _ : state) last = run_replay_once(f, g_ticks, validate_only);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(last.ticks));
  state.counters["events"] = static_cast<double>(last.events);
  state.counters["ticks"] = static_cast<double>(last.ticks);
  // The tick phase alone (the state armed), as `laminator bench replay` reports it.
  state.counters["ticks_per_s"] = last.tick_rate();
}

void BM_Replay_Full(benchmark::State& state) {
  run(state, false);
}
void BM_Replay_ParseOnly(benchmark::State& state) {
  run(state, true);
}
BENCHMARK(BM_Replay_ParseOnly)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Replay_Full)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  // Our own flag first: --ticks=N
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--ticks=", 8) == 0) {
      lam::bench::g_ticks = std::stoull(argv[i] + 8);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return lam::bench::run_with_ratios(argc, argv,
                                     {{"full replay / parse-only", "BM_Replay_Full/iterations:1",
                                       "BM_Replay_ParseOnly/iterations:1", "-"}});
}
