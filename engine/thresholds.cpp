#include "engine/thresholds.h"

#include <algorithm>

namespace lam {
namespace {

constexpr std::int64_t kHundredScale = 100 * kScale;  // 100%, raw

// Keys beyond any representable price are clamped to "never crosses".
std::int64_t clamp_up(Wide k) noexcept {
  if (k > static_cast<Wide>(kMaxRaw) + 1) return kMaxRaw + 1;
  if (k < -static_cast<Wide>(kMaxRaw)) return -kMaxRaw;
  return static_cast<std::int64_t>(k);
}
std::int64_t clamp_down(Wide k) noexcept {
  if (k < -static_cast<Wide>(kMaxRaw) - 1) return -kMaxRaw - 1;
  if (k > static_cast<Wide>(kMaxRaw)) return kMaxRaw;
  return static_cast<std::int64_t>(k);
}

int sign(Side s) noexcept {
  return s == Side::long_side ? 1 : -1;
}

bool supported(AlertType t, ConditionType c) noexcept {
  switch (t) {
    case AlertType::price_above:
      return c == ConditionType::greater_than || c == ConditionType::equals;
    case AlertType::price_below:
      return c == ConditionType::less_than || c == ConditionType::equals;
    case AlertType::price_change:
      return c == ConditionType::greater_than || c == ConditionType::less_than ||
             c == ConditionType::percentage_change;
    case AlertType::volume:
      return c == ConditionType::greater_than;
    case AlertType::position_pnl:
      return c == ConditionType::greater_than || c == ConditionType::less_than;
    case AlertType::unknown:
      return false;
  }
  return false;
}

bool fits(const std::optional<Decimal>& d) noexcept {
  return !d || (d->floor >= -static_cast<Wide>(kMaxRaw) && d->floor < static_cast<Wide>(kMaxRaw));
}

// Keys for "alpha * p >= c" (ge) or "alpha * p <= c" (le) with alpha, c in the same units.
Keys linear_keys(Wide alpha, Wide c, bool ge) noexcept {
  Keys k;
  if (alpha == 0) {
    if (ge ? 0 >= c : 0 <= c) k.up = kAlwaysUp;
    return k;
  }
  const bool up = (alpha > 0) == ge;
  if (up) {
    k.up = clamp_up(ceil_div(c, alpha));
  } else {
    k.down = clamp_down(floor_div(c, alpha));
  }
  return k;
}

}  // namespace

void PnlAggregate::add(Side side, std::int64_t size, std::int64_t entry, std::int64_t m) noexcept {
  const int s = sign(side);
  a += s * static_cast<Wide>(size);
  b += s * static_cast<Wide>(size) * entry;
  margin += m;
  ++open;
}

void PnlAggregate::remove(Side side, std::int64_t size, std::int64_t entry,
                          std::int64_t m) noexcept {
  const int s = sign(side);
  a -= s * static_cast<Wide>(size);
  b -= s * static_cast<Wide>(size) * entry;
  margin -= m;
  --open;
}

RejectReason validate_alert(const AlertSpec& a) noexcept {
  if (a.invalid != RejectReason::none) return a.invalid;
  if (!supported(a.type, a.condition)) return RejectReason::unsupported_condition;
  if (!a.market_id) return RejectReason::missing_market;
  switch (a.type) {
    case AlertType::price_above:
    case AlertType::price_below:
      if (!a.target_price) return RejectReason::missing_target;
      if (!fits(a.target_price)) return RejectReason::invalid_target;
      break;
    case AlertType::price_change:
      if (!a.target_percentage) return RejectReason::missing_target;
      if (a.target_percentage->floor < 0 || !fits(a.target_percentage))
        return RejectReason::invalid_target;
      if (a.anchor_price && *a.anchor_price <= 0) return RejectReason::invalid_target;
      break;
    case AlertType::volume:
      if (!a.target_value) return RejectReason::missing_target;
      if (!fits(a.target_value)) return RejectReason::invalid_target;
      // window_seconds * 1e9 must fit int64 nanoseconds, or the window would wrap to a tiny one
      if (a.window_seconds <= 0 || a.window_seconds > kMaxWindowSec)
        return RejectReason::invalid_window;
      break;
    case AlertType::position_pnl:
      if (!a.target_value && !a.target_percentage) return RejectReason::missing_target;
      if (!fits(a.target_value) || !fits(a.target_percentage)) return RejectReason::invalid_target;
      break;
    case AlertType::unknown:
      return RejectReason::unsupported_condition;
  }
  return RejectReason::none;
}

Keys price_keys(AlertType type, ConditionType cond, const Decimal& t) noexcept {
  Keys k;
  if (type == AlertType::price_above) {
    // p > t  <=>  p >= floor(t) + 1 ;  p >= t  <=>  p >= ceil(t)
    k.up = clamp_up(cond == ConditionType::greater_than ? t.floor + 1 : t.ceil());
  } else {
    // p < t  <=>  p <= ceil(t) - 1 ;  p <= t  <=>  p <= floor(t)
    k.down = clamp_down(cond == ConditionType::less_than ? t.ceil() - 1 : t.floor);
  }
  return k;
}

Keys change_keys(ConditionType cond, std::int64_t anchor, const Decimal& pct) noexcept {
  Keys k;
  const auto pct_raw = static_cast<std::int64_t>(std::min<Wide>(pct.nearest(), kMaxRaw));
  if (cond == ConditionType::greater_than || cond == ConditionType::percentage_change) {
    // p >= anchor * (1 + pct/100)
    k.up = clamp_up(muldiv_ceil(anchor, kHundredScale + pct_raw, kHundredScale));
  }
  if (cond == ConditionType::less_than || cond == ConditionType::percentage_change) {
    // p <= anchor * (1 - pct/100)
    k.down = clamp_down(muldiv_floor(anchor, kHundredScale - pct_raw, kHundredScale));
  }
  return k;
}

Keys pnl_keys(ConditionType cond, const PnlAggregate& agg,
              const std::optional<Decimal>& target_value,
              const std::optional<Decimal>& target_pct) noexcept {
  if (agg.open == 0) return {};
  const bool ge = cond == ConditionType::greater_than;
  if (target_value) {
    // a*p - b >= v (1e-18 units): a*p >= v*1e9 + b. Targets finer than 1e-9 round conservatively.
    const Wide v = ge ? target_value->ceil() : target_value->floor;
    Wide c = 0;
    if (__builtin_mul_overflow(v, static_cast<Wide>(kScale), &c) ||
        __builtin_add_overflow(c, agg.b, &c)) {
      return {};
    }
    return linear_keys(agg.a, c, ge);
  }
  // ROE%: 100 * (a*p - b) >= pct * margin  <=>  100a * p >= pct*margin + 100b
  if (agg.margin <= 0) return {};
  const Wide pct = ge ? target_pct->ceil() : target_pct->floor;
  Wide c = 0;
  Wide hb = 0;
  Wide alpha = 0;
  if (__builtin_mul_overflow(pct, agg.margin, &c) ||
      __builtin_mul_overflow(agg.b, Wide{100}, &hb) || __builtin_add_overflow(c, hb, &c) ||
      __builtin_mul_overflow(agg.a, Wide{100}, &alpha)) {
    return {};
  }
  return linear_keys(alpha, c, ge);
}

Wide volume_key(const Decimal& target_value) noexcept {
  return target_value.ceil();
}

std::optional<std::int64_t> liquidation_key(Side side, std::int64_t size, std::int64_t entry,
                                            std::int64_t margin, std::int64_t mmr) noexcept {
  if (size <= 0 || entry <= 0 || margin < 0 || mmr < 0 || mmr >= kScale) return std::nullopt;
  const Wide notional = static_cast<Wide>(size) * entry;     // 1e-18 units
  const Wide margin18 = static_cast<Wide>(margin) * kScale;  // 1e-18 units
  if (side == Side::long_side) {
    // LP = (size*entry - margin) / (size*(1-mmr)); liquidated when p <= LP
    const Wide num = notional - margin18;
    if (num <= 0) return std::nullopt;
    const Wide den = static_cast<Wide>(size) * (kScale - mmr);
    return clamp_down(muldiv_floor(num, kScale, den));
  }
  // LP = (size*entry + margin) / (size*(1+mmr)); liquidated when p >= LP
  const Wide num = notional + margin18;
  const Wide den = static_cast<Wide>(size) * (kScale + mmr);
  return clamp_up(muldiv_ceil(num, kScale, den));
}

}  // namespace lam
