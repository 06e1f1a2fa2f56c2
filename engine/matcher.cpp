#include "engine/matcher.h"

#include <malloc.h>

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
  static_assert(sizeof(PositionState) <= 64);
}

Matcher::~Matcher() = default;

MatcherFootprint Matcher::footprint() const noexcept {
  MatcherFootprint f;
  f.alert_extras = alert_extra_.live();
  f.position_extras = position_extra_.live();
  f.order_extras = order_extra_.live();
  f.interned_ids = ids_.size();
  f.groups = groups_.size();
  for (const MarketCold& c : cold_) f.loaded_notes += c.loaded.size();
  return f;
}

void map_large_tables() noexcept {
  mallopt(M_MMAP_THRESHOLD, 8 << 20);  // a fixed threshold also ends the dynamic raising
}

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
      // an anchor to take, or loaded prices to let go of, at the next reference price
      if (h.has_pending || !c.loaded.empty()) hi = kAlways;
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
  open_positions_.reserve(positions);
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
  } else if (cold_[mi].spec.instrument != m.instrument) {
    if (cold_[mi].spec.instrument < instrument_to_market_.size())
      instrument_to_market_[cold_[mi].spec.instrument] = kNone;
    // Another symbol prices it now: the old symbol's quotes are not this market's to fill at.
    quotes_[mi].lapse(true, true);
  }
  const bool mmr_changed = !inserted && cold_[mi].spec.mmr != m.mmr;
  const bool source_changed = !inserted && cold_[mi].spec.source != m.source;
  // A new maintenance rate moves every armed position's liquidation key: detached under the old
  // rate (their keys are recomputed from it), attached again under the new one.
  std::vector<std::uint32_t> rekeyed;
  if (mmr_changed) {
    for (std::uint32_t ps = 0; ps < positions_.size(); ++ps) {
      if (positions_[ps].market != mi || !positions_[ps].attached) continue;
      detach_position(ps);
      rekeyed.push_back(ps);
    }
  }
  cold_[mi].spec = m;
  for (const std::uint32_t ps : rekeyed) attach_position(ps);
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
  if (mmr_changed) refresh(mi);
}

void Matcher::report_voided(EventType voided, const Uuid& subject, std::vector<Event>& out) {
  Uuid user{};
  std::optional<Uuid> market;
  if (voided == EventType::alert_triggered || voided == EventType::alert_expired) {
    if (const std::uint32_t slot = alert_slot(subject); slot != kNone) {
      const AlertState& a = alerts_[slot];
      if (a.user != kNone) user = ids_[a.user];
      if (a.market != kNone) market = cold_[a.market].spec.id;
    }
  } else if (voided == EventType::position_liquidated) {
    if (const auto p = position(subject)) {
      user = p->user_id;
      market = p->market_id;
    }
  } else if (const auto o = order_spec(subject)) {
    user = o->user_id;
    market = o->market_id;
  }
  Event e = make_event(EventType::transition_voided, last_ts_, subject, user, market);
  e.size = static_cast<std::int64_t>(voided);
  e.reason = RejectReason::changed_first;
  out.push_back(e);
}

