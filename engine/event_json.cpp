#include "engine/event_json.h"

#include <charconv>

#include "engine/fixed.h"

namespace lam {
namespace {

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void append_id(std::string& out, const char* key, const Uuid& id) {
  out.append(",\"").append(key).append("\":\"");
  id.append_to(out);
  out.push_back('"');
}

void append_price(std::string& out, const char* key, std::int64_t raw) {
  out.append(",\"").append(key).append("\":\"");
  append_fixed(out, raw);
  out.push_back('"');
}

}  // namespace

std::string_view reason_code(RejectReason r) noexcept {
  switch (r) {
    case RejectReason::none:
      return "none";
    case RejectReason::unsupported_condition:
      return "unsupported_condition";
    case RejectReason::missing_market:
      return "missing_market";
    case RejectReason::unknown_market:
      return "unknown_market";
    case RejectReason::missing_target:
      return "missing_target";
    case RejectReason::invalid_target:
      return "invalid_target";
    case RejectReason::invalid_window:
      return "invalid_window";
    case RejectReason::not_a_number:
      return "not_a_number";
    case RejectReason::invalid_value:
      return "invalid_value";
    case RejectReason::out_of_range:
      return "out_of_range";
    case RejectReason::invalid_size:
      return "invalid_size";
    case RejectReason::invalid_price:
      return "invalid_price";
    case RejectReason::invalid_trigger:
      return "invalid_trigger";
    case RejectReason::invalid_trail:
      return "invalid_trail";
    case RejectReason::above_user_leverage:
      return "above_user_leverage";
    case RejectReason::invalid_setting:
      return "invalid_setting";
    case RejectReason::invalid_leverage:
      return "invalid_leverage";
    case RejectReason::insufficient_margin:
      return "insufficient_margin";
    case RejectReason::no_position:
      return "no_position";
    case RejectReason::position_closed:
      return "position_closed";
    case RejectReason::foreign_wallet:
      return "foreign_wallet";
    case RejectReason::finished_order:
      return "finished_order";
    case RejectReason::changed_first:
      return "changed_first";
  }
  return "unknown";
}

void append_event_json(std::string& out, const Event& e) {
  out.append("{\"seq\":");
  append_uint(out, e.seq);
  out.append(",\"type\":\"").append(to_string(e.type)).append("\",\"ts\":");
  // ms, rounded toward -inf
  append_int(out, e.ts >= 0 ? e.ts / kNsPerMs : -((-e.ts + kNsPerMs - 1) / kNsPerMs));
  if (e.type == EventType::market_unserved) {  // an operator event: no alert, position or user
    append_id(out, "market_id", e.market_id);
    out.push_back('}');
    return;
  }
  const char* subject = "alert_id";
  // transition.voided names its subject as the event it voids did.
  const EventType as =
      e.type == EventType::transition_voided ? static_cast<EventType>(e.size) : e.type;
  switch (as) {
    case EventType::position_liquidated:
    case EventType::position_rejected:
    case EventType::position_opened:
    case EventType::position_increased:
    case EventType::position_reduced:
    case EventType::position_closed:
      subject = "position_id";
      break;
    case EventType::order_triggered:
    case EventType::order_filled:
    case EventType::order_cancelled:
    case EventType::order_expired:
    case EventType::order_rejected:
    case EventType::order_revival_refused:
    case EventType::order_fill_voided:
    case EventType::order_placed:
      subject = "order_id";
      break;
    case EventType::settings_rejected:
      subject = "setting_id";
      break;
    default:
      break;
  }
  append_id(out, subject, e.subject);
  append_id(out, "user_id", e.user_id);
  if (e.has_market) {
    append_id(out, "market_id", e.market_id);
  } else {
    out.append(",\"market_id\":null");
  }
  if (e.has_price)
    append_price(out,
                 e.type == EventType::alert_anchored ? "anchor_price"
                 : e.type == EventType::order_placed ? "trigger_price"
                                                     : "price",
                 e.price);
  switch (e.type) {
    case EventType::order_filled:
      append_id(out, "position_id", e.ref);
      append_price(out, "size", e.size);
      out.append(",\"fee\":\"");
      append_fixed(out, e.amount);
      out.append("\",\"liquidity\":\"").append(e.taker ? "taker" : "maker").push_back('"');
      break;
    case EventType::order_fill_voided:
    case EventType::order_placed:
      append_id(out, "position_id", e.ref);
      append_price(out, "size", e.size);
      break;
    case EventType::transition_voided:
      out.append(",\"voided_type\":\"").append(to_string(as)).push_back('"');
      break;
    case EventType::position_opened:
    case EventType::position_increased:
    case EventType::position_reduced:
    case EventType::position_closed:
      append_id(out, "order_id", e.ref);
      append_price(out, "size", e.size);
      out.append(",\"realized_pnl\":\"");
      append_fixed(out, e.amount);
      out.push_back('"');
      break;
    default:
      break;
  }
  if (e.type == EventType::alert_rejected || e.type == EventType::position_rejected ||
      e.type == EventType::order_rejected || e.type == EventType::order_cancelled ||
      e.type == EventType::order_revival_refused || e.type == EventType::order_fill_voided ||
      e.type == EventType::transition_voided || e.type == EventType::settings_rejected) {
    out.append(",\"reason\":\"").append(reason_code(e.reason)).append("\",\"detail\":\"");
    out.append(to_string(e.reason)).push_back('"');
  }
  out.push_back('}');
}

}  // namespace lam
