#pragma once
/// Matcher output events. The JSON form (docs/events.md) is produced by `event_json`.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam {

enum class EventType : std::uint8_t {
  alert_triggered,
  alert_expired,
  alert_rejected,
  alert_anchored,
  position_liquidated,
  position_rejected,  ///< an open position the engine cannot arm (its values; see `reason`)
  market_unserved,    ///< a market no feed serves any more (renamed symbol, added after start-up)
};
inline constexpr std::size_t kEventTypeCount = 7;

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
};
static_assert(std::is_trivially_copyable_v<Event>);
static_assert(sizeof(Event) <= 96);

}  // namespace lam
