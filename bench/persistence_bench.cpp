// Persistence figures on a throwaway local PostgreSQL 15 (started by this program):
//  * writer: rows/s applying a batch of N position marks (N = 1k, 10k): the engine's one-statement
//    UNNEST batch, COPY into a temp table + UPDATE FROM, and one prepared UPDATE per row
//    (baseline);
//  * fills: fills/s applying paper fills (order, new position, trade, balance, audit rows each)
//    1k per batch statement, against the same statement once per fill (baseline: a transaction
//    per fill);
//  * marks: PostgreSQL's CPU and the writer's rows/s for marks at 1M positions over 1,000 markets,
//    per position (the old way) against per market (+ the paced refresh) in the same run, the
//    staleness of positions_fresh and its latency for one user's positions (--marks-seconds=N);
//  * loader: seconds to stream 1M positions + 1M alerts (+ 1M pending orders with
//    --loader-orders) into the matcher (--loader-rows=N to change).
//
//   build/release/bench/persistence_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>

#include "bench/ratio_report.h"
#include "engine/matcher.h"
#include "persistence/batch.h"
#include "persistence/listener.h"
#include "persistence/loader.h"
#include "persistence/marks.h"
#include "persistence/migrator.h"
#include "persistence/writer.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/seed.h"
#include "workloads/writer_workload.h"

