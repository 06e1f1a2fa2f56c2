#include "daemon/engine_loop.h"

#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <optional>

#include "engine/tsan_sync.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using K = db::EngineCommand::Kind;

constexpr std::size_t kTickBatch = 512;
constexpr std::size_t kCommandBatch = 256;
constexpr int kSpinTurns = 256;  ///< empty turns before the sleep policy waits on the tick queue
/// Longest wait on the tick queue: commands, the writer's free space and the timers are polled at
/// least this often when nothing else wakes the matcher.
constexpr std::int64_t kMaxWaitNs = 1'000'000;

std::optional<db::WriteOp> transition_op(const Event& e, const Matcher& m) {
  db::WriteOp op;
  op.id = e.subject;
  op.ts = e.ts;
  switch (e.type) {
    case EventType::alert_triggered: {
      op.kind = db::WriteKind::alert_triggered;
      const auto a = m.alert(e.subject);
      op.price = a && a->anchor_price ? *a->anchor_price : 0;
      return op;
    }
    case EventType::alert_expired:
      op.kind = db::WriteKind::alert_expired;
      return op;
    case EventType::alert_anchored:
      op.kind = db::WriteKind::alert_anchored;
      op.price = e.price;
      return op;
    case EventType::position_liquidated: {
      op.kind = db::WriteKind::position_liquidated;
      const auto p = m.position(e.subject);
      if (!p) return std::nullopt;
      op.price = p->current_price.value_or(e.price);
      op.amount = p->realized_pnl;
      op.ts = p->closed_at.value_or(e.ts);
      return op;
    }
    case EventType::order_triggered:
      op.kind = db::WriteKind::order_triggered;
      return op;
    case EventType::order_cancelled:
    case EventType::order_expired:
    case EventType::order_rejected:
      op.kind = db::WriteKind::order_ended;
      op.code =
          static_cast<std::uint8_t>(e.type == EventType::order_cancelled ? OrderStatus::cancelled
                                    : e.type == EventType::order_expired ? OrderStatus::expired
                                                                         : OrderStatus::failed);
      op.reason = static_cast<std::uint8_t>(e.reason);
      return op;
    case EventType::order_filled: {
      // The order's fill as the matcher recorded it (an order fills once, whole): what it did to
      // its position and wallet, as deltas, and the position's entry right after it.
      const auto v = m.order(e.subject);
      if (!v || !v->position_id || !v->avg_fill_price) return std::nullopt;
      op.kind = db::WriteKind::order_filled;
      op.ref = *v->position_id;
      op.price = *v->avg_fill_price;
      op.size = v->filled_size;
      op.amount = v->total_fees;
      op.realized = v->realized_pnl;
      op.locked = v->locked_delta;
      op.entry = v->entry_after;
      op.ts = v->filled_at.value_or(e.ts);
      op.flags = static_cast<std::uint8_t>((v->liquidity_taker ? db::WriteOp::kTaker : 0) |
                                           (v->opened_position ? db::WriteOp::kOpened : 0) |
                                           (reduces(v->side) ? db::WriteOp::kReduce : 0));
      return op;
    }
    case EventType::order_placed: {
      const auto v = m.order(e.subject);
      if (!v || !v->opened_by) return std::nullopt;  // not ours to insert
      op.kind = db::WriteKind::order_placed;
      op.ref = *v->opened_by;
      op.price = e.price;
      op.size = e.size;
      return op;
    }
    case EventType::alert_rejected:
    case EventType::position_rejected:
    case EventType::market_unserved:
    case EventType::order_revival_refused:  // the row stays as the bot wrote it
    case EventType::order_fill_voided:      // the bot's row is the truth; nothing to write
    case EventType::transition_voided:
    case EventType::settings_rejected:  // the user_settings row stays as the bot wrote it
    // A fill's position event: its position, trade and balance rows are written with the fill.
    case EventType::position_opened:
    case EventType::position_increased:
    case EventType::position_reduced:
    case EventType::position_closed:
      return std::nullopt;  // journaled and streamed; the row itself is left as the bot wrote it
  }
  return std::nullopt;
}

}  // namespace

EngineLoop::EngineLoop(const EngineConfig& cfg, EngineLoopDeps deps)
    : cfg_(cfg), d_(deps), coverage_(std::move(deps.coverage)), marks_(cfg.marks) {
  d_.coverage = {};  // owned by coverage_ from here
  stats_.unserved_markets.store(static_cast<std::uint32_t>(coverage_.unserved()));
  stats_.disabled_markets.store(static_cast<std::uint32_t>(coverage_.disabled()));
  buf_.resize(kTickBatch);
  cmd_buf_.resize(kCommandBatch);
  events_.reserve(1024);
  grow_live(static_cast<InstrumentId>(d_.instruments->size()) - 1);
  stats_.next_seq.store(d_.matcher->next_seq());
}

