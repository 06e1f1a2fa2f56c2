#pragma once
/// The venues Laminator reads, and the names used for them in config, the database
/// (`markets.dex_name`) and captures. `pyth` is an oracle, not a market: its "symbols" are Pyth
/// feed ids (64 hex digits), and markets bind to them with `price_source = 'oracle'`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lam::feeds {

enum class Venue : std::uint8_t { binance, bybit, okx, hyperliquid, coinbase, pyth };
inline constexpr std::size_t kVenueCount = 6;
inline constexpr std::array<Venue, kVenueCount> kAllVenues{
    Venue::binance, Venue::bybit, Venue::okx, Venue::hyperliquid, Venue::coinbase, Venue::pyth};

/// "binance", "bybit", "okx", "hyperliquid", "coinbase", "pyth".
[[nodiscard]] std::string_view venue_name(Venue v) noexcept;
[[nodiscard]] std::optional<Venue> parse_venue(std::string_view name) noexcept;

}  // namespace lam::feeds
