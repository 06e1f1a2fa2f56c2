#include "engine/matcher.h"

#include <algorithm>

#include "engine/matcher_state.h"

namespace lam {

Matcher::Matcher(MatcherConfig cfg)
    : cfg_(cfg),
      next_seq_(cfg.first_seq),
      pool_(std::make_unique<std::pmr::unsynchronized_pool_resource>()) {
  // The records' sizes are the memory budget of issue 17 (docs/performance.md).
  static_assert(sizeof(AlertState) <= 56);
  static_assert(sizeof(OrderState) <= 72);
}

Matcher::~Matcher() = default;

Event Matcher::make_event(EventType type, TimeNs ts, const Uuid& subject, const Uuid& user,
                          const std::optional<Uuid>& market,
                          std::optional<std::int64_t> price) noexcept {
  Event e;
  e.seq = next_seq_++;
  e.type = type;
  e.ts = ts;
  e.subject = subject;
  e.user_id = user;
  if (market) {
    e.market_id = *market;
    e.has_market = true;
  }
  if (price) {
    e.price = *price;
    e.has_price = true;
  }
  return e;
}

void Matcher::refresh(std::uint32_t mi) {
  MarketHot& h = hot_[mi];
  const MarketCold& c = cold_[mi];
  Quotes& q = quotes_[mi];
  h.expiry_min = c.expiry.empty() ? std::numeric_limits<TimeNs>::max() : c.expiry.begin()->at;
  h.has_pending = !c.pending_anchor.empty();
  h.has_volume = c.volume && !c.volume->empty();
  h.has_waiting = !c.waiting.empty();
  bool any_orders = h.has_waiting || !c.lim_buy.empty() || !c.lim_sell.empty();
  q.s[Quotes::kLimBuy] = c.lim_buy.front_key();
  q.s[Quotes::kLimSell] = c.lim_sell.front_key();
  constexpr std::int64_t kAlways = std::numeric_limits<std::int64_t>::min();  // x >= it: slow
  const auto src = static_cast<std::size_t>(index_of(h.source));
  for (std::size_t k = 0; k < 3; ++k) {  // tick kind k = trigger source k (mark, last, mid)
    any_orders = any_orders || !c.trig_up[k].empty() || !c.trig_down[k].empty();
    std::int64_t hi = c.trig_up[k].front_key();
    std::int64_t lo = c.trig_down[k].front_key();
    if (k == src) {
      hi = std::min({hi, c.up.front_key(), c.liq_up.front_key()});
      lo = std::max({lo, c.down.front_key(), c.liq_down.front_key()});
      if (h.has_pending) hi = kAlways;
    }
    if (k == kLast) {
      // a trade fills a resting buy below it (x < key <=> x <= key - 1) and a sell above it
      if (!c.lim_sell.empty()) hi = std::min(hi, sat_add(q.s[Quotes::kLimSell], 1));
      if (!c.lim_buy.empty()) lo = std::max(lo, sat_add(q.s[Quotes::kLimBuy], -1));
      if (h.has_volume) hi = kAlways;
    }
    if (k != kMark && h.has_waiting) hi = kAlways;  // a trade or BBO brings a tradeable price
    h.hi[k] = hi;
    h.lo[k] = lo;
  }
  h.has_orders = any_orders;
}

void Matcher::reserve(std::size_t alerts, std::size_t positions) {
  alerts_.reserve(alerts);
  alert_index_.reserve(alerts);
  positions_.reserve(positions);
  position_index_.reserve(positions);
  group_index_.reserve(positions);
  groups_.reserve(positions);
}

void Matcher::end_load() {
  loading_ = false;
  for (std::uint32_t mi = 0; mi < cold_.size(); ++mi) {
    MarketCold& c = cold_[mi];
    const AlertIds alert_ids{alerts_};
    const PositionIds position_ids{positions_};
    const OrderIds order_ids{orders_};
    c.up.unstage(alert_ids);
    c.down.unstage(alert_ids);
    c.liq_up.unstage(position_ids);
    c.liq_down.unstage(position_ids);
    c.lim_buy.unstage(order_ids);
    c.lim_sell.unstage(order_ids);
    for (auto& l : c.trig_up) l.unstage(order_ids);
    for (auto& l : c.trig_down) l.unstage(order_ids);
    refresh(mi);
  }
}

// ---- markets ---------------------------------------------------------------------------------

void Matcher::upsert_market(const MarketSpec& m) {
  auto [it, inserted] = market_index_.try_emplace(m.id, static_cast<std::uint32_t>(hot_.size()));
  const std::uint32_t mi = it->second;
  if (inserted) {
    hot_.emplace_back();
    cold_.emplace_back(pool_.get());
    quotes_.emplace_back();
  } else if (cold_[mi].spec.instrument != m.instrument &&
             cold_[mi].spec.instrument < instrument_to_market_.size()) {
    instrument_to_market_[cold_[mi].spec.instrument] = kNone;
  }
  const bool mmr_changed = !inserted && cold_[mi].spec.mmr != m.mmr;
  const bool source_changed = !inserted && cold_[mi].spec.source != m.source;
  cold_[mi].spec = m;
  if (source_changed) {
    // Orders triggered by the market's reference price move to the new source's ladders.
    for (std::uint32_t slot = 0; slot < orders_.size(); ++slot) {
      OrderState& o = orders_[slot];
      if (!o.live || o.market != mi || o.trig_source < 0 ||
          o.trigger_source != TriggerSource::reference)
        continue;
      const auto from = static_cast<std::size_t>(o.trig_source);
      const std::size_t to = source_index(mi, TriggerSource::reference);
      if (o.trig_up) {
        cold_[mi].trig_up[from].erase(o.trigger_price, o.id, slot, OrderIds{orders_});
        cold_[mi].trig_up[to].insert(o.trigger_price, o.id, slot, OrderIds{orders_});
      } else {
        cold_[mi].trig_down[from].erase(o.trigger_price, o.id, slot, OrderIds{orders_});
        cold_[mi].trig_down[to].insert(o.trigger_price, o.id, slot, OrderIds{orders_});
      }
      o.trig_source = static_cast<std::int8_t>(to);
    }
    hot_[mi].source = m.source;  // the fences follow the source
    refresh(mi);
  }
  hot_[mi].source = m.source;
  if (m.instrument != kNoInstrument) {
    if (m.instrument >= instrument_to_market_.size())
      instrument_to_market_.resize(m.instrument + 1, kNone);
    instrument_to_market_[m.instrument] = mi;
  }
  if (mmr_changed) {
    for (std::uint32_t ps : cold_[mi].positions) {  // detach/attach never change this list
      if (positions_[ps].market != mi) continue;
      detach_position(ps);
      attach_position(ps);
    }
    refresh(mi);
  }
}

std::optional<std::int64_t> Matcher::reference_price(const Uuid& market_id) const {
  auto it = market_index_.find(market_id);
  if (it == market_index_.end() || !quotes_[it->second].has_p()) return std::nullopt;
  return quotes_[it->second].p();
}

std::optional<MarketPrice> Matcher::market_price(std::size_t slot) const {
  if (slot >= quotes_.size() || !quotes_[slot].has_p()) return std::nullopt;
  return MarketPrice{cold_[slot].spec.id, quotes_[slot].p()};
}

std::optional<Wide> roe_percent(Wide unrealized_pnl, std::int64_t margin) noexcept {
  if (margin <= 0) return std::nullopt;
  // trunc(u * 100 / m) without overflowing u * 100 (|u| reaches ~1e38 with a huge price): with
  // u = q m + r (truncated), 100 r / m has the sign of q and |.| < 100, so the result is
  // 100 q + trunc(100 r / m).
  // |ROE%| >= 1e29 (raw 1e38, near the 128-bit limit) is not represented: nullopt, as in SQL.
  const Wide q = unrealized_pnl / margin;
  const Wide r = unrealized_pnl % margin;
  constexpr Wide kLimit = static_cast<Wide>(1'000'000'000'000'000'000) * 1'000'000'000'000'000'000;
  if (q >= kLimit || q <= -kLimit) return std::nullopt;  // 100 q + t would reach 1e38
  return q * 100 + r * 100 / margin;
}

// ---- positions -------------------------------------------------------------------------------

std::uint32_t Matcher::alert_slot(const Uuid& id) const {
  return alert_index_.find(id, AlertIds{alerts_});
}
std::uint32_t Matcher::position_slot(const Uuid& id) const {
  return position_index_.find(id, PositionIds{positions_});
}
std::uint32_t Matcher::order_slot(const Uuid& id) const {
  return order_index_.find(id, OrderIds{orders_});
}

std::uint32_t Matcher::group_for(const Uuid& user, std::uint32_t market) {
  auto [it, inserted] =
      group_index_.try_emplace(GroupKey{user, market}, static_cast<std::uint32_t>(groups_.size()));
  if (inserted) groups_.emplace_back();
  return it->second;
}

void Matcher::attach_position(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  const PositionSpec& s = ps.spec;
  if (ps.removed || ps.status != PositionStatus::open || ps.market == kNone) return;
  if (s.size <= 0 || s.entry_price <= 0 || s.margin < 0) {
    ++stats_.positions_unarmed;
    return;
  }
  ps.group = group_for(s.user_id, ps.market);
  groups_[ps.group].agg.add(s.side, s.size, s.entry_price, s.margin);
  ps.attached = true;
  ps.liq_key = liquidation_key(s.side, s.size, s.entry_price, s.margin, cold_[ps.market].spec.mmr);
  if (ps.liq_key) {
    if (s.side == Side::long_side) {
      file(cold_[ps.market].liq_down, *ps.liq_key, s.id, slot, PositionIds{positions_});
    } else {
      file(cold_[ps.market].liq_up, *ps.liq_key, s.id, slot, PositionIds{positions_});
    }
  }
  rekey_group(ps.group);
}

void Matcher::detach_position(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  if (!ps.attached) return;
  const PositionSpec& s = ps.spec;
  if (ps.liq_key) {
    if (s.side == Side::long_side) {
      cold_[ps.market].liq_down.erase(*ps.liq_key, s.id, slot, PositionIds{positions_});
    } else {
      cold_[ps.market].liq_up.erase(*ps.liq_key, s.id, slot, PositionIds{positions_});
    }
    ps.liq_key.reset();
  }
  groups_[ps.group].agg.remove(s.side, s.size, s.entry_price, s.margin);
  ps.attached = false;
  rekey_group(ps.group);
}

void Matcher::upsert_position(const PositionSpec& p, std::vector<Event>& out) {
  if (p.invalid != RejectReason::none && p.status == PositionStatus::open) {
    remove_position(p.id);
    Event e = make_event(EventType::position_rejected, last_ts_, p.id, p.user_id, p.market_id);
    e.reason = p.invalid;
    out.push_back(e);
    ++stats_.positions_rejected;
    return;
  }
  std::uint32_t slot = position_slot(p.id);
  const bool inserted = slot == kNone;
  if (inserted) {
    if (!free_positions_.empty()) {
      slot = free_positions_.back();
      free_positions_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(positions_.size());
      positions_.emplace_back();
    }
    position_index_.insert(p.id, slot);  // the record takes p.id below, before any lookup
  } else {
    detach_position(slot);
  }
  PositionState& ps = positions_[slot];
  const std::uint32_t old_market = inserted ? kNone : ps.market;
  if (old_market != kNone) {
    const SideKey old_key{ps.spec.user_id, old_market, ps.spec.side};
    unlist_open(old_key, slot);
  }
  ps = PositionState{};
  ps.removed = false;
  ps.spec = p;
  ps.status = p.status;
  ps.closed_at = p.closed_at;
  ps.realized = p.realized_pnl;
  auto mit = market_index_.find(p.market_id);
  if (old_market != kNone && (mit == market_index_.end() || mit->second != old_market)) {
    std::erase(cold_[old_market].positions, slot);
  }
  if (mit != market_index_.end()) {
    ps.market = mit->second;
    if (old_market != ps.market) cold_[ps.market].positions.push_back(slot);
  } else if (p.status == PositionStatus::open) {
    ++stats_.positions_unarmed;
  }
  attach_position(slot);
  // Hedge mode: the one open position per user, market and side that orders increase or reduce.
  if (ps.market != kNone && ps.status == PositionStatus::open)
    list_open(SideKey{p.user_id, ps.market, p.side}, slot);
  if (ps.market != kNone && ps.market != refreshing_) refresh(ps.market);
  if (old_market != kNone && old_market != ps.market && old_market != refreshing_)
    refresh(old_market);
}

void Matcher::report_unserved_market(const Uuid& market, std::vector<Event>& out) {
  out.push_back(make_event(EventType::market_unserved, last_ts_, market, Uuid{}, market));
}

void Matcher::remove_position(const Uuid& id) {
  const std::uint32_t slot = position_slot(id);
  if (slot == kNone) return;
  detach_position(slot);
  const std::uint32_t mi = positions_[slot].market;
  if (mi != kNone) {
    const SideKey k{positions_[slot].spec.user_id, mi, positions_[slot].spec.side};
    unlist_open(k, slot);
    std::erase(cold_[mi].positions, slot);
    refresh(mi);
  }
  position_index_.erase(id, PositionIds{positions_});
  positions_[slot] = PositionState{};
  free_positions_.push_back(slot);
}

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
  if (a.extra == kNone) {
    if (!free_alert_extra_.empty()) {
      a.extra = free_alert_extra_.back();
      free_alert_extra_.pop_back();
      alert_extra_[a.extra] = AlertExtra{};
    } else {
      a.extra = static_cast<std::uint32_t>(alert_extra_.size());
      alert_extra_.emplace_back();
    }
  }
  return alert_extra_[a.extra];
}

