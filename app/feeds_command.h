#pragma once
/// `laminator feeds`: runs the venue feeds on their own (no database, no matcher) and reports
/// per-connection health and counters; with `--record DIR` it captures every frame, with `--mock`
/// it points every venue at an in-process mock exchange.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lam::app {

struct FeedsOptions {
  std::vector<std::string> venues;   ///< empty: all five
  std::vector<std::string> symbols;  ///< "venue:SYMBOL"; empty: BTC and ETH on each venue
  std::vector<std::string> urls;     ///< "venue/route=URL" overrides
  bool mock = false;
  double mock_rate = 200;  ///< mock data frames/s per connection
  std::string record_dir;
  double duration_s = 0;  ///< 0: until SIGINT/SIGTERM
  std::string ca_file;
  /// "venue:SYMBOL" -> contract size (raw): sizes in contracts (OKX SWAP) are unknown without it
  std::map<std::string, std::int64_t> contract_sizes;
};

/// Returns the process exit status.
int run_feeds(const FeedsOptions& opt);

}  // namespace lam::app