namespace lam::bench {
namespace {

constexpr long long kWriterRows = 200'000;  // positions in the writer's table
long long g_loader_rows = 1'000'000;
bool g_loader_orders = false;

test::PgCluster& cluster() {
  return test::shared_cluster();
}

const std::string& writer_db() {
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_writer");
    prepare_writer_db(u, kWriterRows);
    return u;
  }();
  return url;
}

/// The measurement shared by the write methods (bench/writer_workload.h, also `laminator bench
/// writer`): each iteration applies N fresh marks (generated untimed); every batch is checked, and
/// the last row is read back at the end.
void run_writer(benchmark::State& state, WriteMethod m, std::uint64_t seed) {
  MarkWriter writer(writer_db(), m);
  std::mt19937_64 rng(seed);
  const auto n = static_cast<std::size_t>(state.range(0));
  db::WriteOp last;
  for (auto _ : state) {
    state.PauseTiming();
    const auto ops = writer_marks(n, kWriterRows, rng);
    state.ResumeTiming();
    if (writer.apply(ops) != n) {
      state.SkipWithError("not every row was updated");
      return;
    }
    last = ops.back();
  }
  try {
    writer.verify(last);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_Writer_UnnestBatch(benchmark::State& state) {
  run_writer(state, WriteMethod::unnest_batch, 1);
}

void BM_Writer_CopyTempUpdate(benchmark::State& state) {
  run_writer(state, WriteMethod::copy_temp_update, 2);
}

void BM_Writer_UpdatePerRow(benchmark::State& state) {
  run_writer(state, WriteMethod::update_per_row, 3);
}

// ---- fills ----------------------------------------------------------------------------------
// The workload is workloads/writer_workload.h's (prepare_fills, fill_op, FillWriter), the one
// `laminator bench writer --fills` runs.
constexpr int kFillMarkets = 100;
constexpr long long kFillOrders = 200'000;
constexpr long long kFillPositions = 200'000;

std::string g_fills_sql;  ///< --fills-sql: run on the fills database after its set-up

const std::string& fills_db() {
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_fills");
    db::Migrator(u).migrate({});
    // A lived-in database: 200k users with a position and an alert each (user g's position on
    // market g % 100), so the plans are those of real tables, not of empty ones.
    test::seed(u, kFillMarkets, kFillPositions);
    // A/B of schema decisions (issue 35): --fills-sql="DROP INDEX ..." runs before VACUUM.
    if (!g_fills_sql.empty()) {
      pqxx::connection c(u);
      pqxx::nontransaction(c).exec(g_fills_sql);
    }
    prepare_fills(u, kFillMarkets, kFillOrders);
    return u;
  }();
  return url;
}

long long g_next_order = 1;  // orders are consumed: each is filled once

/// Each iteration fills `per_iteration` orders in batches of `per_batch` (1: one statement and
/// transaction per fill). Every fill must land.
void run_fills(benchmark::State& state, std::size_t per_iteration, std::size_t per_batch) {
  FillWriter w(fills_db());
  for (auto _ : state) {
    if (g_next_order + static_cast<long long>(per_iteration) > kFillOrders + 1) {
      state.SkipWithError("the order pool is used up: fewer iterations");
      return;
    }
    std::size_t applied = 0;
    try {
      applied = w.fill(g_next_order, per_iteration, per_batch);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    g_next_order += static_cast<long long>(per_iteration);
    if (applied != per_iteration) {
      state.SkipWithError("not every fill landed");
      return;
    }
  }
  try {
    w.verify(g_next_order - 1);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}

void BM_Writer_FillsBatch(benchmark::State& state) {
  run_fills(state, 1000, 1000);
}

void BM_Writer_FillsBatch10k(benchmark::State& state) {
  run_fills(state, 10'000, 10'000);
}

/// Issue 35: the same 1,000 fills as two batches of 500 on two connections at once (the halves'
/// wallets, users and positions are disjoint: order n belongs to user and wallet 1 + n % 10,000).
void BM_Writer_FillsTwoConnections(benchmark::State& state) {
  FillWriter w0(fills_db()), w1(fills_db());
  FillWriter* w[2] = {&w0, &w1};
  constexpr long long kHalf = 500;
  for (auto _ : state) {
    if (g_next_order + 2 * kHalf > kFillOrders + 1) {
      state.SkipWithError("the order pool is used up: fewer iterations");
      return;
    }
    const long long first = g_next_order;
    g_next_order += 2 * kHalf;
    std::size_t applied[2] = {0, 0};
    std::string error[2];
    const auto half = [&](int k) {
      try {
        applied[k] = w[k]->fill(first + k * kHalf, kHalf, kHalf);
      } catch (const std::exception& e) {
        error[k] = e.what();
      }
    };
    std::thread other(half, 1);
    half(0);
    other.join();
    for (int k = 0; k < 2; ++k) {
      if (!error[k].empty()) {
        state.SkipWithError(error[k].c_str());
        return;
      }
    }
    if (applied[0] + applied[1] != 2 * kHalf) {
      state.SkipWithError("not every fill landed");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * 2 * kHalf);
}

void BM_Writer_FillsPerTransaction(benchmark::State& state) {
  run_fills(state, 1000, 1);
}

// ---- one wallet's burst (issue 28) -------------------------------------------------------------
//
// 20,000 paper market orders filled in one burst, through the real Writer (default flush interval
// and max_batch_rows): each fill's op, then its two events (order.filled, position.*), as the
// engine loop submits them. Arg 0: spread over 20,000 wallets, each fill opening its own position.
// Arg 1: one wallet, the first fill opening a position and 19,999 increasing it (one fill chain).
// While the burst is written, another user's alert is triggered every 20 ms: the time until it is
// stored (its transition and its event committed) is that user's wait.
constexpr long long kBurstFills = 20'000;
constexpr long long kBurstUsers = 20'000;
std::uint64_t g_burst_seq = 1;

const std::string& burst_db() {
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_burst");
    db::Migrator(u).migrate({});
    test::seed(u, 100, kBurstUsers);  // users, wallets, a position and an alert each
    pqxx::connection c(u);
    pqxx::nontransaction n(c);
    n.exec(
        "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) SELECT "
        "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1e9 FROM "
        "generate_series(1, " +
        std::to_string(kBurstUsers) + ") g");
    n.exec("VACUUM ANALYZE");
    return u;
  }();
  return url;
}

/// Fresh orders (and balances, alerts, journal) for one burst; `one_wallet` puts every order on
/// user 1's wallet and market 5, else order g on user g's wallet and a market where g holds no
/// position.
void reset_burst(const std::string& url, bool one_wallet) {
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec("TRUNCATE trades, audit_logs, alert_events");
  w.exec("DELETE FROM orders");
  w.exec("DELETE FROM positions WHERE id::text NOT LIKE '0000000b-%'");
  w.exec("UPDATE wallet_balances SET balance = 1e9, locked_balance = 0");
  w.exec("UPDATE alerts SET status = 'active', triggered_at = NULL WHERE status <> 'active'");
  const std::string user = one_wallet ? "1" : "g";
  const std::string market = one_wallet ? "5" : "(g + 1) % 100";
  w.exec(
      "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, leverage) "
      "SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
      "('0000000c-0000-4000-8000-' || lpad(to_hex(" +
      user + "), 12, '0'))::uuid, ('0000000e-0000-4000-8000-' || lpad(to_hex(" + user +
      "), 12, '0'))::uuid, ('0000000a-0000-4000-8000-' || lpad(to_hex(" + market +
      "), 12, '0'))::uuid, 'market', 'long', 1, 10 FROM generate_series(1, " +
      std::to_string(kBurstFills) + ") g");
  w.commit();
  pqxx::nontransaction(c).exec("ANALYZE orders, positions, wallet_balances");
}

void BM_Writer_Burst(benchmark::State& state) {
  const bool one_wallet = state.range(0) >= 1;
  const std::size_t max_rows = state.range(0) == 2 ? 100'000 : db::WriterConfig{}.max_batch_rows;
  const std::string& url = burst_db();
  std::vector<double> waits_ms, journal_ms;
  double burst_s = 0;
  for (auto _ : state) {
    state.PauseTiming();
    reset_burst(url, one_wallet);
    db::Writer writer({.conninfo = url, .max_batch_rows = max_rows, .queue_capacity = 1 << 17});
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    const Uuid first_position = Matcher::position_id_for(test::seq_id(kFillOrderKind, 1));
    auto submit = [&](auto&& f) {
      while (!f()) std::this_thread::yield();  // the queue is full: the engine loop parks too
    };
    for (long long g = 1; g <= kBurstFills; ++g) {
      db::WriteOp op = fill_op(g);
      op.flags = db::WriteOp::kTaker;
      if (one_wallet) {
        op.ref = first_position;
        if (g == 1) op.flags |= db::WriteOp::kOpened;
      } else {
        op.flags |= db::WriteOp::kOpened;
      }
      submit([&] { return writer.try_submit(op); });
      for (EventType t : {EventType::order_filled, op.flags & db::WriteOp::kOpened
                                                       ? EventType::position_opened
                                                       : EventType::position_increased}) {
        Event e;
        e.seq = g_burst_seq++;
        e.type = t;
        e.ts = op.ts;
        e.subject = t == EventType::order_filled ? op.id : op.ref;
        e.user_id = test::seq_id(test::kUser, one_wallet ? 1 : g);
        submit([&] { return writer.try_journal(e); });
      }
    }
    const std::uint64_t burst_last = g_burst_seq - 1;
    // Another user's alerts while the burst is written (alerts of users 10,001.. hold no order):
    // stored when its row says triggered (what the bot reads), journaled when its event is.
    struct Probe {
      std::uint64_t seq;
      Uuid alert;
      std::chrono::steady_clock::time_point at;
      bool stored = false, journaled = false;
    };
    std::vector<Probe> probes;
    pqxx::connection poll(url);
    long long next_alert = 10'001;
    auto next_probe = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point burst_done{};
    auto open_probes = [&] {
      return std::any_of(probes.begin(), probes.end(),
                         [](const Probe& p) { return !p.stored || !p.journaled; });
    };
    while (!writer.idle() || open_probes()) {
      const auto now = std::chrono::steady_clock::now();
      const std::uint64_t journaled = writer.stats().journaled_seq.load();
      if (burst_done == std::chrono::steady_clock::time_point{} && journaled >= burst_last)
        burst_done = now;
      std::string ids;
      for (Probe& p : probes) {
        if (!p.journaled && journaled >= p.seq) {
          p.journaled = true;
          journal_ms.push_back(std::chrono::duration<double, std::milli>(now - p.at).count());
        }
        if (p.stored) continue;
        if (!ids.empty()) ids.push_back(',');
        p.alert.append_to(ids);
      }
      if (!ids.empty()) {
        pqxx::nontransaction q(poll);
        for (const auto& row : q.exec_params(
                 "SELECT id::text FROM alerts WHERE id = ANY($1::uuid[]) AND status = 'triggered'",
                 "{" + ids + "}")) {
          const std::string id = row[0].as<std::string>();
          for (Probe& p : probes) {
            if (!p.stored && p.alert.str() == id) {
              p.stored = true;
              waits_ms.push_back(
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p.at)
                      .count());
            }
          }
        }
      }
      if (burst_done == std::chrono::steady_clock::time_point{} && now >= next_probe &&
          next_alert <= kBurstUsers) {
        db::WriteOp op;
        op.kind = db::WriteKind::alert_triggered;
        op.id = test::seq_id(test::kAlert, next_alert);
        op.ts = fill_op(1).ts;
        submit([&] { return writer.try_submit(op); });
        Event e;
        e.seq = g_burst_seq++;
        e.type = EventType::alert_triggered;
        e.ts = op.ts;
        e.subject = op.id;
        e.user_id = test::seq_id(test::kUser, next_alert++);
        submit([&] { return writer.try_journal(e); });
        probes.push_back({e.seq, op.id, now});
        next_probe = now + std::chrono::milliseconds(20);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    burst_s += std::chrono::duration<double>(burst_done - t0).count();
    state.PauseTiming();
    pqxx::connection c(url);
    pqxx::read_transaction t(c);
    const auto trades = t.exec("SELECT count(*) FROM trades")[0][0].as<long long>();
    const auto dead = t.exec("SELECT count(*) FROM engine_dead_letters")[0][0].as<long long>();
    const auto size =
        t.exec("SELECT sum(size)::bigint FROM positions WHERE id::text NOT LIKE '0000000b-%'")[0][0]
            .as<long long>();
    if (trades != kBurstFills || size != kBurstFills || dead != 0 ||
        writer.stats().conflicts.load() != 0) {
      state.SkipWithError(("the burst did not land whole: trades " + std::to_string(trades) +
                           ", size " + std::to_string(size) + ", dead letters " +
                           std::to_string(dead))
                              .c_str());
      return;
    }
    state.counters["capped_splits"] += static_cast<double>(writer.stats().capped_splits.load());
    state.ResumeTiming();
  }
  std::sort(waits_ms.begin(), waits_ms.end());
  std::sort(journal_ms.begin(), journal_ms.end());
  auto pct_of = [](const std::vector<double>& v, double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
  };
  auto pct = [&](double p) { return pct_of(waits_ms, p); };
  state.counters["burst_s"] = burst_s / static_cast<double>(state.iterations());
  state.counters["fills_per_s"] =
      static_cast<double>(kBurstFills) * static_cast<double>(state.iterations()) / burst_s;
  state.counters["probes"] = static_cast<double>(waits_ms.size());
  state.counters["other_alert_p50_ms"] = pct(0.50);
  state.counters["other_alert_p99_ms"] = pct(0.99);
  state.counters["other_alert_max_ms"] = waits_ms.empty() ? 0.0 : waits_ms.back();
  state.counters["its_event_p99_ms"] = pct_of(journal_ms, 0.99);
  state.SetItemsProcessed(state.iterations() * kBurstFills);
}

BENCHMARK(BM_Writer_Burst)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// The cold start: 1M open positions + 1M active alerts (+ 1M pending orders with --loader-orders)
/// over 1,000 markets into a matcher. Modes (the argument), in the same run:
///  0: the old path: one connection reads the tables in turn, every row filed one insert at a time;
///  1: the daemon's path: three connections in one exported snapshot, ladders built from sorted
///     runs (Matcher::begin_load / end_load);
///  2: the same COPY streams parsed into specs and dropped (the load without the matcher);
///  3: the same COPY streams alone, unparsed, on one connection (what PostgreSQL and libpq cost);
///  4: sorted runs, the tables read in turn on one connection (mode 1 without the parallel read).
void BM_Loader_IntoMatcher(benchmark::State& state) {
  const std::int64_t mode = state.range(0);
  const bool bulk = mode != 0;
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_loader");
    db::Migrator(u).migrate({});
    test::seed(u, 1000, g_loader_rows);
    if (g_loader_orders) {
      // As many pending paper orders: resting limits far from the price, spread over users and
      // markets like the positions.
      pqxx::connection c(u);
      pqxx::nontransaction(c).exec(
          "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price, "
          "leverage) SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
          "('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
          "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
          "('0000000a-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, 'limit', "
          "CASE WHEN g % 2 = 0 THEN 'long' ELSE 'short' END::order_side, 1, "
          "CASE WHEN g % 2 = 0 THEN 10 + g % 100 ELSE 100000 + g % 100 END, 5 "
          "FROM generate_series(1, " +
          std::to_string(g_loader_rows) + ") g");
    }
    return u;
  }();
  db::LoadCounts n;
  double build_ms = 0;
  std::unique_ptr<Matcher> keep;  // destroyed after timing: loading is not charged for teardown
  for (auto _ : state) {
    state.PauseTiming();
    keep.reset();
    keep = std::make_unique<Matcher>();
    state.ResumeTiming();
    Matcher& m = *keep;
    std::vector<Event> ev;
    InstrumentTable instruments;
    db::Loader loader(url, /*parallel=*/mode != 0 && mode != 4);
    if (mode == 3) {
      pqxx::connection c(url);
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c, "copy");
      std::string line;
      std::size_t rows = 0;
      for (const std::string& q : db::Loader::snapshot_queries(g_loader_orders)) {
        pqxx::stream_from s(tx, "(" + q + ")");
        while (s.get_raw_line(line)) ++rows;
        s.complete();
      }
      tx.commit();
      state.counters["rows"] = static_cast<double>(rows);
      continue;
    }
    db::LoadSink sink = db::matcher_sink(m, instruments, ev, g_loader_orders, bulk);
    if (mode == 2) {
      std::size_t alerts = 0;
      sink = db::LoadSink{[](MarketRow&&) {}, [](PositionSpec&&) {},
                          [&alerts](AlertSpec&&) { ++alerts; }, nullptr};
      if (g_loader_orders) {
        sink.balance = [](BalanceSpec&&) {};
        sink.order = [](OrderSpec&&) {};
      }
      n = loader.load_all(sink);
      if (alerts != static_cast<std::size_t>(g_loader_rows)) state.SkipWithError("load incomplete");
      continue;
    }
    if (sink.done) {  // how much of the load is building the ladders at its end
      sink.done = [&m, &build_ms] {
        const auto t0 = std::chrono::steady_clock::now();
        m.end_load();
        build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                       .count();
      };
    }
    n = loader.load_all(sink);
    if (m.alert_count() != static_cast<std::size_t>(g_loader_rows) || !ev.empty() ||
        (g_loader_orders && n.orders != static_cast<std::size_t>(g_loader_rows)))
      state.SkipWithError("load incomplete");
  }
  state.counters["positions"] = static_cast<double>(n.positions);
  state.counters["alerts"] = static_cast<double>(n.alerts);
  state.counters["orders"] = static_cast<double>(n.orders);
  state.counters["ladder_build_ms"] = build_ms;
  state.SetItemsProcessed(state.iterations() *
                          static_cast<std::int64_t>(n.positions + n.alerts + n.orders));
}

/// Bot commit -> engine command: each iteration, a "bot" connection cancels an alert; the clock
/// runs from COMMIT returning to the matching command arriving on the listener's queue. Reports
/// percentiles.
void BM_Listener_Latency(benchmark::State& state) {
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_listener");
    db::Migrator(u).migrate({});
    test::seed(u, 10, 5000);
    return u;
  }();
  db::Listener listener({.conninfo = url});
  auto wait_for = [&](const std::function<bool(const db::EngineCommand&)>& pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    db::EngineCommand c;
    while (std::chrono::steady_clock::now() < end) {
      while (listener.commands().try_dequeue(c)) {
        if (pred(c)) return true;
      }
      std::this_thread::yield();
    }
    return false;
  };
  if (!wait_for([](const db::EngineCommand& c) {
        return c.kind == db::EngineCommand::Kind::resync_end;
      })) {
    state.SkipWithError("no resync");
    return;
  }
  pqxx::connection bot(url);
  bot.prepare("cancel", "UPDATE alerts SET status = $2::alert_status WHERE id = $1::uuid");
  std::vector<double> us;
  long long n = 0;
  for (auto _ : state) {
    const Uuid id = test::seq_id(test::kAlert, 1 + n % 5000);
    const char* status = (n / 5000) % 2 == 0 ? "cancelled" : "active";
    ++n;
    pqxx::work w(bot);
    w.exec_prepared("cancel", id.str(), status);
    w.commit();
    const auto t0 = std::chrono::steady_clock::now();
    if (!wait_for([&](const db::EngineCommand& c) {
          return c.kind == db::EngineCommand::Kind::upsert_alert && c.alert.id == id;
        })) {
      state.SkipWithError("a change was not picked up");
      return;
    }
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double q) {
    return us[std::min(us.size() - 1,
                       static_cast<std::size_t>(q * static_cast<double>(us.size())))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = us.back();
}

BENCHMARK(BM_Writer_UnnestBatch)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Writer_CopyTempUpdate)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Writer_UpdatePerRow)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Writer_FillsBatch)->Iterations(20)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Writer_FillsBatch10k)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Writer_FillsTwoConnections)
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Writer_FillsPerTransaction)
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
/// CPU seconds (user + system) of each process of the PostgreSQL cluster `c` is connected to: its
/// postmaster and every process it forked (backends, WAL writer, checkpointer, autovacuum), by pid,
/// read from /proc.
std::map<long, double> postgres_cpu(pqxx::connection& c) {
  auto stat = [](long pid, long& ppid) -> double {
    std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr) return -1;
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    const char* p = std::strrchr(buf, ')');  // the command name may hold spaces
    if (p == nullptr) return -1;
    char state = 0;
    unsigned long utime = 0, stime = 0;
    // fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime stime
    if (std::sscanf(p + 2, "%c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &ppid,
                    &utime, &stime) != 4)
      return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  };
  static long postmaster = 0;
  if (postmaster == 0) {
    long ppid = 0;
    const long backend = pqxx::nontransaction(c).exec1("SELECT pg_backend_pid()")[0].as<long>();
    if (stat(backend, ppid) >= 0) postmaster = ppid;
  }
  std::map<long, double> out;
  long ppid = 0;
  if (double own = stat(postmaster, ppid); own >= 0) out[postmaster] = own;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(name);
    const double t = stat(pid, ppid);
    if (t >= 0 && ppid == postmaster) out[pid] = t;
  }
  return out;
}

