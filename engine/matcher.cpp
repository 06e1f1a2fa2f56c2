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
    for (const bool buy : {false, true}) {  // trailing stops: a new extreme, or a trigger
      const TrailBook* book = c.trail[trail_index(k, buy)].get();
      if (book == nullptr || book->empty()) continue;
      any_orders = true;
      hi = std::min(hi, book->hi());
      lo = std::max(lo, book->lo());
    }
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
    hot_[mi].source = m.source;
    // Orders triggered by the market's reference price move to the new source's ladders; trailing
    // stops start again from the new source's next price (docs/semantics.md, "Trailing stops").
    for (std::uint32_t slot = 0; slot < orders_.size(); ++slot) {
      OrderState& o = orders_[slot];
      if (!o.live || o.market != mi || (o.trig_source < 0 && !o.in_trail) ||
          o.trigger_source != TriggerSource::reference)
        continue;
      const std::size_t to = source_index(mi, TriggerSource::reference);
      if (o.type == OrderType::trailing_stop) {
        unfile_trigger(slot);
        order_extra_[o.extra].activated_at.reset();
        arm_trailing(slot, to, last_ts_, /*restart=*/true);
        continue;
      }
      const auto from = static_cast<std::size_t>(o.trig_source);
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
