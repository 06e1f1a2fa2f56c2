#pragma once
// A Google Benchmark main that also prints same-run ratios between named benchmarks and exits
// non-zero when any benchmark reported an error (a failed correctness check before timing).

#include <string>
#include <vector>

namespace lam::bench {

struct Ratio {
  std::string label;        ///< what the ratio means, e.g. "naive / ladder at 1M"
  std::string numerator;    ///< benchmark name (exact, as printed)
  std::string denominator;  ///< benchmark name (exact, as printed)
  std::string target;       ///< e.g. ">= 1000" (printed next to the figure, not enforced)
};

/// Runs the benchmarks selected on the command line, then prints each ratio whose two benchmarks
/// ran (by adjusted real time per iteration; for repeated runs, the medians).
int run_with_ratios(int argc, char** argv, const std::vector<Ratio>& ratios);

}  // namespace lam::bench
