#pragma once
/// The one reader of `markets`, `positions` and `alerts` rows, shared by the database loader (COPY
/// text and query results) and `laminator replay` (STATE.json), so both read a row the same way.
///
/// Every value is hostile: NaN, +-infinity, numbers beyond the engine's range, unknown enum values,
/// dates after 2262. A row is either armed as read, or *rejected* (its id and user are readable:
/// the matcher emits alert.rejected / position.rejected naming the reason), or *unreadable* (it
/// cannot even be named: counted and logged by the caller). Nothing here throws or allocates per
/// field on the good path.

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/orders.h"

namespace lam::rows {

/// One column's value as text; `present` is false for SQL NULL / JSON null / a missing key.
struct Cell {
  bool present = false;
  std::string_view text;
};

// The columns each reader asks for, in this order (the loader SELECTs them in this order too).
enum class MarketCol : std::uint8_t {
  id,
  symbol,
  dex_name,
  market_type,
  price_source,
  maintenance_margin_rate,
  maker_fee_rate,
  taker_fee_rate,
  min_order_size,
  max_order_size,
  tick_size,
  step_size,
  max_leverage,
  quote_asset,
  oracle_feed_id,
  count
};
enum class PositionCol : std::uint8_t {
  id,
  user_id,
  market_id,
  side,
  size,
  entry_price,
  margin,
  realized_pnl,
  status,
  current_price,
  unrealized_pnl,
  closed_at,
  wallet_id,
  leverage,
  wallet_owner,  ///< the user_id of the row's wallet (wallets.user_id; optional)
  count
};
enum class AlertCol : std::uint8_t {
  id,
  user_id,
  market_id,
  alert_type,
  condition_type,
  target_price,
  target_percentage,
  target_value,
  anchor_price,
  expires_at,
  window_seconds,  ///< alerts.metadata->>'window_seconds'
  status,
  triggered_at,
  count
};

enum class OrderCol : std::uint8_t {
  id,
  user_id,
  wallet_id,
  market_id,
  order_type,
  side,
  execution,
  size,
  price,
  trigger_price,
  trigger_source,
  leverage,
  status,
  triggered_at,
  expires_at,
  filled_size,   ///< optional: > 0 on a pending / open row means a finished order set back
  filled_at,     ///< optional: likewise when set
  wallet_owner,  ///< the user_id of the row's wallet (wallets.user_id; optional)
  // trailing stops (0017; optional):
  trail_rate,
  trail_distance,
  activation_price,
  activated_at,    ///< the engine's
  trail_group_id,  ///< the root of the engine's trail_group_id (trail_root)
  trail_extreme,   ///< that root's best price
  count
};
/// user_settings, its JSON values read by SQL (`setting_value->>'max_leverage'`, ...): any JSON
/// type arrives as text (a string "10" reads as 10), null or a missing key as no value.
enum class SettingCol : std::uint8_t {
  id,
  user_id,
  setting_key,
  max_leverage,          ///< risk_management: (0, 1000]
  stop_loss_percentage,  ///< risk_management: (0, 100), at most 7 decimals
  default_slippage,      ///< trading: percent in [0, 10], at most 2 decimals (basis points)
  count
};
enum class BalanceCol : std::uint8_t {
  wallet_id,
  token_symbol,
  balance,
  locked_balance,
  id,  ///< wallet_balances.id (optional)
  count
};

/// Column names, indexed by the enums above (for lookups by name and for messages).
[[nodiscard]] std::string_view column_name(OrderCol c) noexcept;
[[nodiscard]] std::string_view column_name(BalanceCol c) noexcept;
[[nodiscard]] std::string_view column_name(SettingCol c) noexcept;
[[nodiscard]] std::string_view column_name(MarketCol c) noexcept;
[[nodiscard]] std::string_view column_name(PositionCol c) noexcept;
[[nodiscard]] std::string_view column_name(AlertCol c) noexcept;

/// Where a row's cells come from. Timestamps may be ISO-8601 text or epoch seconds (a decimal, as
/// `extract(epoch FROM ts)` prints it); `infinity` / `-infinity` are accepted in both.
class CellSource {
 public:
  virtual ~CellSource() = default;
  [[nodiscard]] virtual Cell cell(std::size_t column) const = 0;
};

enum class Verdict : std::uint8_t { ok, rejected, unreadable };

/// What became of one row. `detail` names the first offending column and value.
struct RowReport {
  Verdict verdict = Verdict::ok;
  RejectReason reason = RejectReason::none;
  std::string detail;  ///< e.g. "target_price: not a number 'NaN'"
  [[nodiscard]] bool ok() const noexcept { return verdict == Verdict::ok; }
};

/// Unreadable markets are skipped (their positions and alerts then meet unknown_market).
RowReport read_market(const CellSource& src, MarketRow& out);
/// A rejected position carries its reason in `out.invalid`; the matcher does not arm it.
RowReport read_position(const CellSource& src, PositionSpec& out);
/// A rejected alert carries its reason in `out.invalid`; the matcher rejects it with an event.
RowReport read_alert(const CellSource& src, AlertSpec& out);

/// A rejected order carries its reason in `out.invalid`: the matcher fails it (order.rejected).
RowReport read_order(const CellSource& src, OrderSpec& out);
/// A rejected setting row carries its reason in `out.invalid` (invalid_setting out of range,
/// not_a_number, invalid_value for text that is no number; settings.rejected): none of its values
/// are followed. One whose id or user cannot be read is unreadable.
RowReport read_setting(const CellSource& src, UserSettingRow& out);
/// A balance that cannot be read is unreadable (the wallet then has none: zero available).
RowReport read_balance(const CellSource& src, BalanceSpec& out);

/// A timestamp cell: `never` for +infinity, kTimeMin for -infinity, saturated beyond 1677..2262.
struct TimeCell {
  bool ok = false;
  bool never = false;  ///< +infinity
  TimeNs value = 0;
};
[[nodiscard]] TimeCell parse_time_cell(std::string_view text) noexcept;

}  // namespace lam::rows