EngineLoop::~EngineLoop() {
  stop();
}

void EngineLoop::grow_live(InstrumentId id) {
  if (id == kNoInstrument || id < live_.size()) return;
  held_count_ += static_cast<std::int64_t>(id + 1 - live_.size());  // held until its feed is live
  live_.resize(id + 1, 0);
  stats_.held_instruments.store(static_cast<std::uint32_t>(held_count_), std::memory_order_relaxed);
}

void EngineLoop::publish_initial(std::vector<Event> events) {
  events_ = std::move(events);
  if (!events_.empty()) publish(0);
}

void EngineLoop::start() {
  thread_ = std::thread([this] { run(); });
}

void EngineLoop::stop(std::chrono::milliseconds deadline) {
  if (!thread_.joinable()) return;
  stop_deadline_ = Clock::now() + deadline;
  stopping_.store(true, std::memory_order_release);
  thread_.join();
}

void EngineLoop::run() {
  auto log = spdlog::default_logger()->clone("engine");
  pthread_setname_np(pthread_self(), "lam-engine");
  ::prctl(PR_SET_TIMERSLACK, 1UL);  // the wait's timeout without the default 50 us slack
  if (cfg_.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cfg_.pin_cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
      log->warn("cannot pin the matcher thread to cpu {}", cfg_.pin_cpu);
  }
  int empty = 0;
  for (;;) {
    const bool stopping = stopping_.load(std::memory_order_acquire);
    const bool worked = turn();
    if (stopping && !worked && (parked_.empty() || Clock::now() >= stop_deadline_)) {
      if (!parked_.empty())
        log->error("stopping with {} writer ops not queued (writer full)", parked_.size());
      break;
    }
    if (worked) {
      empty = 0;
    } else if (++empty > kSpinTurns && cfg_.idle == IdlePolicy::sleep) {
      // Until a feed pushes (its push wakes us) or the timers are due.
      d_.ticks->wait(kMaxWaitNs);
      empty = 0;
    }
  }
  d_.bus->ring_doorbell();
  log->info("matcher thread done: {} ticks, {} held, {} events", stats_.ticks.load(),
            stats_.held_ticks.load(), stats_.events.load());
}

bool EngineLoop::turn() {
  bool worked = false;
  const std::size_t n = d_.ticks->pop_bulk(buf_.data(), buf_.size());
  if (n > 0) dequeued_ts_ = wall_ns();  // one clock read per batch: the stall table's stamp
  for (std::size_t i = 0; i < n; ++i) on_feed_event(buf_[i]);
  worked |= n > 0;
  if (d_.commands != nullptr) {
    tsan_acquire(d_.commands);
    const std::size_t m = d_.commands->try_dequeue_bulk(cmd_buf_.begin(), cmd_buf_.size());
    tsan_release(d_.commands);
    for (std::size_t i = 0; i < m; ++i) on_command(cmd_buf_[i]);
    worked |= m > 0;
  }
  if (d_.matcher->has_rested()) persist_rested();
  if (d_.matcher->has_trails()) persist_trails();
  const auto now = Clock::now();  // one clock read per turn serves the housekeeping below
  if (now - last_clock_ >= kClockEvery) {
    // The clock: orders and alerts expire on markets that have no tick (an input to the matcher,
    // which reads no clock itself).
    last_clock_ = now;
    const auto wall = std::chrono::system_clock::now().time_since_epoch();
    d_.matcher->on_clock(std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count(),
                         events_);
    if (!events_.empty()) publish(0);
  }
  if (published_) {  // the clock's, the writer's and the resync's events (a tick's rang already)
    published_ = false;
    d_.bus->ring_doorbell();
  }
  if (d_.writer != nullptr) {
    if (!parked_.empty()) flush_parked();
    // Published transitions the database did not take (the bot changed the row first): each
    // gets its compensating event, so the stream never stands against the books.
    voided_.clear();
    d_.writer->take_voided(voided_);
    for (const auto& [type, id] : voided_) d_.matcher->report_voided(type, id, events_);
    if (!events_.empty()) publish(0);
    confirm(now);
    worked |= publish_marks(now);  // a refresh pass in progress keeps the matcher awake
  }
  return worked;
}