const Matcher::AlertExtra* Matcher::extra_if(const AlertState& a) const noexcept {
  return a.extra == kNone ? nullptr : &alert_extra_[a.extra];
}

void Matcher::clear_alert(std::uint32_t slot) {
  AlertState& a = alerts_[slot];
  ids_.release(a.user);
  if (a.extra != kNone) free_alert_extra_.push_back(a.extra);
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
      const std::uint32_t group = group_for(s.user_id, mi);
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

// ---- snapshots -------------------------------------------------------------------------------

PositionView Matcher::view(std::uint32_t slot) const {
  const PositionState& ps = positions_[slot];
  PositionView v;
  v.id = ps.spec.id;
  v.status = ps.status;
  v.realized_pnl = ps.realized;
  v.closed_at = ps.closed_at;
  v.user_id = ps.spec.user_id;
  v.wallet_id = ps.spec.wallet_id;
  v.market_id = ps.spec.market_id;
  v.side = ps.spec.side;
  v.size = ps.spec.size;
  v.entry_price = ps.spec.entry_price;
  v.margin = ps.spec.margin;
  v.leverage = ps.spec.leverage;
  if (ps.status != PositionStatus::open && ps.close_price) {
    v.current_price = ps.close_price;
    v.unrealized_pnl = 0;
  } else if (ps.status == PositionStatus::open && ps.market != kNone &&
             quotes_[ps.market].has_p()) {
    const std::int64_t p = quotes_[ps.market].p();
    const Wide diff = static_cast<Wide>(p) - ps.spec.entry_price;
    v.current_price = p;
    v.unrealized_pnl = (ps.spec.side == Side::long_side ? diff : -diff) * ps.spec.size;
  } else {
    v.current_price = ps.spec.current_price;
    v.unrealized_pnl = ps.spec.unrealized_pnl * kScale;
  }
  return v;
}

AlertView Matcher::view_alert(std::uint32_t slot) const {
  const AlertState& a = alerts_[slot];
  const AlertExtra* x = extra_if(a);
  return AlertView{a.id, a.status, x ? x->triggered_at : std::nullopt, x ? x->anchor : std::nullopt,
                   a.armed};
}

std::optional<PositionView> Matcher::position(const Uuid& id) const {
  const std::uint32_t slot = position_slot(id);
  if (slot == kNone) return std::nullopt;
  return view(slot);
}

std::optional<AlertView> Matcher::alert(const Uuid& id) const {
  const std::uint32_t slot = alert_slot(id);
  if (slot == kNone) return std::nullopt;
  return view_alert(slot);
}

void Matcher::for_each_position(const std::function<void(const PositionView&)>& f) const {
  for (std::uint32_t i = 0; i < positions_.size(); ++i) {
    if (!positions_[i].removed) f(view(i));
  }
}

void Matcher::for_each_position_in(std::size_t begin, std::size_t end,
                                   const std::function<void(const PositionView&)>& f) const {
  end = std::min(end, positions_.size());
  for (std::size_t i = begin; i < end; ++i) {
    if (!positions_[i].removed) f(view(static_cast<std::uint32_t>(i)));
  }
}

std::size_t Matcher::position_slots() const noexcept {
  return positions_.size();
}

void Matcher::for_each_alert(const std::function<void(const AlertView&)>& f) const {
  for (std::uint32_t i = 0; i < alerts_.size(); ++i) {
    if (alerts_[i].live) f(view_alert(i));
  }
}

}  // namespace lam
