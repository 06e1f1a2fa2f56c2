// The reference for orders: each tick scans every order and evaluates its trigger, limit or wait
// directly (no ladders, no cached fronts). Fill arithmetic is FillMath, tested on its own.
#include <algorithm>

#include "engine/matcher.h"
#include "engine/naive_matcher.h"
#include "engine/trail_book.h"

namespace lam {
namespace {

bool watching(OrderStatus s) {
  return s == OrderStatus::pending || s == OrderStatus::open;
}

// The price a conditional order watches: mark, last, or the market's own reference.
PriceSource watched_source(const OrderSpec& o, const MarketSpec& m) {
  if (o.trigger_source == TriggerSource::mark) return PriceSource::mark;
  if (o.trigger_source == TriggerSource::last) return PriceSource::last;
  return m.source;
}

std::optional<std::int64_t> tick_price_for(PriceSource s, const Tick& t) {
  if (s == PriceSource::mark && t.kind == TickKind::mark) return t.price;
  if (s == PriceSource::last && t.kind == TickKind::trade) return t.price;
  if (s == PriceSource::mid && t.kind == TickKind::bbo)
    return static_cast<std::int64_t>(floor_div(static_cast<Wide>(t.price) + t.ask, 2));
  return std::nullopt;
}

// The price of a source now, as a market holds it (a mark only as its reference price).
std::optional<std::int64_t> price_now(PriceSource s, const MarketSpec& spec, bool has_p,
                                      std::int64_t p, bool has_last, std::int64_t last,
                                      bool has_bbo, std::int64_t bid, std::int64_t ask) {
  if (s == PriceSource::last) return has_last ? std::optional{last} : std::nullopt;
  if (s == PriceSource::mid)
    return has_bbo ? std::optional{static_cast<std::int64_t>(
                         floor_div(static_cast<Wide>(bid) + ask, 2))}
                   : std::nullopt;
  return spec.source == PriceSource::mark && has_p ? std::optional{p} : std::nullopt;
}

// A trailing stop starts to trail at price x: a SELL at or above its activation price, a BUY at
// or below it, any price without one.
bool activates(const OrderSpec& s, std::int64_t x) {
  if (!s.activation_price) return true;
  return buys(s.side) ? x <= *s.activation_price : x >= *s.activation_price;
}

TrailOffset offset_of(const OrderSpec& s) {
  return {s.trail_rate.value_or(0), s.trail_distance.value_or(0)};
}

unsigned __int128 dist(std::int64_t a, std::int64_t b) {
  const Wide d = static_cast<Wide>(a) - b;
  return static_cast<unsigned __int128>(d < 0 ? -d : d);
}

}  // namespace

Event NaiveMatcher::order_event(EventType type, TimeNs ts, const Order& o) {
  Event e;
  e.seq = next_seq_++;
  e.type = type;
  e.ts = ts;
  e.subject = o.spec.id;
  e.user_id = o.spec.user_id;
  e.market_id = o.spec.market_id;
  e.has_market = true;
  return e;
}

BalanceView& NaiveMatcher::balance_ref(const Uuid& wallet, const Asset& token) {
  for (BalanceView& b : balances_) {
    if (b.wallet_id == wallet && b.token == token) return b;
  }
  BalanceView& b = balances_.emplace_back();
  b.wallet_id = wallet;
  b.token = token;
  return b;
}

void NaiveMatcher::upsert_balance(const BalanceSpec& b) {
  BalanceView& v = balance_ref(b.wallet_id, b.token);
  v.balance = b.balance;
  v.locked = b.locked;
}

BalanceView NaiveMatcher::balance(const Uuid& wallet, const Asset& token) const {
  for (const BalanceView& b : balances_) {
    if (b.wallet_id == wallet && b.token == token) return b;
  }
  BalanceView v;
  v.wallet_id = wallet;
  v.token = token;
  return v;
}

std::optional<std::size_t> NaiveMatcher::open_position(const Uuid& user, const Uuid& market,
                                                       Side side) const {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < positions_.size(); ++i) {
    const Position& p = positions_[i];
    if (p.status != PositionStatus::open || p.spec.user_id != user || p.spec.market_id != market ||
        p.spec.side != side)
      continue;
    if (!market_index_.contains(market)) continue;
    if (!best || p.upserted > positions_[*best].upserted) best = i;
  }
  return best;
}

std::optional<std::int64_t> NaiveMatcher::tradeable(const Market& m, bool buy) const {
  if (m.has_bbo) return buy ? m.ask : m.bid;
  if (m.has_last) return m.last;
  return std::nullopt;
}

