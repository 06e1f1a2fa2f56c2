#pragma once
/// Rows the matcher works on, as typed values: the engine's view of `markets`, `positions`,
/// `alerts`. Text columns are parsed into these at the boundary (replay input, database loader).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/tick.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam {

enum class MarketType : std::uint8_t { perpetual, spot, futures };
enum class PriceSource : std::uint8_t { mark, last, mid };
enum class Side : std::uint8_t { long_side, short_side };
enum class PositionStatus : std::uint8_t { open, closed, liquidated };
enum class AlertType : std::uint8_t {
  price_above,
  price_below,
  price_change,
  volume,
  position_pnl,
  unknown
};
enum class ConditionType : std::uint8_t {
  greater_than,
  less_than,
  equals,
  percentage_change,
  unknown
};
enum class AlertStatus : std::uint8_t { active, triggered, cancelled, expired };

/// Default maintenance margin rate: 0.005 in raw units.
inline constexpr std::int64_t kDefaultMmrRaw = 5'000'000;
inline constexpr std::int64_t kDefaultVolumeWindowSec = 86'400;

[[nodiscard]] std::optional<MarketType> parse_market_type(std::string_view) noexcept;
[[nodiscard]] std::optional<PriceSource> parse_price_source(std::string_view) noexcept;
[[nodiscard]] std::optional<Side> parse_side(std::string_view) noexcept;
[[nodiscard]] std::optional<PositionStatus> parse_position_status(std::string_view) noexcept;
[[nodiscard]] AlertType parse_alert_type(std::string_view) noexcept;  ///< unknown on no match
[[nodiscard]] ConditionType parse_condition_type(
    std::string_view) noexcept;  ///< unknown on no match
[[nodiscard]] std::optional<AlertStatus> parse_alert_status(std::string_view) noexcept;
[[nodiscard]] std::string_view to_string(PositionStatus) noexcept;
[[nodiscard]] std::string_view to_string(AlertStatus) noexcept;
[[nodiscard]] std::string_view to_string(PriceSource) noexcept;

[[nodiscard]] constexpr PriceSource default_price_source(MarketType t) noexcept {
  return t == MarketType::spot ? PriceSource::last : PriceSource::mark;
}

/// A token symbol (wallet_balances.token_symbol, markets.quote_asset: VARCHAR(10)), inline.
struct Asset {
  std::array<char, 11> text{};
  [[nodiscard]] static Asset of(std::string_view s) noexcept;
  [[nodiscard]] std::string_view view() const noexcept;
  friend bool operator==(const Asset&, const Asset&) = default;
};

/// The trading rules of a market (markets columns; all raw, absent = no rule).
struct TradingRules {
  std::int64_t maker_fee = 0;  ///< rate, raw (0.0002 = 200'000)
  std::int64_t taker_fee = 0;
  std::optional<std::int64_t> min_size, max_size, step_size, tick_size, max_leverage;
  Asset quote;  ///< the asset margins, fees and PnL are paid in
};

/// size x price (raw x raw) below 10^18 units: the magnitude positions.unrealized_pnl
/// (DECIMAL(36,18)) can hold for a position's whole notional.
[[nodiscard]] constexpr bool notional_fits(std::int64_t size, std::int64_t price) noexcept {
  return static_cast<Wide>(size) * price < static_cast<Wide>(kScale) * kScale * kScale * kScale;
}

struct MarketSpec {
  Uuid id;
  InstrumentId instrument = kNoInstrument;
  MarketType type = MarketType::perpetual;
  PriceSource source = PriceSource::mark;
  std::int64_t mmr = kDefaultMmrRaw;  ///< maintenance margin rate, raw, in [0, 1e9)
  TradingRules rules;                 ///< for orders
};

/// A market as loaded: the engine's spec plus the names that identify its instrument.
struct MarketRow {
  MarketSpec spec;  ///< `instrument` is left unset; the caller interns price_feed()
  std::string symbol;
  std::string dex_name;
  /// price_source 'oracle': the Pyth feed id (64 lower-case hex digits) that prices the market;
  /// spec.source is then `mark` (the oracle's updates are its marks). Empty otherwise.
  std::string oracle_feed_id;
};

/// The (venue, symbol) whose ticks price the market: its own, or ("pyth", feed id) when it is
/// priced by an oracle. The one place that decides which instrument a market is.
struct PriceFeed {
  std::string_view venue;
  std::string_view symbol;
};
[[nodiscard]] inline PriceFeed price_feed(const MarketRow& m) noexcept {
  if (!m.oracle_feed_id.empty()) return {"pyth", m.oracle_feed_id};
  return {m.dex_name, m.symbol};
}

struct PositionSpec {
  Uuid id;
  Uuid user_id;
  Uuid market_id;
  Side side = Side::long_side;
  std::int64_t size = 0;         ///< raw, > 0
  std::int64_t entry_price = 0;  ///< raw, > 0
  std::int64_t margin = 0;       ///< raw, >= 0
  Wide realized_pnl = 0;         ///< raw
  PositionStatus status = PositionStatus::open;
  std::optional<std::int64_t> current_price;  ///< as loaded (used until the market has a price)
  Wide unrealized_pnl = 0;                    ///< as loaded, raw (same)
  std::optional<TimeNs> closed_at;
  Uuid wallet_id;  ///< whose balance its margin and PnL move (engine-opened: the order's)
  std::int64_t leverage = kScale;  ///< raw (as stored; the engine does not derive margin from it)
  /// Set by the row reader when a column holds a value the engine cannot use (NaN, out of range,
  /// unknown side): the matcher does not arm the position and emits position.rejected.
  RejectReason invalid = RejectReason::none;
};

struct AlertSpec {
  Uuid id;
  Uuid user_id;
  std::optional<Uuid> market_id;
  AlertType type = AlertType::unknown;
  ConditionType condition = ConditionType::unknown;
  std::optional<Decimal> target_price;
  std::optional<Decimal> target_percentage;
  std::optional<Decimal> target_value;
  std::optional<std::int64_t> anchor_price;  ///< raw
  std::optional<TimeNs> expires_at;
  std::int64_t window_seconds =
      kDefaultVolumeWindowSec;  ///< volume: metadata.window_seconds (<= 0: invalid)
  AlertStatus status = AlertStatus::active;
  std::optional<TimeNs> triggered_at;
  /// Set by the row reader (NaN target, unknown status, ...): the matcher rejects it with this.
  RejectReason invalid = RejectReason::none;
  friend bool operator==(const AlertSpec&, const AlertSpec&) = default;
};

}  // namespace lam
