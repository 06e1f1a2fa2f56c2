#pragma once
/// Orders as the engine sees them (docs/semantics.md, "Orders"; the product decisions are
/// ../shared/orders.md): the bot's `orders` rows, the market's trading rules, wallet balances, and
/// the pure arithmetic of paper fills. The matcher arms, triggers and fills them.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/uuid.h"

namespace lam {

enum class OrderType : std::uint8_t { market, limit, stop, stop_limit, trailing_stop };
/// Hedge mode: `long`/`short` open or increase that side; `sell` reduces the long, `buy` the short.
enum class OrderSide : std::uint8_t { long_side, short_side, sell, buy };
enum class OrderStatus : std::uint8_t {
  pending,
  open,
  filled,
  partially_filled,
  cancelled,
  expired,
  failed
};
enum class Execution : std::uint8_t { paper, live };
/// `reference`: the market's own price source (orders.trigger_source NULL).
enum class TriggerSource : std::uint8_t { reference, mark, last };
enum class Liquidity : std::uint8_t { maker, taker };

[[nodiscard]] std::optional<OrderType> parse_order_type(std::string_view) noexcept;
[[nodiscard]] std::optional<OrderSide> parse_order_side(std::string_view) noexcept;
[[nodiscard]] std::optional<OrderStatus> parse_order_status(std::string_view) noexcept;
[[nodiscard]] std::optional<Execution> parse_execution(std::string_view) noexcept;
[[nodiscard]] std::optional<TriggerSource> parse_trigger_source(std::string_view) noexcept;
[[nodiscard]] std::string_view to_string(OrderType) noexcept;
[[nodiscard]] std::string_view to_string(OrderSide) noexcept;
[[nodiscard]] std::string_view to_string(OrderStatus) noexcept;
[[nodiscard]] std::string_view to_string(Liquidity) noexcept;

/// The position side an order acts on, and whether it opens (increases) or reduces it.
[[nodiscard]] constexpr Side position_side(OrderSide s) noexcept {
  return s == OrderSide::long_side || s == OrderSide::sell ? Side::long_side : Side::short_side;
}
[[nodiscard]] constexpr bool reduces(OrderSide s) noexcept {
  return s == OrderSide::sell || s == OrderSide::buy;
}
/// Buy direction (pays the ask, triggers when the price rises): long and buy.
[[nodiscard]] constexpr bool buys(OrderSide s) noexcept {
  return s == OrderSide::long_side || s == OrderSide::buy;
}

struct OrderSpec {
  Uuid id;
  Uuid user_id;
  Uuid wallet_id;
  Uuid market_id;
  OrderType type = OrderType::market;
  OrderSide side = OrderSide::long_side;
  Execution execution = Execution::paper;
  std::int64_t size = 0;                      ///< raw
  std::optional<std::int64_t> price;          ///< limit price, raw
  std::optional<std::int64_t> trigger_price;  ///< raw
  TriggerSource trigger_source = TriggerSource::reference;
  std::int64_t leverage = kScale;  ///< raw (1x)
  OrderStatus status = OrderStatus::pending;
  std::optional<TimeNs> triggered_at;
  std::optional<TimeNs> expires_at;
  // trailing_stop (docs/semantics.md, "Trailing stops"): at least one offset; none of them on
  // other types.
  std::optional<std::int64_t> trail_rate;        ///< raw fraction (0.01 = 1 %), in (0, 0.5]
  std::optional<std::int64_t> trail_distance;    ///< raw price distance, > 0, on the tick
  std::optional<std::int64_t> activation_price;  ///< raw; none: activated when armed
  // The engine's, once activated (orders.activated_at, trail_group_id, and the best price of the
  // group's root in trail_groups): a restart follows the same best price from the same group.
  std::optional<TimeNs> activated_at;
  std::optional<Uuid> trail_group;
  std::optional<std::int64_t> trail_extreme;
  RejectReason invalid = RejectReason::none;  ///< set by the row reader
  friend bool operator==(const OrderSpec&, const OrderSpec&) = default;
};

/// A user's own settings (the seed's `user_settings` rows; docs/semantics.md, "The users' own
/// settings"): unset, the market's maximum leverage and the daemon's slippage apply.
struct UserSettings {
  std::optional<std::int64_t> max_leverage;  ///< raw; risk_management.max_leverage
  std::optional<std::int64_t>
      stop_loss_fraction;                     ///< raw; risk_management.stop_loss_percentage/100
  std::optional<std::uint32_t> slippage_bps;  ///< trading.default_slippage (percent) x 100
  friend bool operator==(const UserSettings&, const UserSettings&) = default;
};

/// One `user_settings` row as the engine reads it: the fields of its key (risk_management:
/// max_leverage, stop_loss_percentage; trading: default_slippage; any other key: nothing).
struct UserSettingRow {
  enum class Key : std::uint8_t { other, risk_management, trading };
  Uuid id;
  Uuid user_id;
  Key key = Key::other;
  UserSettings values;                        ///< only its key's fields
  RejectReason invalid = RejectReason::none;  ///< invalid_setting: its values are not followed
  friend bool operator==(const UserSettingRow&, const UserSettingRow&) = default;
};

struct BalanceSpec {
  Uuid wallet_id;
  Asset token;
  Wide balance = 0;  ///< raw
  Wide locked = 0;   ///< raw
  Uuid row_id{};     ///< wallet_balances.id (nil when unknown, as in a replay's STATE.json)
};

/// An order as it stands now.
struct OrderView {
  Uuid id;
  OrderSide side = OrderSide::long_side;
  OrderStatus status = OrderStatus::pending;
  RejectReason reason = RejectReason::none;  ///< why it was cancelled or failed (status_reason)
  std::optional<TimeNs> triggered_at;
  std::optional<TimeNs> activated_at;         ///< trailing_stop: when it started to trail
  std::optional<std::int64_t> trail_extreme;  ///< trailing_stop: the best price since, while armed
  std::optional<Uuid> trail_group;            ///< trailing_stop: the group it follows, while armed
  std::optional<TimeNs> filled_at;
  std::int64_t filled_size = 0;
  std::optional<std::int64_t> avg_fill_price;
  Wide total_fees = 0;
  std::optional<Uuid> position_id;
  bool liquidity_taker = false;
  Wide realized_pnl = 0;  ///< of its fill
  // Its fill's effect, as the writer applies it (deltas, so that a fill lost to the bot's cancel
  // leaves the later ones right):
  Wide locked_delta = 0;  ///< margin added to the position and locked in the wallet (< 0: released)
  std::int64_t entry_after = 0;  ///< the position's entry price right after the fill
  bool opened_position = false;  ///< the fill opened the position
  /// An engine-made protective stop: the order whose fill opened the position it protects (held
  /// from its placement until a restart; the writer inserts its row from that order's).
  std::optional<Uuid> opened_by;
};

/// A wallet's balance in one asset, as the engine holds it (raw).
struct BalanceView {
  Uuid wallet_id;
  Asset token;
  Wide balance = 0;
  Wide locked = 0;
};

/// Checks an order against its market's rules when it is armed (docs/semantics.md): the reason it
/// fails with, or none.
/// The largest trailing rate (50 %, raw): beyond it a SELL trails to half its best price.
inline constexpr std::int64_t kMaxTrailRate = kScale / 2;

[[nodiscard]] RejectReason validate_order(const OrderSpec& o, const TradingRules& r) noexcept;

/// Paper-fill arithmetic on raw values (1e-9), exact on the grid; rounding in the exchange's favour
/// (fees and required margin up, released margin down, realized PnL down).
struct FillMath {
  /// size x price x rate, rounded up.
  [[nodiscard]] static Wide fee(std::int64_t size, std::int64_t price, std::int64_t rate) noexcept;
  /// size x price / leverage, rounded up.
  [[nodiscard]] static Wide margin(std::int64_t size, std::int64_t price,
                                   std::int64_t leverage) noexcept;
  /// (entry x size + price x q) / (size + q), rounded to nearest.
  [[nodiscard]] static std::int64_t average(std::int64_t entry, std::int64_t size,
                                            std::int64_t price, std::int64_t q) noexcept;
  /// dir x (price - entry) x q, rounded down.
  [[nodiscard]] static Wide pnl(Side side, std::int64_t entry, std::int64_t price,
                                std::int64_t q) noexcept;
  /// A position the engine can hold after a fill: size and margin within +-9e9, notional fits.
  [[nodiscard]] static bool position_fits(std::int64_t size, std::int64_t entry,
                                          Wide margin) noexcept {
    return size <= kMaxRaw && margin <= kMaxRaw && notional_fits(size, entry);
  }
  /// A taker's fill price moved `bps` basis points against the trader ([paper] slippage_bps):
  /// up for a buy (rounded up), down for a sell (rounded down, never below one unit), clamped to
  /// the int64 range (a price past it then fails position_fits).
  [[nodiscard]] static std::int64_t slipped(std::int64_t price, bool buy,
                                            std::uint32_t bps) noexcept;
  /// margin x q / size, rounded down (the rest is released when the position closes).
  [[nodiscard]] static Wide released(Wide margin, std::int64_t q, std::int64_t size) noexcept;
  /// The trigger of the protective stop a user's risk_management.stop_loss_percentage asks for
  /// (docs/semantics.md, "The users' own settings"): `fraction` (raw, in (0, 1)) from the entry,
  /// below it for a long, above for a short, on the market's tick and rounded toward the entry (the
  /// loss never exceeds the user's percentage), but never on the entry itself (one tick beyond it
  /// then). None when that price is not positive or not held (> kMaxRaw).
  [[nodiscard]] static std::optional<std::int64_t> protective_trigger(
      std::int64_t entry, bool long_side, std::int64_t fraction,
      std::optional<std::int64_t> tick) noexcept;
};

}  // namespace lam