std::optional<PositionSpec> NaiveMatcher::position_spec(const Uuid& id) const {
  auto it = position_index_.find(id);
  if (it == position_index_.end()) return std::nullopt;
  return positions_[it->second].spec;
}

std::optional<OrderView> NaiveMatcher::order(const Uuid& id) const {
  auto it = order_index_.find(id);
  if (it == order_index_.end()) return std::nullopt;
  const Order& o = orders_[it->second];
  OrderView v = o.view;
  if (o.armed && !o.triggered && watching(o.view.status)) v.trail_extreme = o.extreme;
  return v;
}

void NaiveMatcher::upsert_order(const OrderSpec& o, std::vector<Event>& out) {
  // Terminal is terminal: a finished order set back to pending / open is refused, never re-armed.
  if (const auto f = order_index_.find(o.id);
      watching(o.status) && (o.invalid == RejectReason::finished_order ||
                             (f != order_index_.end() && orders_[f->second].spec != o &&
                              !watching(orders_[f->second].view.status)))) {
    Order tmp;
    tmp.spec = o;
    Event e = order_event(EventType::order_revival_refused, last_ts_, tmp);
    e.reason = RejectReason::finished_order;
    out.push_back(e);
    return;
  }
  // The bot finished an order we filled before the fill was stored: the fill is voided.
  if (const auto f = order_index_.find(o.id);
      f != order_index_.end() && orders_[f->second].view.status == OrderStatus::filled &&
      !watching(o.status) && o.status != OrderStatus::filled) {
    const Order& was = orders_[f->second];
    Order tmp;
    tmp.spec = o;
    Event e = order_event(EventType::order_fill_voided, last_ts_, tmp);
    e.ref = was.view.position_id.value_or(Uuid{});
    e.size = was.view.filled_size;
    e.reason = RejectReason::changed_first;
    out.push_back(e);
  }
  auto [it, inserted] = order_index_.try_emplace(o.id, orders_.size());
  if (inserted) {
    orders_.emplace_back();
  } else if (orders_[it->second].spec == o) {
    return;
  }
  Order& x = orders_[it->second];
  // An edit of a trailing stop that trails keeps its best price (if it trails as before: arm()).
  std::optional<Carry> carry;
  if (!inserted && x.armed && !x.triggered && x.extreme && watching(x.view.status) &&
      x.spec.type == OrderType::trailing_stop && x.view.activated_at)
    carry = Carry{*x.extreme, *x.view.activated_at, x.spec.market_id, buys(x.spec.side),
                  watched_source(x.spec, markets_[market_index_.at(x.spec.market_id)].spec)};
  x = Order{};
  x.spec = o;
  x.view.id = o.id;
  x.view.status = o.status;
  x.view.triggered_at = o.triggered_at;
  x.triggered = o.triggered_at.has_value() || o.status == OrderStatus::open;
  arm(it->second, out, carry);
  if (!protect_.empty()) place_protective(out);
}

void NaiveMatcher::finish(std::size_t i, OrderStatus s, RejectReason why, EventType type, TimeNs ts,
                          std::vector<Event>& out) {
  Order& o = orders_[i];
  o.armed = o.resting = o.waiting = false;
  o.view.status = s;
  o.view.reason = why;
  Event e = order_event(type, ts, o);
  e.reason = why;
  out.push_back(e);
}

void NaiveMatcher::arm(std::size_t i, std::vector<Event>& out, const std::optional<Carry>& carry) {
  Order& o = orders_[i];
  const OrderSpec& s = o.spec;
  if (!watching(o.view.status)) return;
  const bool conditional = s.type == OrderType::stop || s.type == OrderType::stop_limit ||
                           s.type == OrderType::trailing_stop;
  const bool untriggered = conditional && o.view.status == OrderStatus::pending && !s.triggered_at;
  if (s.execution == Execution::live && !untriggered) return;
  auto mit = market_index_.find(s.market_id);
  if (mit == market_index_.end())
    return finish(i, OrderStatus::failed, RejectReason::unknown_market, EventType::order_rejected,
                  last_ts_, out);
  const Market& m = markets_[mit->second];
  if (const RejectReason r = validate_order(s, m.spec.rules); r != RejectReason::none)
    return finish(i, OrderStatus::failed, r, EventType::order_rejected, last_ts_, out);
  if (const auto us = settings_.find(s.user_id);
      us != settings_.end() && us->second.max_leverage && s.leverage > *us->second.max_leverage)
    return finish(i, OrderStatus::failed, RejectReason::above_user_leverage,
                  EventType::order_rejected, last_ts_, out);
  if (s.execution == Execution::paper && reduces(s.side) &&
      !open_position(s.user_id, s.market_id, position_side(s.side)))
    return finish(i, OrderStatus::cancelled, RejectReason::no_position, EventType::order_cancelled,
                  last_ts_, out);
  o.armed = true;
  o.triggered = !untriggered;
  if (untriggered && s.type == OrderType::trailing_stop) {
    const PriceSource src = watched_source(s, m.spec);
    const auto now =
        price_now(src, m.spec, m.has_p, m.p, m.has_last, m.last, m.has_bbo, m.bid, m.ask);
    if (carry && carry->market == s.market_id && carry->buy == buys(s.side) && carry->src == src) {
      o.extreme = carry->extreme;
      o.view.activated_at = carry->at;
    } else if (s.activated_at && s.trail_extreme && s.trail_group) {
      o.extreme = s.trail_extreme;
      o.view.activated_at = s.activated_at;
    } else if (now && activates(s, *now)) {
      o.extreme = *now;
      o.view.activated_at = last_ts_;
    }
  }
  if (untriggered) return;
  const bool buy = buys(s.side);
  if (o.view.status == OrderStatus::open &&
      (s.type == OrderType::limit || s.type == OrderType::stop_limit) && tradeable(m, buy)) {
    o.resting = true;
    o.rested_at = ticks_;
    return;
  }
  execute(i, last_ts_, out);
}

