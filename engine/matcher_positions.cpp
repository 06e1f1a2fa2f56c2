// Positions in the matcher (docs/semantics.md, "Positions"): slots, groups per user and market,
// the loaded-positions bookkeeping, upserts from the bot and their removal.
#include <algorithm>

#include "engine/matcher.h"
#include "engine/matcher_state.h"

namespace lam {

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

}  // namespace lam
