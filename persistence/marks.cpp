#include "persistence/marks.h"

#include <algorithm>

#include "engine/matcher.h"

namespace lam::db {

bool MarkPublisher::step(const Matcher& m, Clock::time_point now, TimeNs wall,
                         const Submit& submit) {
  bool worked = false;
  if (markets_due(now)) {
    markets_at_ = now;
    worked |= step_markets(m, wall, submit);
  }
  worked |= step_refresh(m, now, submit);
  return worked;
}

bool MarkPublisher::step_markets(const Matcher& m, TimeNs wall, const Submit& submit) {
  const std::size_t n = m.market_slots();
  if (sent_.size() < n) {
    sent_.resize(n, false);
    sent_price_.resize(n, 0);
  }
  bool sent = false;
  for (std::size_t i = 0; i < n; ++i) {
    const std::optional<MarketPrice> p = m.market_price(i);
    if (!p || (sent_[i] && sent_price_[i] == p->price)) continue;
    WriteOp op;
    op.kind = WriteKind::market_mark;
    op.id = p->market_id;
    op.price = p->price;
    op.ts = wall;
    if (!submit(op)) break;  // the queue is full: the rest wait for the next interval
    sent_[i] = true;
    sent_price_[i] = p->price;
    ++markets_sent_;
    sent = true;
  }
  return sent;
}

bool MarkPublisher::step_refresh(const Matcher& m, Clock::time_point now, const Submit& submit) {
  if (!in_pass_) {
    if (passes_ != 0 && now - pass_started_ < cfg_.refresh_interval) return false;
    in_pass_ = true;
    pass_started_ = now;
    cursor_ = 0;
    visited_ = 0;
  }
  std::size_t budget = kChunk;
  if (cfg_.refresh_rows_per_s != 0) {
    // Slots this pass may have visited by now: the pace, with one chunk to start on.
    const double elapsed = std::chrono::duration<double>(now - pass_started_).count();
    const auto allowed =
        static_cast<std::size_t>(elapsed * static_cast<double>(cfg_.refresh_rows_per_s)) +
        std::min<std::size_t>(kChunk, cfg_.refresh_rows_per_s);
    if (allowed <= visited_) return false;
    budget = std::min(budget, allowed - visited_);
  }
  const std::size_t end = std::min(cursor_ + budget, m.position_slots());
  const bool visits = end > cursor_;
  m.for_each_position_in(cursor_, end, [&](const PositionView& p) {
    if (p.status != PositionStatus::open || !p.current_price) return;
    WriteOp op;
    op.kind = WriteKind::position_mark;
    op.id = p.id;
    op.price = *p.current_price;
    op.amount = p.unrealized_pnl;
    if (submit(op)) ++positions_sent_;
  });
  visited_ += budget;
  cursor_ = end;
  if (cursor_ >= m.position_slots()) {
    in_pass_ = false;
    ++passes_;
    pass_seconds_ = std::chrono::duration<double>(now - pass_started_).count();
  }
  return visits;
}

}  // namespace lam::db