void Matcher::lapse_quotes(InstrumentId instrument, bool trades, bool bbo) noexcept {
  if (instrument >= instrument_to_market_.size() || instrument_to_market_[instrument] == kNone)
    return;
  quotes_[instrument_to_market_[instrument]].lapse(trades, bbo);
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

std::uint32_t Matcher::group_for(std::uint32_t user, std::uint32_t market) {
  const auto [it, inserted] =
      group_index_.try_emplace(GroupKey{user, market}, static_cast<std::uint32_t>(groups_.size()));
  const std::uint32_t g = it->second;
  if (!inserted) return g;
  // Groups exist for position_pnl alerts alone: a new one starts from the (user, market)'s
  // positions armed so far (every armed position is listed).
  groups_.emplace_back();
  // The group holds the user's handle: while it exists, the handle is this user's (never reused).
  ids_.acquire(ids_[user]);
  for (const Side side : {Side::long_side, Side::short_side}) {
    for_each_listed(SideKey{user, market, side}, [&](std::uint32_t slot) {
      PositionState& ps = positions_[slot];
      if (!ps.attached) return;
      groups_[g].agg.add(ps.side(), ps.size, ps.entry_price, ps.margin);
      ps.in_group = true;
    });
  }
  return g;
}

Matcher::PositionExtra& Matcher::position_extra_of(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  if (ps.has_extra) return position_extra_[position_extra_at_.at(slot)];
  const std::uint32_t x = position_extra_.acquire();
  position_extra_at_.try_emplace(slot, x);
  ps.has_extra = true;
  return position_extra_[x];
}

const Matcher::PositionExtra* Matcher::position_extra_if(std::uint32_t slot) const {
  if (!positions_[slot].has_extra) return nullptr;
  return &position_extra_[position_extra_at_.at(slot)];
}

void Matcher::trim_position_extra(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  if (!ps.has_extra) return;
  const std::uint32_t x = position_extra_at_.at(slot);
  if (!position_extra_[x].holds_nothing(ps)) return;
  position_extra_.release(x);
  position_extra_at_.erase(slot);
  ps.has_extra = false;
  if (position_extra_.live() == 0) position_extra_at_ = decltype(position_extra_at_){};
}

Wide Matcher::realized_of(std::uint32_t slot) const {
  const PositionState& ps = positions_[slot];
  if (ps.realized != PositionState::kRealizedInExtra) return ps.realized;
  return position_extra_[position_extra_at_.at(slot)].realized;
}

void Matcher::set_realized(std::uint32_t slot, Wide realized) {
  PositionState& ps = positions_[slot];
  if (realized > std::numeric_limits<std::int64_t>::min() &&
      realized <= std::numeric_limits<std::int64_t>::max()) {
    ps.realized = static_cast<std::int64_t>(realized);
    trim_position_extra(slot);
  } else {
    position_extra_of(slot).realized = realized;
    ps.realized = PositionState::kRealizedInExtra;
  }
}

std::int64_t Matcher::leverage_of(std::uint32_t slot) const {
  const PositionState& ps = positions_[slot];
  if (ps.leverage_centi != 0) return static_cast<std::int64_t>(ps.leverage_centi) * (kScale / 100);
  return position_extra_[position_extra_at_.at(slot)].leverage;
}

void Matcher::set_leverage(std::uint32_t slot, std::int64_t leverage) {
  PositionState& ps = positions_[slot];
  constexpr std::int64_t kCenti = kScale / 100;
  // Whole hundredths from 0.01x to 655.35x (the column is DECIMAL(8, 2)) fit the record.
  if (leverage > 0 && leverage % kCenti == 0 && leverage / kCenti <= 0xFFFF) {
    ps.leverage_centi = static_cast<std::uint16_t>(leverage / kCenti);
    trim_position_extra(slot);
  } else {
    position_extra_of(slot).leverage = leverage;
    ps.leverage_centi = 0;
  }
}

void Matcher::clear_position(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  ids_.release(ps.user);
  ids_.release(ps.wallet);
  if (ps.has_extra) {
    position_extra_.release(position_extra_at_.at(slot));
    position_extra_at_.erase(slot);
    if (position_extra_.live() == 0) position_extra_at_ = decltype(position_extra_at_){};
  }
  ps = PositionState{};
}

void Matcher::note_loaded(std::uint32_t mi, std::uint32_t slot) {
  MarketCold& c = cold_[mi];
  c.loaded.push_back(slot);
  if (c.loaded.size() <= 1024 || c.loaded.size() <= 2 * c.loaded_compacted) return;
  // Upserts of the same positions repeat slots, and moved or removed ones leave stale ones.
  std::erase_if(c.loaded, [&](std::uint32_t s) {
    const PositionState& q = positions_[s];
    return q.removed() || q.market != mi || !q.has_extra;
  });
  std::sort(c.loaded.begin(), c.loaded.end());
  c.loaded.erase(std::unique(c.loaded.begin(), c.loaded.end()), c.loaded.end());
  c.loaded_compacted = c.loaded.size();
}

void Matcher::release_loaded(std::uint32_t mi) {
  MarketCold& c = cold_[mi];
  for (const std::uint32_t slot : c.loaded) {
    PositionState& ps = positions_[slot];
    if (ps.removed() || ps.market != mi || ps.status != PositionStatus::open || !ps.has_extra)
      continue;
    PositionExtra& x = position_extra_[position_extra_at_.at(slot)];
    x.loaded_price.reset();
    x.loaded_upnl = 0;
    trim_position_extra(slot);
  }
  std::vector<std::uint32_t>().swap(c.loaded);
  c.loaded_compacted = 0;
}

void Matcher::attach_position(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  if (ps.removed() || ps.status != PositionStatus::open || ps.market == kNone) return;
  if (ps.size <= 0 || ps.entry_price <= 0 || ps.margin < 0) {
    ++stats_.positions_unarmed;
    return;
  }
  ps.attached = true;
  const std::optional<std::int64_t> key =
      liquidation_key(ps.side(), ps.size, ps.entry_price, ps.margin, cold_[ps.market].spec.mmr);
  ps.has_liq = key.has_value();
  if (key) {
    if (!ps.is_short) {
      file(cold_[ps.market].liq_down, *key, ps.id, slot, PositionIds{positions_});
    } else {
      file(cold_[ps.market].liq_up, *key, ps.id, slot, PositionIds{positions_});
    }
  }
  if (groups_.empty()) return;
  const auto g = group_index_.find(GroupKey{ps.user, ps.market});
  if (g == group_index_.end()) return;  // no position_pnl alert watches this (user, market)
  const std::uint32_t group = g->second;
  groups_[group].agg.add(ps.side(), ps.size, ps.entry_price, ps.margin);
  ps.in_group = true;
  rekey_group(group);
}

void Matcher::detach_position(std::uint32_t slot) {
  PositionState& ps = positions_[slot];
  if (!ps.attached) return;
  if (ps.has_liq) {
    // The key it was filed under: the same fields and rate, unchanged since it was attached.
    const std::int64_t key =
        *liquidation_key(ps.side(), ps.size, ps.entry_price, ps.margin, cold_[ps.market].spec.mmr);
    if (!ps.is_short) {
      cold_[ps.market].liq_down.erase(key, ps.id, slot, PositionIds{positions_});
    } else {
      cold_[ps.market].liq_up.erase(key, ps.id, slot, PositionIds{positions_});
    }
    ps.has_liq = false;
  }
  ps.attached = false;
  if (!ps.in_group) return;
  const std::uint32_t group = group_index_.at(GroupKey{ps.user, ps.market});
  groups_[group].agg.remove(ps.side(), ps.size, ps.entry_price, ps.margin);
  ps.in_group = false;
  rekey_group(group);
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
  const std::uint32_t old_market = inserted ? kNone : positions_[slot].market;
  if (old_market != kNone) {
    const PositionState& old = positions_[slot];
    unlist_open(SideKey{old.user, old_market, old.side()}, slot);
  }
  clear_position(slot);
  PositionState& ps = positions_[slot];
  ps.id = p.id;
  ps.user = ids_.acquire(p.user_id);
  ps.wallet = ids_.acquire(p.wallet_id);
  ps.size = p.size;
  ps.entry_price = p.entry_price;
  ps.margin = p.margin;
  ps.is_short = p.side == Side::short_side;
  ps.status = p.status;
  set_realized(slot, p.realized_pnl);
  set_leverage(slot, p.leverage);
  if (p.closed_at) position_extra_of(slot).closed_at = p.closed_at;
  auto mit = market_index_.find(p.market_id);
  if (mit != market_index_.end()) {
    ps.market = mit->second;
  } else {
    position_extra_of(slot).market_id = p.market_id;
    if (p.status == PositionStatus::open) ++stats_.positions_unarmed;
  }
  // The loaded price and uPnL stand until the market has a price (for good if it is not open).
  const bool priced = ps.market != kNone && quotes_[ps.market].has_p();
  if ((p.current_price || p.unrealized_pnl != 0) && (p.status != PositionStatus::open || !priced)) {
    PositionExtra& x = position_extra_of(slot);
    x.loaded_price = p.current_price;
    x.loaded_upnl = p.unrealized_pnl;
    if (p.status == PositionStatus::open && ps.market != kNone) note_loaded(ps.market, slot);
  }
  attach_position(slot);
  // Hedge mode: the one open position per user, market and side that orders increase or reduce.
  if (ps.market != kNone && ps.status == PositionStatus::open)
    list_open(SideKey{ps.user, ps.market, ps.side()}, slot);
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
  const PositionState& ps = positions_[slot];
  const std::uint32_t mi = ps.market;
  if (mi != kNone) {
    unlist_open(SideKey{ps.user, mi, ps.side()}, slot);
    refresh(mi);
  }
  position_index_.erase(id, PositionIds{positions_});
  clear_position(slot);
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

// ---- snapshots -------------------------------------------------------------------------------

PositionView Matcher::view(std::uint32_t slot) const {
  const PositionState& ps = positions_[slot];
  const PositionExtra* x = position_extra_if(slot);
  PositionView v;
  v.id = ps.id;
  v.status = ps.status;
  v.realized_pnl = realized_of(slot);
  if (x != nullptr) v.closed_at = x->closed_at;
  v.user_id = ids_[ps.user];
  v.wallet_id = ids_[ps.wallet];
  if (ps.market != kNone) {
    v.market_id = cold_[ps.market].spec.id;
  } else if (x != nullptr && x->market_id) {
    v.market_id = *x->market_id;
  }
  v.side = ps.side();
  v.size = ps.size;
  v.entry_price = ps.entry_price;
  v.margin = ps.margin;
  v.leverage = leverage_of(slot);
  if (ps.status != PositionStatus::open && x != nullptr && x->close_price) {
    v.current_price = x->close_price;
    v.unrealized_pnl = 0;
  } else if (ps.status == PositionStatus::open && ps.market != kNone &&
             quotes_[ps.market].has_p()) {
    const std::int64_t p = quotes_[ps.market].p();
    const Wide diff = static_cast<Wide>(p) - ps.entry_price;
    v.current_price = p;
    v.unrealized_pnl = (ps.is_short ? -diff : diff) * ps.size;
  } else if (x != nullptr) {
    v.current_price = x->loaded_price;
    v.unrealized_pnl = x->loaded_upnl * kScale;
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
    if (!positions_[i].removed()) f(view(i));
  }
}

void Matcher::for_each_position_in(std::size_t begin, std::size_t end,
                                   const std::function<void(const PositionView&)>& f) const {
  end = std::min(end, positions_.size());
  for (std::size_t i = begin; i < end; ++i) {
    if (!positions_[i].removed()) f(view(static_cast<std::uint32_t>(i)));
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
