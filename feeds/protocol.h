#pragma once
/// Each venue's connection rules: routes and default URLs, what keeps a connection alive, how
/// fast we may talk, and the subscribe messages. Figures from ../shared/venues.md (Sept 2026).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "feeds/venue.h"

namespace lam::feeds {

using Millis = std::chrono::milliseconds;

/// One connection a venue needs. Binance needs two (`market`: mark + trades, `public`: book).
struct Route {
  std::string name;
  std::string default_url;
  std::uint8_t kinds = 0;  ///< TickKinds this route supplies (bits of kind_bit())
};

/// Timing and rate rules of a venue; every field can be overridden by config (tests shorten them).
struct VenueRules {
  Millis idle_budget{30'000};   ///< no frame at all for this long: reconnect
  Millis ping_every{0};         ///< send `ping_text` this often (0: the venue pings us)
  std::string ping_text;        ///< the application-level ping, if the venue wants one
  Millis stale_budget{10'000};  ///< no frame for a symbol for this long: it is `stale`
  double max_msgs_per_s = 5;    ///< our outgoing message rate (venue limit with margin)
  std::size_t topics_per_msg = 50;
  Millis max_lifetime{0};  ///< reconnect proactively after this long (0: never)
};

/// Pyth feed ids (Hermes spells them without 0x, lower case): BTC/USD, ETH/USD, SOL/USD.
inline constexpr std::string_view kPythBtcUsd =
    "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43";
inline constexpr std::string_view kPythEthUsd =
    "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace";
inline constexpr std::string_view kPythSolUsd =
    "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d";

/// How far an oracle price may be trusted: an update older than `max_age` (publish time to
/// receive time) or with a confidence interval wider than `max_conf_bps` of the price holds its
/// market, as a stale feed does.
struct OracleLimits {
  Millis max_age{10'000};
  std::uint32_t max_conf_bps = 100;  ///< 1 %
};

[[nodiscard]] std::vector<Route> venue_routes(Venue v);
/// BTC and ETH perpetuals in the venue's spelling: `laminator feeds`' default, tests, benchmarks.
[[nodiscard]] std::vector<std::string> sample_symbols(Venue v);
[[nodiscard]] VenueRules default_rules(Venue v);

/// The subscribe messages for `symbols` (venue spelling) on `route`, in sending order.
[[nodiscard]] std::vector<std::string> subscribe_messages(Venue v, std::string_view route,
                                                          const std::vector<std::string>& symbols,
                                                          std::size_t topics_per_msg);

}  // namespace lam::feeds
