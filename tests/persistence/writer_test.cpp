// The batched writer against a real PostgreSQL: coalescing, transitions, conflicts, a full queue,
// and a server crash in the middle of a run.
#include "persistence/writer.h"

#include <gtest/gtest.h>

#include <csignal>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "persistence/batch.h"
#include "persistence/migrator.h"
#include "tests/persistence/writer_support.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/seed.h"

namespace lam::db {
namespace {
using namespace std::chrono_literals;
using test::kAlert;
using test::kPosition;
using test::seq_id;
using test::seq_uuid;

std::string fresh(const std::string& name, long long n) {
  return test::migrated_seeded_db(name, 10, n);
}

pqxx::row one(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  return t.exec(sql)[0];
}

WriteOp mark(long long n, const char* price, const char* pnl18) {
  WriteOp op;
  op.kind = WriteKind::position_mark;
  op.id = seq_id(kPosition, n);
  op.price = *parse_raw(price);
  op.amount = parse_decimal(pnl18).value.floor * kScale;
  return op;
}

TEST(Writer, MarksCoalesceLatestWins) {
  const std::string url = fresh("writer_marks", 10);
  Writer w({.conninfo = url, .flush_interval = 200ms});
  for (int i = 1; i <= 100; ++i)
    ASSERT_TRUE(w.try_submit(mark(1, (std::to_string(1000 + i) + ".5").c_str(), "1.25")));
  ASSERT_TRUE(wait_idle(w));
  const auto r =
      one(url, "SELECT current_price::text, unrealized_pnl::text FROM positions WHERE id = '" +
                   seq_uuid(kPosition, 1) + "'");
  EXPECT_EQ(r[0].as<std::string>(), "1100.500000000000000000");
  EXPECT_EQ(r[1].as<std::string>(), "1.250000000000000000");
  EXPECT_EQ(w.stats().rows.load(), 1u) << "100 marks, one row";
  EXPECT_EQ(w.stats().batches.load(), 1u);
}

TEST(Writer, BatchSendsMarksInUuidOrderAndPlansThemAsIndexLookups) {
  const std::string url = fresh("writer_plan", 2000);
  Batch b;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    WriteOp op = mark(1 + static_cast<long long>(rng() % 2000), "1000.5", "1");
    op.id.hi ^= static_cast<std::uint64_t>(i % 3) << 62;  // spread over the high bits too
    b.add(op);
  }
  const std::string ids = b.parameters()[0];
  pqxx::connection c(url);
  pqxx::nontransaction(c).exec("ANALYZE positions");
  prepare_batch(c);
  c.prepare_now("laminator_batch");  // libpqxx 6.4 prepares lazily
  pqxx::nontransaction n(c);
  // The server agrees the ids are in its own uuid order.
  EXPECT_TRUE(n.exec_params1("SELECT a = ARRAY(SELECT unnest(a) ORDER BY 1) FROM (SELECT "
                             "$1::uuid[] AS a) s",
                             ids)[0]
                  .as<bool>());
  // A fresh session uses the generic plan at once: the marks look positions up by id instead of
  // merge-joining against a scan of the whole primary key.
  std::string plan, args = "'" + ids + "'";
  for (std::size_t i = 1; i < b.parameters().size(); ++i) args += ", '{}'";
  for (const auto& row : n.exec("EXPLAIN EXECUTE laminator_batch(" + args + ")"))
    plan += row[0].as<std::string>() + "\n";
  const auto from = plan.find("CTE marked"), to = plan.find("CTE liquidated");
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos) << plan;
  const std::string marked = plan.substr(from, to - from);
  EXPECT_NE(marked.find("Nested Loop"), std::string::npos) << marked;
  EXPECT_NE(marked.find("Index Scan using positions_pkey"), std::string::npos) << marked;
}

