#pragma once
/// Which feed connections `laminator run` opens (docs/feeds.md): one per route of each enabled
/// venue that has markets, each with the symbols of those markets and their contract sizes. Pure:
/// the
/// `[feeds]` config and the symbols the loaded markets are priced by go in; the connections, the
/// venues the config disables and what to tell the operator come out. Daemon::start turns it into
/// symbol maps and FeedRunner connections.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/config.h"
#include "engine/uuid.h"
#include "feeds/feed_runner.h"
#include "feeds/venue.h"

namespace lam::daemon {

struct PlannedSymbol {
  std::string symbol;
  std::int64_t contract_size = 0;  ///< base units per contract (raw 1e-9), 1e9 for plain sizes
};

struct PlannedConnection {
  feeds::ConnectionConfig config;  ///< venue, route, URL, rules, oracle limits, authorization
  std::vector<PlannedSymbol> symbols;
};

struct PlanNote {
  enum class Level : std::uint8_t { warn, error } level = Level::warn;
  std::string text;
};

struct FeedPlan {
  std::vector<PlannedConnection> connections;
  std::vector<std::string> disabled_venues;  ///< venue names the config turns off
  std::vector<PlanNote> notes;               ///< refused markets, missing sizes, missing keys
};

/// The price feeds the loaded markets need, one market per feed: the matcher maps an instrument to
/// one market, so a second market on the same feed (one oracle for two venues' SOL-PERP, a pair
/// listed twice) takes its ticks from the first. `add` says so; the caller says it loudly.
class FeedSubscriptions {
 public:
  struct Added {
    bool fresh = true;  ///< the feed's first market: subscribed
    Uuid first;         ///< else: the market that has the feed
    std::string feed;   ///< "venue/symbol"
  };
  Added add(const Uuid& market, std::string_view venue, std::string_view symbol);
  /// Per venue, the symbols to subscribe (each once; unknown venue names are left out).
  [[nodiscard]] const std::map<feeds::Venue, std::vector<std::string>>& symbols() const noexcept {
    return symbols_;
  }

 private:
  std::unordered_map<std::string, Uuid> first_;
  std::map<feeds::Venue, std::vector<std::string>> symbols_;
};

/// `symbols`: per venue, the symbols of the markets loaded for it (each once).
[[nodiscard]] FeedPlan plan_feeds(const FeedsSection& feeds,
                                  const std::map<feeds::Venue, std::vector<std::string>>& symbols);

}  // namespace lam::daemon
