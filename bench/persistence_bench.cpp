// Persistence figures on a throwaway local PostgreSQL 15 (started by this program):
//  * writer: rows/s applying a batch of N position marks (N = 1k, 10k): the engine's one-statement
//    UNNEST batch, COPY into a temp table + UPDATE FROM, and one prepared UPDATE per row
//    (baseline);
//  * fills: fills/s applying paper fills (order, new position, trade, balance, audit rows each)
//    1k per batch statement, against the same statement once per fill (baseline: a transaction
//    per fill);
//  * loader: seconds to stream 1M positions + 1M alerts (+ 1M pending orders with
//    --loader-orders) into the matcher (--loader-rows=N to change).
//
//   build/release/bench/persistence_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>

#include "bench/ratio_report.h"
#include "engine/matcher.h"
#include "persistence/batch.h"
#include "persistence/listener.h"
#include "persistence/loader.h"
#include "persistence/migrator.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/seed.h"

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
    db::Migrator(u).migrate({});
    test::seed(u, 1000, kWriterRows);
    pqxx::connection c(u);
    pqxx::nontransaction n(c);
    n.exec("VACUUM ANALYZE positions");
    return u;
  }();
  return url;
}

/// N distinct random positions with fresh marks, sorted by id (deterministic lock order).
std::vector<db::WriteOp> marks(std::size_t n, std::mt19937_64& rng) {
  std::set<long long> unique;
  while (unique.size() < n) unique.insert(1 + static_cast<long long>(rng() % kWriterRows));
  const std::vector<long long> ids(unique.begin(), unique.end());
  std::vector<db::WriteOp> ops;
  for (long long id : ids) {
    db::WriteOp op;
    op.kind = db::WriteKind::position_mark;
    op.id = test::seq_id(test::kPosition, id);
    op.price = static_cast<std::int64_t>(1000 + rng() % 1000) * kScale +
               static_cast<std::int64_t>(rng() % kScale);
    op.amount =
        static_cast<Wide>(static_cast<std::int64_t>(rng() % 100'000'000'000)) * 1'000'000'000 + 123;
    ops.push_back(op);
  }
  return ops;
}

void verify_applied(benchmark::State& state, pqxx::connection& c, const db::WriteOp& last) {
  pqxx::read_transaction t(c);
  const auto r =
      t.exec_params("SELECT current_price::text FROM positions WHERE id = $1::uuid", last.id.str());
  if (r.empty() || r[0][0].is_null() ||
      r[0][0].as<std::string>().rfind(format_fixed(last.price / kScale, 0), 0) != 0) {
    state.SkipWithError("the batch was not applied");
  }
}

/// A connection that writes as the engine does (its writes do not notify).
std::unique_ptr<pqxx::connection> engine_connection() {
  auto c = std::make_unique<pqxx::connection>(writer_db());
  pqxx::nontransaction(*c).exec("SET app.origin = 'engine'");
  return c;
}

/// The measurement shared by the write methods: each iteration applies N fresh marks (generated
/// untimed) with `apply`, which returns the rows it updated; every batch is checked, and the last
/// row is read back at the end.
template <class Apply>
void run_writer(benchmark::State& state, pqxx::connection& c, std::uint64_t seed, Apply apply) {
  std::mt19937_64 rng(seed);
  const auto n = static_cast<std::size_t>(state.range(0));
  db::WriteOp last;
  for (auto _ : state) {
    state.PauseTiming();
    const auto ops = marks(n, rng);
    state.ResumeTiming();
    if (apply(ops) != n) {
      state.SkipWithError("not every row was updated");
      return;
    }
    last = ops.back();
  }
  verify_applied(state, c, last);
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_Writer_UnnestBatch(benchmark::State& state) {
  auto c = engine_connection();
  db::prepare_batch(*c);
  run_writer(state, *c, 1, [&](const std::vector<db::WriteOp>& ops) {
    db::Batch b;
    for (const auto& op : ops) b.add(op);  // coalescing and SQL building are part of the cost
    pqxx::nontransaction tx(*c);
    return db::apply_batch(tx, b).marks_applied;
  });
}

void BM_Writer_CopyTempUpdate(benchmark::State& state) {
  auto c = engine_connection();
  pqxx::nontransaction(*c).exec(
      "CREATE TEMP TABLE tmp_marks (id uuid, price numeric(36,18), pnl numeric(36,18)) ON COMMIT "
      "DELETE ROWS");
  run_writer(state, *c, 2, [&](const std::vector<db::WriteOp>& ops) {
    pqxx::work w(*c);
    {
      pqxx::stream_to s(w, "tmp_marks", std::vector<std::string>{"id", "price", "pnl"});
      for (const auto& op : ops) {
        s << std::make_tuple(op.id.str(), format_fixed(op.price), format_fixed(op.amount, 18));
      }
      s.complete();
    }
    const auto r = w.exec(
        "UPDATE positions p SET current_price = t.price, unrealized_pnl = t.pnl, updated_at = "
        "now() "
        "FROM tmp_marks t WHERE p.id = t.id AND p.status = 'open'");
    w.commit();
    return static_cast<std::size_t>(r.affected_rows());
  });
}

void BM_Writer_UpdatePerRow(benchmark::State& state) {
  auto c = engine_connection();
  c->prepare("one",
             "UPDATE positions SET current_price = $2, unrealized_pnl = $3, updated_at = now() "
             "WHERE id = $1 AND status = 'open'");
  run_writer(state, *c, 3, [&](const std::vector<db::WriteOp>& ops) {
    pqxx::work w(*c);
    std::size_t rows = 0;
    for (const auto& op : ops) {
      rows +=
          w.exec_prepared("one", op.id.str(), format_fixed(op.price), format_fixed(op.amount, 18))
              .affected_rows();
    }
    w.commit();
    return rows;
  });
}

// ---- fills ----------------------------------------------------------------------------------
constexpr long long kFillUsers = 10'000, kFillMarkets = 100, kFillOrders = 100'000;
constexpr long long kFillPositions = 200'000;
constexpr unsigned kOrderKind = 0xF;

/// Users with a funded wallet each, and a pool of pending paper market orders; order n belongs to
/// user u = 1 + n % 10k on market (u + 1 + n / 10k) % 100, so every fill opens its own (user,
/// market) position, never on the market of the user's seeded one.
const std::string& fills_db() {
  static const std::string url = [] {
    const std::string u = cluster().create_database("bench_fills");
    db::Migrator(u).migrate({});
    // A lived-in database: 200k users with a position and an alert each (user g's position on
    // market g % 100), so the plans are those of real tables, not of empty ones.
    test::seed(u, static_cast<int>(kFillMarkets), kFillPositions);
    pqxx::connection c(u);
    pqxx::nontransaction n(c);
    const std::string series = " FROM generate_series(1, " + std::to_string(kFillUsers) + ") g";
    n.exec(
        "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) SELECT "
        "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1e9" +
        series);
    n.exec(
        "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
        "leverage) SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
        "('0000000c-0000-4000-8000-' || lpad(to_hex(1 + g % 10000), 12, '0'))::uuid, "
        "('0000000e-0000-4000-8000-' || lpad(to_hex(1 + g % 10000), 12, '0'))::uuid, "
        "('0000000a-0000-4000-8000-' || lpad(to_hex((1 + g % 10000 + 1 + g / 10000) % 100), 12, "
        "'0'))::uuid, 'market', 'long', 1, 10 FROM generate_series(1, " +
        std::to_string(kFillOrders) + ") g");
    n.exec("VACUUM ANALYZE");
    return u;
  }();
  return url;
}

long long g_next_order = 1;  // orders are consumed: each is filled once

/// The fill of order n as the engine loop builds it: size 1 at 1000, taker fee 0.5, margin 100.
db::WriteOp fill_op(long long n) {
  db::WriteOp op;
  op.kind = db::WriteKind::order_filled;
  op.id = test::seq_id(kOrderKind, n);
  op.ref = Matcher::position_id_for(op.id);
  op.price = 1000 * kScale;
  op.size = kScale;
  op.amount = kScale / 2;
  op.realized = -(kScale / 2);
  op.locked = 100 * kScale;
  op.entry = 1000 * kScale;
  op.flags = db::WriteOp::kTaker | db::WriteOp::kOpened;
  op.ts = 1'767'225'600'000'000'000;
  return op;
}

/// Each iteration fills 1,000 orders: in one batch statement (`per_batch` = 1000) or one
/// statement and transaction per fill (`per_batch` = 1). Every fill must land.
void run_fills(benchmark::State& state, std::size_t per_batch) {
  auto c = std::make_unique<pqxx::connection>(fills_db());
  pqxx::nontransaction(*c).exec("SET app.origin = 'engine'");
  db::prepare_batch(*c);
  constexpr std::size_t kPerIteration = 1000;
  for (auto _ : state) {
    if (g_next_order + static_cast<long long>(kPerIteration) > kFillOrders + 1) {
      state.SkipWithError("the order pool is used up: fewer iterations");
      return;
    }
    std::size_t applied = 0;
    for (std::size_t done = 0; done < kPerIteration; done += per_batch) {
      db::Batch b;
      for (std::size_t i = 0; i < per_batch; ++i) b.add(fill_op(g_next_order++));
      pqxx::nontransaction tx(*c);
      const db::BatchResult r = db::apply_batch(tx, b);
      applied += r.fills_applied;
      if (!r.conflicts.empty()) {
        state.SkipWithError(("conflict: " + r.conflicts.front()).c_str());
        return;
      }
    }
    if (applied != kPerIteration) {
      state.SkipWithError("not every fill landed");
      return;
    }
  }
  pqxx::read_transaction t(*c);
  const auto trades = t.exec("SELECT count(*) FROM trades")[0][0].as<long long>();
  if (trades != g_next_order - 1) state.SkipWithError("trades do not match the fills");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kPerIteration));
}

void BM_Writer_FillsBatch(benchmark::State& state) {
  run_fills(state, 1000);
}

void BM_Writer_FillsPerTransaction(benchmark::State& state) {
  run_fills(state, 1);
}

void BM_Loader_IntoMatcher(benchmark::State& state) {
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
  std::unique_ptr<Matcher> keep;  // destroyed after timing: loading is not charged for teardown
  for (auto _ : state) {
    state.PauseTiming();
    keep.reset();
    keep = std::make_unique<Matcher>();
    state.ResumeTiming();
    Matcher& m = *keep;
    std::vector<Event> ev;
    InstrumentTable instruments;
    db::Loader loader(url);
    n = loader.load_all(db::matcher_sink(m, instruments, ev, g_loader_orders));
    if (m.alert_count() != static_cast<std::size_t>(g_loader_rows) || !ev.empty() ||
        (g_loader_orders && n.orders != static_cast<std::size_t>(g_loader_rows)))
      state.SkipWithError("load incomplete");
  }
  state.counters["positions"] = static_cast<double>(n.positions);
  state.counters["alerts"] = static_cast<double>(n.alerts);
  state.counters["orders"] = static_cast<double>(n.orders);
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
BENCHMARK(BM_Writer_FillsPerTransaction)
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Listener_Latency)->Iterations(300)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Loader_IntoMatcher)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--loader-rows=", 14) == 0) {
      lam::bench::g_loader_rows = std::stoll(argv[i] + 14);
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
       {"COPY+UPDATE / UNNEST batch at 10k", "BM_Writer_CopyTempUpdate/10000/real_time",
        "BM_Writer_UnnestBatch/10000/real_time", "-"}});
}
