// The per-tick path of the matcher: O(1) when nothing is crossed, O(log n + fired) otherwise.
#include <algorithm>

#include "engine/matcher.h"
#include "engine/matcher_state.h"

namespace lam {

// ---- ticks -----------------------------------------------------------------------------------

void Matcher::on_tick(const Tick& t, std::vector<Event>& out) {
  ++stats_.ticks;
  if (t.instrument >= instrument_to_market_.size() ||
      instrument_to_market_[t.instrument] == kNone) {
    ++stats_.ticks_unknown_instrument;
    return;
  }
  const std::uint32_t mi = instrument_to_market_[t.instrument];
  if (t.kind == TickKind::funding) [[unlikely]] {
    // Not a price: kept off the branchless path below, whose `kind % 3` would read it as a mark.
    on_funding(mi, t);
    return;
  }
  const MarketHot& m = hot_[mi];
  Quotes& q = quotes_[mi];
  last_ts_ = t.exch_ts;
  // No branch on the tick's kind (feeds interleave kinds at random, and a mispredicted branch
  // costs more than the whole quiet check): selects are masks, and a kind's stores go to indexes
  // chosen by the kind (g++ turns `a = c ? x : a` back into a branch).
  const auto k = static_cast<std::size_t>(t.kind) % 3;  // mark, trade, BBO = kMark, kLast, kMid
  const std::int64_t bbo = -static_cast<std::int64_t>(t.kind == TickKind::bbo);  // all ones
  const std::int64_t mid = mid_price(t.price, t.ask);
  const std::int64_t x = t.price ^ ((t.price ^ mid) & bbo);
  const auto set_p = static_cast<std::size_t>(k == static_cast<std::size_t>(m.source));
  q.s[k] = t.price;  // mark: dropped; trade: last; BBO: bid
  q.s[Quotes::kAsk & static_cast<std::size_t>(bbo)] = t.ask;
  q.s[Quotes::kRef * set_p] = x;
  q.s[Quotes::kSeen] |= (std::int64_t{1} << k) | (static_cast<std::int64_t>(set_p) << 3);
  const std::int64_t crossed =
      static_cast<std::int64_t>(x >= m.hi[k]) | static_cast<std::int64_t>(x <= m.lo[k]) |
      (bbo & (static_cast<std::int64_t>(t.ask <= q.s[Quotes::kLimBuy]) |
              static_cast<std::int64_t>(t.price >= q.s[Quotes::kLimSell]))) |
      static_cast<std::int64_t>(t.exch_ts >= m.expiry_min);
  const bool quiet = crossed == 0;
  if (quiet) [[likely]]
    return;
  ++stats_.ticks_slow_path;
  slow_path(mi, t, set_p, out);
}

void Matcher::on_funding(std::uint32_t mi, const Tick& t) noexcept {
  ++stats_.funding_ticks;
  // The venue's latest word for its next settlement; a late frame about an earlier settlement
  // never replaces a newer one's.
  FundingNotice& f = cold_[mi].funding;
  if (t.size < f.at) return;
  f = FundingNotice{t.price, t.size, t.ask, t.exch_ts};
}

std::optional<FundingNotice> Matcher::funding(const Uuid& market) const {
  const auto it = market_index_.find(market);
  if (it == market_index_.end()) return std::nullopt;
  return cold_[it->second].funding;
}

void Matcher::slow_path(std::uint32_t mi, const Tick& t, bool set_p, std::vector<Event>& out) {
  // Refreshed once, at the end, however many changes the tick makes here; also if a step throws
  // (std::bad_alloc), so that no later change skips the market's refresh.
  struct RefreshAtEnd {
    Matcher& m;
    std::uint32_t mi;
    ~RefreshAtEnd() {
      m.refreshing_ = kNone;
      m.refresh(mi);
    }
  } at_end{*this, mi};
  refreshing_ = mi;
  if (set_p && !cold_[mi].loaded.empty()) release_loaded(mi);
  if (set_p) liquidate(mi, t, out);
  if (t.exch_ts >= hot_[mi].expiry_min) expire(mi, t, out);
  if (set_p && hot_[mi].has_pending) anchor_pending(mi, t, out);
  if (hot_[mi].has_orders) run_orders(mi, t, out);
  fire(mi, t, set_p, out);
  if (!protect_.empty()) place_protective(out);  // the tick's fills asked for them
}

void Matcher::liquidate(std::uint32_t mi, const Tick& t, std::vector<Event>& out) {
  const std::int64_t p = quotes_[mi].p();
  MarketCold& c = cold_[mi];
  scratch_up_.clear();
  scratch_down_.clear();
  c.liq_up.pop_crossed(p, scratch_up_, PositionIds{positions_});
  c.liq_down.pop_crossed(p, scratch_down_, PositionIds{positions_});
  if (scratch_up_.empty() && scratch_down_.empty()) return;
  merge_crossed(scratch_up_, scratch_down_, scratch_merged_);
  for (const Crossed& x : scratch_merged_) {
    positions_[x.slot].has_liq = false;  // already off its ladder
    detach_position(x.slot);
    PositionExtra& closed = position_extra_of(x.slot);
    closed.closed_at = t.exch_ts;
    closed.close_price = p;
    PositionState& ps = positions_[x.slot];
    ps.status = PositionStatus::liquidated;
    set_realized(x.slot, realized_of(x.slot) - ps.margin);
    out.push_back(
        make_event(EventType::position_liquidated, t.exch_ts, ps.id, ids_[ps.user], c.spec.id, p));
    ++stats_.liquidations;
    on_position_gone(x.slot, t.exch_ts, out);
  }
}

void Matcher::expire(std::uint32_t mi, const Tick& t, std::vector<Event>& out) {
  MarketCold& c = cold_[mi];
  while (!c.expiry.empty() && c.expiry.begin()->at <= t.exch_ts) {
    const std::uint32_t slot = c.expiry.begin()->slot;
    if (c.expiry.begin()->order) {
      expire_order(slot, t.exch_ts, out);  // also removes the expiry entry
      continue;
    }
    AlertState& a = alerts_[slot];
    disarm_alert(slot);  // also removes the expiry entry
    a.status = AlertStatus::expired;
    out.push_back(make_event(EventType::alert_expired, t.exch_ts, a.id, ids_[a.user], c.spec.id));
    ++stats_.alerts_expired;
  }
}

void Matcher::anchor_pending(std::uint32_t mi, const Tick& t, std::vector<Event>& out) {
  MarketCold& c = cold_[mi];
  const std::int64_t p = quotes_[mi].p();
  std::vector<std::uint32_t> pending;
  pending.swap(c.pending_anchor);
  // Deterministic order: by alert id.
  std::sort(pending.begin(), pending.end(),
            [this](std::uint32_t x, std::uint32_t y) { return alerts_[x].id < alerts_[y].id; });
  for (std::uint32_t slot : pending) {
    AlertState& a = alerts_[slot];
    if (!a.pending_anchor || a.market != mi) continue;  // disarmed or re-armed since
    a.pending_anchor = false;
    AlertExtra& x = alert_extra_[a.extra];  // a price_change alert has one
    x.anchor = p;
    arm_keys(slot, change_keys(a.condition, p, *x.target_percentage));
    out.push_back(
        make_event(EventType::alert_anchored, t.exch_ts, a.id, ids_[a.user], c.spec.id, p));
    ++stats_.alerts_anchored;
  }
  pending.clear();
  if (c.pending_anchor.empty()) c.pending_anchor.swap(pending);  // keep the capacity
}

void Matcher::trigger(std::uint32_t slot, const Tick& t, std::int64_t price,
                      std::vector<Event>& out) {
  const Uuid market_id = cold_[alerts_[slot].market].spec.id;
  disarm_alert(slot);
  extra_of(slot).triggered_at = t.exch_ts;
  AlertState& a = alerts_[slot];
  a.status = AlertStatus::triggered;
  out.push_back(
      make_event(EventType::alert_triggered, t.exch_ts, a.id, ids_[a.user], market_id, price));
  ++stats_.alerts_triggered;
}

void Matcher::fire(std::uint32_t mi, const Tick& t, bool set_p, std::vector<Event>& out) {
  MarketCold& c = cold_[mi];
  const std::int64_t p = quotes_[mi].p();
  if (set_p && (p >= c.up.front_key() || p <= c.down.front_key())) {
    scratch_up_.clear();
    scratch_down_.clear();
    c.up.pop_crossed(p, scratch_up_, AlertIds{alerts_});
    c.down.pop_crossed(p, scratch_down_, AlertIds{alerts_});
    // Popped entries are off their ladder already; forget those keys before disarming.
    for (const Crossed& x : scratch_up_) alerts_[x.slot].has_up = false;
    for (const Crossed& x : scratch_down_) alerts_[x.slot].has_down = false;
    merge_crossed(scratch_up_, scratch_down_, scratch_merged_);
    for (const Crossed& x : scratch_merged_) {
      if (alerts_[x.slot].status == AlertStatus::active && alerts_[x.slot].armed)
        trigger(x.slot, t, p, out);
    }
  }
  if (t.kind == TickKind::trade && c.volume && !c.volume->empty()) {
    scratch_merged_.clear();
    c.volume->on_trade(t.exch_ts, t.size, scratch_merged_);
    const std::int64_t price = quotes_[mi].has_p() ? quotes_[mi].p() : t.price;
    for (const Crossed& x : scratch_merged_) {
      alerts_[x.slot].in_volume = false;  // already out of the book
      trigger(x.slot, t, price, out);
    }
  }
}

}  // namespace lam