void EngineLoop::on_feed_event(const feeds::FeedEvent& fe) {
  const InstrumentId id = fe.tick.instrument;
  switch (fe.kind) {
    case feeds::FeedEventKind::tick: {
      if (held(id, fe.tick.kind)) {
        stats_.held_ticks.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      d_.matcher->on_tick(fe.tick, events_);
      stats_.ticks.fetch_add(1, std::memory_order_relaxed);
      if (!events_.empty()) {
        publish(fe.tick.recv_ts);
        // Wake the server now, not after the rest of the batch (up to 512 ticks, then the bot's
        // commands): the stall table put up to a millisecond here. The ring is one load while the
        // server is awake; ticks without events never ring.
        published_ = false;
        d_.bus->ring_doorbell();
      }
      return;
    }
    case feeds::FeedEventKind::state: {
      if (id == kNoInstrument) return;
      grow_live(id);
      const std::uint8_t before = live_[id];
      if (fe.state == feeds::FeedState::live) {
        live_[id] |= fe.tick.flags;
      } else {
        live_[id] &= static_cast<std::uint8_t>(~fe.tick.flags);
        // No fill at a quote from before the outage: orders wait for a fresh tradeable price.
        const std::uint8_t lost = before & static_cast<std::uint8_t>(~live_[id]);
        d_.matcher->lapse_quotes(id, (lost & feeds::kind_bit(TickKind::trade)) != 0,
                                 (lost & feeds::kind_bit(TickKind::bbo)) != 0);
      }
      if ((before == 0) != (live_[id] == 0)) {
        held_count_ += live_[id] == 0 ? 1 : -1;
        stats_.held_instruments.store(static_cast<std::uint32_t>(held_count_),
                                      std::memory_order_relaxed);
      }
      return;
    }
    case feeds::FeedEventKind::gap:  // the feeds count gaps per venue; nothing to hold here
      return;
  }
}

void EngineLoop::on_command(const db::EngineCommand& c) {
  // Long: one case per change-capture command kind; each case is a few lines of its own rule (shard
  // ownership, stale reads, the resync book).
  stats_.commands.fetch_add(1, std::memory_order_relaxed);
  Matcher& m = *d_.matcher;
  switch (c.kind) {
    case K::resync_begin:
      resync_.begin(c.noticed);
      return;
    case K::resync_end: {
      // Whatever the snapshot lacked was deleted (or closed) while we were not listening. The
      // engine never writes user_settings: a row the resync did not deliver is gone.
      for (const Uuid& id : resync_.gone_settings(
               [&](auto&& visit) { m.for_each_setting_row([&](const Uuid& s) { visit(s); }); }))
        m.remove_setting(id);
      const auto [gone_alerts, gone_positions] = resync_.end(
          [&](auto&& visit) {
            m.for_each_alert([&](const AlertView& a) {
              if (a.status == AlertStatus::active) visit(a.id);
            });
          },
          [&](auto&& visit) {
            m.for_each_position([&](const PositionView& p) {
              if (p.status == PositionStatus::open) visit(p.id);
            });
          });
      for (const Uuid& id : gone_alerts) m.cancel_alert(id);
      for (const Uuid& id : gone_positions) {
        // A position a fill of ours moved (or opened) whose write was not journaled when the
        // snapshot began may be missing from it without being gone: a fill between the listener's
        // resync_begin and our processing of it, or one not yet flushed, opened it (issue 28: the
        // start-up resync dropped such a position; it was never liquidated and a later fill opened
        // a duplicate the database refused).
        if (transitions_.stale_read(id, resync_.began())) {
          stats_.resync_kept.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        m.remove_position(id);
      }
      return;
    }
    case K::upsert_market: {
      MarketSpec spec = c.market.spec;
      const PriceFeed feed = price_feed(c.market);
      if (d_.shard != nullptr) {
        const bool ours = d_.shard->market(spec.id, feed.venue);
        if (d_.foreign != nullptr) d_.foreign->set(spec.id, !ours);
        if (!ours) {
          stats_.foreign_commands.fetch_add(1, std::memory_order_relaxed);
          return;
        }
      }
      spec.instrument = d_.instruments->intern(feed.venue, feed.symbol);
      grow_live(spec.instrument);
      m.upsert_market(spec);
      // A renamed symbol (or a market added after start-up) may name a pair no feed subscribes
      // to: its alerts and liquidations would stop without a word. Say so, once.
      switch (coverage_.update(spec.id, spec.instrument, feed.venue)) {
        case MarketCoverage::Change::became_unserved:
          spdlog::warn(
              "market {} ({}/{}) is not served by any feed: its alerts and liquidations "
              "are not evaluated until a restart subscribes it",
              spec.id.str(), feed.venue, feed.symbol);
          m.report_unserved_market(spec.id, events_);
          publish(0);
          break;
        case MarketCoverage::Change::became_served:
          spdlog::info("market {} ({}/{}) is served again", spec.id.str(), c.market.dex_name,
                       c.market.symbol);
          break;
        case MarketCoverage::Change::none:
          break;
      }
      stats_.unserved_markets.store(static_cast<std::uint32_t>(coverage_.unserved()),
                                    std::memory_order_relaxed);
      stats_.disabled_markets.store(static_cast<std::uint32_t>(coverage_.disabled()),
                                    std::memory_order_relaxed);
      return;
    }
    case K::upsert_position:
      if (d_.shard != nullptr && !d_.shard->owns(c.position.market_id)) {
        stats_.foreign_commands.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      resync_.saw_position(c.position.id);
      if (c.position.status == PositionStatus::open && !c.reconcile &&
          transitions_.stale_read(c.position.id, c.noticed)) {
        stats_.commands_skipped.fetch_add(1, std::memory_order_relaxed);  // predates our write
        return;
      }
      m.upsert_position(c.position, events_);
      if (!events_.empty()) publish(0);
      return;
    case K::remove_position:
      m.remove_position(c.id);
      return;
    case K::upsert_alert: {
      if (d_.shard != nullptr && !d_.shard->owns_alert(c.alert.market_id)) {
        stats_.foreign_commands.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      resync_.saw_alert(c.alert.id);
      const bool stale =
          c.alert.status == AlertStatus::active && transitions_.stale_read(c.alert.id, c.noticed);
      if (stale || m.alert_unchanged(c.alert)) {
        stats_.commands_skipped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      m.upsert_alert(c.alert, events_);
      if (!events_.empty()) publish(0);
      return;
    }
    case K::remove_alert:
      m.cancel_alert(c.id);
      m.forget_alert(c.id);
      return;
    case K::upsert_order:
      if (d_.shard != nullptr && !d_.shard->owns(c.order.market_id)) {
        stats_.foreign_commands.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // A read of a pending / open row noticed before our transition of it was journaled shows
      // the row as it was before our write: it must not re-arm (or re-fill) the order.
      // (A read the writer asked for, after its statement committed, is never stale.)
      if ((c.order.status == OrderStatus::pending || c.order.status == OrderStatus::open) &&
          !c.reconcile && transitions_.stale_read(c.order.id, c.noticed)) {
        stats_.commands_skipped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      if (c.reconcile) {
        m.reconcile_order(c.order, events_);
      } else {
        m.upsert_order(c.order, events_);
      }
      if (!events_.empty()) publish(0);
      return;
    case K::remove_order:
      m.remove_order(c.id);
      return;
    case K::upsert_balance:
      m.upsert_balance(c.balance);
      return;
    case K::remove_balance:
      m.remove_balance(c.id);
      return;
    case K::upsert_setting:  // every shard follows every user's settings
      resync_.saw_setting(c.setting.id);
      m.upsert_setting(c.setting, events_);
      if (!events_.empty()) publish(0);
      return;
    case K::remove_setting:
      m.remove_setting(c.id);
      return;
  }
}

void EngineLoop::publish(TimeNs recv_ts) {
  const Matcher& m = *d_.matcher;
  // The stage stamps of a tick's events (none for the clock's and the writer's).
  const TimeNs made_ts = recv_ts > 0 ? wall_ns() : 0;
  const TimeNs dequeued_ts = recv_ts > 0 ? dequeued_ts_ : 0;
  for (const Event& e : events_) {
    // A position a fill opens during a full resync is not in its snapshot: it is not gone.
    if (e.type == EventType::position_opened) resync_.opened_position(e.subject);
    RingRecord rec;
    rec.event = e;
    if (const auto op = transition_op(e, m)) {
      rec.op = *op;
      rec.has_op = true;
    }
    if (d_.ring != nullptr) d_.ring->append(rec);
    if (d_.writer != nullptr) {
      if (rec.has_op) {
        submit(Parked{rec.op, Event{}, false});
        if (e.type != EventType::alert_anchored) transitions_.published(e.subject, e.seq);
        // A fill moves its position too: a read of that row noticed before the fill is journaled
        // (the start-up resync, say) shows it as it was and must not roll the engine's copy back.
        if (rec.op.kind == db::WriteKind::order_filled) transitions_.published(rec.op.ref, e.seq);
      }
      submit(Parked{db::WriteOp{}, e, true});
    }
    d_.bus->try_publish(Published{e, recv_ts, dequeued_ts, made_ts});
    published_ = true;
    stats_.alerts_fired.fetch_add(e.type == EventType::alert_triggered, std::memory_order_relaxed);
    stats_.revivals_refused.fetch_add(e.type == EventType::order_revival_refused,
                                      std::memory_order_relaxed);
    stats_.fills_voided.fetch_add(e.type == EventType::order_fill_voided,
                                  std::memory_order_relaxed);
    stats_.transitions_voided.fetch_add(e.type == EventType::transition_voided,
                                        std::memory_order_relaxed);
    stats_.foreign_wallets.fetch_add(e.reason == RejectReason::foreign_wallet,
                                     std::memory_order_relaxed);
    stats_.liquidations.fetch_add(e.type == EventType::position_liquidated,
                                  std::memory_order_relaxed);
  }
  stats_.events.fetch_add(events_.size(), std::memory_order_relaxed);
  stats_.next_seq.store(m.next_seq(), std::memory_order_relaxed);
  events_.clear();
}

void EngineLoop::persist_rested() {
  // Limit orders that started resting: pending -> open, a transition without an event.
  rested_.clear();
  d_.matcher->drain_rested(rested_);
  if (d_.writer == nullptr) return;
  for (const Uuid& id : rested_) {
    db::WriteOp op;
    op.kind = db::WriteKind::order_rested;
    op.id = id;
    submit(Parked{op, Event{}, false});
  }
}

void EngineLoop::persist_trails() {
  // Trailing stops activated and their groups' moves: no events, kept for restarts
  // (docs/design/trailing-stops.md); a group's best price per flush, not per tick.
  trail_activations_.clear();
  trail_groups_.clear();
  d_.matcher->drain_trails(trail_activations_, trail_groups_);
  if (d_.writer == nullptr) return;
  for (const TrailActivation& a : trail_activations_) {
    db::WriteOp op;
    op.kind = db::WriteKind::order_activated;
    op.id = a.order;
    op.ts = a.at;
    op.ref = a.group;
    submit(Parked{op, Event{}, false});
  }
  for (const TrailGroupChange& g : trail_groups_) {
    db::WriteOp op;
    op.kind = db::WriteKind::trail_group;
    op.id = g.group;
    op.price = g.extreme;
    op.ref = g.merged_into;
    submit(Parked{op, Event{}, false});
  }
}

void EngineLoop::submit(const Parked& p) {
  // Order matters (a journaled event's op must never trail it): once anything is parked,
  // everything after it parks too.
  if (parked_.empty()) {
    const bool ok = p.is_event ? d_.writer->try_journal(p.event) : d_.writer->try_submit(p.op);
    if (ok) return;
  }
  parked_.push_back(p);
  stats_.writer_parked.store(parked_.size(), std::memory_order_relaxed);
}

void EngineLoop::flush_parked() {
  while (!parked_.empty()) {
    const Parked& p = parked_.front();
    const bool ok = p.is_event ? d_.writer->try_journal(p.event) : d_.writer->try_submit(p.op);
    if (!ok) break;
    parked_.pop_front();
  }
  stats_.writer_parked.store(parked_.size(), std::memory_order_relaxed);
}

void EngineLoop::confirm(Clock::time_point now) {
  const std::uint64_t journaled = d_.writer->stats().journaled_seq.load(std::memory_order_acquire);
  for (const Uuid& id : transitions_.confirm(journaled, now)) {
    // No-op for positions, re-armed alerts and orders still watched.
    if (!d_.matcher->forget_alert(id)) d_.matcher->forget_order(id);
  }
}

bool EngineLoop::publish_marks(Clock::time_point now) {
  // The wall clock only when the markets are taken (every market_mark_interval), not every turn.
  const TimeNs wall = marks_.markets_due(now)
                          ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()
                          : 0;
  // Marks are coalesced state, not transitions: with the writer's queue full (or transitions
  // parked for room) one is skipped, and a newer value follows.
  const bool worked = marks_.step(*d_.matcher, now, wall, [&](const db::WriteOp& op) {
    return parked_.empty() && d_.writer->try_submit(op);
  });
  if (!worked) return false;
  stats_.marks.store(marks_.positions_sent(), std::memory_order_relaxed);
  stats_.market_marks.store(marks_.market_marks_sent(), std::memory_order_relaxed);
  stats_.refresh_passes.store(marks_.passes(), std::memory_order_relaxed);
  stats_.refresh_pass_ms.store(static_cast<std::uint64_t>(marks_.pass_seconds() * 1e3),
                               std::memory_order_relaxed);
  return worked;
}

}  // namespace lam::daemon
