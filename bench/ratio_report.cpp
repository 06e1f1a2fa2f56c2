#include "bench/ratio_report.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>

namespace lam::bench {
namespace {

class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) ++errors;
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        medians[r.run_name.str()] = r.GetAdjustedRealTime();
      } else if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        singles[r.benchmark_name()] = r.GetAdjustedRealTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  [[nodiscard]] const double* time_of(const std::string& name) const {
    if (auto it = medians.find(name); it != medians.end()) return &it->second;
    if (auto it = singles.find(name); it != singles.end()) return &it->second;
    return nullptr;
  }
  std::map<std::string, double> medians;
  std::map<std::string, double> singles;
  int errors = 0;
};

}  // namespace

int run_with_ratios(int argc, char** argv, const std::vector<Ratio>& ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  CapturingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  bool header = false;
  for (const Ratio& r : ratios) {
    const double* num = reporter.time_of(r.numerator);
    const double* den = reporter.time_of(r.denominator);
    if (num == nullptr || den == nullptr || *den <= 0) continue;
    if (!header) {
      std::printf("\nRatios (same run, real time per iteration):\n");
      header = true;
    }
    std::printf("  %-48s %12.2f   target %s\n", r.label.c_str(), *num / *den, r.target.c_str());
  }
  benchmark::Shutdown();
  if (reporter.errors > 0) {
    std::fprintf(stderr, "%d benchmark(s) reported an error\n", reporter.errors);
    return 1;
  }
  return 0;
}

}  // namespace lam::bench
