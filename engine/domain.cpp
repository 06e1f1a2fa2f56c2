#include "engine/domain.h"

namespace lam {

std::optional<MarketType> parse_market_type(std::string_view s) noexcept {
  if (s == "perpetual") return MarketType::perpetual;
  if (s == "spot") return MarketType::spot;
  if (s == "futures") return MarketType::futures;
  return std::nullopt;
}

std::optional<PriceSource> parse_price_source(std::string_view s) noexcept {
  if (s == "mark") return PriceSource::mark;
  if (s == "last") return PriceSource::last;
  if (s == "mid") return PriceSource::mid;
  return std::nullopt;
}

std::optional<Side> parse_side(std::string_view s) noexcept {
  if (s == "long") return Side::long_side;
  if (s == "short") return Side::short_side;
  return std::nullopt;
}

std::optional<PositionStatus> parse_position_status(std::string_view s) noexcept {
  if (s == "open") return PositionStatus::open;
  if (s == "closed") return PositionStatus::closed;
  if (s == "liquidated") return PositionStatus::liquidated;
  return std::nullopt;
}

AlertType parse_alert_type(std::string_view s) noexcept {
  if (s == "price_above") return AlertType::price_above;
  if (s == "price_below") return AlertType::price_below;
  if (s == "price_change") return AlertType::price_change;
  if (s == "volume") return AlertType::volume;
  if (s == "position_pnl") return AlertType::position_pnl;
  return AlertType::unknown;
}

ConditionType parse_condition_type(std::string_view s) noexcept {
  if (s == "greater_than") return ConditionType::greater_than;
  if (s == "less_than") return ConditionType::less_than;
  if (s == "equals") return ConditionType::equals;
  if (s == "percentage_change") return ConditionType::percentage_change;
  return ConditionType::unknown;
}

std::optional<AlertStatus> parse_alert_status(std::string_view s) noexcept {
  if (s == "active") return AlertStatus::active;
  if (s == "triggered") return AlertStatus::triggered;
  if (s == "cancelled") return AlertStatus::cancelled;
  if (s == "expired") return AlertStatus::expired;
  return std::nullopt;
}

std::string_view to_string(PositionStatus s) noexcept {
  switch (s) {
    case PositionStatus::open:
      return "open";
    case PositionStatus::closed:
      return "closed";
    case PositionStatus::liquidated:
      return "liquidated";
  }
  return "open";
}

std::string_view to_string(AlertStatus s) noexcept {
  switch (s) {
    case AlertStatus::active:
      return "active";
    case AlertStatus::triggered:
      return "triggered";
    case AlertStatus::cancelled:
      return "cancelled";
    case AlertStatus::expired:
      return "expired";
  }
  return "active";
}

std::string_view to_string(PriceSource s) noexcept {
  switch (s) {
    case PriceSource::mark:
      return "mark";
    case PriceSource::last:
      return "last";
    case PriceSource::mid:
      return "mid";
  }
  return "mark";
}

}  // namespace lam
