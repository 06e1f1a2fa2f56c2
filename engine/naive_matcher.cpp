#include "engine/naive_matcher.h"

#include <algorithm>

#include "engine/thresholds.h"

namespace lam {
namespace {

// Sign of (p - d) for a price p on the grid and a decimal d.
int compare(std::int64_t p, const Decimal& d) noexcept {
  if (p < d.floor) return -1;
  if (p > d.floor) return 1;
  return d.exact() ? 0 : -1;
}

int sign_of(Wide v) noexcept {
  return v < 0 ? -1 : (v > 0 ? 1 : 0);
}

bool liquidatable(const PositionSpec& s, std::int64_t p, std::int64_t mmr) {
  if (s.size <= 0 || s.entry_price <= 0 || s.margin < 0) return false;
  // long:  p * size * (1 - mmr) <= size*entry - margin
  // short: p * size * (1 + mmr) >= size*entry + margin        (all scaled by 1e27)
  const Wide rate = s.side == Side::long_side ? kScale - mmr : kScale + mmr;
  Wide lhs = 0;
  if (__builtin_mul_overflow(static_cast<Wide>(p) * s.size, rate, &lhs)) return false;
  const Wide notional = static_cast<Wide>(s.size) * s.entry_price;
  const Wide m18 = static_cast<Wide>(s.margin) * kScale;
  Wide rhs = 0;
  if (__builtin_mul_overflow(s.side == Side::long_side ? notional - m18 : notional + m18,
                             Wide{kScale}, &rhs)) {
    return false;
  }
  return s.side == Side::long_side ? lhs <= rhs : lhs >= rhs;
}

}  // namespace

void NaiveMatcher::upsert_market(const MarketSpec& m) {
  auto [it, inserted] = market_index_.try_emplace(m.id, markets_.size());
  if (inserted) markets_.emplace_back();
  if (!inserted && markets_[it->second].spec.source != m.source) {
    // Trailing stops that follow the reference price start again from the new source's next price.
    for (Order& o : orders_) {
      if (o.spec.market_id != m.id || o.spec.type != OrderType::trailing_stop || !o.armed ||
          o.triggered || o.spec.trigger_source != TriggerSource::reference)
        continue;
      o.extreme.reset();
      o.view.activated_at.reset();
    }
  }
  markets_[it->second].spec = m;
  instrument_index_[m.instrument] = it->second;
}

void NaiveMatcher::upsert_position(const PositionSpec& p, std::vector<Event>& out) {
  auto [it, inserted] = position_index_.try_emplace(p.id, positions_.size());
  if (inserted) positions_.emplace_back();
  positions_[it->second] = Position{p, p.status, ++upserts_};
  if (p.invalid != RejectReason::none && p.status == PositionStatus::open) {
    positions_[it->second].status = PositionStatus::closed;  // never marked, liquidated or summed
    Event e;
    e.seq = next_seq_++;
    e.type = EventType::position_rejected;
    e.ts = last_ts_;
    e.subject = p.id;
    e.user_id = p.user_id;
    e.market_id = p.market_id;
    e.has_market = true;
    e.reason = p.invalid;
    out.push_back(e);
  }
}

void NaiveMatcher::upsert_alert(const AlertSpec& spec, std::vector<Event>& out) {
  auto [it, inserted] = alert_index_.try_emplace(spec.id, alerts_.size());
  if (inserted) alerts_.emplace_back();
  Alert& a = alerts_[it->second];
  a = Alert{spec, spec.status, spec.anchor_price, false};
  if (a.status != AlertStatus::active) return;
  RejectReason r = validate_alert(spec);
  if (r == RejectReason::none && !market_index_.contains(*spec.market_id))
    r = RejectReason::unknown_market;
  if (r != RejectReason::none) {
    Event e;
    e.seq = next_seq_++;
    e.type = EventType::alert_rejected;
    e.ts = last_ts_;
    e.subject = spec.id;
    e.user_id = spec.user_id;
    e.reason = r;
    if (spec.market_id) {
      e.market_id = *spec.market_id;
      e.has_market = true;
    }
    out.push_back(e);
    return;
  }
  a.armed = true;
  Market& m = markets_[market_index_[*spec.market_id]];
  if (spec.type == AlertType::volume) m.recording = true;
}

void NaiveMatcher::cancel_alert(const Uuid& id) {
  auto it = alert_index_.find(id);
  if (it == alert_index_.end()) return;
  alerts_[it->second].status = AlertStatus::cancelled;
  alerts_[it->second].armed = false;
}

bool NaiveMatcher::alert_holds(const Alert& a, const Market& m, TimeNs t) const {
  const AlertSpec& s = a.spec;
  const std::int64_t p = m.p;
  switch (s.type) {
    case AlertType::price_above: {
      const int c = compare(p, *s.target_price);
      return s.condition == ConditionType::greater_than ? c > 0 : c >= 0;
    }
    case AlertType::price_below: {
      const int c = compare(p, *s.target_price);
      return s.condition == ConditionType::less_than ? c < 0 : c <= 0;
    }
    case AlertType::price_change: {
      if (!a.anchor) return false;
      const Wide pct = s.target_percentage->nearest();
      const Wide lhs = static_cast<Wide>(p) * (100 * kScale);
      const bool up = lhs >= static_cast<Wide>(*a.anchor) * (100 * kScale + pct);
      const bool down = lhs <= static_cast<Wide>(*a.anchor) * (100 * kScale - pct);
      if (s.condition == ConditionType::greater_than) return up;
      if (s.condition == ConditionType::less_than) return down;
      return up || down;
    }
    case AlertType::volume: {
      Wide sum = 0;
      for (const auto& [ts, size] : m.trades) {
        if (ts > t - s.window_seconds * kNsPerSec && ts <= t) sum += size;
      }
      return sum >= s.target_value->ceil();
    }
    case AlertType::position_pnl: {
      Wide upnl = 0;  // 1e-18 units
      Wide margin = 0;
      int open = 0;
      for (const Position& pos : positions_) {
        const PositionSpec& ps = pos.spec;
        if (pos.status != PositionStatus::open || ps.user_id != s.user_id ||
            ps.market_id != m.spec.id)
          continue;
        if (ps.size <= 0 || ps.entry_price <= 0 || ps.margin < 0) continue;
        const Wide diff = static_cast<Wide>(p) - ps.entry_price;
        upnl += (ps.side == Side::long_side ? diff : -diff) * ps.size;
        margin += ps.margin;
        ++open;
      }
      if (open == 0) return false;
      const bool ge = s.condition == ConditionType::greater_than;
      int c = 0;
      if (s.target_value) {
        c = sign_of(upnl - (ge ? s.target_value->ceil() : s.target_value->floor) * kScale);
      } else {
        if (margin <= 0) return false;
        c = sign_of(upnl * 100 -
                    (ge ? s.target_percentage->ceil() : s.target_percentage->floor) * margin);
      }
      return ge ? c >= 0 : c <= 0;
    }
    case AlertType::unknown:
      return false;
  }
  return false;
}

std::optional<std::int64_t> NaiveMatcher::ordering_key(const Alert& a, std::int64_t p) const {
  // The firing order is defined on the compiled threshold (docs/semantics.md); pick the key on the
  // side that is crossed.
  const AlertSpec& s = a.spec;
  Keys k;
  if (s.type == AlertType::price_above || s.type == AlertType::price_below) {
    k = price_keys(s.type, s.condition, *s.target_price);
  } else if (s.type == AlertType::price_change) {
    k = change_keys(s.condition, *a.anchor, *s.target_percentage);
  } else if (s.type == AlertType::position_pnl) {
    PnlAggregate agg;
    for (const Position& pos : positions_) {
      const PositionSpec& ps = pos.spec;
      if (pos.status != PositionStatus::open || ps.user_id != s.user_id ||
          ps.market_id != *s.market_id)
        continue;
      if (ps.size <= 0 || ps.entry_price <= 0 || ps.margin < 0) continue;
      agg.add(ps.side, ps.size, ps.entry_price, ps.margin);
    }
    k = pnl_keys(s.condition, agg, s.target_value, s.target_percentage);
  }
  if (k.up && p >= *k.up) return k.up;
  return k.down;
}

Event NaiveMatcher::base_event(EventType type, TimeNs ts, const Alert& a, const Market& m) {
  Event e;
  e.seq = next_seq_++;
  e.type = type;
  e.ts = ts;
  e.subject = a.spec.id;
  e.user_id = a.spec.user_id;
  e.market_id = m.spec.id;
  e.has_market = true;
  return e;
}

void NaiveMatcher::on_tick(const Tick& t, std::vector<Event>& out) {
  // Long: the reference matcher is naive on purpose, a linear scan per rule in one place, so that
  // the fast matcher's differential tests compare against code a reader can check line by line.
  auto mit = instrument_index_.find(t.instrument);
  if (mit == instrument_index_.end()) return;
  if (t.kind == TickKind::funding) return;  // not a price; settlement is not built yet
  last_ts_ = t.exch_ts;
  ++ticks_;
  Market& m = markets_[mit->second];
  if (t.kind == TickKind::bbo) {
    m.bid = t.price;
    m.ask = t.ask;
    m.has_bbo = true;
  } else if (t.kind == TickKind::trade) {
    m.last = t.price;
    m.has_last = true;
  }
  bool set_p = false;
  if (t.kind == TickKind::mark && m.spec.source == PriceSource::mark) {
    m.p = t.price;
    set_p = true;
  } else if (t.kind == TickKind::trade && m.spec.source == PriceSource::last) {
    m.p = t.price;
    set_p = true;
  } else if (t.kind == TickKind::bbo && m.spec.source == PriceSource::mid) {
    m.p = static_cast<std::int64_t>(floor_div(static_cast<Wide>(t.price) + t.ask, 2));
    set_p = true;
  }
  if (set_p) m.has_p = true;
  if (t.kind == TickKind::trade && m.recording) m.trades.emplace_back(t.exch_ts, t.size);
  auto by_distance = [](const Fired& x, const Fired& y) {
    return x.distance != y.distance ? x.distance < y.distance : x.id < y.id;
  };

  // 1. liquidations
  if (set_p) {
    std::vector<Fired> liq;
    for (std::size_t i = 0; i < positions_.size(); ++i) {
      const Position& pos = positions_[i];
      if (pos.status != PositionStatus::open || pos.spec.market_id != m.spec.id) continue;
      if (!liquidatable(pos.spec, m.p, m.spec.mmr)) continue;
      const auto key = liquidation_key(pos.spec.side, pos.spec.size, pos.spec.entry_price,
                                       pos.spec.margin, m.spec.mmr);
      const Wide d = static_cast<Wide>(m.p) - *key;
      liq.push_back({static_cast<unsigned __int128>(d < 0 ? -d : d), pos.spec.id, i});
    }
    std::sort(liq.begin(), liq.end(), by_distance);
    for (const Fired& f : liq) {
      positions_[f.index].status = PositionStatus::liquidated;
      Event e;
      e.seq = next_seq_++;
      e.type = EventType::position_liquidated;
      e.ts = t.exch_ts;
      e.subject = positions_[f.index].spec.id;
      e.user_id = positions_[f.index].spec.user_id;
      e.market_id = m.spec.id;
      e.has_market = true;
      e.price = m.p;
      e.has_price = true;
      out.push_back(e);
      // its margin is lost (realized) and leaves the wallet; its reduce orders end
      PositionSpec& ps = positions_[f.index].spec;
      ps.realized_pnl -= ps.margin;
      if (!ps.wallet_id.is_nil()) {
        BalanceView& b = balance_ref(ps.wallet_id, m.spec.rules.quote);
        b.locked -= ps.margin;
        b.balance -= ps.margin;
      }
      position_gone(f.index, t.exch_ts, out);
    }
  }
  // 2. expiries of alerts and orders, by (expires_at, id)
  expire(m, t.exch_ts, out);
  // 3. anchors, by id
  if (set_p) {
    std::vector<std::size_t> anchoring;
    for (std::size_t i = 0; i < alerts_.size(); ++i) {
      const Alert& a = alerts_[i];
      if (a.armed && a.spec.market_id == m.spec.id && a.spec.type == AlertType::price_change &&
          !a.anchor) {
        anchoring.push_back(i);
      }
    }
    std::sort(anchoring.begin(), anchoring.end(), [&](std::size_t x, std::size_t y) {
      return alerts_[x].spec.id < alerts_[y].spec.id;
    });
    for (std::size_t i : anchoring) {
      alerts_[i].anchor = m.p;
      Event e = base_event(EventType::alert_anchored, t.exch_ts, alerts_[i], m);
      e.price = m.p;
      e.has_price = true;
      out.push_back(e);
    }
  }
  // 3b. orders: triggers, resting limits, orders waiting for a price
  run_orders(m, t, out);
  // 4. price alerts nearest first, then volume alerts
  std::vector<Fired> fired;
  std::vector<Fired> fired_volume;
  for (std::size_t i = 0; i < alerts_.size(); ++i) {
    const Alert& a = alerts_[i];
    if (!a.armed || a.spec.market_id != m.spec.id) continue;
    if (a.spec.type == AlertType::volume) {
      if (t.kind != TickKind::trade || !alert_holds(a, m, t.exch_ts)) continue;
      Wide sum = 0;
      for (const auto& [ts, size] : m.trades) {
        if (ts > t.exch_ts - a.spec.window_seconds * kNsPerSec && ts <= t.exch_ts) sum += size;
      }
      fired_volume.push_back(
          {static_cast<unsigned __int128>(sum - a.spec.target_value->ceil()), a.spec.id, i});
      continue;
    }
    if (!set_p || !alert_holds(a, m, t.exch_ts)) continue;
    const auto key = ordering_key(a, m.p);
    Wide d = key ? static_cast<Wide>(m.p) - *key : 0;
    if (d < 0) d = -d;
    fired.push_back({static_cast<unsigned __int128>(d), a.spec.id, i});
  }
  std::sort(fired.begin(), fired.end(), by_distance);
  std::sort(fired_volume.begin(), fired_volume.end(), by_distance);
  fired.insert(fired.end(), fired_volume.begin(), fired_volume.end());
  for (const Fired& f : fired) {
    Alert& a = alerts_[f.index];
    a.armed = false;
    a.status = AlertStatus::triggered;
    Event e = base_event(EventType::alert_triggered, t.exch_ts, a, m);
    e.price = m.has_p ? m.p : t.price;
    e.has_price = true;
    out.push_back(e);
  }
  if (!protect_.empty()) place_protective(out);  // the tick's fills asked for them
}

std::optional<AlertStatus> NaiveMatcher::alert_status(const Uuid& id) const {
  auto it = alert_index_.find(id);
  if (it == alert_index_.end()) return std::nullopt;
  return alerts_[it->second].status;
}

std::optional<PositionStatus> NaiveMatcher::position_status(const Uuid& id) const {
  auto it = position_index_.find(id);
  if (it == position_index_.end()) return std::nullopt;
  return positions_[it->second].status;
}

}  // namespace lam
