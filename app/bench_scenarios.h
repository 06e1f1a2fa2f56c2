#pragma once
/// The scenarios behind `laminator bench` (app/bench_command.h), one function each; internal to the
/// command. Each fills a BenchResult from the workload bench/ times the same way.

#include <cstdio>
#include <string>

#include "app/bench_command.h"

namespace lam::app {

/// `bench SCENARIO: what 3/5`, redrawn in place on a terminal only.
class BenchProgress {
 public:
  BenchProgress(std::FILE* out, bool wanted, std::string scenario);
  void show(const std::string& what, int rep = 0, int reps = 0);
  void done();

 private:
  std::FILE* out_;
  bool on_;
  std::string scenario_;
};

BenchResult bench_matcher(const BenchOptions& opt, BenchProgress& progress);
BenchResult bench_replay(const BenchOptions& opt, BenchProgress& progress);
BenchResult bench_pipeline(const BenchOptions& opt, BenchProgress& progress);
BenchResult bench_writer(const BenchOptions& opt, BenchProgress& progress);
BenchResult bench_fanin(const BenchOptions& opt, BenchProgress& progress);

/// "1,234,567"
[[nodiscard]] std::string group_digits(std::uint64_t v);
/// A figure for people: 12.3, 1,234, 74,562 (grouped) or, `compact`, 74.6k and 1.23M (charts).
[[nodiscard]] std::string human_figure(double v, bool compact);
/// The CPU's model name from /proc/cpuinfo ("unknown" when it has none).
[[nodiscard]] std::string cpu_model();
/// A JSON number, "%.6g".
[[nodiscard]] std::string json_number(double v);

}  // namespace lam::app