void NaiveMatcher::execute(std::size_t i, TimeNs ts, std::vector<Event>& out) {
  Order& o = orders_[i];
  const OrderSpec& s = o.spec;
  const Market& m = markets_[market_index_.at(s.market_id)];
  const bool buy = buys(s.side);
  const auto px = tradeable(m, buy);
  if (!px) {
    o.waiting = true;
    return;
  }
  o.waiting = false;
  if (s.type == OrderType::market || s.type == OrderType::stop ||
      s.type == OrderType::trailing_stop)
    return fill(i, *px, true, ts, out);
  if (buy ? *px <= *s.price : *px >= *s.price) return fill(i, *px, true, ts, out);
  o.view.status = OrderStatus::open;
  o.resting = true;
  o.rested_at = ticks_;
}

void NaiveMatcher::fill(std::size_t i, std::int64_t px, bool taker, TimeNs ts,
                        std::vector<Event>& out) {
  Order& o = orders_[i];
  const OrderSpec s = o.spec;
  const Market& m = markets_[market_index_.at(s.market_id)];
  const Side side = position_side(s.side);
  const std::int64_t rate = taker ? m.spec.rules.taker_fee : m.spec.rules.maker_fee;
  if (taker) {
    const auto us = settings_.find(s.user_id);
    px = FillMath::slipped(px, buys(s.side),
                           us != settings_.end() && us->second.slippage_bps
                               ? *us->second.slippage_bps
                               : slippage_bps_);
  }
  const auto open = open_position(s.user_id, s.market_id, side);
  o.armed = o.resting = o.waiting = false;
  std::size_t pos = 0;
  Wide fee = 0, realized = 0;
  std::int64_t q = s.size;
  bool closed = false;
  if (reduces(s.side)) {
    if (!open)
      return finish(i, OrderStatus::cancelled, RejectReason::no_position,
                    EventType::order_cancelled, ts, out);
    pos = *open;
    PositionSpec& p = positions_[pos].spec;
    q = std::min(q, p.size);
    fee = FillMath::fee(q, px, rate);
    realized = FillMath::pnl(side, p.entry_price, px, q) - fee;
    const Wide released = FillMath::released(p.margin, q, p.size);
    p.size -= q;
    p.margin -= static_cast<std::int64_t>(released);
    p.realized_pnl += realized;
    BalanceView& b = balance_ref(s.wallet_id, m.spec.rules.quote);
    b.balance += realized;
    b.locked -= released;
    closed = p.size == 0;
    if (closed) {
      positions_[pos].status = PositionStatus::closed;
      p.margin = 0;
    }
  } else {
    fee = FillMath::fee(q, px, rate);
    const Wide add = FillMath::margin(q, px, s.leverage);
    BalanceView& b = balance_ref(s.wallet_id, m.spec.rules.quote);
    if (b.balance - b.locked < add + fee)
      return finish(i, OrderStatus::failed, RejectReason::insufficient_margin,
                    EventType::order_rejected, ts, out);
    PositionSpec next;
    if (!open) {
      next.id = Matcher::position_id_for(s.id);
      next.user_id = s.user_id;
      next.wallet_id = s.wallet_id;
      next.market_id = s.market_id;
      next.side = side;
      next.size = q;
      next.entry_price = px;
      next.leverage = s.leverage;
    } else {
      next = positions_[*open].spec;
      next.entry_price = FillMath::average(next.entry_price, next.size, px, q);
      next.size += q;
    }
    const Wide margin = static_cast<Wide>(next.margin) + add;
    if (!FillMath::position_fits(next.size, next.entry_price, margin))
      return finish(i, OrderStatus::failed, RejectReason::out_of_range, EventType::order_rejected,
                    ts, out);
    next.margin = static_cast<std::int64_t>(margin);
    realized = -fee;
    b.locked += add;
    b.balance -= fee;
    if (!open) {
      next.realized_pnl = realized;
      auto [it, inserted] = position_index_.try_emplace(next.id, positions_.size());
      if (inserted) positions_.emplace_back();
      positions_[it->second] = Position{next, PositionStatus::open, ++upserts_};
      pos = it->second;
    } else {
      pos = *open;
      next.realized_pnl += realized;
      positions_[pos].spec = next;
    }
  }
  const PositionSpec& p = positions_[pos].spec;
  o.view.status = OrderStatus::filled;
  o.view.filled_size = q;
  o.view.avg_fill_price = px;
  o.view.total_fees = fee;
  o.view.realized_pnl = realized;
  o.view.position_id = p.id;
  o.view.filled_at = ts;
  o.view.liquidity_taker = taker;
  Event fe = order_event(EventType::order_filled, ts, o);
  fe.price = px;
  fe.has_price = true;
  fe.ref = p.id;
  fe.size = q;
  fe.amount = fee;
  fe.taker = taker;
  out.push_back(fe);
  EventType pt = EventType::position_increased;
  if (reduces(s.side)) {
    pt = closed ? EventType::position_closed : EventType::position_reduced;
  } else if (!open) {
    pt = EventType::position_opened;
  }
  Event pe2;
  pe2.seq = next_seq_++;
  pe2.type = pt;
  pe2.ts = ts;
  pe2.subject = p.id;
  pe2.user_id = s.user_id;
  pe2.market_id = s.market_id;
  pe2.has_market = true;
  pe2.price = px;
  pe2.has_price = true;
  pe2.ref = s.id;
  pe2.size = p.size;
  pe2.amount = realized;
  out.push_back(pe2);
  if (closed) position_gone(pos, ts, out);
  // A paper fill that opened the position: the user's protective stop, placed once the step is
  // over (after the rest of the tick, or of the bot's write).
  if (const auto us = settings_.find(s.user_id);
      pt == EventType::position_opened && us != settings_.end()) {
    if (auto stop = Matcher::protective_stop(s, q, p.entry_price, us->second, m.spec.rules))
      protect_.push_back({*stop, p.id, ts});
  }
}

