#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <pqxx/pqxx>
#include <unordered_map>

#include "daemon/daemon_parts.h"
#include "daemon/engine_loop.h"
#include "daemon/feed_plan.h"
#include "daemon/recovery.h"
#include "engine/instruments.h"
#include "engine/matcher.h"
#include "feeds/feed_runner.h"
#include "persistence/batch.h"
#include "persistence/database_url.h"
#include "persistence/journal.h"
#include "persistence/listener.h"
#include "persistence/loader.h"
#include "persistence/migrator.h"
#include "persistence/writer.h"
#include "scaleout/shard_sink.h"
#include "stream/event_bus.h"
#include "stream/journal_reader.h"
#include "stream/stream_server.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string StatusLine::format() const {
  char line[320];
  std::snprintf(line, sizeof line,
                "%.0f ticks/s, %.0f events/s, %.0f changes/s | %llu ticks (%llu held) | %llu "
                "events: %llu alerts fired, %llu liquidations | tick->event p50 %.0f us p99 %.0f "
                "us | %llu subscribers | writer pending %llu",
                ticks_per_s, events_per_s, commands_per_s, static_cast<unsigned long long>(ticks),
                static_cast<unsigned long long>(held), static_cast<unsigned long long>(events),
                static_cast<unsigned long long>(fired),
                static_cast<unsigned long long>(liquidations), p50_us, p99_us,
                static_cast<unsigned long long>(subscribers),
                static_cast<unsigned long long>(writer_pending));
  return line;
}

Daemon::Daemon(Config cfg) : cfg_(std::move(cfg)), p_(std::make_unique<Parts>()) {}

Daemon::~Daemon() {
  stop();
}

/// What load_state hands start_threads.
struct Daemon::Loaded {
  std::vector<Event> initial;  ///< events of the load (rejected rows), published first
  FeedSubscriptions feeds;     ///< the price feeds the loaded markets need
  struct Market {
    Uuid id;
    std::string dex_name;
    std::string symbol;
  };
  std::vector<Market> markets;  ///< every market loaded, with the feed that prices it
};

void Daemon::start() {
  p_->log->info("{}", redacted_summary(cfg_));
  const std::uint64_t first_seq = open_database();
  Loaded loaded;
  load_state(first_seq, loaded);
  start_threads(first_seq, loaded);
}

std::uint64_t Daemon::open_database() {
  Parts& p = *p_;
  auto& log = *p.log;
  const std::string base_url = database_url(cfg_);
  p.url = base_url;

  // 1. Schema.
  db::Migrator migrator(base_url);
  if (cfg_.database.migrate == MigratePolicy::apply) {
    const auto rep = migrator.migrate({});
    if (!rep.applied.empty()) log.info("applied {} migration(s)", rep.applied.size());
  } else {
    for (const auto& s : migrator.status()) {
      if (s.state != db::MigrationState::applied)
        throw std::runtime_error("migration " + s.name + " is " + std::string(to_string(s.state)) +
                                 ": run `laminator migrate` (or set database.migrate = \"apply\")");
    }
  }

  // The change path: a notification sent through the URL must reach a LISTEN session on it, or
  // the engine would never see the bot's changes (a transaction-mode pooler: refused here, with
  // what to do; the listener's heartbeats keep proving it while running).
  if (auto err = db::probe_change_path(base_url, cfg_.listener.heartbeat.timeout))
    throw std::runtime_error(*err);

  // A shard's journal lives in its own schema (migration 0011); its connections name it first.
  if (cfg_.shard) {
    const std::string schema = db::ensure_shard_schema(base_url, cfg_.shard->id);
    p.url = db::with_search_path(base_url, schema);
    p.shard = ShardMap(*cfg_.shard);
    log.info("shard {}: journal in schema {}", cfg_.shard->id, schema);
  }

  // 2. Crash recovery, then the seq to continue from.
  const Recovered rec =
      recover(p.url, cfg_.engine, cfg_.shard ? cfg_.shard->id : std::string(), p.ring, log);
  p.first_seq = rec.next_seq;
  p.journal_holes = rec.holes_unfilled;
  return rec.next_seq;
}

