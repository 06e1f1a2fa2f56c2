#include "engine/orders.h"

#include <algorithm>
#include <limits>

namespace lam {

std::optional<OrderType> parse_order_type(std::string_view s) noexcept {
  if (s == "market") return OrderType::market;
  if (s == "limit") return OrderType::limit;
  if (s == "stop") return OrderType::stop;
  if (s == "stop_limit") return OrderType::stop_limit;
  if (s == "trailing_stop") return OrderType::trailing_stop;
  return std::nullopt;
}

std::optional<OrderSide> parse_order_side(std::string_view s) noexcept {
  if (s == "long") return OrderSide::long_side;
  if (s == "short") return OrderSide::short_side;
  if (s == "sell") return OrderSide::sell;
  if (s == "buy") return OrderSide::buy;
  return std::nullopt;
}

std::optional<OrderStatus> parse_order_status(std::string_view s) noexcept {
  if (s == "pending") return OrderStatus::pending;
  if (s == "open") return OrderStatus::open;
  if (s == "filled") return OrderStatus::filled;
  if (s == "partially_filled") return OrderStatus::partially_filled;
  if (s == "cancelled") return OrderStatus::cancelled;
  if (s == "expired") return OrderStatus::expired;
  if (s == "failed") return OrderStatus::failed;
  return std::nullopt;
}

std::optional<Execution> parse_execution(std::string_view s) noexcept {
  if (s == "paper") return Execution::paper;
  if (s == "live") return Execution::live;
  return std::nullopt;
}

std::optional<TriggerSource> parse_trigger_source(std::string_view s) noexcept {
  if (s == "mark") return TriggerSource::mark;
  if (s == "last") return TriggerSource::last;
  return std::nullopt;
}

std::string_view to_string(OrderType t) noexcept {
  switch (t) {
    case OrderType::market:
      return "market";
    case OrderType::limit:
      return "limit";
    case OrderType::stop:
      return "stop";
    case OrderType::stop_limit:
      return "stop_limit";
    case OrderType::trailing_stop:
      return "trailing_stop";
  }
  return "market";
}

std::string_view to_string(OrderSide s) noexcept {
  switch (s) {
    case OrderSide::long_side:
      return "long";
    case OrderSide::short_side:
      return "short";
    case OrderSide::sell:
      return "sell";
    case OrderSide::buy:
      return "buy";
  }
  return "long";
}

std::string_view to_string(OrderStatus s) noexcept {
  switch (s) {
    case OrderStatus::pending:
      return "pending";
    case OrderStatus::open:
      return "open";
    case OrderStatus::filled:
      return "filled";
    case OrderStatus::partially_filled:
      return "partially_filled";
    case OrderStatus::cancelled:
      return "cancelled";
    case OrderStatus::expired:
      return "expired";
    case OrderStatus::failed:
      return "failed";
  }
  return "pending";
}

std::string_view to_string(Liquidity l) noexcept {
  return l == Liquidity::maker ? "maker" : "taker";
}

Asset Asset::of(std::string_view s) noexcept {
  Asset a;
  const std::size_t n = std::min(s.size(), a.text.size() - 1);
  std::copy_n(s.data(), n, a.text.data());
  return a;
}

std::string_view Asset::view() const noexcept {
  return {text.data(),
          static_cast<std::size_t>(std::find(text.begin(), text.end(), '\0') - text.begin())};
}

namespace {

bool on_grid(std::int64_t v, const std::optional<std::int64_t>& step) noexcept {
  return !step || *step <= 0 || v % *step == 0;
}

/// A trailing stop's offsets and activation price; none of them on another type.
RejectReason validate_trail(const OrderSpec& o, const TradingRules& r) noexcept {
  const bool any = o.trail_rate || o.trail_distance || o.activation_price;
  if (o.type != OrderType::trailing_stop)
    return any ? RejectReason::invalid_trail : RejectReason::none;
  if (o.price || o.trigger_price || (!o.trail_rate && !o.trail_distance))
    return RejectReason::invalid_trail;
  if (o.trail_rate && (*o.trail_rate <= 0 || *o.trail_rate > kMaxTrailRate))
    return RejectReason::invalid_trail;
  if (o.trail_distance && (*o.trail_distance <= 0 || !on_grid(*o.trail_distance, r.tick_size)))
    return RejectReason::invalid_trail;
  if (o.activation_price &&
      (*o.activation_price <= 0 || !on_grid(*o.activation_price, r.tick_size)))
    return RejectReason::invalid_trail;
  return RejectReason::none;
}

}  // namespace

RejectReason validate_order(const OrderSpec& o, const TradingRules& r) noexcept {
  if (o.invalid != RejectReason::none) return o.invalid;
  if (o.size <= 0 || (r.min_size && o.size < *r.min_size) || (r.max_size && o.size > *r.max_size) ||
      !on_grid(o.size, r.step_size)) {
    return RejectReason::invalid_size;
  }
  const bool needs_price = o.type == OrderType::limit || o.type == OrderType::stop_limit;
  const bool needs_trigger = o.type == OrderType::stop || o.type == OrderType::stop_limit;
  if (needs_price && (!o.price || *o.price <= 0 || !on_grid(*o.price, r.tick_size)))
    return RejectReason::invalid_price;
  if (needs_trigger &&
      (!o.trigger_price || *o.trigger_price <= 0 || !on_grid(*o.trigger_price, r.tick_size)))
    return RejectReason::invalid_trigger;
  if (const RejectReason t = validate_trail(o, r); t != RejectReason::none) return t;
  if (o.leverage <= 0 || (r.max_leverage && o.leverage > *r.max_leverage))
    return RejectReason::invalid_leverage;
  // Notional beyond what positions.unrealized_pnl (DECIMAL(36,18)) can hold, as for positions.
  const std::int64_t px =
      o.price.value_or(o.trigger_price.value_or(o.activation_price.value_or(0)));
  if (!notional_fits(o.size, px)) return RejectReason::out_of_range;
  return RejectReason::none;
}

Wide FillMath::fee(std::int64_t size, std::int64_t price, std::int64_t rate) noexcept {
  if (rate <= 0) return 0;
  // size * price is 1e-18 units; * rate 1e-27; back to raw (1e-9): / 1e18
  const Wide notional = static_cast<Wide>(size) * price;  // < 1e36 (validated)
  // notional * rate / 1e18 rounded up once, split to stay inside 128 bits (rounding the notional
  // up first and then the product again charged one unit too much whenever size x price had more
  // than 9 decimals): notional = hi * 1e9 + lo; hi * rate = a * 1e9 + b; so the quotient is
  // a + (b * 1e9 + lo * rate) / 1e18, where both addends stay below 1e27.
  const Wide hi = notional / kScale, lo = notional % kScale;  // notional >= 0 (validated)
  const Wide hr = hi * rate;                                  // < 1e27 * rate
  const Wide a = hr / kScale, b = hr % kScale;
  return a + ceil_div(b * kScale + lo * rate, Wide{kScale} * kScale);
}

Wide FillMath::margin(std::int64_t size, std::int64_t price, std::int64_t leverage) noexcept {
  const Wide notional = static_cast<Wide>(size) * price;  // 1e-18 units
  return ceil_div(notional, leverage);                    // raw: 1e-18 / (L raw 1e-9) = 1e-9
}

std::int64_t FillMath::average(std::int64_t entry, std::int64_t size, std::int64_t price,
                               std::int64_t q) noexcept {
  const Wide num = static_cast<Wide>(entry) * size + static_cast<Wide>(price) * q;
  const Wide den = static_cast<Wide>(size) + q;
  return static_cast<std::int64_t>(floor_div(2 * num + den, 2 * den));  // nearest, half up
}

Wide FillMath::pnl(Side side, std::int64_t entry, std::int64_t price, std::int64_t q) noexcept {
  const Wide d =
      side == Side::long_side ? static_cast<Wide>(price) - entry : static_cast<Wide>(entry) - price;
  return floor_div(d * q, kScale);
}

std::int64_t FillMath::slipped(std::int64_t price, bool buy, std::uint32_t bps) noexcept {
  if (bps == 0) return price;
  const Wide p = static_cast<Wide>(price);
  const Wide r = buy ? -floor_div(-p * (10'000 + static_cast<Wide>(bps)), 10'000)
                     : floor_div(p * (10'000 - static_cast<Wide>(bps)), 10'000);
  if (r > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(std::max<Wide>(r, 1));
}

std::optional<std::int64_t> FillMath::protective_trigger(
    std::int64_t entry, bool long_side, std::int64_t fraction,
    std::optional<std::int64_t> tick) noexcept {
  const Wide t = tick && *tick > 0 ? *tick : 1;
  const Wide e = entry;
  Wide trigger = 0;
  if (long_side) {  // entry x (1 - f), up to the tick: toward the entry
    trigger = -floor_div(-e * (kScale - fraction), kScale * t) * t;
    if (trigger >= e) trigger -= t;
  } else {  // entry x (1 + f), down to the tick
    trigger = floor_div(e * (kScale + fraction), kScale * t) * t;
    if (trigger <= e) trigger += t;
  }
  if (trigger <= 0 || trigger > kMaxRaw) return std::nullopt;
  return static_cast<std::int64_t>(trigger);
}

Wide FillMath::released(Wide margin, std::int64_t q, std::int64_t size) noexcept {
  if (q >= size) return margin;
  return floor_div(margin * q, size);
}

}  // namespace lam
