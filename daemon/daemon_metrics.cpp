// /metrics and /healthz for the daemon: every component's counters, read from atomics (any thread).
#include <algorithm>
#include <cstdio>
#include <string>

#include "daemon/daemon_parts.h"
#include "stream/prometheus.h"

namespace lam::daemon {
namespace {

/// /healthz calls the writer behind when its oldest unwritten change is this old.
constexpr std::uint64_t kWriterBehindMs = 5'000;

using CounterOf = std::uint64_t (*)(const feeds::ConnectionCounters&);

struct FeedMetric {
  const char* name;
  const char* type;
  const char* help;
  CounterOf get;
};

const FeedMetric kFeedMetrics[] = {
    {"laminator_feed_frames_total", "counter", "Frames received",
     [](const feeds::ConnectionCounters& c) { return c.frames.load(); }},
    {"laminator_feed_ticks_total", "counter", "Ticks decoded",
     [](const feeds::ConnectionCounters& c) { return c.ticks.load(); }},
    {"laminator_feed_parse_errors_total", "counter", "Malformed frames and bad values",
     [](const feeds::ConnectionCounters& c) { return c.malformed.load() + c.bad_values.load(); }},
    {"laminator_feed_reconnects_total", "counter", "Connections opened after the first",
     [](const feeds::ConnectionCounters& c) {
       const auto o = c.opens.load();
       return o > 0 ? o - 1 : 0;
     }},
    {"laminator_feed_unexpected_frames_total", "counter",
     "Well-formed frames of a shape the protocol version spoken never sends (an older version's)",
     [](const feeds::ConnectionCounters& c) { return c.unexpected.load(); }},
    {"laminator_feed_unsized_trades_total", "counter",
     "Trades without a size: contracts whose contract size is not configured",
     [](const feeds::ConnectionCounters& c) { return c.unsized.load(); }},
    {"laminator_feed_oracle_stale_updates_total", "counter",
     "Oracle updates published longer ago than max_age_ms: their markets held",
     [](const feeds::ConnectionCounters& c) { return c.oracle_stale.load(); }},
    {"laminator_feed_oracle_uncertain_updates_total", "counter",
     "Oracle updates whose confidence interval is wider than max_conf_bps: their markets held",
     [](const feeds::ConnectionCounters& c) { return c.oracle_uncertain.load(); }},
    {"laminator_feed_rounded_prices_total", "counter",
     "Prices finer than the engine's 1e-9 grid, rounded (Pyth feeds with expo below -9)",
     [](const feeds::ConnectionCounters& c) { return c.rounded.load(); }},
    {"laminator_feed_gaps_total", "counter", "Venue sequence gaps",
     [](const feeds::ConnectionCounters& c) { return c.gaps.load(); }},
    {"laminator_feed_queue_drops_total", "counter", "Ticks dropped: tick queue full",
     [](const feeds::ConnectionCounters& c) { return c.queue_drops.load(); }},
    {"laminator_feed_connected", "gauge", "1 while the socket is open",
     [](const feeds::ConnectionCounters& c) { return std::uint64_t{c.connected.load()}; }},
    {"laminator_feed_live_symbols", "gauge", "Symbols whose feed is live",
     [](const feeds::ConnectionCounters& c) { return std::uint64_t{c.live_symbols.load()}; }},
    {"laminator_feed_stale_symbols", "gauge", "Symbols whose feed is stale",
     [](const feeds::ConnectionCounters& c) { return std::uint64_t{c.stale_symbols.load()}; }},
    {"laminator_feed_oracle_held_symbols", "gauge",
     "Oracle symbols held: their last update was too old or too uncertain",
     [](const feeds::ConnectionCounters& c) { return std::uint64_t{c.oracle_held.load()}; }},
};

}  // namespace

void Daemon::render_metrics(std::string& out) const {
  const Parts& p = *p_;
  PromWriter m(out);
  for (const FeedMetric& f : kFeedMetrics) {
    m.family(f.name, f.type, f.help);
    for (const Connection& c : p.connections) {
      const auto& cfg = p.runner->config(c.runner_index);
      m.sample(f.name, f.get(p.runner->counters(c.runner_index)),
               "venue=\"" + std::string(feeds::venue_name(cfg.venue)) + "\",route=\"" + cfg.route +
                   "\"");
    }
  }
  m.one("laminator_tick_queue_depth", "gauge", "Feed events waiting for the matcher",
        p.ticks->size_approx());
  m.one("laminator_tick_queue_overflows_total", "counter", "Feed events refused: queue full",
        p.ticks->overflows());
  m.one("laminator_event_bus_depth", "gauge", "Events waiting for the stream server",
        p.bus->size_approx());
  m.one("laminator_event_bus_overflows_total", "counter", "Events refused: bus full",
        p.bus->overflows());
  const EngineStats& e = p.engine->stats();
  m.one("laminator_engine_ticks_total", "counter", "Ticks evaluated by the matcher",
        e.ticks.load());
  m.one("laminator_engine_held_ticks_total", "counter",
        "Ticks not evaluated because their feed was not live", e.held_ticks.load());
  m.one("laminator_engine_held_instruments", "gauge", "Instruments whose feed is not live",
        e.held_instruments.load());
  m.one("laminator_engine_events_total", "counter", "Events produced", e.events.load());
  m.one("laminator_markets_unserved", "gauge",
        "Markets no feed serves although their venue is enabled (renamed, added after start-up)",
        e.unserved_markets.load());
  m.one("laminator_markets_disabled", "gauge", "Markets of venues the config disables",
        e.disabled_markets.load());
  m.one("laminator_engine_alerts_fired_total", "counter", "alert.triggered events",
        e.alerts_fired.load());
  m.one("laminator_engine_liquidations_total", "counter", "position.liquidated events",
        e.liquidations.load());
  m.one("laminator_engine_order_revivals_refused_total", "counter",
        "Finished orders the bot set back to pending/open, not re-armed (order.revival_refused)",
        e.revivals_refused.load());
  m.one("laminator_engine_fills_voided_total", "counter",
        "Fills streamed but never stored: the bot finished the order first (order.fill_voided)",
        e.fills_voided.load());
  m.one("laminator_engine_transitions_voided_total", "counter",
        "Transitions streamed but never stored: the bot changed the row first (transition.voided)",
        e.transitions_voided.load());
  m.one("laminator_engine_foreign_wallet_rejections_total", "counter",
        "Orders and positions rejected: their wallet belongs to another user",
        e.foreign_wallets.load());
  m.one("laminator_engine_resync_kept_positions_total", "counter",
        "Positions a resync's snapshot lacked but our own unjournaled fills had moved: kept",
        e.resync_kept.load());
  m.one("laminator_engine_commands_total", "counter", "Change-capture commands received",
        e.commands.load());
  m.one("laminator_engine_commands_skipped_total", "counter",
        "Commands skipped: unchanged rows, or rows read before the engine's own write",
        e.commands_skipped.load());
  m.one("laminator_shard_foreign_commands_total", "counter",
        "Changes to rows of other shards' markets, dropped before the matcher",
        e.foreign_commands.load());
  if (p.publisher) p.publisher->render(out);
  m.one("laminator_engine_marks_total", "counter",
        "Positions' stored marks sent to the writer (background refresh)", e.marks.load());
  m.one("laminator_engine_market_marks_total", "counter", "Market marks sent to the writer",
        e.market_marks.load());
  m.one("laminator_engine_refresh_passes_total", "counter",
        "Complete background refresh passes over the open positions", e.refresh_passes.load());
  m.seconds("laminator_engine_refresh_pass_seconds",
            "How long the last complete refresh pass took (a stored mark is at most about two "
            "passes old)",
            static_cast<double>(e.refresh_pass_ms.load()) / 1e3);
  m.one("laminator_engine_writer_parked", "gauge", "Writer ops waiting for queue room",
        e.writer_parked.load());
  m.one("laminator_engine_next_seq", "gauge", "Next event seq", e.next_seq.load());
  const db::WriterStats& w = p.writer->stats();
  m.one("laminator_writer_batches_total", "counter", "Batches flushed", w.batches.load());
  m.one("laminator_writer_rows_total", "counter", "Rows written", w.rows.load());
  m.one("laminator_writer_last_batch_rows", "gauge", "Rows in the last batch",
        w.last_batch_rows.load());
  m.seconds("laminator_writer_last_flush_seconds", "Duration of the last flush",
            static_cast<double>(w.last_flush_us.load()) / 1e6);
  m.one("laminator_writer_pending_rows", "gauge", "Rows waiting for the next flush (lag)",
        w.pending_rows.load());
  const std::uint64_t published = e.next_seq.load() - 1;  // next_seq >= first_seq >= 1
  const std::uint64_t journaled = std::max(w.journaled_seq.load(), p.first_seq - 1);
  m.one("laminator_writer_journal_lag_events", "gauge", "Events published but not yet journaled",
        published > journaled ? published - journaled : 0);
  m.one("laminator_journal_holes", "gauge",
        "Seqs found missing below the journal's head at start-up and not in the crash ring",
        p.journal_holes);
  m.one("laminator_writer_failures_total", "counter", "Failed flush attempts (retried)",
        w.failures.load());
  {
    // Each committed flush (build, send, commit), as a Prometheus histogram.
    const char* name = "laminator_writer_flush_seconds";
    m.family(name, "histogram", "Duration of each committed writer flush");
    std::uint64_t cum = 0;
    char line[128];
    for (std::size_t i = 0; i <= db::AtomicHistogram::kBounds.size(); ++i) {
      cum += w.flush_seconds.bucket(i);
      if (i < db::AtomicHistogram::kBounds.size()) {
        std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name,
                      db::AtomicHistogram::kBounds[i], static_cast<unsigned long long>(cum));
      } else {
        std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                      static_cast<unsigned long long>(cum));
      }
      out += line;
    }
    std::snprintf(line, sizeof line, "%s_sum %.6f\n%s_count %llu\n", name,
                  w.flush_seconds.sum_seconds(), name, static_cast<unsigned long long>(cum));
    out += line;
  }
  if (p.maintenance) p.maintenance->render(out);  // database health and partitions
  m.one("laminator_writer_dead_letters_total", "counter",
        "Rows the writer could not write (isolated from their batch; see engine_dead_letters)",
        w.dead_letters.load());
  m.one("laminator_writer_isolation_steps_total", "counter",
        "Batch statements that failed on data and were split", w.isolation_steps.load());
  m.one("laminator_writer_quarantined_marks_total", "counter",
        "Marks skipped for positions whose mark recently failed on data",
        w.quarantined_marks.load());
  m.one("laminator_writer_conflicts_total", "counter",
        "Transitions not applied: the row changed first", w.conflicts.load());
  m.one("laminator_writer_fills_total", "counter",
        "Paper fills written (order, position, trade, balance and audit rows)", w.fills.load());
  m.one("laminator_database_up", "gauge", "1 when the writer's last contact reached the database",
        w.db_ok.load());
  m.one("laminator_writer_failing", "gauge",
        "1 while flushes fail on a server-side error (statement timeout, deadlock, shutdown)",
        w.writes_failing.load());
  m.seconds("laminator_writer_oldest_pending_seconds", "Age of the oldest change not yet written",
            static_cast<double>(w.oldest_pending_ms.load()) / 1000.0);
  m.one(
      "laminator_writer_voided_dropped_total", "counter",
      "Voided transitions not handed to the engine (its queue full): no transition.voided for them",
      w.voided_dropped.load());
  m.one("laminator_writer_capped_splits_total", "counter",
        "Batches split to stay within max_batch_rows", w.capped_splits.load());
  m.one("laminator_writer_timeout_splits_total", "counter",
        "Statements past statement_timeout, split and retried in halves", w.timeout_splits.load());
  const db::ListenerStats& l = p.listener->stats();
  m.one("laminator_listener_notifications_total", "counter", "Change notifications received",
        l.notifications.load());
  m.one("laminator_listener_resyncs_total", "counter", "Full resynchronisations", l.resyncs.load());
  m.one("laminator_listener_foreign_total", "counter",
        "Changes to rows of other shards' markets, dropped from the notification unread",
        l.foreign.load());
}