/// CPU seconds the cluster's processes spent between two readings: those alive at the second (a
/// backend that started in between counts from zero; one that ended, e.g. an earlier phase's
/// writer still exiting at the first reading, is not charged).
double cpu_between(const std::map<long, double>& before, const std::map<long, double>& after) {
  double total = 0;
  for (const auto& [pid, t] : after) {
    auto it = before.find(pid);
    total += t - (it == before.end() ? 0.0 : it->second);
  }
  return total;
}

double g_marks_seconds = 10;  // --marks-seconds: each phase's length
int g_marks_tick_ms = 1000;   // --marks-tick-ms: how often each market's price changes (Binance
                              // pushes marks every 1 s, Bybit's tickers every 100 ms)

/// Marks at scale (docs/schema.md, "Marks"): N open positions over 1,000 markets, every market's
/// reference price moving every --marks-tick-ms (a random walk that liquidates nothing), driven
/// through the daemon's own MarkPublisher into a real Writer, in phases of the same run:
///  * idle: nothing to write (PostgreSQL's own background work);
///  * per_position: the old way, every open position's mark every second (uncapped passes);
///  * per_market: market marks only (the fresh view's input);
///  * default: market marks plus the paced background refresh at the shipped defaults;
///  * per_market_every_flush: every market's price moving every 10 ms, so that every market is
///    written on every flush (the most market marks can cost);
///  * staleness: the default configuration while a bot's connection measures tick -> visible: a
///    probe market's price moves and the bot polls positions_fresh (every 1 ms) for the
///    position's new uPnL (p50/p99/max).
/// For each cost phase: PostgreSQL's CPU (every process of the cluster, from /proc) as % of one
/// core and the writer's rows/s. Then the fresh view's latency for one user's positions.
void BM_Marks_PerMarketVsPerPosition(benchmark::State& state) {
  const auto n = static_cast<long long>(state.range(0));
  constexpr int kMarkets = 1000;
  static std::map<long long, std::string> dbs;
  std::string& url = dbs[n];
  if (url.empty()) {
    url = cluster().create_database("bench_marks_" + std::to_string(n));
    db::Migrator(url).migrate({});
    test::seed(url, kMarkets, n);
    pqxx::connection c(url);
    pqxx::nontransaction(c).exec("DELETE FROM alerts");
    pqxx::nontransaction(c).exec("VACUUM ANALYZE");
  }
  auto matcher = std::make_unique<Matcher>();
  InstrumentTable instruments;
  std::vector<Event> ev;
  db::Loader(url).load_all(db::matcher_sink(*matcher, instruments, ev));
  if (matcher->position_count() != static_cast<std::size_t>(n)) {
    state.SkipWithError("load incomplete");
    return;
  }
  std::vector<InstrumentId> instrument(kMarkets);
  for (int i = 0; i < kMarkets; ++i)
    instrument[i] = *instruments.find("binance", std::string("S").append(std::to_string(i)));
  // The probe: position 1 on market S1, which only the probe moves.
  const Uuid probe_id = test::seq_id(test::kPosition, 1);
  std::mt19937_64 rng(42);
  std::vector<std::int64_t> price(kMarkets, 1000 * kScale);
  auto tick = [&](int mi, std::int64_t p) {
    Tick t;
    t.instrument = instrument[mi];
    t.kind = TickKind::mark;
    t.price = p;
    t.exch_ts = 1'700'000'000'000'000'000;
    matcher->on_tick(t, ev);
  };
  for (int i = 0; i < kMarkets; ++i) tick(i, price[i]);
  pqxx::connection meter(url);

  struct Phase {
    const char* name;
    db::MarksConfig cfg;
    int tick_ms;  // each market's reference price changes this often
    bool probe;   // the staleness probe (its own queries are PostgreSQL CPU too: not a cost figure)
  };
  const db::MarksConfig defaults{};
  const db::MarksConfig no_refresh{.market_interval = defaults.market_interval,
                                   .refresh_interval = std::chrono::hours(1),
                                   .refresh_rows_per_s = 1};
  const db::MarksConfig nothing{.market_interval = std::chrono::hours(1),
                                .refresh_interval = std::chrono::hours(1),
                                .refresh_rows_per_s = 1};
  const std::vector<Phase> phases = {
      // PostgreSQL's own background work, and the writer's idle pings.
      {"idle", nothing, g_marks_tick_ms, false},
      {"per_market", no_refresh, g_marks_tick_ms, false},
      {"default", defaults, g_marks_tick_ms, false},
      // Every market's price changes on every flush: the most market marks can cost.
      {"per_market_every_flush", no_refresh, 10, false},
      {"staleness", defaults, g_marks_tick_ms, true},
      // The old way: every open position's mark every second (uncapped passes). Last, so that the
      // vacuum its 1M row versions call for is not charged to the phases before.
      {"per_position",
       {.market_interval = std::chrono::hours(1),
        .refresh_interval = std::chrono::seconds(1),
        .refresh_rows_per_s = 0},
       g_marks_tick_ms,
       false},
  };
  std::vector<double> staleness_ms;
  for (auto _ : state) {
    for (const Phase& ph : phases) {
      db::Writer writer({.conninfo = url});
      db::MarkPublisher pub(ph.cfg);
      // Probe hand-off with the bot's thread: it asks, the engine moves the probe market.
      std::atomic<bool> want_probe{false}, stop{false};
      std::mutex mu;
      std::string expected;
      std::chrono::steady_clock::time_point probed_at;
      std::thread bot;
      if (ph.probe) {
        bot = std::thread([&] {
          pqxx::connection c(url);
          c.prepare("pnl",
                    "SELECT unrealized_pnl = $2::numeric FROM positions_fresh WHERE id = $1");
          const std::string id = probe_id.str();
          while (!stop.load()) {
            want_probe.store(true);
            std::string want;
            std::chrono::steady_clock::time_point t0;
            while (!stop.load()) {
              std::this_thread::sleep_for(std::chrono::microseconds(200));
              std::lock_guard lock(mu);
              if (!want_probe.load() && !expected.empty()) {
                want = expected;
                t0 = probed_at;
                break;
              }
            }
            while (!stop.load()) {
              pqxx::nontransaction q(c);
              if (q.exec_prepared1("pnl", id, want)[0].as<bool>()) {
                staleness_ms.push_back(
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                        .count());
                break;
              }
              std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 20));
          }
        });
      }
      const std::uint64_t rows0 = writer.stats().rows.load();
      const std::map<long, double> cpu0 = postgres_cpu(meter);
      const auto start = std::chrono::steady_clock::now();
      const auto end = start + std::chrono::duration<double>(g_marks_seconds);
      auto next_round = start;
      std::int64_t probe_px = 1000 * kScale;
      for (auto now = start; now < end; now = std::chrono::steady_clock::now()) {
        bool worked = false;
        if (now >= next_round) {  // every market but the probe's moves by up to +-0.1
          next_round += std::chrono::milliseconds(ph.tick_ms);
          for (int i = 0; i < kMarkets; ++i) {
            if (i == 1) continue;
            price[i] = std::clamp<std::int64_t>(
                price[i] + static_cast<std::int64_t>(rng() % 200'000'001) - 100'000'000,
                995 * kScale, 1005 * kScale);
            tick(i, price[i]);
          }
          worked = true;
        }
        if (ph.probe && want_probe.load()) {
          probe_px = probe_px == 1001 * kScale ? 1000 * kScale : 1001 * kScale;
          tick(1, probe_px);
          std::lock_guard lock(mu);
          expected = format_fixed(matcher->position(probe_id)->unrealized_pnl, kPnlDigits);
          probed_at = std::chrono::steady_clock::now();
          want_probe.store(false);
        }
        const auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
        worked |= pub.step(*matcher, now, wall,
                           [&](const db::WriteOp& op) { return writer.try_submit(op); });
        if (!worked) std::this_thread::sleep_for(std::chrono::microseconds(200));
        ev.clear();
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double cpu = cpu_between(cpu0, postgres_cpu(meter));
      const std::uint64_t rows = writer.stats().rows.load() - rows0;
      stop.store(true);
      if (bot.joinable()) bot.join();
      const std::string k = ph.name;
      if (!ph.probe) state.counters[k + "_pg_cpu_pct"] = 100.0 * cpu / secs;
      state.counters[k + "_rows_per_s"] = static_cast<double>(rows) / secs;
      state.counters[k + "_market_marks"] = static_cast<double>(pub.market_marks_sent());
      state.counters[k + "_positions_sent"] = static_cast<double>(pub.positions_sent());
      if (writer.stats().dead_letters.load() != 0 || writer.stats().failures.load() != 0)
        state.SkipWithError("the writer failed");
    }
  }
  state.counters["cpu_ratio_per_position_over_default"] =
      state.counters["per_position_pg_cpu_pct"] /
      std::max(0.01, static_cast<double>(state.counters["default_pg_cpu_pct"]));
  auto pct = [](std::vector<double>& v, double q) {
    if (v.empty()) return -1.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
  };
  state.counters["staleness_samples"] = static_cast<double>(staleness_ms.size());
  state.counters["staleness_p50_ms"] = pct(staleness_ms, 0.50);
  state.counters["staleness_p99_ms"] = pct(staleness_ms, 0.99);
  state.counters["staleness_max_ms"] = pct(staleness_ms, 1.0);
  if (staleness_ms.empty()) state.SkipWithError("no staleness sample");
  // A user's positions through the fresh view (the bot's query), by user id.
  {
    pqxx::connection c(url);
    c.prepare("mine", "SELECT * FROM positions_live WHERE user_id = $1");
    std::vector<double> ms;
    for (int i = 0; i < 2000; ++i) {
      const std::string user = test::seq_uuid(test::kUser, 1 + static_cast<long long>(rng() % n));
      const auto t0 = std::chrono::steady_clock::now();
      pqxx::nontransaction q(c);
      const pqxx::result r = q.exec_prepared("mine", user);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      if (r.size() != 1 || r[0]["marked_at"].is_null()) {
        state.SkipWithError("a user's position is not fresh");
        break;
      }
    }
    state.counters["view_user_p50_ms"] = pct(ms, 0.50);
    state.counters["view_user_p99_ms"] = pct(ms, 0.99);
  }
}

