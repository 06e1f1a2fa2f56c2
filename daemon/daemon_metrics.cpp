// /metrics and /healthz for the daemon: every component's counters, read from atomics (any thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "daemon/daemon_parts.h"
#include "scaleout/publish_cursor.h"
#include "stream/prometheus.h"

namespace lam::daemon {
namespace {

/// "2026-12-07T12:34:56Z" for Unix milliseconds.
std::string utc_time(std::uint64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

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

/// What spans components: the queues between threads and the journal's lag behind the stream.
const MetricDesc<Daemon::Parts> kPartsMetrics[] = {
    {"laminator_tick_queue_depth", "gauge", "Feed events waiting for the matcher",
     [](const Daemon::Parts& p) -> std::uint64_t { return p.ticks->size_approx(); }},
    {"laminator_tick_queue_overflows_total", "counter", "Feed events refused: queue full",
     [](const Daemon::Parts& p) -> std::uint64_t { return p.ticks->overflows(); }},
    {"laminator_event_bus_depth", "gauge", "Events waiting for the stream server",
     [](const Daemon::Parts& p) -> std::uint64_t { return p.bus->size_approx(); }},
    {"laminator_event_bus_overflows_total", "counter", "Events refused: bus full",
     [](const Daemon::Parts& p) -> std::uint64_t { return p.bus->overflows(); }},
    {"laminator_writer_journal_lag_events", "gauge", "Events published but not yet journaled",
     [](const Daemon::Parts& p) -> std::uint64_t {
       const std::uint64_t published = p.engine->stats().next_seq.load() - 1;  // >= first_seq - 1
       const std::uint64_t journaled =
           std::max(p.writer->stats().journaled_seq.load(), p.first_seq - 1);
       return published > journaled ? published - journaled : 0;
     }},
    {"laminator_journal_holes", "gauge",
     "Seqs found missing below the journal's head at start-up and not in the crash ring",
     [](const Daemon::Parts& p) -> std::uint64_t { return p.journal_holes; }},
};

const MetricDesc<EngineStats> kEngineMetrics[] = {
    {"laminator_engine_ticks_total", "counter", "Ticks evaluated by the matcher",
     [](const EngineStats& s) -> std::uint64_t { return s.ticks.load(); }},
    {"laminator_engine_held_ticks_total", "counter",
     "Ticks not evaluated because their feed was not live",
     [](const EngineStats& s) -> std::uint64_t { return s.held_ticks.load(); }},
    {"laminator_engine_held_instruments", "gauge", "Instruments whose feed is not live",
     [](const EngineStats& s) -> std::uint64_t { return s.held_instruments.load(); }},
    {"laminator_engine_events_total", "counter", "Events produced",
     [](const EngineStats& s) -> std::uint64_t { return s.events.load(); }},
    {"laminator_markets_unserved", "gauge",
     "Markets no feed serves although their venue is enabled (renamed, added after start-up)",
     [](const EngineStats& s) -> std::uint64_t { return s.unserved_markets.load(); }},
    {"laminator_markets_disabled", "gauge", "Markets of venues the config disables",
     [](const EngineStats& s) -> std::uint64_t { return s.disabled_markets.load(); }},
    {"laminator_engine_alerts_fired_total", "counter", "alert.triggered events",
     [](const EngineStats& s) -> std::uint64_t { return s.alerts_fired.load(); }},
    {"laminator_engine_liquidations_total", "counter", "position.liquidated events",
     [](const EngineStats& s) -> std::uint64_t { return s.liquidations.load(); }},
    {"laminator_engine_order_revivals_refused_total", "counter",
     "Finished orders the bot set back to pending/open, not re-armed (order.revival_refused)",
     [](const EngineStats& s) -> std::uint64_t { return s.revivals_refused.load(); }},
    {"laminator_engine_fills_voided_total", "counter",
     "Fills streamed but never stored: the bot finished the order or closed its position first "
     "(order.fill_voided)",
     [](const EngineStats& s) -> std::uint64_t { return s.fills_voided.load(); }},
    {"laminator_engine_transitions_voided_total", "counter",
     "Transitions streamed but never stored: the bot changed the row first (transition.voided)",
     [](const EngineStats& s) -> std::uint64_t { return s.transitions_voided.load(); }},
    {"laminator_engine_foreign_wallet_rejections_total", "counter",
     "Orders and positions rejected: their wallet belongs to another user",
     [](const EngineStats& s) -> std::uint64_t { return s.foreign_wallets.load(); }},
    {"laminator_engine_resync_kept_positions_total", "counter",
     "Positions a resync's snapshot lacked but our own unjournaled fills had moved: kept",
     [](const EngineStats& s) -> std::uint64_t { return s.resync_kept.load(); }},
    {"laminator_engine_commands_total", "counter", "Change-capture commands received",
     [](const EngineStats& s) -> std::uint64_t { return s.commands.load(); }},
    {"laminator_engine_commands_skipped_total", "counter",
     "Commands skipped: unchanged rows, or rows read before the engine's own write",
     [](const EngineStats& s) -> std::uint64_t { return s.commands_skipped.load(); }},
    {"laminator_shard_foreign_commands_total", "counter",
     "Changes to rows of other shards' markets, dropped before the matcher",
     [](const EngineStats& s) -> std::uint64_t { return s.foreign_commands.load(); }},
    {"laminator_engine_marks_total", "counter",
     "Positions' stored marks sent to the writer (background refresh)",
     [](const EngineStats& s) -> std::uint64_t { return s.marks.load(); }},
    {"laminator_engine_market_marks_total", "counter", "Market marks sent to the writer",
     [](const EngineStats& s) -> std::uint64_t { return s.market_marks.load(); }},
    {"laminator_engine_refresh_passes_total", "counter",
     "Complete background refresh passes over the open positions",
     [](const EngineStats& s) -> std::uint64_t { return s.refresh_passes.load(); }},
    {"laminator_engine_refresh_pass_seconds", "gauge",
     "How long the last complete refresh pass took (a stored mark is at most about two "
     "passes old)",
     nullptr,
     [](const EngineStats& s) { return static_cast<double>(s.refresh_pass_ms.load()) / 1e3; }},
    {"laminator_engine_writer_parked", "gauge", "Writer ops waiting for queue room",
     [](const EngineStats& s) -> std::uint64_t { return s.writer_parked.load(); }},
    {"laminator_engine_next_seq", "gauge", "Next event seq",
     [](const EngineStats& s) -> std::uint64_t { return s.next_seq.load(); }},
};

const MetricDesc<db::WriterStats> kWriterMetrics[] = {
    {"laminator_writer_batches_total", "counter", "Batches flushed",
     [](const db::WriterStats& s) -> std::uint64_t { return s.batches.load(); }},
    {"laminator_writer_rows_total", "counter", "Rows written",
     [](const db::WriterStats& s) -> std::uint64_t { return s.rows.load(); }},
    {"laminator_writer_last_batch_rows", "gauge", "Rows in the last batch",
     [](const db::WriterStats& s) -> std::uint64_t { return s.last_batch_rows.load(); }},
    {"laminator_writer_last_flush_seconds", "gauge", "Duration of the last flush", nullptr,
     [](const db::WriterStats& s) { return static_cast<double>(s.last_flush_us.load()) / 1e6; }},
    {"laminator_writer_pending_rows", "gauge", "Rows waiting for the next flush (lag)",
     [](const db::WriterStats& s) -> std::uint64_t { return s.pending_rows.load(); }},
    {"laminator_writer_failures_total", "counter", "Failed flush attempts (retried)",
     [](const db::WriterStats& s) -> std::uint64_t { return s.failures.load(); }},
    {"laminator_writer_dead_letters_total", "counter",
     "Rows the writer could not write (isolated from their batch; see engine_dead_letters)",
     [](const db::WriterStats& s) -> std::uint64_t { return s.dead_letters.load(); }},
    {"laminator_writer_isolation_steps_total", "counter",
     "Batch statements that failed on data and were split",
     [](const db::WriterStats& s) -> std::uint64_t { return s.isolation_steps.load(); }},
    {"laminator_writer_quarantined_marks_total", "counter",
     "Marks skipped for positions whose mark recently failed on data",
     [](const db::WriterStats& s) -> std::uint64_t { return s.quarantined_marks.load(); }},
    {"laminator_writer_conflicts_total", "counter",
     "Transitions not applied: the row changed first",
     [](const db::WriterStats& s) -> std::uint64_t { return s.conflicts.load(); }},
    {"laminator_writer_fills_total", "counter",
     "Paper fills written (order, position, trade, balance and audit rows)",
     [](const db::WriterStats& s) -> std::uint64_t { return s.fills.load(); }},
    {"laminator_writer_orders_placed_total", "counter",
     "Orders the engine placed (users' protective stops), inserted",
     [](const db::WriterStats& s) -> std::uint64_t { return s.orders_placed.load(); }},
    {"laminator_database_up", "gauge", "1 when the writer's last contact reached the database",
     [](const db::WriterStats& s) -> std::uint64_t { return s.db_ok.load(); }},
    {"laminator_writer_failing", "gauge",
     "1 while flushes fail on a server-side error (statement timeout, deadlock, shutdown)",
     [](const db::WriterStats& s) -> std::uint64_t { return s.writes_failing.load(); }},
    {"laminator_writer_oldest_pending_seconds", "gauge", "Age of the oldest change not yet written",
     nullptr,
     [](const db::WriterStats& s) {
       return static_cast<double>(s.oldest_pending_ms.load()) / 1000.0;
     }},
    {"laminator_writer_voided_dropped_total", "counter",
     "Voided transitions not handed to the engine (its queue full): no transition.voided for them",
     [](const db::WriterStats& s) -> std::uint64_t { return s.voided_dropped.load(); }},
    {"laminator_writer_capped_splits_total", "counter",
     "Batches split to stay within max_batch_rows",
     [](const db::WriterStats& s) -> std::uint64_t { return s.capped_splits.load(); }},
    {"laminator_writer_timeout_splits_total", "counter",
     "Statements past statement_timeout, split and retried in halves",
     [](const db::WriterStats& s) -> std::uint64_t { return s.timeout_splits.load(); }},
};

const MetricDesc<db::ListenerStats> kListenerMetrics[] = {
    {"laminator_listener_notifications_total", "counter", "Change notifications received",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.notifications.load(); }},
    {"laminator_listener_resyncs_total", "counter", "Full resynchronisations",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.resyncs.load(); }},
    {"laminator_listener_foreign_total", "counter",
     "Changes to rows of other shards' markets, dropped from the notification unread",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.foreign.load(); }},
    {"laminator_listener_connected", "gauge",
     "1 while the LISTEN session is up and its heartbeats come back: the bot's changes are "
     "followed",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.connected.load(); }},
    {"laminator_listener_down_since_timestamp_seconds", "gauge",
     "Unix time since when the bot's changes are not followed (0 while they are)",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.down_since_ms.load() / 1000; }},
    {"laminator_listener_heartbeats_total", "counter",
     "Heartbeat notifications that came back (the change path's round trip)",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.heartbeats.load(); }},
    {"laminator_listener_heartbeats_lost_total", "counter",
     "Heartbeats not back in time: the session was dropped and resynced",
     [](const db::ListenerStats& s) -> std::uint64_t { return s.heartbeats_lost.load(); }},
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
  m.table(kPartsMetrics, p);
  const EngineStats& e = p.engine->stats();
  m.table(kEngineMetrics, e);
  if (p.publisher) p.publisher->render(out);
  const db::WriterStats& w = p.writer->stats();
  m.table(kWriterMetrics, w);
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
  m.table(kListenerMetrics, p.listener->stats());
  m.family("laminator_listener_heartbeat_rtt_seconds", "gauge",
           "The last heartbeat's round trip (NOTIFY on a second connection to delivery)");
  m.sample_double("laminator_listener_heartbeat_rtt_seconds",
                  static_cast<double>(p.listener->stats().heartbeat_rtt_us.load()) / 1e6);
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
  // The bot's changes: not followed while the listener has no proven session (a grace of 2 s
  // covers a reconnect's resync).
  if (p.listener) {
    const db::ListenerStats& ls = p.listener->stats();
    const std::uint64_t since = ls.down_since_ms.load();
    const std::uint64_t now_ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    if (since != 0 && now_ms >= since + 2'000) {
      const auto why = static_cast<db::ListenerDown>(ls.down_why.load());
      add("the bot's changes are not followed since " + utc_time(since) + " (" +
          std::to_string((now_ms - since) / 1000) + " s: " +
          (why == db::ListenerDown::no_notifications
               ? "notifications sent through the database URL do not arrive; a "
                 "transaction-mode pooler?"
           : why == db::ListenerDown::lost ? "heartbeats stopped coming back; reconnecting"
                                           : "the listener cannot connect; retrying") +
          ")");
    }
  }
  if (db_up && ws.writes_failing.load() == 1)
    add("database writes failing (sqlstate " + db::unpack_sqlstate(ws.last_error_sqlstate.load()) +
        "): retried, see the writer's log");
  if (const std::uint64_t ms = ws.oldest_pending_ms.load(); ms >= kWriterBehindMs)
    add("writer behind: the oldest unwritten change is " + std::to_string(ms / 1000) + " s old");
  if (p.publisher) {
    if (const std::uint64_t t = p.publisher->stats().untrusted_tail.load(); t > 0) {
      using K = TailVerdict::Kind;
      const auto why = static_cast<K>(p.publisher->stats().untrusted_why.load());
      const std::string what =
          why == K::foreign_id ? "JetStream's last message on this shard's subject has an id "
                                 "that is not this shard's"
          : why == K::not_journaled
              ? "JetStream's last event for this shard claims seq " + std::to_string(t) +
                    " but is not the event this shard journaled under it"
              : "JetStream's last event for this shard is seq " + std::to_string(t) +
                    ", beyond its head";
      add(what + ": not written by this shard; publishing stopped (events wait in the journal)");
    } else if (p.publisher->stats().connected.load() == 0) {
      add("JetStream unreachable (events wait in the journal)");
    }
  }
  out = "{\"status\":\"" + std::string(reasons.empty() ? "ok" : "degraded") +
        "\",\"database\":" + (db_up ? "true" : "false") + ",\"feeds\":" + feeds +
        ",\"unserved_markets\":" + std::to_string(unserved) + ",\"reasons\":[" + reasons + "]}";
  return reasons.empty();
}

}  // namespace lam::daemon
