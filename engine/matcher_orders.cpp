// Orders in the matcher (docs/semantics.md, "Orders"): armed like alerts, triggered from the same
// kind of per-market ladders, paper-filled at tradeable prices, moving positions and balances.
// A tick that crosses no order reads nothing more than one without orders: the fences of MarketHot
// fold the order ladders' fronts in.
#include <algorithm>

#include "engine/matcher.h"
#include "engine/matcher_state.h"

namespace lam {

namespace {

bool watching(OrderStatus s) noexcept {
  return s == OrderStatus::pending || s == OrderStatus::open;
}

/// A fixed, invertible scramble of an order's id: deterministic across replays and restarts, never
/// the order's own id. Version/variant nibbles are set so it reads as a v4 UUID.
Uuid derived_id(const Uuid& o, std::uint64_t hi_mask, std::uint64_t lo_mask) noexcept {
  Uuid u{o.hi ^ hi_mask, o.lo ^ lo_mask};
  u.hi = (u.hi & ~0xF000ULL) | 0x4000ULL;
  u.lo = (u.lo & ~(0xC000ULL << 48)) | (0x8000ULL << 48);
  return u;
}

}  // namespace

Uuid Matcher::trade_id_for(const Uuid& o) noexcept {
  // Another scramble than the position's: one trade per (whole) fill of the order.
  return derived_id(o, 0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL);
}

void Matcher::drain_rested(std::vector<Uuid>& out) {
  out.insert(out.end(), rested_.begin(), rested_.end());
  rested_.clear();
}

Uuid Matcher::position_id_for(const Uuid& o) noexcept {
  return derived_id(o, 0x5bd1e9955bd1e995ULL, 0xc2b2ae3d27d4eb4fULL);
}

Uuid Matcher::protective_id_for(const Uuid& o) noexcept {
  return derived_id(o, 0x94d049bb133111ebULL, 0x2545f4914f6cdd1dULL);
}

std::optional<OrderSpec> Matcher::protective_stop(const OrderSpec& opener, std::int64_t size,
                                                  std::int64_t entry, const UserSettings& s,
                                                  const TradingRules& rules) noexcept {
  if (!s.stop_loss_fraction || opener.execution != Execution::paper || reduces(opener.side))
    return std::nullopt;
  const bool long_side = position_side(opener.side) == Side::long_side;
  const auto trigger =
      FillMath::protective_trigger(entry, long_side, *s.stop_loss_fraction, rules.tick_size);
  if (!trigger) return std::nullopt;
  OrderSpec p;
  p.id = protective_id_for(opener.id);
  p.user_id = opener.user_id;
  p.wallet_id = opener.wallet_id;
  p.market_id = opener.market_id;
  p.type = OrderType::stop;
  p.side = long_side ? OrderSide::sell : OrderSide::buy;
  p.execution = Execution::paper;
  p.size = size;
  p.trigger_price = trigger;
  p.leverage = opener.leverage;
  p.status = OrderStatus::pending;
  return p;
}

void Matcher::place_protective(std::vector<Event>& out) {
  // Each placed as the bot's own row would be (validated and armed; a row of that id the engine
  // holds already, as the bot left it, stays: the stop is made once).
  std::vector<Protective> todo;
  todo.swap(protect_);
  for (const Protective& p : todo) {
    if (order_slot(p.spec.id) != kNone) continue;
    Event e = make_event(EventType::order_placed, p.ts, p.spec.id, p.spec.user_id, p.spec.market_id,
                         *p.spec.trigger_price);
    e.ref = p.position;
    e.size = p.spec.size;
    out.push_back(e);
    ++stats_.orders_placed;
    place_order(kNone, p.spec, out);
    if (const std::uint32_t slot = order_slot(p.spec.id); slot != kNone)
      order_extra_of(slot).opened_by = p.opened_by;
  }
}

std::size_t Matcher::source_index(std::uint32_t mi, TriggerSource s) const noexcept {
  switch (s) {
    case TriggerSource::mark:
      return kMark;
    case TriggerSource::last:
      return kLast;
    case TriggerSource::reference:
      break;
  }
  return index_of(cold_[mi].spec.source);
}

std::optional<std::int64_t> Matcher::tradeable(std::uint32_t mi, bool buy) const noexcept {
  const Quotes& q = quotes_[mi];
  if (q.has_bbo()) return buy ? q.s[Quotes::kAsk] : q.s[Quotes::kBid];  // a mark is never tradeable
  if (q.has_last()) return q.s[Quotes::kLastPx];
  return std::nullopt;
}

// ---- the order step of a tick ----------------------------------------------------------------

void Matcher::take_trailing(MarketCold& c, std::size_t s, std::int64_t x, std::vector<Due>& due) {
  // Activated trailing stops first: this price may be a new extreme for them, or their trigger.
  for (const bool buy : {false, true}) {
    TrailBook* book = c.trail[trail_index(s, buy)].get();
    if (book == nullptr || book->empty()) continue;
    scratch_fired_.clear();
    book->on_price(x, scratch_fired_);
    trails_changed_ = trails_changed_ || book->has_changes();
    for (const TrailFired& f : scratch_fired_) {
      OrderState& o = orders_[f.owner];
      o.in_trail = false;
      order_extra_[o.extra].trail_member = TrailBook::kNone;
      const Wide d = static_cast<Wide>(x) - f.trigger;
      due.push_back(
          {static_cast<unsigned __int128>(d < 0 ? -d : d), o.id, f.owner, Due::What::trigger, x});
    }
  }
}

void Matcher::run_orders(std::uint32_t mi, const Tick& t, std::vector<Event>& out) {
  MarketCold& c = cold_[mi];
  std::vector<Due>& due = scratch_due_;
  due.clear();
  std::size_t s = kMark;
  std::int64_t x = t.price;
  if (t.kind == TickKind::trade) s = kLast;
  if (t.kind == TickKind::bbo) {
    s = kMid;
    x = mid_price(t.price, t.ask);
  }
  take_trailing(c, s, x, due);
  // Trailing stops reaching their activation price start to trail at this price (which cannot
  // trigger them: their trigger is beyond it); stops reaching their trigger are due.
  scratch_activate_.clear();
  auto take_triggers = [&](auto& ladder) {
    if (!ladder.crosses(ladder.front_key(), x)) return;
    scratch_up_.clear();
    ladder.pop_crossed(x, scratch_up_, OrderIds{orders_});
    for (const Crossed& cr : scratch_up_) {
      orders_[cr.slot].trig_source = -1;
      if (orders_[cr.slot].type == OrderType::trailing_stop) {
        scratch_activate_.push_back(cr.slot);
        continue;
      }
      due.push_back({cr.distance, cr.id, cr.slot, Due::What::trigger, x});
    }
  };
  take_triggers(c.trig_up[s]);
  take_triggers(c.trig_down[s]);
  for (const std::uint32_t slot : scratch_activate_)
    activate_trailing(slot, x, t.exch_ts, orders_[slot].id, false);
  // Resting limits: a buy fills when the ask reaches it or a trade prints strictly below it.
  std::optional<std::int64_t> buy_at, sell_at;
  if (t.kind == TickKind::bbo) {
    buy_at = t.ask;
    sell_at = t.price;
  } else if (t.kind == TickKind::trade) {
    buy_at = x + 1;  // key >= x + 1  <=>  x < key
    sell_at = x - 1;
  }
  auto take_limits = [&](auto& ladder, std::int64_t p, std::int64_t quote) {
    if (!ladder.crosses(ladder.front_key(), p)) return;
    scratch_up_.clear();
    ladder.pop_crossed(p, scratch_up_, OrderIds{orders_});
    for (const Crossed& cr : scratch_up_) {
      OrderState& o = orders_[cr.slot];
      o.resting = false;
      const std::int64_t lim = o.price;
      const Wide d = static_cast<Wide>(lim) - quote;
      due.push_back(
          {static_cast<unsigned __int128>(d < 0 ? -d : d), cr.id, cr.slot, Due::What::limit, lim});
    }
  };
  if (buy_at) take_limits(c.lim_buy, *buy_at, t.kind == TickKind::bbo ? t.ask : x);
  if (sell_at) take_limits(c.lim_sell, *sell_at, t.kind == TickKind::bbo ? t.price : x);
  // Orders waiting for a tradeable price: this tick brings one.
  if (t.kind != TickKind::mark && !c.waiting.empty()) {
    for (std::uint32_t slot : c.waiting) {
      orders_[slot].waiting = false;
      due.push_back({0, orders_[slot].id, slot, Due::What::waiting, 0});
    }
    c.waiting.clear();
  }
  if (due.empty()) return;
  std::sort(due.begin(), due.end(), [](const Due& a, const Due& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
  });
  // The set is fixed: an order cancelled by an earlier fill in this step is skipped.
  for (std::size_t i = 0; i < due.size(); ++i) {
    const Due d = due[i];
    OrderState& o = orders_[d.slot];
    if (!o.live || o.id != d.id || !watching(o.status)) continue;
    switch (d.what) {
      case Due::What::trigger:
        o.status = OrderStatus::open;
        o.triggered = true;
        order_extra_of(d.slot).triggered_at = t.exch_ts;
        out.push_back(make_event(EventType::order_triggered, t.exch_ts, o.id, ids_[o.user],
                                 c.spec.id, d.price));
        ++stats_.orders_triggered;
        if (o.execution == Execution::live) {
          disarm_order(d.slot);  // the bot's from here: no further expiry
          break;
        }
        execute(d.slot, t.exch_ts, out);
        break;
      case Due::What::limit:
        fill(d.slot, d.price, /*taker=*/false, t.exch_ts, out);
        break;
      case Due::What::waiting:
        execute(d.slot, t.exch_ts, out);
        break;
    }
  }
}

// ---- trailing stops ----------------------------------------------------------------------------

std::optional<std::int64_t> Matcher::source_price(std::uint32_t mi,
                                                  std::size_t src) const noexcept {
  const Quotes& q = quotes_[mi];
  switch (src) {
    case kLast:
      if (q.has_last()) return q.s[Quotes::kLastPx];
      return std::nullopt;
    case kMid:
      if (q.has_bbo()) return mid_price(q.s[Quotes::kBid], q.s[Quotes::kAsk]);
      return std::nullopt;
    default:  // a mark is kept only as the market's reference price
      if (hot_[mi].source == PriceSource::mark && q.has_p()) return q.p();
      return std::nullopt;
  }
}

void Matcher::arm_trailing(std::uint32_t slot, std::size_t src, TimeNs ts, bool restart) {
  OrderState& o = orders_[slot];
  OrderExtra& x = order_extra_of(slot);
  x.trail_src = static_cast<std::uint8_t>(src);
  const bool buy = buys(o.side);
  // Already trailing: the best price it followed in memory before the bot's edit (carry_), else
  // the one its row holds (a restart), in the group it joined.
  if (!restart && carry_ && carry_->src == src && carry_->buy == buy) {
    const TrailCarry c = *carry_;
    carry_.reset();
    return activate_trailing(slot, c.extreme, c.activated_at, c.group, true);
  }
  if (!restart && x.row_activated_at && x.row_trail_extreme && x.row_trail_group) {
    return activate_trailing(slot, *x.row_trail_extreme, *x.row_activated_at, *x.row_trail_group,
                             true);
  }
  // A SELL trails a rise: it activates once the price is at or above its activation price (a BUY
  // at or below); without one, at the source's price now, or its first one. Restarted (another
  // source): the new source's next price, as if it had none yet.
  const auto now = restart ? std::nullopt : source_price(o.market, src);
  if (now &&
      (!x.activation_price || (buy ? *now <= *x.activation_price : *now >= *x.activation_price))) {
    activate_trailing(slot, *now, ts, o.id, false);
    return;
  }
  MarketCold& c = cold_[o.market];
  o.trig_source = static_cast<std::int8_t>(src);
  if (!x.activation_price) {  // the first price of the source
    x.wait_key = 0;
    o.trig_up = true;
    file(c.trig_up[src], 0, o.id, slot, OrderIds{orders_});
    return;
  }
  x.wait_key = *x.activation_price;
  o.trig_up = !buy;
  if (buy) {
    file(c.trig_down[src], x.wait_key, o.id, slot, OrderIds{orders_});
  } else {
    file(c.trig_up[src], x.wait_key, o.id, slot, OrderIds{orders_});
  }
}

void Matcher::activate_trailing(std::uint32_t slot, std::int64_t extreme, TimeNs ts,
                                const Uuid& group, bool restored) {
  OrderState& o = orders_[slot];
  if (!o.live || !watching(o.status)) return;
  OrderExtra& x = order_extra_[o.extra];
  const bool buy = buys(o.side);
  std::unique_ptr<TrailBook>& book = cold_[o.market].trail[trail_index(x.trail_src, buy)];
  if (!book) book = std::make_unique<TrailBook>(buy, cfg_.report_trails);
  const TrailBook::Added a = book->add(
      slot, {x.trail_rate.value_or(0), x.trail_distance.value_or(0)}, extreme, group, restored);
  x.trail_member = a.member;
  x.trail_group = a.group;
  x.activated_at = ts;
  o.in_trail = true;
  if (!restored && cfg_.report_trails) trail_activations_.push_back({o.id, ts, a.group});
  if (cfg_.report_trails) trails_changed_ = true;
}

void Matcher::drain_trails(std::vector<TrailActivation>& activations,
                           std::vector<TrailGroupChange>& groups) {
  activations.insert(activations.end(), trail_activations_.begin(), trail_activations_.end());
  trail_activations_.clear();
  for (MarketCold& c : cold_) {
    for (auto& book : c.trail) {
      if (book && book->has_changes()) book->drain_changes(groups);
    }
  }
  trails_changed_ = false;
}

// ---- arming ----------------------------------------------------------------------------------

void Matcher::upsert_order(const OrderSpec& o, std::vector<Event>& out) {
  std::uint32_t slot = order_slot(o.id);
  if (slot != kNone && spec_of(slot) == o) return;  // an unchanged row (a resync re-reading it)
  // Terminal is terminal: a finished order the bot sets back to pending / open is never re-armed
  // (it would fill, charge and move its position again). Known finished: held in a terminal
  // status here, or its row still shows its fill (the row reader's finished_order). The record
  // held, if any, stays as it is; the row is left as the bot wrote it.
  if (watching(o.status) && (o.invalid == RejectReason::finished_order ||
                             (slot != kNone && !watching(orders_[slot].status)))) {
    Event e = make_event(EventType::order_revival_refused, last_ts_, o.id, o.user_id, o.market_id);
    e.reason = RejectReason::finished_order;
    out.push_back(e);
    ++stats_.orders_revivals_refused;
    return;
  }
  // The stream never contradicts the books: an order we filled in memory that the bot finished
  // first (its cancel reached the database before our fill; the database refuses any change of a
  // finished order, so this is the only way a filled order of ours reads otherwise) will never be
  // stored as filled. The fill is voided on the stream; the writer has the position and wallet
  // re-read (docs/schema.md, "Writer: orders").
  if (slot != kNone && orders_[slot].status == OrderStatus::filled && !watching(o.status) &&
      o.status != OrderStatus::filled) {
    void_fill(o, RejectReason::changed_first, out);
  }
  place_order(slot, o, out);
  if (!protect_.empty()) place_protective(out);
}

void Matcher::void_fill(const OrderSpec& o, RejectReason why, std::vector<Event>& out) {
  if (const auto v = order(o.id)) {
    Event e = make_event(EventType::order_fill_voided, last_ts_, o.id, o.user_id, o.market_id);
    e.ref = v->position_id.value_or(Uuid{});
    e.size = v->filled_size;
    e.reason = why;
    out.push_back(e);
    ++stats_.orders_fills_voided;
  }
}

void Matcher::reconcile_order(const OrderSpec& o, std::vector<Event>& out) {
  const std::uint32_t slot = order_slot(o.id);
  // Our fill of it lost to the bot while the row stayed pending / open (the position the fill
  // increased or reduced was closed first): the fill is voided and the order armed again as the
  // database holds it, as a restart would load it. The writer asked for this read after its
  // statement committed, so a live row here never predates our fill.
  if (slot == kNone || orders_[slot].status != OrderStatus::filled || !watching(o.status) ||
      o.invalid == RejectReason::finished_order) {
    upsert_order(o, out);
    return;
  }
  void_fill(o, RejectReason::position_closed, out);
  place_order(slot, o, out);
  if (!protect_.empty()) place_protective(out);
}

void Matcher::place_order(std::uint32_t slot, const OrderSpec& o, std::vector<Event>& out) {
  if (slot == kNone) {
    if (!free_orders_.empty()) {  // a removed order's slot: memory stays bounded by live orders
      slot = free_orders_.back();
      free_orders_.pop_back();
    } else {
      slot = static_cast<std::uint32_t>(orders_.size());
      orders_.emplace_back();
    }
    order_index_.insert(o.id, slot);  // the record takes o.id below, before any lookup
  } else {
    if (orders_[slot].in_trail) {  // trailing: an edit keeps the best price followed so far
      const OrderExtra& x = order_extra_[orders_[slot].extra];
      carry_ = TrailCarry{cold_[orders_[slot].market]
                              .trail[trail_index(x.trail_src, buys(orders_[slot].side))]
                              ->extreme_of(x.trail_member),
                          *x.activated_at,
                          x.trail_group,
                          orders_[slot].market,
                          x.trail_src,
                          buys(orders_[slot].side)};
    }
    disarm_order(slot);
  }
  const std::uint32_t old_market = orders_[slot].market;
  clear_order(slot);
  OrderState& st = orders_[slot];
  st.id = o.id;
  st.live = true;
  st.user = ids_.acquire(o.user_id);
  st.wallet = ids_.acquire(o.wallet_id);
  st.size = o.size;
  st.has_price = o.price.has_value();
  st.price = o.price.value_or(0);
  st.has_trigger = o.trigger_price.has_value();
  st.trigger_price = o.trigger_price.value_or(0);
  st.leverage = o.leverage;
  st.type = o.type;
  st.side = o.side;
  st.execution = o.execution;
  st.trigger_source = o.trigger_source;
  st.row_status = o.status;
  st.status = o.status;
  st.triggered = o.triggered_at.has_value();
  const auto mit = market_index_.find(o.market_id);
  st.market = mit == market_index_.end() ? kNone : mit->second;
  const bool trail = o.trail_rate || o.trail_distance || o.activation_price || o.activated_at ||
                     o.trail_group || o.trail_extreme;
  if (o.triggered_at || o.expires_at || st.market == kNone || o.invalid != RejectReason::none ||
      trail) {
    OrderExtra& x = order_extra_of(slot);
    x.invalid = o.invalid;
    x.row_triggered_at = o.triggered_at;
    x.triggered_at = o.triggered_at;
    x.expires_at = o.expires_at;
    if (st.market == kNone) x.market_id = o.market_id;
    x.trail_rate = o.trail_rate;
    x.trail_distance = o.trail_distance;
    x.row_activated_at = o.activated_at;
    x.row_trail_group = o.trail_group;
    x.row_trail_extreme = o.trail_extreme;
    x.activation_price = o.activation_price;
  }
  if (carry_ && carry_->market != st.market) carry_.reset();
  arm_order(slot, last_ts_, out);
  carry_.reset();  // not taken: the order is not a trailing stop armed as before any more
  if (st.market != kNone) refresh(st.market);
  if (old_market != kNone && old_market != st.market) refresh(old_market);
}

void Matcher::remove_order(const Uuid& id) {
  const std::uint32_t slot = order_slot(id);
  if (slot == kNone) return;
  const std::uint32_t mi = orders_[slot].market;
  disarm_order(slot);
  order_index_.erase(id, OrderIds{orders_});
  clear_order(slot);  // live = false; a tick's due list checks the id before acting
  free_orders_.push_back(slot);
  if (mi != kNone) refresh(mi);
}

std::size_t Matcher::order_slots() const noexcept {
  return orders_.size();
}

bool Matcher::forget_order(const Uuid& id) {
  const std::uint32_t slot = order_slot(id);
  if (slot == kNone || watching(orders_[slot].status)) return false;
  remove_order(id);
  return true;
}

void Matcher::set_user_settings(const Uuid& user, const UserSettings& s) {
  if (s == UserSettings{}) {
    user_settings_.erase(user);
    return;
  }
  user_settings_[user] = s;
}

void Matcher::upsert_setting(const UserSettingRow& row, std::vector<Event>& out) {
  // An unchanged row (a resync re-reading it) changes nothing and is not named again.
  if (const auto held = setting_rows_.find(row.id);
      held != setting_rows_.end() && held->second == row)
    return;
  remove_setting(row.id);  // a row may move to another user or key
  if (row.invalid != RejectReason::none) {
    Event e = make_event(EventType::settings_rejected, last_ts_, row.id, row.user_id, std::nullopt);
    e.reason = row.invalid;
    out.push_back(e);
  }
  if (row.key == UserSettingRow::Key::other) return;
  setting_rows_[row.id] = row;  // a rejected row's values are cleared by the reader
  const bool risk = row.key == UserSettingRow::Key::risk_management;
  user_setting_rows_[row.user_id][risk ? 0 : 1] = row.id;
  merge_settings(row.user_id);
}

void Matcher::remove_setting(const Uuid& row_id) {
  const auto it = setting_rows_.find(row_id);
  if (it == setting_rows_.end()) return;
  const Uuid user = it->second.user_id;
  setting_rows_.erase(it);
  if (const auto u = user_setting_rows_.find(user); u != user_setting_rows_.end()) {
    for (Uuid& r : u->second)
      if (r == row_id) r = Uuid{};
    if (u->second[0].is_nil() && u->second[1].is_nil()) user_setting_rows_.erase(u);
  }
  merge_settings(user);
}

void Matcher::merge_settings(const Uuid& user) {
  // A user has one row per key (UNIQUE (user_id, setting_key)); each key owns its fields.
  UserSettings merged;
  if (const auto u = user_setting_rows_.find(user); u != user_setting_rows_.end()) {
    // A rejected row is followed for nothing.
    if (const auto r = setting_rows_.find(u->second[0]);
        r != setting_rows_.end() && r->second.invalid == RejectReason::none) {
      merged.max_leverage = r->second.values.max_leverage;
      merged.stop_loss_fraction = r->second.values.stop_loss_fraction;
    }
    if (const auto r = setting_rows_.find(u->second[1]);
        r != setting_rows_.end() && r->second.invalid == RejectReason::none)
      merged.slippage_bps = r->second.values.slippage_bps;
  }
  set_user_settings(user, merged);
}

void Matcher::for_each_setting_row(const std::function<void(const Uuid&)>& f) const {
  for (const auto& [id, row] : setting_rows_) f(id);
}

UserSettings Matcher::user_settings(const Uuid& user) const {
  const auto it = user_settings_.find(user);
  return it == user_settings_.end() ? UserSettings{} : it->second;
}

void Matcher::remove_balance(const Uuid& row_id) {
  auto it = balance_rows_.find(row_id);
  if (it == balance_rows_.end()) return;
  balances_.erase(it->second);
  balance_rows_.erase(it);
}

void Matcher::upsert_balance(const BalanceSpec& b) {
  if (!b.row_id.is_nil()) balance_rows_[b.row_id] = BalanceKey{b.wallet_id, b.token};
  BalanceView& v = balances_[BalanceKey{b.wallet_id, b.token}];
  v.wallet_id = b.wallet_id;
  v.token = b.token;
  v.balance = b.balance;
  v.locked = b.locked;
}

OrderSpec Matcher::spec_of(std::uint32_t slot) const {
  const OrderState& o = orders_[slot];
  const OrderExtra* x = order_extra_if(slot);
  OrderSpec s;
  s.id = o.id;
  s.user_id = ids_[o.user];
  s.wallet_id = ids_[o.wallet];
  if (o.market != kNone) {
    s.market_id = cold_[o.market].spec.id;
  } else if (x != nullptr && x->market_id) {
    s.market_id = *x->market_id;
  }
  s.type = o.type;
  s.side = o.side;
  s.execution = o.execution;
  s.size = o.size;
  if (o.has_price) s.price = o.price;
  if (o.has_trigger) s.trigger_price = o.trigger_price;
  s.trigger_source = o.trigger_source;
  s.leverage = o.leverage;
  s.status = o.row_status;
  if (x != nullptr) {
    s.triggered_at = x->row_triggered_at;
    s.expires_at = x->expires_at;
    s.invalid = x->invalid;
    s.trail_rate = x->trail_rate;
    s.trail_distance = x->trail_distance;
    s.activated_at = x->row_activated_at;
    s.trail_group = x->row_trail_group;
    s.trail_extreme = x->row_trail_extreme;
    s.activation_price = x->activation_price;
  }
  return s;
}

Matcher::OrderExtra& Matcher::order_extra_of(std::uint32_t slot) {
  OrderState& o = orders_[slot];
  if (o.extra == kNone) o.extra = order_extra_.acquire();
  return order_extra_[o.extra];
}

const Matcher::OrderExtra* Matcher::order_extra_if(std::uint32_t slot) const noexcept {
  const std::uint32_t x = orders_[slot].extra;
  return x == kNone ? nullptr : &order_extra_[x];
}

void Matcher::clear_order(std::uint32_t slot) {
  OrderState& o = orders_[slot];
  ids_.release(o.user);
  ids_.release(o.wallet);
  if (o.extra != kNone) order_extra_.release(o.extra);
  o = OrderState{};
}

void Matcher::arm_order(std::uint32_t slot, TimeNs ts, std::vector<Event>& out) {
  OrderState& o = orders_[slot];
  if (!watching(o.status)) return;  // filled, cancelled, expired, failed: not armed
  const OrderSpec s = spec_of(slot);
  const bool conditional = s.type == OrderType::stop || s.type == OrderType::stop_limit ||
                           s.type == OrderType::trailing_stop;
  if (s.execution == Execution::live) {
    // The venue's business, except the conditional orders it cannot hold for us, until triggered.
    if (!conditional || o.status != OrderStatus::pending || o.triggered) return;
  }
  if (o.market == kNone) return reject_order(slot, RejectReason::unknown_market, ts, out);
  MarketCold& c = cold_[o.market];
  if (const RejectReason r = validate_order(s, c.spec.rules); r != RejectReason::none)
    return reject_order(slot, r, ts, out);
  if (const auto us = user_settings_.find(s.user_id); us != user_settings_.end() &&
                                                      us->second.max_leverage &&
                                                      s.leverage > *us->second.max_leverage)
    return reject_order(slot, RejectReason::above_user_leverage, ts, out);
  const SideKey key{o.user, o.market, position_side(s.side)};
  if (s.execution == Execution::paper && reduces(s.side)) {
    if (!open_slot(key)) return cancel_order(slot, RejectReason::no_position, ts, out);
    reduce_orders_[key].push_back(slot);
    o.in_reduce = true;
  }
  if (s.expires_at) {
    c.expiry.insert({*s.expires_at, s.id, slot, true});
    o.in_expiry = true;
  }
  const bool buy = buys(s.side);
  if (conditional && o.status == OrderStatus::pending && !o.triggered) {
    const std::size_t src = source_index(o.market, s.trigger_source);
    if (s.type == OrderType::trailing_stop) return arm_trailing(slot, src, ts);
    o.trig_source = static_cast<std::int8_t>(src);
    o.trig_up = buy;
    if (buy) {
      file(c.trig_up[src], *s.trigger_price, s.id, slot, OrderIds{orders_});
    } else {
      file(c.trig_down[src], *s.trigger_price, s.id, slot, OrderIds{orders_});
    }
    return;
  }
  // A market order, a limit, or a conditional order already triggered: decide now.
  const bool resting_limit = o.status == OrderStatus::open &&
                             (s.type == OrderType::limit || s.type == OrderType::stop_limit) &&
                             tradeable(o.market, buy).has_value();
  if (resting_limit) {  // loaded resting: it rests again, a maker from the next tick on
    o.resting = true;
    if (buy) {
      file(c.lim_buy, *s.price, s.id, slot, OrderIds{orders_});
    } else {
      file(c.lim_sell, *s.price, s.id, slot, OrderIds{orders_});
    }
    return;
  }
  execute(slot, ts, out);
}

void Matcher::unfile_trigger(std::uint32_t slot) {
  OrderState& o = orders_[slot];
  MarketCold& c = cold_[o.market];
  if (o.trig_source >= 0) {
    const auto src = static_cast<std::size_t>(o.trig_source);
    const std::int64_t key =
        o.type == OrderType::trailing_stop ? order_extra_[o.extra].wait_key : o.trigger_price;
    if (o.trig_up) {
      c.trig_up[src].erase(key, o.id, slot, OrderIds{orders_});
    } else {
      c.trig_down[src].erase(key, o.id, slot, OrderIds{orders_});
    }
    o.trig_source = -1;
  }
  if (o.in_trail) {
    OrderExtra& x = order_extra_[o.extra];
    c.trail[trail_index(x.trail_src, buys(o.side))]->erase(x.trail_member);
    x.trail_member = TrailBook::kNone;
    o.in_trail = false;
  }
}

void Matcher::disarm_order(std::uint32_t slot) {
  OrderState& o = orders_[slot];
  if (o.market == kNone) return;
  MarketCold& c = cold_[o.market];
  unfile_trigger(slot);
  if (o.resting) {
    if (buys(o.side)) {
      c.lim_buy.erase(o.price, o.id, slot, OrderIds{orders_});
    } else {
      c.lim_sell.erase(o.price, o.id, slot, OrderIds{orders_});
    }
    o.resting = false;
  }
  if (o.waiting) {
    std::erase(c.waiting, slot);
    o.waiting = false;
  }
  if (o.in_expiry) {
    c.expiry.erase({*order_extra_[o.extra].expires_at, o.id, slot, true});
    o.in_expiry = false;
  }
  if (o.in_reduce) {
    auto it = reduce_orders_.find(SideKey{o.user, o.market, position_side(o.side)});
    if (it != reduce_orders_.end()) {
      std::erase(it->second, slot);
      if (it->second.empty()) reduce_orders_.erase(it);
    }
    o.in_reduce = false;
  }
}

// ---- outcomes ----------------------------------------------------------------------------------

void Matcher::end_order(std::uint32_t slot, OrderStatus status, EventType type, RejectReason why,
                        TimeNs ts, std::vector<Event>& out) {
  OrderState& o = orders_[slot];
  disarm_order(slot);
  o.status = status;
  if (why != RejectReason::none) order_extra_of(slot).reason = why;
  const Uuid market_id = o.market != kNone ? cold_[o.market].spec.id
                                           : order_extra_[o.extra].market_id.value_or(Uuid{});
  Event e = make_event(type, ts, o.id, ids_[o.user], market_id);
  e.reason = why;
  out.push_back(e);
}

void Matcher::cancel_order(std::uint32_t slot, RejectReason why, TimeNs ts,
                           std::vector<Event>& out) {
  end_order(slot, OrderStatus::cancelled, EventType::order_cancelled, why, ts, out);
  ++stats_.orders_cancelled;
}

void Matcher::reject_order(std::uint32_t slot, RejectReason why, TimeNs ts,
                           std::vector<Event>& out) {
  end_order(slot, OrderStatus::failed, EventType::order_rejected, why, ts, out);
  ++stats_.orders_rejected;
}

void Matcher::expire_order(std::uint32_t slot, TimeNs ts, std::vector<Event>& out) {
  end_order(slot, OrderStatus::expired, EventType::order_expired, RejectReason::none, ts, out);
  ++stats_.orders_expired;
}

void Matcher::execute(std::uint32_t slot, TimeNs ts, std::vector<Event>& out) {
  OrderState& o = orders_[slot];
  const bool buy = buys(o.side);
  const auto px = tradeable(o.market, buy);
  MarketCold& c = cold_[o.market];
  if (!px) {  // no tradeable price yet: decide at the first BBO or trade tick
    o.waiting = true;
    c.waiting.push_back(slot);
    return;
  }
  if (o.type == OrderType::market || o.type == OrderType::stop ||
      o.type == OrderType::trailing_stop)
    return fill(slot, *px, true, ts, out);
  const std::int64_t lim = o.price;
  if (buy ? *px <= lim : *px >= lim) return fill(slot, *px, true, ts, out);  // crosses: taker
  // A pending limit starts resting: pending -> open, persisted as `rested`. A triggered stop_limit
  // is open already (its trigger was the transition).
  if (cfg_.report_rested && o.status == OrderStatus::pending) rested_.push_back(o.id);
  o.status = OrderStatus::open;  // rests; a maker from the next tick on
  o.resting = true;
  if (buy) {
    file(c.lim_buy, lim, o.id, slot, OrderIds{orders_});
  } else {
    file(c.lim_sell, lim, o.id, slot, OrderIds{orders_});
  }
}

void Matcher::fill(std::uint32_t slot, std::int64_t px, bool taker, TimeNs ts,
                   std::vector<Event>& out) {
  OrderState& o = orders_[slot];  // a fill never changes the row, nor moves orders_
  const Uuid user_id = ids_[o.user];
  const Uuid wallet_id = ids_[o.wallet];
  const std::uint32_t mi = o.market;
  const MarketCold& c = cold_[mi];
  const TradingRules& rules = c.spec.rules;
  const Side side = position_side(o.side);
  const SideKey key{o.user, mi, side};
  const std::int64_t rate = taker ? rules.taker_fee : rules.maker_fee;
  if (taker) {
    const auto us = user_settings_.find(user_id);
    const std::uint32_t bps = us != user_settings_.end() && us->second.slippage_bps
                                  ? *us->second.slippage_bps
                                  : cfg_.slippage_bps;
    px = FillMath::slipped(px, buys(o.side), bps);
  }
  // At a million positions each of these lookups is a cache miss: start them all at once.
  open_positions_.prefetch(key);
  if (!reduces(o.side)) {
    position_index_.prefetch(position_id_for(o.id));
    if (!groups_.empty()) group_index_.prefetch(GroupKey{o.user, mi});
    if (side == Side::long_side) {
      c.liq_down.prefetch();
    } else {
      c.liq_up.prefetch();
    }
  }
  disarm_order(slot);
  const std::optional<std::uint32_t> open = open_slot(key);
  // Looked up once the fill will happen: a cancelled reduce leaves no balance row behind.
  auto wallet = [&]() -> BalanceView& {
    BalanceView& b = balances_[BalanceKey{wallet_id, rules.quote}];
    b.wallet_id = wallet_id;
    b.token = rules.quote;
    return b;
  };

  EventType pe_type = EventType::position_increased;  // the position event, after order.filled
  std::uint32_t ps_slot = kNone;
  Wide fee = 0, realized = 0, locked_delta = 0;
  bool opened_position = false;
  std::int64_t q = o.size;
  bool closed = false;
  if (reduces(o.side)) {
    if (!open) return cancel_order(slot, RejectReason::no_position, ts, out);
    ps_slot = *open;
    PositionState& ps = positions_[ps_slot];
    q = std::min(q, ps.size);
    fee = FillMath::fee(q, px, rate);
    realized = FillMath::pnl(side, ps.entry_price, px, q) - fee;
    const Wide released = FillMath::released(ps.margin, q, ps.size);
    detach_position(ps_slot);
    ps.size -= q;
    ps.margin -= static_cast<std::int64_t>(released);
    set_realized(ps_slot, realized_of(ps_slot) + realized);
    BalanceView& bal = wallet();
    bal.balance += realized;
    bal.locked -= released;
    locked_delta = -released;
    closed = ps.size == 0;
    if (closed) {
      PositionExtra& x = position_extra_of(ps_slot);
      x.closed_at = ts;
      x.close_price = px;
      ps.status = PositionStatus::closed;
      ps.margin = 0;
      unlist_open(key, ps_slot);
    } else {
      attach_position(ps_slot);
    }
    pe_type = closed ? EventType::position_closed : EventType::position_reduced;
  } else {
    fee = FillMath::fee(q, px, rate);
    const Wide add = FillMath::margin(q, px, o.leverage);
    BalanceView& bal = wallet();
    if (bal.balance - bal.locked < add + fee)
      return reject_order(slot, RejectReason::insufficient_margin, ts, out);
    PositionSpec next;
    const bool opened = !open;
    if (opened) {
      next.id = position_id_for(o.id);
      next.user_id = user_id;
      next.wallet_id = wallet_id;
      next.market_id = c.spec.id;
      next.side = side;
      next.size = q;
      next.entry_price = px;
      next.leverage = o.leverage;
      next.margin = 0;
    } else {
      const PositionState& held = positions_[*open];
      next.size = held.size;
      next.margin = held.margin;
      next.entry_price = FillMath::average(held.entry_price, held.size, px, q);
      next.size += q;
    }
    const Wide margin = static_cast<Wide>(next.margin) + add;
    if (!FillMath::position_fits(next.size, next.entry_price, margin)) {
      return reject_order(slot, RejectReason::out_of_range, ts, out);
    }
    next.margin = static_cast<std::int64_t>(margin);
    realized = -fee;
    if (opened) {
      next.realized_pnl = realized;
      std::vector<Event> none;
      upsert_position(next, none);  // armed for liquidation and position_pnl like loaded ones
      ps_slot = position_slot(next.id);
    } else {
      ps_slot = *open;
      PositionState& ps = positions_[ps_slot];
      detach_position(ps_slot);
      ps.size = next.size;
      ps.entry_price = next.entry_price;
      ps.margin = next.margin;
      set_realized(ps_slot, realized_of(ps_slot) + realized);
      attach_position(ps_slot);
    }
    bal.locked += add;
    bal.balance -= fee;
    locked_delta = add;
    opened_position = opened;
    pe_type = opened ? EventType::position_opened : EventType::position_increased;
  }
  o.status = OrderStatus::filled;
  OrderExtra& x = order_extra_of(slot);
  x.filled_size = q;
  x.fill_price = px;
  x.fees = fee;
  x.realized = realized;
  x.position_id = positions_[ps_slot].id;
  x.entry_after = positions_[ps_slot].entry_price;
  x.filled_at = ts;
  x.taker = taker;
  x.locked_delta = locked_delta;
  x.opened_position = opened_position;
  Event fe = make_event(EventType::order_filled, ts, o.id, user_id, c.spec.id, px);
  fe.ref = positions_[ps_slot].id;
  fe.size = q;
  fe.amount = fee;
  fe.taker = taker;
  out.push_back(fe);
  const PositionState& ps = positions_[ps_slot];
  Event pe = make_event(pe_type, ts, ps.id, user_id, c.spec.id, px);
  pe.ref = o.id;
  pe.size = ps.size;
  pe.amount = realized;
  out.push_back(pe);
  ++stats_.orders_filled;
  if (closed) cancel_reduce_orders(key, ts, out);
  if (opened_position) {
    const auto us = user_settings_.find(user_id);
    if (us != user_settings_.end() && us->second.stop_loss_fraction) {
      if (auto p = protective_stop(spec_of(slot), q, ps.entry_price, us->second, rules))
        protect_.push_back({*p, o.id, ps.id, ts});
    }
  }
}

void Matcher::cancel_reduce_orders(const SideKey& k, TimeNs ts, std::vector<Event>& out) {
  auto it = reduce_orders_.find(k);
  if (it == reduce_orders_.end()) return;
  std::vector<std::uint32_t> slots = it->second;
  std::sort(slots.begin(), slots.end(),
            [this](std::uint32_t a, std::uint32_t b) { return orders_[a].id < orders_[b].id; });
  for (std::uint32_t slot : slots) {
    if (watching(orders_[slot].status) && orders_[slot].execution == Execution::paper)
      cancel_order(slot, RejectReason::position_closed, ts, out);
  }
}

void Matcher::on_position_gone(std::uint32_t slot, TimeNs ts, std::vector<Event>& out) {
  // A liquidation: margin released and lost from the position's wallet; its reduce orders end.
  const PositionState& ps = positions_[slot];
  const SideKey k{ps.user, ps.market, ps.side()};
  unlist_open(k, slot);
  const Uuid& wallet_id = ids_[ps.wallet];
  if (!wallet_id.is_nil()) {
    BalanceView& bal = balances_[BalanceKey{wallet_id, cold_[ps.market].spec.rules.quote}];
    bal.wallet_id = wallet_id;
    bal.token = cold_[ps.market].spec.rules.quote;
    bal.locked -= ps.margin;
    bal.balance -= ps.margin;
  }
  cancel_reduce_orders(k, ts, out);
}

std::optional<std::uint32_t> Matcher::open_slot(const SideKey& k) const {
  const std::uint32_t slot = open_positions_.find(k, OpenKeys{positions_});
  if (slot == kNone) return std::nullopt;
  return slot;
}

void Matcher::list_open(const SideKey& k, std::uint32_t slot) {
  positions_[slot].listed = true;
  const std::uint32_t held = open_positions_.find(k, OpenKeys{positions_});
  if (held == kNone) {
    open_positions_.insert(k, slot);
    return;
  }
  // Several open positions of one side (rows from before 0005): the new one is acted on, and the
  // one before it waits.
  open_positions_.erase(k, OpenKeys{positions_});
  open_positions_.insert(k, slot);
  open_stacks_[k].push_back(held);
}

void Matcher::unlist_open(const SideKey& k, std::uint32_t slot) {
  if (!positions_[slot].listed) return;
  positions_[slot].listed = false;
  const auto stack = open_stacks_.find(k);
  if (open_positions_.find(k, OpenKeys{positions_}) != slot) {  // one listed before
    if (stack != open_stacks_.end()) {
      std::erase(stack->second, slot);
      if (stack->second.empty()) open_stacks_.erase(stack);
    }
    return;
  }
  open_positions_.erase(k, OpenKeys{positions_});
  if (stack == open_stacks_.end()) return;
  open_positions_.insert(k, stack->second.back());  // the one listed last among the rest
  stack->second.pop_back();
  if (stack->second.empty()) open_stacks_.erase(stack);
}

void Matcher::on_clock(TimeNs now, std::vector<Event>& out) {
  for (std::uint32_t mi = 0; mi < hot_.size(); ++mi) {
    if (hot_[mi].expiry_min > now) continue;
    Tick t;
    t.exch_ts = now;
    expire(mi, t, out);
    refresh(mi);
  }
}

// ---- views -----------------------------------------------------------------------------------

OrderView Matcher::view_order(std::uint32_t slot) const {
  const OrderState& o = orders_[slot];
  OrderView v;
  v.id = o.id;
  v.side = o.side;
  v.status = o.status;
  if (const OrderExtra* x = order_extra_if(slot)) {
    v.reason = x->reason;
    v.triggered_at = x->triggered_at;
    v.filled_at = x->filled_at;
    v.filled_size = x->filled_size;
    v.avg_fill_price = x->fill_price;
    v.total_fees = x->fees;
    v.position_id = x->position_id;
    v.liquidity_taker = x->taker;
    v.realized_pnl = x->realized;
    v.locked_delta = x->locked_delta;
    v.entry_after = x->entry_after;
    v.opened_position = x->opened_position;
    v.opened_by = x->opened_by;
    v.activated_at = x->activated_at;
    if (o.in_trail) {
      const MarketCold& c = cold_[o.market];
      v.trail_group = x->trail_group;
      v.trail_extreme =
          c.trail[trail_index(x->trail_src, buys(o.side))]->extreme_of(x->trail_member);
    }
  }
  return v;
}

std::optional<OrderView> Matcher::order(const Uuid& id) const {
  const std::uint32_t slot = order_slot(id);
  if (slot == kNone) return std::nullopt;
  return view_order(slot);
}

std::optional<OrderSpec> Matcher::order_spec(const Uuid& id) const {
  const std::uint32_t slot = order_slot(id);
  if (slot == kNone) return std::nullopt;
  return spec_of(slot);
}

BalanceView Matcher::balance(const Uuid& wallet, const Asset& token) const {
  auto it = balances_.find(BalanceKey{wallet, token});
  if (it != balances_.end()) return it->second;
  BalanceView v;
  v.wallet_id = wallet;
  v.token = token;
  return v;
}

void Matcher::for_each_order(const std::function<void(const OrderView&)>& f) const {
  for (std::uint32_t i = 0; i < orders_.size(); ++i) {
    if (orders_[i].live) f(view_order(i));
  }
}

void Matcher::for_each_balance(const std::function<void(const BalanceView&)>& f) const {
  for (const auto& [k, v] : balances_) f(v);
}

}  // namespace lam