void NaiveMatcher::place_protective(std::vector<Event>& out) {
  std::vector<Protective> todo;
  todo.swap(protect_);
  for (const Protective& p : todo) {
    if (order_index_.contains(p.spec.id)) continue;  // made once; the bot's row stays as it is
    Order tmp;
    tmp.spec = p.spec;
    Event e = order_event(EventType::order_placed, p.ts, tmp);
    e.price = *p.spec.trigger_price;
    e.has_price = true;
    e.ref = p.position;
    e.size = p.spec.size;
    out.push_back(e);
    upsert_order(p.spec, out);
  }
}

void NaiveMatcher::position_gone(std::size_t pos, TimeNs ts, std::vector<Event>& out) {
  // Its paper reduce orders end, by id (a liquidation also moves its wallet: see on_tick).
  const PositionSpec& p = positions_[pos].spec;
  std::vector<std::size_t> reduce;
  for (std::size_t i = 0; i < orders_.size(); ++i) {
    const Order& o = orders_[i];
    if (!o.armed || !watching(o.view.status) || o.spec.execution != Execution::paper) continue;
    if (!reduces(o.spec.side) || o.spec.user_id != p.user_id || o.spec.market_id != p.market_id ||
        position_side(o.spec.side) != p.side)
      continue;
    reduce.push_back(i);
  }
  std::sort(reduce.begin(), reduce.end(),
            [&](std::size_t a, std::size_t b) { return orders_[a].spec.id < orders_[b].spec.id; });
  for (std::size_t i : reduce)
    finish(i, OrderStatus::cancelled, RejectReason::position_closed, EventType::order_cancelled, ts,
           out);
}