BENCHMARK(BM_Marks_PerMarketVsPerPosition)
    ->Arg(1000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_Listener_Latency)->Iterations(300)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Loader_IntoMatcher)
    ->Arg(0)
    ->Arg(1)
    ->Arg(4)
    ->Arg(2)
    ->Arg(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  lam::map_large_tables();  // as laminator does
  std::signal(SIGPIPE, SIG_IGN);
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--loader-rows=", 14) == 0) {
      lam::bench::g_loader_rows = std::stoll(argv[i] + 14);
    } else if (std::strncmp(argv[i], "--marks-tick-ms=", 16) == 0) {
      lam::bench::g_marks_tick_ms = std::stoi(argv[i] + 16);
    } else if (std::strncmp(argv[i], "--marks-seconds=", 16) == 0) {
      lam::bench::g_marks_seconds = std::stod(argv[i] + 16);
    } else if (std::strncmp(argv[i], "--fills-sql=", 12) == 0) {
      lam::bench::g_fills_sql = argv[i] + 12;
    } else if (std::strcmp(argv[i], "--loader-orders") == 0) {
      lam::bench::g_loader_orders = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  using lam::bench::Ratio;
  return lam::bench::run_with_ratios(
      argc, argv,
      {{"per-row / UNNEST batch at 1k", "BM_Writer_UpdatePerRow/1000/real_time",
        "BM_Writer_UnnestBatch/1000/real_time", ">= 10"},
       {"per-row / UNNEST batch at 10k", "BM_Writer_UpdatePerRow/10000/real_time",
        "BM_Writer_UnnestBatch/10000/real_time", ">= 10"},
       {"fills: a transaction per fill / 1k per batch",
        "BM_Writer_FillsPerTransaction/iterations:5/real_time",
        "BM_Writer_FillsBatch/iterations:20/real_time", ">= 10"},
       {"fills: 1k on one connection / 2 x 500 on two",
        "BM_Writer_FillsBatch/iterations:20/real_time",
        "BM_Writer_FillsTwoConnections/iterations:20/real_time", "-"},
       {"cold start: one insert at a time / sorted runs",
        "BM_Loader_IntoMatcher/0/iterations:1/real_time",
        "BM_Loader_IntoMatcher/1/iterations:1/real_time", "-"},
       {"COPY+UPDATE / UNNEST batch at 10k", "BM_Writer_CopyTempUpdate/10000/real_time",
        "BM_Writer_UnnestBatch/10000/real_time", "-"},
       {"20k fills: one wallet / 20k wallets", "BM_Writer_Burst/1/iterations:1/real_time",
        "BM_Writer_Burst/0/iterations:1/real_time", "<= 2"}});
}
