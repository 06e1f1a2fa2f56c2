#include "feeds/venue.h"

namespace lam::feeds {

std::string_view venue_name(Venue v) noexcept {
  switch (v) {
    case Venue::binance:
      return "binance";
    case Venue::bybit:
      return "bybit";
    case Venue::okx:
      return "okx";
    case Venue::hyperliquid:
      return "hyperliquid";
    case Venue::coinbase:
      return "coinbase";
    case Venue::pyth:
      return "pyth";
  }
  return "?";
}

std::optional<Venue> parse_venue(std::string_view name) noexcept {
  for (Venue v : kAllVenues) {
    if (venue_name(v) == name) return v;
  }
  return std::nullopt;
}

}  // namespace lam::feeds