void NaiveMatcher::run_orders(Market& m, const Tick& t, std::vector<Event>& out) {
  struct Due {
    unsigned __int128 d;
    Uuid id;
    std::size_t i;
    int what;  // 0 trigger, 1 limit, 2 waiting
    std::int64_t price;
  };
  std::vector<Due> due;
  for (std::size_t i = 0; i < orders_.size(); ++i) {
    Order& o = orders_[i];
    if (!o.armed || !watching(o.view.status) || o.spec.market_id != m.spec.id) continue;
    const bool buy = buys(o.spec.side);
    if (!o.triggered && o.spec.type == OrderType::trailing_stop) {
      const auto x = tick_price_for(watched_source(o.spec, m.spec), t);
      if (!x) continue;
      if (!o.extreme) {  // activated by this price: it cannot trigger at it
        if (activates(o.spec, *x)) {
          o.extreme = *x;
          o.view.activated_at = t.exch_ts;
        }
        continue;
      }
      o.extreme = buy ? std::min(*o.extreme, *x) : std::max(*o.extreme, *x);
      const std::int64_t trig = TrailBook::trigger_of(buy, *o.extreme, offset_of(o.spec));
      if (buy ? *x >= trig : *x <= trig) due.push_back({dist(*x, trig), o.spec.id, i, 0, *x});
    } else if (!o.triggered) {
      const auto x = tick_price_for(watched_source(o.spec, m.spec), t);
      if (!x) continue;
      const std::int64_t trig = *o.spec.trigger_price;
      if (buy ? *x >= trig : *x <= trig) due.push_back({dist(*x, trig), o.spec.id, i, 0, *x});
    } else if (o.resting && o.rested_at < ticks_) {
      const std::int64_t lim = *o.spec.price;
      if (t.kind == TickKind::bbo) {
        const std::int64_t quote = buy ? t.ask : t.price;
        if (buy ? quote <= lim : quote >= lim)
          due.push_back({dist(quote, lim), o.spec.id, i, 1, lim});
      } else if (t.kind == TickKind::trade) {
        if (buy ? t.price < lim : t.price > lim)
          due.push_back({dist(t.price, lim), o.spec.id, i, 1, lim});
      }
    } else if (o.waiting && t.kind != TickKind::mark) {
      due.push_back({0, o.spec.id, i, 2, 0});
    }
  }
  std::sort(due.begin(), due.end(),
            [](const Due& a, const Due& b) { return a.d != b.d ? a.d < b.d : a.id < b.id; });
  for (const Due& d : due) {
    Order& o = orders_[d.i];
    if (!o.armed || !watching(o.view.status)) continue;
    if (d.what == 0) {
      o.triggered = true;
      o.view.status = OrderStatus::open;
      o.view.triggered_at = t.exch_ts;
      Event e = order_event(EventType::order_triggered, t.exch_ts, o);
      e.price = d.price;
      e.has_price = true;
      out.push_back(e);
      if (o.spec.execution == Execution::live) {
        o.armed = false;
        continue;
      }
      execute(d.i, t.exch_ts, out);
    } else if (d.what == 1) {
      fill(d.i, d.price, false, t.exch_ts, out);
    } else {
      execute(d.i, t.exch_ts, out);
    }
  }
}

void NaiveMatcher::expire(Market& m, TimeNs now, std::vector<Event>& out) {
  // Alerts and orders of this market due by `now`, by (expires_at, id).
  struct Due {
    TimeNs at;
    Uuid id;
    std::size_t i;
    bool order;
  };
  std::vector<Due> due;
  for (std::size_t i = 0; i < alerts_.size(); ++i) {
    const Alert& a = alerts_[i];
    if (a.armed && a.spec.market_id == m.spec.id && a.spec.expires_at && *a.spec.expires_at <= now)
      due.push_back({*a.spec.expires_at, a.spec.id, i, false});
  }
  for (std::size_t i = 0; i < orders_.size(); ++i) {
    const Order& o = orders_[i];
    if (o.armed && watching(o.view.status) && o.spec.market_id == m.spec.id && o.spec.expires_at &&
        *o.spec.expires_at <= now)
      due.push_back({*o.spec.expires_at, o.spec.id, i, true});
  }
  std::sort(due.begin(), due.end(),
            [](const Due& a, const Due& b) { return a.at != b.at ? a.at < b.at : a.id < b.id; });
  for (const Due& d : due) {
    if (d.order) {
      finish(d.i, OrderStatus::expired, RejectReason::none, EventType::order_expired, now, out);
    } else {
      alerts_[d.i].armed = false;
      alerts_[d.i].status = AlertStatus::expired;
      out.push_back(base_event(EventType::alert_expired, now, alerts_[d.i], m));
    }
  }
}

void NaiveMatcher::on_clock(TimeNs now, std::vector<Event>& out) {
  for (Market& m : markets_) expire(m, now, out);
}

}  // namespace lam