TEST(Writer, TransitionsAreWrittenWithTheirValues) {
  const std::string url = fresh("writer_transitions", 10);
  Writer w({.conninfo = url, .flush_interval = 10ms});
  const TimeNs t = 1767225600123LL * kNsPerMs;
  WriteOp liq{seq_id(kPosition, 2), -100 * static_cast<Wide>(kScale), *parse_raw("950.25"), t,
              WriteKind::position_liquidated};
  WriteOp trig{seq_id(kAlert, 3), 0, *parse_raw("1001"), t, WriteKind::alert_triggered};
  WriteOp exp{seq_id(kAlert, 4), 0, 0, t, WriteKind::alert_expired};
  WriteOp anchor{seq_id(kAlert, 5), 0, *parse_raw("999.5"), t, WriteKind::alert_anchored};
  for (const WriteOp& op : {mark(2, "960", "-40"), liq, trig, exp, anchor})
    ASSERT_TRUE(w.try_submit(op));
  ASSERT_TRUE(wait_idle(w));
  auto p = one(url,
               "SELECT status, closed_at = '2026-01-01T00:00:00.123Z', current_price::text, "
               "unrealized_pnl::text, "
               "realized_pnl::text FROM positions WHERE id = '" +
                   seq_uuid(kPosition, 2) + "'");
  EXPECT_EQ(p[0].as<std::string>(), "liquidated");
  EXPECT_TRUE(p[1].as<bool>());
  EXPECT_EQ(p[2].as<std::string>(), "950.250000000000000000");
  EXPECT_EQ(p[3].as<std::string>(), "0.000000000000000000");
  EXPECT_EQ(p[4].as<std::string>(), "-100.000000000000000000");
  auto a = one(url,
               "SELECT status, triggered_at = '2026-01-01T00:00:00.123Z', anchor_price::text FROM "
               "alerts WHERE id = '" +
                   seq_uuid(kAlert, 3) + "'");
  EXPECT_EQ(a[0].as<std::string>(), "triggered");
  EXPECT_TRUE(a[1].as<bool>());
  EXPECT_EQ(a[2].as<std::string>(), "1001.000000000000000000");
  EXPECT_EQ(one(url, "SELECT status FROM alerts WHERE id = '" + seq_uuid(kAlert, 4) + "'")[0]
                .as<std::string>(),
            "expired");
  auto an = one(url, "SELECT status, anchor_price::text FROM alerts WHERE id = '" +
                         seq_uuid(kAlert, 5) + "'");
  EXPECT_EQ(an[0].as<std::string>(), "active");
  EXPECT_EQ(an[1].as<std::string>(), "999.500000000000000000");
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
}

TEST(Writer, ATransitionThatLostARaceIsCountedNotApplied) {
  const std::string url = fresh("writer_conflict", 10);
  {
    pqxx::connection c(url);
    pqxx::work tx(c);
    tx.exec("UPDATE alerts SET status = 'cancelled' WHERE id = '" + seq_uuid(kAlert, 7) +
            "'");  // the bot
    tx.exec("UPDATE positions SET status = 'closed' WHERE id = '" + seq_uuid(kPosition, 7) + "'");
    tx.commit();
  }
  Writer w({.conninfo = url, .flush_interval = 10ms});
  ASSERT_TRUE(w.try_submit({seq_id(kAlert, 7), 0, 0, 1, WriteKind::alert_triggered}));
  ASSERT_TRUE(w.try_submit({seq_id(kPosition, 7), 0, kScale, 1, WriteKind::position_liquidated}));
  ASSERT_TRUE(w.try_submit({seq_id(kAlert, 8), 0, 0, 1, WriteKind::alert_triggered}));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().conflicts.load(), 2u);
  EXPECT_EQ(one(url, "SELECT status FROM alerts WHERE id = '" + seq_uuid(kAlert, 7) + "'")[0]
                .as<std::string>(),
            "cancelled");
  EXPECT_EQ(one(url, "SELECT status FROM positions WHERE id = '" + seq_uuid(kPosition, 7) + "'")[0]
                .as<std::string>(),
            "closed");
  EXPECT_EQ(one(url, "SELECT status FROM alerts WHERE id = '" + seq_uuid(kAlert, 8) + "'")[0]
                .as<std::string>(),
            "triggered");
}