void Daemon::load_state(std::uint64_t first_seq, Loaded& out) {
  Parts& p = *p_;
  auto& log = *p.log;
  MatcherConfig mc;
  mc.first_seq = first_seq;
  mc.report_trails = true;  // and a trailing stop's activation and its group's best price
  mc.report_rested = true;  // the writer persists a limit that starts resting (pending -> open)
  mc.slippage_bps = cfg_.paper.slippage_bps;
  p.matcher = std::make_unique<Matcher>(mc);
  // Rows of other shards' markets are skipped before the matcher sees them.
  db::LoadSink sink =
      shard_filtered(db::matcher_sink(*p.matcher, p.instruments, out.initial, /*orders=*/true),
                     p.shard, p.foreign_rows);
  auto load_market = std::move(sink.market);
  sink.market = [&](MarketRow&& m) {
    // Oracle-priced markets subscribe their Pyth feed, not their venue's book.
    const PriceFeed f = price_feed(m);
    if (!p.shard.market(m.spec.id, f.venue)) {
      p.foreign.set(m.spec.id, true);
      ++p.foreign_rows;
      return;
    }
    // One market per price feed (FeedSubscriptions): said loudly rather than found out.
    const auto added = out.feeds.add(m.spec.id, f.venue, f.symbol);
    if (!added.fresh) {
      log.error(
          "markets {} and {} are both priced by {}: only the one loaded last is evaluated "
          "(one market per price feed)",
          added.first.str(), m.spec.id.str(), added.feed);
    }
    out.markets.push_back({m.spec.id, std::string(f.venue), std::string(f.symbol)});
    load_market(std::move(m));
  };
  const auto t0 = Clock::now();
  const db::LoadCounts counts = db::Loader(p.url).load_all(sink);
  log.info(
      "loaded {} markets, {} open positions, {} active alerts ({} unreadable rows skipped, {} "
      "rejected) in {} ms; next seq {}",
      counts.markets, counts.positions, counts.alerts, counts.bad_rows, counts.rejected_rows,
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), first_seq);
  if (p.shard.sharded()) {
    log.info("shard {}: owns {} market(s); {} rows of other shards' markets skipped",
             cfg_.shard->id, p.shard.owned_markets(), p.foreign_rows);
  }
}

void Daemon::start_threads(std::uint64_t first_seq, Loaded& loaded) {
  Parts& p = *p_;
  auto& log = *p.log;
  p.ticks = std::make_unique<feeds::TickQueue>(cfg_.engine.tick_queue_capacity);
  p.bus = std::make_unique<EventBus>(cfg_.stream.bus_capacity);
  db::WriterConfig wc = cfg_.writer;
  wc.conninfo = p.url;
  p.writer = std::make_unique<db::Writer>(wc);
  db::ListenerConfig lc = cfg_.listener;
  lc.conninfo = p.url;
  lc.orders = true;
  if (p.shard.sharded())
    lc.foreign = [fm = &p.foreign](const Uuid& market) { return fm->contains(market); };
  p.listener = std::make_unique<db::Listener>(lc);

  // Feeds: one connection per venue route, subscribed to the markets loaded for that venue
  // (daemon/feed_plan.h decides which; here they become symbol maps and connections).
  FeedPlan plan = plan_feeds(cfg_.feeds, loaded.feeds.symbols());
  for (const PlanNote& n : plan.notes) {
    if (n.level == PlanNote::Level::error)
      log.error("{}", n.text);
    else
      log.warn("{}", n.text);
  }
  std::vector<bool> served(p.instruments.size(), false);
  p.runner = std::make_unique<feeds::FeedRunner>(cfg_.feeds.runner, *p.ticks);
  for (PlannedConnection& pc : plan.connections) {
    feeds::SymbolMap map(pc.config.venue, nullptr);
    for (const PlannedSymbol& s : pc.symbols) map.add(p.instruments, s.symbol, s.contract_size);
    if (map.size() == 0) continue;
    for (const InstrumentId id : map.instruments()) {
      if (id >= served.size()) served.resize(id + 1, false);
      served[id] = true;
    }
    const std::size_t n = map.size();
    log.info("feed {}/{}: {} symbol(s) via {}", feeds::venue_name(pc.config.venue), pc.config.route,
             n, pc.config.url);
    p.connections.push_back({p.runner->add(std::move(pc.config), std::move(map)), n});
  }
  if (p.connections.empty()) log.warn("no feed connections: no enabled venue has a market");

  EngineLoopDeps deps;
  deps.matcher = p.matcher.get();
  deps.instruments = &p.instruments;
  deps.ticks = p.ticks.get();
  deps.commands = &p.listener->commands();
  deps.writer = p.writer.get();
  deps.bus = p.bus.get();
  deps.ring = p.ring.get();
  deps.shard = p.shard.sharded() ? &p.shard : nullptr;
  deps.foreign = &p.foreign;
  deps.coverage = MarketCoverage(std::move(served), std::move(plan.disabled_venues));
  std::size_t unserved = 0;
  for (const Loaded::Market& lm : loaded.markets) {
    const auto id = p.instruments.find(lm.dex_name, lm.symbol);
    if (deps.coverage.update(lm.id, id.value_or(kNoInstrument), lm.dex_name) ==
            MarketCoverage::Change::became_unserved &&
        unserved++ < 20) {
      log.warn("market {} ({}/{}) is not served by any feed (unknown venue)", lm.id.str(),
               lm.dex_name, lm.symbol);
    }
  }
  p.engine = std::make_unique<EngineLoop>(cfg_.engine, deps);
  p.engine->publish_initial(std::move(loaded.initial));

  p.journal = std::make_unique<PgJournalReader>(p.url, cfg_.stream.journal_retention_hours);
  MaintenanceConfig mcfg = cfg_.maintenance;
  if (cfg_.shard && mcfg.journal.archive_schema == "archive")
    mcfg.journal.archive_schema = shard_schema(cfg_.shard->id) + "_archive";  // names per shard
  p.maintenance = std::make_unique<Maintenance>(p.url, std::move(mcfg));
  ServerHooks hooks;
  hooks.metrics = [this](std::string& out) { render_metrics(out); };
  hooks.health = [this](std::string& out) { return health(out); };
  // committed=1 subscribers: what the writer has journaled (before its first flush, everything
  // published before this run is).
  hooks.committed_head = [w = p.writer.get(), before = first_seq - 1] {
    return std::max(w->stats().journaled_seq.load(std::memory_order_acquire), before);
  };
  if (cfg_.nats) {
    // Every event of this daemon into JetStream, in seq order, from the seq the stream lacks.
    p.publisher = std::make_unique<JetStreamPublisher>(
        *cfg_.nats, nats_url(cfg_), cfg_.shard ? cfg_.shard->id : std::string("main"), p.url,
        first_seq - 1);
    hooks.on_publish = [pub = p.publisher.get()](const Entry& e) { pub->offer(e); };
  }
  p.server = std::make_unique<StreamServer>(cfg_.stream, *p.bus, p.journal.get(), std::move(hooks),
                                            first_seq - 1);
  p.server->start();
  if (p.publisher) p.publisher->start();
  p.engine->start();
  p.runner->start();
  p.maintenance->start();
  p.started = true;
  log.info("running: {} feed connection(s), alert stream on {}:{}", p.connections.size(),
           cfg_.stream.address, p.server->port());
}