bool Daemon::health(std::string& out) const {
  const Parts& p = *p_;
  std::string reasons;
  auto add = [&](const std::string& r) {
    if (!reasons.empty()) reasons.append(",");
    reasons.append("\"").append(r).append("\"");
  };
  std::string feeds = "{";
  for (const Connection& c : p.connections) {
    const auto& cfg = p.runner->config(c.runner_index);
    const auto& k = p.runner->counters(c.runner_index);
    const std::string name = std::string(feeds::venue_name(cfg.venue)) + "/" + cfg.route;
    const bool live = k.connected.load() == 1 && k.live_symbols.load() == c.symbols;
    if (feeds.size() > 1) feeds.append(",");
    feeds.append("\"").append(name).append("\":\"").append(live ? "live" : "not_live").append("\"");
    if (!live) add("feed " + name + " not live");
    if (const std::uint32_t held = k.oracle_held.load(); held > 0) {
      add("feed " + name + ": " + std::to_string(held) +
          " oracle price(s) held (update too old or too uncertain)");
    }
  }
  feeds.append("}");
  const std::uint32_t unserved = p.engine->stats().unserved_markets.load();
  if (unserved > 0) add(std::to_string(unserved) + " market(s) not served by any feed");
  const db::WriterStats& ws = p.writer->stats();
  const bool db_up = ws.db_ok.load() == 1;
  if (!db_up) add("database unreachable");
  if (db_up && ws.writes_failing.load() == 1)
    add("database writes failing (sqlstate " + db::unpack_sqlstate(ws.last_error_sqlstate.load()) +
        "): retried, see the writer's log");
  if (const std::uint64_t ms = ws.oldest_pending_ms.load(); ms >= kWriterBehindMs)
    add("writer behind: the oldest unwritten change is " + std::to_string(ms / 1000) + " s old");
  if (p.publisher && p.publisher->stats().connected.load() == 0)
    add("JetStream unreachable (events wait in the journal)");
  out = "{\"status\":\"" + std::string(reasons.empty() ? "ok" : "degraded") +
        "\",\"database\":" + (db_up ? "true" : "false") + ",\"feeds\":" + feeds +
        ",\"unserved_markets\":" + std::to_string(unserved) + ",\"reasons\":[" + reasons + "]}";
  return reasons.empty();
}

}  // namespace lam::daemon