TEST(Writer, OwnWritesDoNotNotify) {
  const std::string url = fresh("writer_no_echo", 10);
  pqxx::connection listener(url);
  {
    pqxx::nontransaction n(listener);
    n.exec("LISTEN laminator_changes");
  }
  Writer w({.conninfo = url, .flush_interval = 10ms});
  ASSERT_TRUE(w.try_submit({seq_id(kAlert, 1), 0, 0, 1, WriteKind::alert_triggered}));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(listener.await_notification(0, 300'000), 0)
      << "the engine's write came back as a notification";
  pqxx::connection bot(url);
  pqxx::work tx(bot);
  tx.exec("UPDATE alerts SET message = 'x' WHERE id = '" + seq_uuid(kAlert, 2) + "'");
  tx.commit();
  EXPECT_EQ(listener.await_notification(2, 0), 1) << "a bot write must notify";
}

TEST(Writer, FullQueueRefusesWithoutBlocking) {
  Writer w({.conninfo = "host=/nonexistent dbname=x connect_timeout=1", .queue_capacity = 64});
  std::size_t accepted = 0;
  for (int i = 0; i < 100'000; ++i) accepted += w.try_submit(mark(1, "1", "0")) ? 1 : 0;
  EXPECT_LT(accepted, 100'000u);
  EXPECT_GT(w.stats().rejected_full.load(), 0u);
  w.stop(100ms);
}

TEST(Writer, ServerCrashMidRunLosesNothingAndAppliesOnce) {
  constexpr int kAlerts = 3000;
  const std::string url = fresh("writer_crash", kAlerts);
  test::PgCluster& pg = test::shared_cluster();
  Writer w({.conninfo = url, .flush_interval = 5ms, .backoff_min = 10ms, .backoff_max = 200ms});
  std::thread restarter;
  for (int i = 1; i <= kAlerts; ++i) {
    WriteOp op{seq_id(kAlert, i), 0, 0, (1767225600000LL + i) * kNsPerMs,
               WriteKind::alert_triggered};
    while (!w.try_submit(op))
      std::this_thread::sleep_for(1ms);  // the engine keeps transitions it cannot enqueue
    if (i % 50 == 0) {
      ASSERT_TRUE(w.try_submit(mark(1 + i % 100, std::to_string(1000 + i).c_str(), "1")));
    }
    if (i == kAlerts / 3) {
      pg.kill();  // crash-stop mid-run
      restarter = std::thread([&pg] {
        std::this_thread::sleep_for(700ms);
        pg.start();
      });
    }
    if (i % 100 == 0) std::this_thread::sleep_for(2ms);
  }
  restarter.join();
  ASSERT_TRUE(wait_idle(w, 60s)) << "pending rows: " << w.stats().pending_rows.load();
  EXPECT_GT(w.stats().failures.load(), 0u) << "the crash was not noticed";
  EXPECT_GT(w.stats().reconnects.load(), 1u);
  EXPECT_EQ(w.stats().conflicts.load(), 0u) << "a retry was mistaken for a race";
  const auto r = one(url,
                     "SELECT count(*) FILTER (WHERE status = 'triggered'), "
                     "count(*) FILTER (WHERE triggered_at = to_timestamp((1767225600000 + "
                     "('x' || right(id::text, 12))::bit(48)::bigint) / 1000.0)) FROM alerts");
  EXPECT_EQ(r[0].as<int>(), kAlerts) << "every transition is in the database";
  EXPECT_EQ(r[1].as<int>(), kAlerts) << "each with its own triggered_at";
}

}  // namespace
}  // namespace lam::db

namespace lam::db {
namespace {

TEST(Writer, APoisonedRowAmongThousandsIsDeadLetteredAndEverythingElseWritten) {
  // Regression: a uPnL outside DECIMAL(36,18) made the writer retry the same batch forever;
  // nothing was journaled or applied for anyone and the log did not say which row.
  constexpr long long kRows = 3000, kBad = 1234;
  const std::string url = fresh("writer_poison", kRows);
  Writer w({.conninfo = url, .flush_interval = 50ms});
  for (long long n = 1; n <= kRows; ++n) {
    WriteOp op = mark(n, "1000.5", "2");
    if (n == kBad)
      op.amount =
          static_cast<Wide>(10'000'000'000'000'000'000ULL) * 1'000'000'000'000'000'000LL;  // 1e19
    ASSERT_TRUE(w.try_submit(op));
  }
  const TimeNs t = 1767225600123LL * kNsPerMs;
  ASSERT_TRUE(
      w.try_submit({seq_id(kAlert, 3), 0, *parse_raw("1001"), t, WriteKind::alert_triggered}));
  Event e;
  e.seq = 1;
  e.ts = t;
  e.type = EventType::alert_triggered;
  e.subject = seq_id(kAlert, 3);
  e.user_id = seq_id(test::kUser, 1);
  ASSERT_TRUE(w.try_journal(e));
  ASSERT_TRUE(wait_idle(w)) << "the writer must not retry the poisoned batch forever";
  EXPECT_EQ(one(url, "SELECT count(*) FROM positions WHERE current_price = 1000.5")[0].as<long>(),
            kRows - 1);
  EXPECT_EQ(one(url, "SELECT status FROM alerts WHERE id = '" + seq_uuid(kAlert, 3) + "'")[0]
                .as<std::string>(),
            "triggered");
  EXPECT_EQ(one(url, "SELECT count(*) FROM alert_events")[0].as<long>(), 1);
  const auto d =
      one(url, "SELECT table_name, row_id, kind, sqlstate, occurrences FROM engine_dead_letters");
  EXPECT_EQ(d[0].as<std::string>(), "positions");
  EXPECT_EQ(d[1].as<std::string>(), seq_uuid(kPosition, kBad));
  EXPECT_EQ(d[2].as<std::string>(), "mark");
  EXPECT_EQ(d[3].as<std::string>(), "22003");  // numeric field overflow
  EXPECT_EQ(w.stats().dead_letters.load(), 1u);
  EXPECT_EQ(w.stats().db_ok.load(), 1u) << "a bad row is not the database being down";
  // Later writes go through, and the quarantined position is not retried on every sweep.
  ASSERT_TRUE(w.try_submit(mark(1, "1200", "3")));
  WriteOp again = mark(kBad, "1200", "3");
  again.amount = static_cast<Wide>(10'000'000'000'000'000'000ULL) * 1'000'000'000'000'000'000LL;
  ASSERT_TRUE(w.try_submit(again));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(one(url, "SELECT current_price::text FROM positions WHERE id = '" +
                         seq_uuid(kPosition, 1) + "'")[0]
                .as<std::string>(),
            "1200.000000000000000000");
  EXPECT_EQ(w.stats().quarantined_marks.load(), 1u);
  EXPECT_EQ(w.stats().dead_letters.load(), 1u);
}

// Issue 28: a row the bot keeps locked made every flush hit the statement timeout and retry on a
// new connection, forever: nothing of anyone was written, and /healthz said "database
// unreachable". A statement past the timeout is split like a data error: everything else lands,
// the one locked row is dead-lettered, and the database is never called unreachable.
TEST(Writer, AStatementPastItsTimeoutIsSplitAndTheRestLands) {
  const std::string url = fresh("writer_timeout", 40);
  pqxx::connection locker(url);
  pqxx::work held(locker);
  held.exec("SELECT 1 FROM alerts WHERE id = '" + seq_uuid(kAlert, 7) + "' FOR UPDATE");
  Writer w({.conninfo = url, .flush_interval = 10ms, .statement_timeout = 300ms});
  const TimeNs t = 1767225600123LL * kNsPerMs;
  for (long long n = 1; n <= 20; ++n) {
    ASSERT_TRUE(w.try_submit({seq_id(kAlert, n), 0, 0, t, WriteKind::alert_triggered}));
    ASSERT_TRUE(w.try_submit(mark(20 + n, "1000.5", "2")));
  }
  ASSERT_TRUE(wait_idle(w, 30s)) << "the locked row held the writer";
  EXPECT_EQ(one(url, "SELECT count(*) FROM alerts WHERE status = 'triggered'")[0].as<long>(), 19);
  EXPECT_EQ(one(url, "SELECT count(*) FROM positions WHERE current_price = 1000.5")[0].as<long>(),
            20);
  const auto d = one(url, "SELECT table_name, row_id, sqlstate FROM engine_dead_letters");
  EXPECT_EQ(d[0].as<std::string>(), "alerts");
  EXPECT_EQ(d[1].as<std::string>(), seq_uuid(kAlert, 7));
  EXPECT_EQ(d[2].as<std::string>(), "57014");  // query_canceled: the statement timeout
  EXPECT_GE(w.stats().timeout_splits.load(), 1u);
  EXPECT_EQ(w.stats().db_ok.load(), 1u) << "a slow statement is not an unreachable database";
  EXPECT_EQ(w.stats().writes_failing.load(), 0u);
  held.abort();
}

// Issue 28: the ops drained with a flush's events could take a batch far past max_batch_rows (a
// flush of 28,818 rows at a cap of 10,000). It is applied in statements of at most the cap, the
// transitions before their events.
TEST(Writer, ABatchNeverExceedsMaxBatchRows) {
  const std::string url = fresh("writer_cap", 400);
  // The first flush waits on a lock while everything else is queued: the next one then drains
  // 400 events and, with them, all 400 of their transitions (800 rows against a cap of 100).
  pqxx::connection locker(url);
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE alerts IN ACCESS EXCLUSIVE MODE");
  Writer w({.conninfo = url, .flush_interval = 10ms, .max_batch_rows = 100});
  const TimeNs t = 1767225600123LL * kNsPerMs;
  auto submit = [&](long long n) {
    ASSERT_TRUE(w.try_submit({seq_id(kAlert, n), 0, 0, t, WriteKind::alert_triggered}));
    Event e;
    e.seq = static_cast<std::uint64_t>(n);
    e.ts = t;
    e.type = EventType::alert_triggered;
    e.subject = seq_id(kAlert, n);
    e.user_id = seq_id(test::kUser, n);
    ASSERT_TRUE(w.try_journal(e));
  };
  submit(1);
  std::this_thread::sleep_for(300ms);  // the writer's first statement is waiting for the lock
  for (long long n = 2; n <= 400; ++n) submit(n);
  lock.commit();
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(one(url, "SELECT count(*) FROM alerts WHERE status = 'triggered'")[0].as<long>(), 400);
  EXPECT_EQ(one(url, "SELECT count(*) FROM alert_events")[0].as<long>(), 400);
  EXPECT_GE(w.stats().capped_splits.load(), 1u) << "a flush held more than the cap ...";
  EXPECT_LE(w.stats().largest_statement_rows.load(), 100u) << "... in statements of at most 100";
  EXPECT_EQ(w.stats().journaled_seq.load(), 400u);
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
}

TEST(Writer, SessionCommitsSynchronouslyWhateverTheServerDefault) {
  // Regression: with synchronous_commit = off on the server (scripts/local-pg sets it), a
  // PostgreSQL crash lost journal rows the writer had counted as committed.
  const std::string url = fresh("writer_sync", 1);
  {
    pqxx::connection c(url);
    pqxx::nontransaction(c).exec("ALTER DATABASE " + c.quote_name(c.dbname()) +
                                 " SET synchronous_commit = off");
  }
  pqxx::connection plain(url);
  EXPECT_EQ(pqxx::nontransaction(plain).exec1("SHOW synchronous_commit")[0].as<std::string>(),
            "off");
  pqxx::connection c(url);
  configure_writer_session(c);
  EXPECT_EQ(pqxx::nontransaction(c).exec1("SHOW synchronous_commit")[0].as<std::string>(), "on");
}

}  // namespace
}  // namespace lam::db