void Daemon::stop() {
  Parts& p = *p_;
  if (!p.started || p.stopped) return;
  p.stopped = true;
  auto& log = *p.log;
  const auto t0 = Clock::now();
  log.info("stopping: feeds");
  // Each phase timed: the log says where a slow stop went.
  std::string phases;
  auto t = Clock::now();
  const auto phase = [&](const char* name) {
    const auto now = Clock::now();
    phases += fmt::format("{}{} {}", phases.empty() ? "" : ", ", name,
                          std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count());
    t = now;
  };
  p.runner->stop();
  phase("feeds");
  p.engine->stop(std::chrono::seconds(1));  // drains the tick queue and parked writer ops
  phase("engine");
  p.server->stop(std::chrono::milliseconds(1500));
  phase("stream");
  if (p.publisher) {
    p.publisher->stop(std::chrono::milliseconds(2000));
    phase("jetstream");
  }
  p.listener->stop();
  phase("listener");
  p.writer->stop(std::chrono::seconds(2));
  phase("writer");
  p.journal->stop();
  phase("journal");
  p.maintenance->stop();
  phase("maintenance");
  log.info("stopped in {} ms ({} ms): {} events, writer {} batches, {} conflicts",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), phases,
           p.engine->stats().events.load(), p.writer->stats().batches.load(),
           p.writer->stats().conflicts.load());
}

std::uint16_t Daemon::stream_port() const {
  return p_->server ? p_->server->port() : 0;
}

StatusLine Daemon::status() {
  Parts& p = *p_;
  StatusLine s;
  const EngineStats& e = p.engine->stats();
  const ServerStats& v = p.server->stats();
  s.ticks = e.ticks.load();
  s.held = e.held_ticks.load();
  s.events = e.events.load();
  s.fired = e.alerts_fired.load();
  s.liquidations = e.liquidations.load();
  s.subscribers = v.subscribers.load();
  s.p50_us = v.latency_p50_us.load();
  s.p90_us = v.latency_p90_us.load();
  s.p99_us = v.latency_p99_us.load();
  s.p999_us = v.latency_p999_us.load();
  s.max_us = v.latency_max_us.load();
  s.latency_count = v.latency_count.load();
  for (std::size_t i = 0; i < s.stage_p99_us.size(); ++i) {
    s.stage_p50_us[i] = v.stage_p50_us[i].load();
    s.stage_p99_us[i] = v.stage_p99_us[i].load();
    s.slow_events[i] = v.slow_events[i].load();
    s.slow_stage_us[i] = v.slow_stage_us[i].load();
  }
  s.writer_pending = p.writer->stats().pending_rows.load() + e.writer_parked.load();
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - p.last_status).count();
  const std::uint64_t commands = e.commands.load();
  if (dt > 0) {
    s.ticks_per_s = static_cast<double>(s.ticks - p.last_ticks) / dt;
    s.events_per_s = static_cast<double>(s.events - p.last_events) / dt;
    s.commands_per_s = static_cast<double>(commands - p.last_commands) / dt;
  }
  p.last_status = now;
  p.last_ticks = s.ticks;
  p.last_events = s.events;
  p.last_commands = commands;
  return s;
}

}  // namespace lam::daemon
