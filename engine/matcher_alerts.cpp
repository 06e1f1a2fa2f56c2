// Alerts in the matcher (docs/semantics.md, "Alerts"): arming on the ladders, re-keying, upserts
// from the bot (a digest of the row says whether anything changed), cancels and releases.
#include <algorithm>

#include "engine/matcher.h"
#include "engine/matcher_state.h"

namespace lam {

// ---- alerts ----------------------------------------------------------------------------------

namespace {

/// A 64-bit digest of every field of an alert row (splitmix64's finalizer over each word).
class Digest {
 public:
  void add(std::uint64_t w) noexcept {
    h_ ^= w + 0x9E3779B97F4A7C15ULL + (h_ << 6) + (h_ >> 2);
    h_ = mix(h_);
  }
  void add(const Uuid& u) noexcept {
    add(u.hi);
    add(u.lo);
  }
  void add(Wide w) noexcept {
    add(static_cast<std::uint64_t>(static_cast<unsigned __int128>(w)));
    add(static_cast<std::uint64_t>(static_cast<unsigned __int128>(w) >> 64));
  }
  template <class T>
  void add(const std::optional<T>& v) noexcept {
    add(std::uint64_t{v.has_value()});
    if (v) add(*v);
  }
  void add(const Decimal& d) noexcept {
    add(d.floor);
    add(static_cast<std::uint64_t>(d.rem));
  }
  void add(std::int64_t v) noexcept { add(static_cast<std::uint64_t>(v)); }
  [[nodiscard]] std::uint64_t value() const noexcept { return h_; }

