#pragma once
/// `laminator bench SCENARIO`: benchmarking as a product feature. Each scenario runs the same
/// workload and timed code as the Google Benchmark program in bench/ (bench/matcher_workload.h),
/// repeats it, and reports medians with the same-run baseline as a table and, with --json, as a
/// document of schema `laminator-bench/1` (docs/performance.md, "laminator bench").

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace lam::app {

struct BenchOptions {
  std::string scenario;           ///< "matcher"
  std::size_t objects = 100'000;  ///< alerts and positions each (and resting orders with `orders`)
  bool orders = false;            ///< also N resting orders, ticked by every tick kind
  int repetitions = 5;
  double seconds = 15;       ///< total timed seconds across every measurement and repetition
  std::string json_path;     ///< --json FILE
  std::string compare_path;  ///< --compare OLD.json
  bool progress = true;      ///< a progress line on stderr when it is a terminal
};

struct BenchMeasurement {
  std::string name;                 ///< "quiet_tick", "quiet_tick_flat_scan", "firing_tick"
  std::string label;                ///< for people
  std::vector<double> ns_per_tick;  ///< one sample per repetition
  [[nodiscard]] double median() const;
  [[nodiscard]] double min() const;
  [[nodiscard]] double max() const;
};

struct BenchResult {
  BenchOptions options;
  std::vector<BenchMeasurement> measurements;
  double ratio = 0;  ///< flat-scan quiet tick / ladder quiet tick, medians of the same run
  double wall_seconds = 0;
};

/// Runs the scenario; throws std::invalid_argument on an unknown scenario or bad sizes, and
/// std::runtime_error when a workload check fails (a quiet tick fired, a firing tick did not).
BenchResult run_bench(const BenchOptions& opt, std::FILE* progress_out);

/// The table people read.
[[nodiscard]] std::string format_bench_table(const BenchResult& r);
/// The `laminator-bench/1` document: schema, scenario, machine, build, config, results, ratios.
[[nodiscard]] std::string bench_json(const BenchResult& r);

/// One measurement against an earlier run's.
struct BenchChange {
  std::string name;
  double old_median = 0, new_median = 0;
  double change = 0;         ///< new / old - 1 (positive: slower)
  double noise = 0;          ///< the larger relative spread (max - min) / median of the two runs
  bool regression = false;   ///< slower by more than the noise
  bool improvement = false;  ///< faster by more than the noise
};
struct BenchComparison {
  std::vector<BenchChange> changes;
  std::vector<std::string> problems;  ///< an unreadable file, another scenario, a missing result
  [[nodiscard]] bool regressed() const;
};

/// Compares `now` with a `laminator-bench/1` document (`old_json`, the text of OLD.json). Noise is
/// what the repetitions measured: a change counts only beyond the wider (max - min) / median of the
/// two runs (and never below 2 %).
[[nodiscard]] BenchComparison compare_bench(const BenchResult& now, const std::string& old_json);
[[nodiscard]] std::string format_comparison(const BenchComparison& c);

/// The CLI entry: runs, prints the table on stdout, writes --json, compares with --compare; returns
/// the exit status (3: a regression beyond noise, or a comparison that could not be made).
int run_bench_command(const BenchOptions& opt);

}  // namespace lam::app
