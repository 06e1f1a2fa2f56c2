#pragma once
/// Matcher output events. The JSON form (docs/events.md) is produced by `event_json`.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <type_traits>

#include "engine/fixed.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam {

/// The one list of event types: the enum, the wire names (docs/events.md) and the count are made
/// from it, so a type added here is filterable, parsed by the gateway and counted everywhere at
/// once. X(enumerator, "wire name"):
///  * position_rejected: an open position the engine cannot arm (its values; see `reason`);
///  * market_unserved: a market no feed serves any more (renamed symbol, added after start-up);
///  * order_triggered: a stop / stop_limit reached its trigger price;
///  * order_filled: a paper order filled (whole), `price` the fill price;
///  * order_cancelled: by the engine: no position to reduce, or the position closed;
///  * order_rejected: validation or insufficient margin: the order is `failed`;
///  * position_closed: reduced to size 0 by a fill;
///  * order_revival_refused: the bot set a finished order (filled, cancelled, expired, failed) back
///    to pending / open: the engine does not re-arm it (terminal is terminal); the row is left as
///    the bot wrote it;
///  * order_fill_voided: compensates an `order.filled` that will never be stored: the bot cancelled
///    (or otherwise finished) the order before the engine's fill reached the database. `ref` the
///    position the fill had moved, `size` its size; the position and wallet follow the database;
///  * transition_voided: compensates another published transition the database did not take: the
///    bot changed the row first (cancelled the alert as it triggered, closed the position as it was
///    liquidated, ended the order as the engine triggered or ended it). `size` carries the voided
///    event's EventType.
///  * settings_rejected: a user_settings row with a value the engine cannot follow (`reason`,
///    `detail`): none of the row's values are followed (the defaults apply) until it is fixed.
///  * order_placed: the engine placed an order for the user: the protective stop of the user's
///    risk_management.stop_loss_percentage on the position a paper fill opened. `ref` the
///    position, `price` the trigger, `size` the order's size.
/// New types go at the end: the crash ring and the journal store the enumerator's value.
#define LAM_EVENT_TYPES(X)                          \
  X(alert_triggered, "alert.triggered")             \
  X(alert_expired, "alert.expired")                 \
  X(alert_rejected, "alert.rejected")               \
  X(alert_anchored, "alert.anchored")               \
  X(position_liquidated, "position.liquidated")     \
  X(position_rejected, "position.rejected")         \
  X(market_unserved, "market.unserved")             \
  X(order_triggered, "order.triggered")             \
  X(order_filled, "order.filled")                   \
  X(order_cancelled, "order.cancelled")             \
  X(order_expired, "order.expired")                 \
  X(order_rejected, "order.rejected")               \
  X(position_opened, "position.opened")             \
  X(position_increased, "position.increased")       \
  X(position_reduced, "position.reduced")           \
  X(position_closed, "position.closed")             \
  X(order_revival_refused, "order.revival_refused") \
  X(order_fill_voided, "order.fill_voided")         \
  X(transition_voided, "transition.voided")         \
  X(settings_rejected, "settings.rejected")         \
  X(order_placed, "order.placed")

enum class EventType : std::uint8_t {
#define LAM_EVENT_ENUMERATOR(e, name) e,
  LAM_EVENT_TYPES(LAM_EVENT_ENUMERATOR)
#undef LAM_EVENT_ENUMERATOR
};

/// Wire names, indexed by EventType.
inline constexpr std::string_view kEventTypeNames[] = {
#define LAM_EVENT_NAME(e, name) name,
    LAM_EVENT_TYPES(LAM_EVENT_NAME)
#undef LAM_EVENT_NAME
};
inline constexpr std::size_t kEventTypeCount = std::size(kEventTypeNames);

enum class RejectReason : std::uint8_t {
  none,
  unsupported_condition,  ///< alert_type x condition_type not in the table
  missing_market,         ///< market_id is null
  unknown_market,         ///< market_id names no loaded market
  missing_target,         ///< the field the condition needs is null
  invalid_target,         ///< target out of range, negative percentage, ...
  invalid_window,  ///< volume metadata.window_seconds is not a positive integer <= 9223372036
  not_a_number,    ///< a numeric column holds NaN
  invalid_value,   ///< a column holds what the engine cannot read (unknown enum value, bad uuid)
  out_of_range,    ///< a value, or size x entry_price, beyond what the engine or its columns hold
  // orders (order.rejected, order.cancelled)
  invalid_size,         ///< size <= 0, outside min/max_order_size, or off step_size
  invalid_price,        ///< limit price missing, not positive, or off tick_size
  invalid_trigger,      ///< trigger_price missing, not positive, or off tick_size
  invalid_leverage,     ///< leverage <= 0 or above the market's max_leverage
  insufficient_margin,  ///< available balance < added margin + fee
  no_position,          ///< a reduce order with no open position of that side
  position_closed,      ///< the position it reduced was closed or liquidated
  // integrity (docs/semantics.md, "Integrity")
  foreign_wallet,  ///< the row's wallet belongs to another user than the row's user_id
  finished_order,  ///< a pending / open order the engine knows finished (or whose row shows a fill)
  changed_first,   ///< the bot changed the row before the engine's transition was stored
  invalid_trail,   ///< trailing_stop: no offset, one out of range or off the tick (or on another
                   ///< type)
  above_user_leverage,  ///< leverage above the user's risk_management.max_leverage
  invalid_setting,      ///< a user_settings value the engine cannot follow (settings.rejected)
};

[[nodiscard]] std::string_view to_string(EventType t) noexcept;
[[nodiscard]] std::string_view to_string(RejectReason r) noexcept;

/// One output event. `subject` is the alert id, or the position id for position events.
struct Event {
  std::uint64_t seq = 0;
  TimeNs ts = 0;  ///< tick time that caused it (for rejections: the last tick time seen, or 0)
  Uuid subject;
  Uuid user_id;
  Uuid market_id;
  std::int64_t price = 0;  ///< reference price (raw); for alert.anchored the anchor
  EventType type = EventType::alert_triggered;
  RejectReason reason = RejectReason::none;
  bool has_market = false;
  bool has_price = false;
  bool taker = false;  ///< order.filled: the fill took liquidity
  // Orders and engine-opened positions:
  Uuid ref;               ///< order.filled: the position; position.*: the order that moved it
  std::int64_t size = 0;  ///< order.filled: the fill's size; position.*: the position's size after
  Wide amount = 0;        ///< order.filled: the fee; position.*: the fill's realized PnL (raw)
};
static_assert(std::is_trivially_copyable_v<Event>);
static_assert(sizeof(Event) <= 128);

}  // namespace lam