 private:
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t h_ = 0x6C616D696E61746FULL;
};

std::uint64_t fingerprint(const AlertSpec& s) noexcept {
  Digest d;
  d.add(s.id);
  d.add(s.user_id);
  d.add(s.market_id);
  d.add(static_cast<std::uint64_t>(s.type));
  d.add(static_cast<std::uint64_t>(s.condition));
  d.add(s.target_price);
  d.add(s.target_percentage);
  d.add(s.target_value);
  d.add(s.anchor_price);
  d.add(s.expires_at);
  d.add(s.window_seconds);
  d.add(static_cast<std::uint64_t>(s.status));
  d.add(s.triggered_at);
  d.add(static_cast<std::uint64_t>(s.invalid));
  return d.value();
}

/// Whether an alert of this row needs an AlertExtra.
bool needs_extra(const AlertSpec& s) noexcept {
  return s.expires_at || s.anchor_price || s.triggered_at || s.type == AlertType::price_change ||
         s.type == AlertType::volume || s.type == AlertType::position_pnl;
}

}  // namespace

Matcher::AlertExtra& Matcher::extra_of(std::uint32_t slot) {
  AlertState& a = alerts_[slot];
  if (a.extra == kNone) a.extra = alert_extra_.acquire();
  return alert_extra_[a.extra];
}

const Matcher::AlertExtra* Matcher::extra_if(const AlertState& a) const noexcept {
  return a.extra == kNone ? nullptr : &alert_extra_[a.extra];
}

void Matcher::clear_alert(std::uint32_t slot) {
  AlertState& a = alerts_[slot];
  ids_.release(a.user);
  if (a.extra != kNone) alert_extra_.release(a.extra);
  a = AlertState{};  // a stale pending-anchor entry, if any, sees !pending_anchor
}

void Matcher::arm_keys(std::uint32_t slot, const Keys& k) {
  AlertState& a = alerts_[slot];
  MarketCold& c = cold_[a.market];
  a.has_up = k.up.has_value();
  a.has_down = k.down.has_value();
  a.up_key = k.up.value_or(0);
  a.down_key = k.down.value_or(0);
  if (k.up) file(c.up, *k.up, a.id, slot, AlertIds{alerts_});
  if (k.down) file(c.down, *k.down, a.id, slot, AlertIds{alerts_});
}

void Matcher::rekey_group(std::uint32_t group) {
  Group& g = groups_[group];
  for (std::uint32_t slot : g.alerts) {
    AlertState& a = alerts_[slot];
    MarketCold& c = cold_[a.market];
    if (a.has_up) c.up.erase(a.up_key, a.id, slot, AlertIds{alerts_});
    if (a.has_down) c.down.erase(a.down_key, a.id, slot, AlertIds{alerts_});
    const AlertExtra& x = alert_extra_[a.extra];
    arm_keys(slot, pnl_keys(a.condition, g.agg, x.target_value, x.target_percentage));
  }
}

void Matcher::disarm_alert(std::uint32_t slot) {
  AlertState& a = alerts_[slot];
  if (!a.armed) return;
  MarketCold& c = cold_[a.market];
  if (a.has_up) c.up.erase(a.up_key, a.id, slot, AlertIds{alerts_});
  if (a.has_down) c.down.erase(a.down_key, a.id, slot, AlertIds{alerts_});
  a.has_up = false;
  a.has_down = false;
  if (AlertExtra* x = a.extra == kNone ? nullptr : &alert_extra_[a.extra]) {
    if (a.in_expiry) c.expiry.erase({*x->expires_at, a.id, slot});
    if (a.in_volume) c.volume->remove(x->window_seconds * kNsPerSec, x->volume_target, a.id);
    if (x->group != kNone) std::erase(groups_[x->group].alerts, slot);
    x->group = kNone;
  }
  // pending_anchor entries are dropped lazily by anchor_pending()
  a.pending_anchor = false;
  a.in_expiry = false;
  a.in_volume = false;
  a.armed = false;
}

void Matcher::arm_alert(std::uint32_t slot, const AlertSpec& s, std::vector<Event>& out) {
  RejectReason reason = validate_alert(s);
  std::uint32_t mi = kNone;
  if (reason == RejectReason::none) {
    auto mit = market_index_.find(*s.market_id);
    if (mit == market_index_.end()) {
      reason = RejectReason::unknown_market;
    } else {
      mi = mit->second;
    }
  }
  if (reason != RejectReason::none) {
    Event e = make_event(EventType::alert_rejected, last_ts_, s.id, s.user_id, s.market_id);
    e.reason = reason;
    out.push_back(e);
    ++stats_.alerts_rejected;
    return;
  }
  AlertState& a = alerts_[slot];
  a.market = mi;
  a.armed = true;
  MarketCold& c = cold_[mi];
  if (s.expires_at) {
    c.expiry.insert({*s.expires_at, s.id, slot});
    a.in_expiry = true;
  }
  switch (s.type) {
    case AlertType::price_above:
    case AlertType::price_below:
      arm_keys(slot, price_keys(s.type, s.condition, *s.target_price));
      break;
    case AlertType::price_change:
      if (const std::optional<std::int64_t> anchor = alert_extra_[a.extra].anchor) {
        arm_keys(slot, change_keys(s.condition, *anchor, *s.target_percentage));
      } else {
        a.pending_anchor = true;
        c.pending_anchor.push_back(slot);
      }
      break;
    case AlertType::volume: {
      if (!c.volume) c.volume = std::make_unique<VolumeBook>(pool_.get());
      AlertExtra& x = alert_extra_[a.extra];
      x.volume_target = volume_key(*s.target_value);
      c.volume->add(s.window_seconds * kNsPerSec, x.volume_target, s.id, slot);
      a.in_volume = true;
      break;
    }
    case AlertType::position_pnl: {
      const std::uint32_t group = group_for(a.user, mi);
      alert_extra_[a.extra].group = group;
      Group& g = groups_[group];
      g.alerts.push_back(slot);
      arm_keys(slot, pnl_keys(s.condition, g.agg, s.target_value, s.target_percentage));
      break;
    }
    case AlertType::unknown:
      break;
  }
}

void Matcher::upsert_alert(const AlertSpec& spec, std::vector<Event>& out) {
  std::uint32_t slot = alert_slot(spec.id);
  std::uint32_t old_market = kNone;
  if (slot == kNone) {
    if (!free_alerts_.empty()) {
      slot = free_alerts_.back();
      free_alerts_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(alerts_.size());
      alerts_.emplace_back();
    }
    alert_index_.insert(spec.id, slot);  // the record takes spec.id below, before any lookup
  } else {
    old_market = alerts_[slot].market;
    disarm_alert(slot);
    clear_alert(slot);
  }
  AlertState& a = alerts_[slot];
  a.id = spec.id;
  a.user = ids_.acquire(spec.user_id);
  a.live = true;
  a.fingerprint = fingerprint(spec);
  a.type = spec.type;
  a.condition = spec.condition;
  a.status = spec.status;
  if (needs_extra(spec)) {
    AlertExtra& x = extra_of(slot);
    x.expires_at = spec.expires_at;
    x.anchor = spec.anchor_price;
    x.triggered_at = spec.triggered_at;
    x.target_percentage = spec.target_percentage;
    x.target_value = spec.target_value;
    x.window_seconds = spec.window_seconds;
  }
  if (a.status == AlertStatus::active) arm_alert(slot, spec, out);
  const std::uint32_t mi = alerts_[slot].market;
  if (old_market != kNone) refresh(old_market);
  if (mi != kNone && mi != old_market) refresh(mi);
}

bool Matcher::alert_unchanged(const AlertSpec& spec) const {
  const std::uint32_t slot = alert_slot(spec.id);
  if (slot == kNone) return false;
  const AlertState& a = alerts_[slot];
  return ids_[a.user] == spec.user_id && a.type == spec.type && a.condition == spec.condition &&
         a.fingerprint == fingerprint(spec);
}

void Matcher::cancel_alert(const Uuid& id) {
  const std::uint32_t slot = alert_slot(id);
  if (slot == kNone) return;
  const std::uint32_t mi = alerts_[slot].market;
  disarm_alert(slot);
  alerts_[slot].status = AlertStatus::cancelled;
  if (mi != kNone) refresh(mi);
}

bool Matcher::forget_alert(const Uuid& id) {
  const std::uint32_t slot = alert_slot(id);
  if (slot == kNone || alerts_[slot].armed) return false;
  alert_index_.erase(id, AlertIds{alerts_});
  clear_alert(slot);
  free_alerts_.push_back(slot);
  return true;
}

}  // namespace lam
