#include "engine/event.h"

namespace lam {

std::string_view to_string(EventType t) noexcept {
  const auto i = static_cast<std::size_t>(t);
  return i < kEventTypeCount ? kEventTypeNames[i] : "unknown";
}

std::string_view to_string(RejectReason r) noexcept {
  switch (r) {
    case RejectReason::none:
      return "none";
    case RejectReason::unsupported_condition:
      return "unsupported alert_type/condition_type combination";
    case RejectReason::missing_market:
      return "market_id is null";
    case RejectReason::unknown_market:
      return "unknown market_id";
    case RejectReason::missing_target:
      return "missing target for this condition";
    case RejectReason::invalid_target:
      return "target out of range";
    case RejectReason::invalid_window:
      return "metadata.window_seconds must be a positive integer of at most 9223372036";
    case RejectReason::not_a_number:
      return "a numeric column is NaN";
    case RejectReason::invalid_value:
      return "a column holds a value the engine cannot read";
    case RejectReason::out_of_range:
      return "a value beyond what the engine or the positions columns can hold";
    case RejectReason::invalid_size:
      return "size not positive, outside the market's order sizes, or off its step";
    case RejectReason::invalid_price:
      return "limit price missing, not positive, or off the market's tick";
    case RejectReason::invalid_trigger:
      return "trigger price missing, not positive, or off the market's tick";
    case RejectReason::invalid_leverage:
      return "leverage not positive or above the market's maximum";
    case RejectReason::insufficient_margin:
      return "available balance below the margin and fee";
    case RejectReason::no_position:
      return "no open position of that side to reduce";
    case RejectReason::position_closed:
      return "the position it reduced was closed";
    case RejectReason::foreign_wallet:
      return "the wallet belongs to another user";
    case RejectReason::changed_first:
      return "the bot changed the row before the engine's transition was stored: it is void";
    case RejectReason::invalid_trail:
      return "trailing stop: no rate or distance, a rate outside (0, 0.5], a distance or "
             "activation "
             "price not positive or off the market's tick, a trigger or limit price given, or "
             "trailing fields on another order type";
    case RejectReason::above_user_leverage:
      return "leverage above the user's own maximum (user_settings risk_management.max_leverage)";
    case RejectReason::invalid_setting:
      return "a user_settings value out of its range or not a number: the row is not followed";
    case RejectReason::finished_order:
      return "the order already finished; a finished order is never re-armed (write a new order "
             "to retry)";
  }
  return "unknown";
}

}  // namespace lam
