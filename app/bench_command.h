#pragma once
/// `laminator bench SCENARIO`: benchmarking as a product feature. Each scenario runs the same
/// workload and timed code as the Google Benchmark program in bench/ (bench/*_workload.h), repeats
/// it, and reports medians with the same-run baseline as a table; --json writes a document of
/// schema `laminator-bench/1`, --html a self-contained page of charts, --compare the change against
/// an earlier --json run (docs/performance.md, "laminator bench").
///
/// Scenarios: matcher (ns per quiet and firing tick against a flat scan), replay (ticks/s of
/// `laminator replay` against its parsing alone), pipeline (the whole daemon on loopback: flat-out
/// ticks/s and wire-to-subscriber latency beside the daemon's own histogram), writer (rows/s of the
/// engine's batch statement against one UPDATE per row), fanin (events/s and added latency through
/// NATS JetStream and `laminator gateway` against the daemon's own stream, same run).

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace lam::app {

struct BenchOptions {
  std::string scenario;  ///< matcher | replay | pipeline | writer | fanin
  int repetitions = 0;   ///< 0: the scenario's default (matcher, replay, writer 5; pipeline 3)
  double seconds = 0;    ///< matcher, writer: timed seconds in all (0: 15 for matcher, 10 writer)
  std::uint64_t seed = 1;
  // matcher
  std::size_t objects = 100'000;  ///< alerts and positions each (and resting orders with `orders`)
  bool orders = false;            ///< also N resting orders, ticked by every tick kind
  // replay
  std::size_t ticks = 2'000'000;  ///< lines of the generated tick file
  // pipeline
  double rate = 100'000;             ///< background ticks/s of the latency run
  int probes = 1'000;                ///< alerts crossed one at a time by the latency run
  std::uint64_t frames = 1'000'000;  ///< frames per connection of each flat-out run
  double warmup_s = 1.5;  ///< flat-out runs: seconds not counted (the listener's first resync)
  // fanin
  int burst = 20'000;  ///< alerts fired by one price move, per repetition (and shard)
  int shards = 1;      ///< 1 to 3 shards bursting together
  // writer
  std::vector<std::size_t> batch_sizes{1'000, 10'000};
  long long rows = 200'000;  ///< positions in the written table
  bool fills = false;        ///< paper fills instead of marks

  std::string json_path;     ///< --json FILE
  std::string html_path;     ///< --html FILE
  std::string compare_path;  ///< --compare OLD.json
  bool progress = true;      ///< a progress line on stderr when it is a terminal
};

struct BenchMeasurement {
  std::string name;   ///< stable: "quiet_tick", "replay_full", "unnest_batch_1000", ...
  std::string label;  ///< for people
  std::string unit = "ns/tick";
  bool higher_is_better = false;  ///< true for rates (ticks/s, rows/s)
  bool baseline = false;          ///< the same-run baseline others are compared with
  std::vector<double> samples;    ///< one per repetition
  [[nodiscard]] double median() const;
  [[nodiscard]] double min() const;
  [[nodiscard]] double max() const;
};

struct BenchRatio {
  std::string name;   ///< "quiet_tick_flat_scan/quiet_tick"
  std::string label;  ///< "flat scan / ladders, quiet tick"
  double value = 0;   ///< of medians of the same run
};

/// A curve: latency percentiles (x = quantile in (0, 1], 1 the maximum; y in us) or throughput over
/// time (x = seconds since the measurement started; y in `unit`).
struct BenchCurve {
  std::string name, label, unit;
  std::vector<std::pair<double, double>> points;
};

struct BenchResult {
  BenchOptions options;
  std::string title;  ///< the table's first line
  /// The scenario's configuration as recorded in the JSON `config` object: key, JSON value text.
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<BenchMeasurement> measurements;
  std::vector<BenchRatio> ratios;
  std::vector<BenchCurve> latency;     ///< percentile curves, us
  std::vector<BenchCurve> throughput;  ///< over time
  std::vector<std::string> notes;      ///< what a reader must know (loss, a probe that never came)
  bool lossy = false;                  ///< the pipeline lost a tick or an event: exit 4
  double wall_seconds = 0;
  [[nodiscard]] const BenchMeasurement* find(const std::string& name) const;
};

/// Runs the scenario; throws std::invalid_argument on an unknown scenario or bad sizes, and
/// std::runtime_error when a workload check fails (a quiet tick fired, a batch did not land).
BenchResult run_bench(const BenchOptions& opt, std::FILE* progress_out);

/// The table people read.
[[nodiscard]] std::string format_bench_table(const BenchResult& r);
/// The `laminator-bench/1` document: schema, scenario, machine, build, config, results, ratios,
/// latency, throughput, notes (docs/performance.md).
[[nodiscard]] std::string bench_json(const BenchResult& r);
/// One self-contained HTML page: inline SVG charts, no scripts, no external assets
/// (app/bench_report.cpp).
[[nodiscard]] std::string bench_html(const BenchResult& r);

/// One measurement against an earlier run's.
struct BenchChange {
  std::string name;
  double old_median = 0, new_median = 0;
  double change = 0;         ///< new / old - 1
  double worse = 0;          ///< relative loss: change for times, old / new - 1 for rates
  double noise = 0;          ///< the larger relative spread (max - min) / median of the two runs
  bool regression = false;   ///< worse by more than the noise
  bool improvement = false;  ///< better by more than the noise
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

/// The CLI entry: runs, prints the table on stdout, writes --json and --html, compares with
/// --compare; returns the exit status (3: a regression beyond noise or a comparison that could
/// not be made; 4: the pipeline lost ticks or events).
int run_bench_command(const BenchOptions& opt);

}  // namespace lam::app
