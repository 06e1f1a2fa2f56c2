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
#include "stream/event_bus.h"
#include "stream/journal_reader.h"
#include "stream/stream_server.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;

/// How far below the journal's head start-up looks for holes (an index-only walk: ~0.3 s per
/// million rows here).
constexpr std::uint64_t kHoleScanSeqs = 1'000'000;

struct Recovered {
  std::uint64_t next_seq = 1;
  std::uint64_t holes_unfilled = 0;  ///< seqs missing from the journal that the ring did not hold
};

/// Ring records applied per statement and transaction during crash recovery.
constexpr std::size_t kRecoveryPage = 2'000;

/// Journals what the previous process published but the writer had not stored yet, and applies
/// those events' transitions, before anything is loaded; checks the journal for holes below its
/// head and fills them from the ring where it still holds them. Returns the next seq to use.
Recovered recover(const std::string& url, const EngineConfig& ec, const std::string& shard,
                  std::unique_ptr<CrashRing>& ring_owner, spdlog::logger& log) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec("SET LOCAL app.origin = 'engine'");
  const std::uint64_t journal_max = db::journal_max_seq(tx);
  // Seq gaps a restore declared (migration 0009): the new history starts above the last one, and
  // a gap is not a hole.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
  for (const auto& g : tx.exec("SELECT seq_from, seq_to FROM engine_seq_gaps ORDER BY seq_to"))
    gaps.emplace_back(g[0].as<std::uint64_t>(), g[1].as<std::uint64_t>());
  const std::uint64_t seq_floor = gaps.empty() ? 0 : gaps.back().second;
  // Opened knowing the journal's head: a ring written by another build (another record layout)
  // is replaced when all its events are journaled, refused otherwise.
  if (!ec.crash_ring.empty())
    ring_owner = std::make_unique<CrashRing>(ec.crash_ring, ec.crash_ring_slots, journal_max);
  CrashRing* ring = ring_owner.get();
  auto holes =
      db::journal_holes(tx, journal_max > kHoleScanSeqs ? journal_max - kHoleScanSeqs : 0, 10'000);
  std::erase_if(holes, [&](const std::pair<std::uint64_t, std::uint64_t>& h) {
    return std::any_of(gaps.begin(), gaps.end(),
                       [&](const auto& g) { return h.first > g.first && h.second <= g.second; });
  });
  std::vector<RingRecord> recs;
  if (ring != nullptr) {
    // The ring's events belong to one database: its random instance id (migration 0004), not its
    // name, so a database dropped and recreated under the same name never adopts them.
    const pqxx::row id = tx.exec1(
        "SELECT (SELECT system_identifier FROM pg_control_system())::text, current_database(), "
        "(SELECT instance_id::text FROM engine_instance)");
    if (id[2].is_null())
      throw std::runtime_error("engine_instance is empty: run laminator migrate");
    // A shard's ring belongs to its journal (its seqs): the shard id is part of the owner.
    const std::uint64_t owner =
        std::hash<std::string>{}(std::string("instance/") + id[2].c_str() +
                                 (shard.empty() ? std::string() : "/shard/" + shard)) |
        1;
    const std::uint64_t legacy =
        std::hash<std::string>{}(std::string(id[0].c_str()) + "/" + id[1].c_str()) | 1;
    if (!ring->adopt(owner, legacy)) {
      log.warn(
          "crash ring held events of another database (or of this one before a restore): "
          "discarded, not replayed");
    }
    recs = ring->recover(holes.empty() ? journal_max : holes.front().first - 1);
  }
  const RecoveryPlan plan = plan_recovery(recs, journal_max, holes);
  Recovered out;
  out.next_seq = std::max({plan.last_seq, ring != nullptr ? ring->max_seq() : 0, seq_floor}) + 1;
  if (seq_floor >= journal_max && seq_floor > 0 && plan.records.empty()) {
    log.info(
        "restored database: events continue from seq {} (seqs {}..{} belong to the history "
        "the restore went back from)",
        seq_floor + 1, gaps.back().first + 1, seq_floor);
  }
  out.holes_unfilled = plan.hole_seqs - plan.holes_filled;
  std::string hole_ranges;
  for (std::size_t i = 0; i < holes.size() && i < 10; ++i)
    hole_ranges += fmt::format("{}{}..{}", i ? ", " : "", holes[i].first, holes[i].second);
  tx.commit();  // read only so far; the records are applied in pages below
  if (!plan.records.empty()) {
    // Paged: each page of records (in seq order, transitions with their events) is one statement
    // in its own transaction, so recovery after a burst is bounded per step, shows its progress,
    // and a process killed during it resumes from the last committed page (the journal's head).
    db::prepare_batch(c);
    std::size_t conflicts = 0;
    const std::size_t pages = (plan.records.size() + kRecoveryPage - 1) / kRecoveryPage;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t page = 0; page < pages; ++page) {
      const std::size_t from = page * kRecoveryPage;
      const std::size_t to = std::min(plan.records.size(), from + kRecoveryPage);
      db::Batch b;
      for (std::size_t i = from; i < to; ++i) {
        const RingRecord& r = plan.records[i];
        if (r.has_op) b.add(r.op);
        b.add_event(r.event, true);
      }
      pqxx::work w(c);
      w.exec("SET LOCAL app.origin = 'engine'");
      conflicts += db::apply_batch(w, b).conflicts.size();
      w.commit();
      if (pages > 1) {
        log.info("crash recovery: page {}/{} (seq {}..{}) journaled, {:.1f} s", page + 1, pages,
                 plan.records[from].event.seq, plan.records[to - 1].event.seq,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    log.warn(
        "crash recovery: journaled {} events the previous run published but had not stored (seq "
        "{}..{}; {} of them filling holes below the journal's head), {} transitions conflicted{}",
        plan.records.size(), plan.records.front().event.seq, plan.records.back().event.seq,
        plan.holes_filled, conflicts,
        plan.lost_above_head > 0
            ? fmt::format("; {} seqs were overwritten in the ring and are lost",
                          plan.lost_above_head)
            : std::string());
  }
  if (out.holes_unfilled > 0) {
    log.error(
        "journal check: {} seq(s) below the journal's head are missing and not in the crash ring "
        "({}{}): those events are lost to resuming subscribers and their transitions may not be "
        "applied (a server crash with synchronous_commit off?)",
        out.holes_unfilled, hole_ranges, holes.size() > 10 ? ", ..." : "");
  }
  return out;
}

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

void Daemon::start() {
  Parts& p = *p_;
  auto& log = *p.log;
  log.info("{}", redacted_summary(cfg_));
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

  // A shard's journal lives in its own schema (migration 0011); its connections name it first.
  if (cfg_.shard) {
    pqxx::connection c(base_url);
    pqxx::work tx(c);
    const std::string schema =
        tx.exec_params1("SELECT engine_shard_schema($1)", cfg_.shard->id)[0].as<std::string>();
    tx.commit();
    p.url = db::with_search_path(base_url, schema);
    p.shard = ShardMap(*cfg_.shard);
    log.info("shard {}: journal in schema {}", cfg_.shard->id, schema);
  }

  // 2. Crash recovery, then the seq to continue from.
  const Recovered rec =
      recover(p.url, cfg_.engine, cfg_.shard ? cfg_.shard->id : std::string(), p.ring, log);
  const std::uint64_t first_seq = rec.next_seq;
  p.first_seq = first_seq;
  p.journal_holes = rec.holes_unfilled;

  // 3. State.
  MatcherConfig mc;
  mc.first_seq = first_seq;
  mc.report_rested = true;  // the writer persists a limit that starts resting (pending -> open)
  mc.slippage_bps = cfg_.paper.slippage_bps;
  p.matcher = std::make_unique<Matcher>(mc);
  std::vector<Event> initial;
  std::map<feeds::Venue, std::vector<std::string>> symbols;
  struct LoadedMarket {
    Uuid id;
    std::string dex_name;
    std::string symbol;
  };
  std::vector<LoadedMarket> loaded_markets;
  std::unordered_map<std::string, Uuid> subscribed;  // "venue/symbol" -> its first market
  db::LoadSink sink = db::matcher_sink(*p.matcher, p.instruments, initial, /*orders=*/true);
  auto load_market = std::move(sink.market);
  if (p.shard.sharded()) {
    // Rows of other shards' markets are skipped before the matcher sees them.
    auto position = std::move(sink.position);
    sink.position = [&p, position = std::move(position)](PositionSpec&& s) {
      if (p.shard.owns(s.market_id)) return position(std::move(s));
      ++p.foreign_rows;
    };
    auto alert = std::move(sink.alert);
    sink.alert = [&p, alert = std::move(alert)](AlertSpec&& s) {
      if (s.market_id ? p.shard.owns(*s.market_id) : p.shard.owns_marketless())
        return alert(std::move(s));
      ++p.foreign_rows;
    };
    if (sink.order) {
      auto order = std::move(sink.order);
      sink.order = [&p, order = std::move(order)](OrderSpec&& s) {
        if (p.shard.owns(s.market_id)) return order(std::move(s));
        ++p.foreign_rows;
      };
    }
  }
  sink.market = [&](MarketRow&& m) {
    // Oracle-priced markets subscribe their Pyth feed, not their venue's book.
    const PriceFeed f = price_feed(m);
    if (!p.shard.market(m.spec.id, f.venue)) {
      p.foreign.set(m.spec.id, true);
      ++p.foreign_rows;
      return;
    }
    // One market per price feed: the matcher maps an instrument to one market, so a second
    // market on the same feed (one oracle for two venues' SOL-PERP, a pair listed twice) takes
    // its ticks from the first. Said loudly rather than found out.
    auto [owner, fresh] =
        subscribed.try_emplace(std::string(f.venue).append(1, '/').append(f.symbol), m.spec.id);
    if (fresh) {
      if (const auto v = feeds::parse_venue(f.venue)) symbols[*v].emplace_back(f.symbol);
    } else {
      log.error(
          "markets {} and {} are both priced by {}: only the one loaded last is evaluated "
          "(one market per price feed)",
          owner->second.str(), m.spec.id.str(), owner->first);
    }
    loaded_markets.push_back({m.spec.id, std::string(f.venue), std::string(f.symbol)});
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

  // 4. Threads, from the back of the pipeline to the front.
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

  // Feeds: one connection per venue route, subscribed to the markets loaded for that venue.
  std::vector<bool> served(p.instruments.size(), false);
  std::vector<std::string> disabled_venues;
  p.runner = std::make_unique<feeds::FeedRunner>(cfg_.feeds.runner, *p.ticks);
  for (feeds::Venue v : feeds::kAllVenues) {
    const VenueSection& vs = cfg_.feeds.venues[static_cast<std::size_t>(v)];
    if (!vs.enabled) disabled_venues.emplace_back(feeds::venue_name(v));
    if (!vs.enabled || symbols[v].empty()) continue;
    for (const feeds::Route& r : feeds::venue_routes(v)) {
      feeds::ConnectionConfig c = cfg_.feeds.connection;
      c.venue = v;
      c.route = r.name;
      c.kinds = r.kinds;
      c.rules = vs.rules;
      c.oracle = vs.oracle;
      const auto url = vs.urls.find(r.name);
      c.url = url != vs.urls.end() ? url->second : r.default_url;
      if (!vs.api_key.empty()) c.client.authorization = "Bearer " + vs.api_key;
      if (v == feeds::Venue::pyth && vs.api_key.empty() && url == vs.urls.end()) {
        log.warn(
            "feed pyth/{}: public Hermes requires an API key since 2026-08-18; set [feeds.pyth] "
            "api_key_env",
            r.name);
      }
      feeds::SymbolMap map(v, nullptr);
      for (const std::string& s : symbols[v]) {
        const feeds::SizeUnit unit = feeds::size_unit(v, s);
        if (unit == feeds::SizeUnit::inverse) {
          // Each contract is worth a fixed quote amount: base size = contracts x value / price,
          // not exact in fixed point. Refused rather than sized wrongly.
          log.error(
              "market {}/{}: an inverse contract (sizes in contracts of a quote value) is not "
              "supported; not subscribed, its alerts and positions hold",
              feeds::venue_name(v), s);
          continue;
        }
        std::int64_t size = feeds::default_contract_size(v, s);
        if (const auto cs = vs.contract_sizes.find(s); cs != vs.contract_sizes.end()) {
          size = parse_raw(cs->second).value_or(size);  // validated by load_config
        } else if (unit == feeds::SizeUnit::contracts) {
          log.warn(
              "market {}/{}: sizes are in contracts and [feeds.{}.contract_sizes] has no entry "
              "for it: its trades carry no size (volume alerts on it cannot fire)",
              feeds::venue_name(v), s, feeds::venue_name(v));
        }
        map.add(p.instruments, s, size);
      }
      if (map.size() == 0) continue;  // every market of the venue refused
      for (const InstrumentId id : map.instruments()) {
        if (id >= served.size()) served.resize(id + 1, false);
        served[id] = true;
      }
      const std::size_t n = map.size();
      log.info("feed {}/{}: {} symbol(s) via {}", feeds::venue_name(v), r.name, n, c.url);
      p.connections.push_back({p.runner->add(std::move(c), std::move(map)), n});
    }
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
  deps.coverage = MarketCoverage(std::move(served), std::move(disabled_venues));
  std::size_t unserved = 0;
  for (const LoadedMarket& lm : loaded_markets) {
    const auto id = p.instruments.find(lm.dex_name, lm.symbol);
    if (deps.coverage.update(lm.id, id.value_or(kNoInstrument), lm.dex_name) ==
            MarketCoverage::Change::became_unserved &&
        unserved++ < 20) {
      log.warn("market {} ({}/{}) is not served by any feed (unknown venue)", lm.id.str(),
               lm.dex_name, lm.symbol);
    }
  }
  p.engine = std::make_unique<EngineLoop>(cfg_.engine, deps);
  p.engine->publish_initial(std::move(initial));

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
  p.runner->stop();
  p.engine->stop(std::chrono::seconds(1));  // drains the tick queue and parked writer ops
  p.server->stop(std::chrono::milliseconds(1500));
  if (p.publisher) p.publisher->stop(std::chrono::milliseconds(2000));
  p.listener->stop();
  p.writer->stop(std::chrono::seconds(2));
  p.journal->stop();
  p.maintenance->stop();
  log.info("stopped in {} ms: {} events, writer {} batches, {} conflicts",
           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(),
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
