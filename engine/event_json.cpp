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
  const bool position =
      e.type == EventType::position_liquidated || e.type == EventType::position_rejected;
  append_id(out, position ? "position_id" : "alert_id", e.subject);
  append_id(out, "user_id", e.user_id);
  if (e.has_market) {
    append_id(out, "market_id", e.market_id);
  } else {
    out.append(",\"market_id\":null");
  }
  if (e.has_price)
    append_price(out, e.type == EventType::alert_anchored ? "anchor_price" : "price", e.price);
  if (e.type == EventType::alert_rejected || e.type == EventType::position_rejected) {
    out.append(",\"reason\":\"").append(reason_code(e.reason)).append("\",\"detail\":\"");
    out.append(to_string(e.reason)).push_back('"');
  }
  out.push_back('}');
}

}  // namespace lam
