// The fault suite: the real daemon, PostgreSQL and the mock exchange, each failure provoked for
// real, and the one property checked every time: every event exactly once, seq contiguous, no
// alert fired twice, nothing stalled for everyone.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "tests/daemon/e2e_harness.h"

namespace lam::test {
namespace {

/// `n` alerts of user 1: price_above 80000 + g/1000 (all cross at 80100), ids alert_id(1..n).
void bulk_alerts(const E2E& e, int n, int first = 1) {
  e.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, '" +
      user(1) + "', '" + kMarket +
      "', 'price_above', 'greater_than', 80000 + g * 0.001 FROM generate_series(" +
      std::to_string(first) + ", " + std::to_string(first + n - 1) + ") g");
}

/// No event for at least `ticks` more ticks evaluated (nothing may fire again).
void expect_quiet_for_ticks(const E2E& e, double ticks) {
  const double events = e.metric("laminator_engine_events_total");
  const double t0 = e.metric("laminator_engine_ticks_total");
  ASSERT_TRUE(wait_for([&] { return e.metric("laminator_engine_ticks_total") >= t0 + ticks; }))
      << "ticks stopped";
  EXPECT_EQ(e.metric("laminator_engine_events_total"), events);
}

TEST(Faults, PostgresKilledMidBurstWithAsynchronousCommitLosesAndRepeatsNothing) {
  PgCluster cluster;  // private: this test crashes it
  constexpr int kN = 20'000;
  E2E e("fault_pgkill", DaemonKnobs{.cluster = &cluster});
  // The server's default, as scripts/local-pg sets it: the writer must commit synchronously anyway.
  e.exec(
      "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', "
      "current_database()); END $$");
  bulk_alerts(e, kN);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  auto sub = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  e.mock().pin_price("BTCUSDT", 8'010'000);  // all fire at once: a burst of 20,000 transitions
  ASSERT_TRUE(wait_for([&] { return count(e, "SELECT count(*) FROM alert_events") > 0; }, 20s));
  cluster.kill();  // mid-burst: the writer has committed some batches, not all
  const int at_kill = [&] {
    cluster.start();
    return count(e, "SELECT count(*) FROM alert_events");
  }();
  EXPECT_LT(at_kill, kN) << "the burst was written before the kill: the test did not hit it";
  // Everything lands, once: the writer retried what the crash cut, the listener's resync did not
  // re-arm what the engine had fired but not yet written.
  ASSERT_TRUE(wait_for(
      [&] { return count(e, "SELECT count(*) FROM alerts WHERE status = 'triggered'") == kN; },
      60s))
      << e.log_text();
  EXPECT_TRUE(wait_for([&] { return count(e, "SELECT count(*) FROM alert_events") == kN; }, 30s))
      << count(e, "SELECT count(*) FROM alert_events") << "\n"
      << e.log_text();
  EXPECT_EQ(count(e, "SELECT max(seq) FROM alert_events"), kN);
  // A subscriber that fell behind the burst (a sanitizer build reads slowly) resumes with since.
  read_exactly(e, sub, kN, 1);
  EXPECT_GE(e.metric("laminator_writer_failures_total"), 1);
  expect_quiet_for_ticks(e, 100);
  // A restart finds the journal whole and fires nothing again.
  ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  EXPECT_EQ(e.metric("laminator_journal_holes"), 0);
  expect_quiet_for_ticks(e, 100);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events"), kN);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

TEST(Faults, SigkillUnderLoadWithARingResizeLosesAndRepeatsNothing) {
  constexpr int kN = 3'000;
  // Nothing reaches the database before the kill (60 s flush): only the ring holds the events.
  DaemonKnobs k{.flush_interval_ms = 60'000, .crash_ring_slots = 4096};
  E2E e("fault_ringresize", k);
  bulk_alerts(e, kN);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  auto sub = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  e.mock().pin_price("BTCUSDT", 8'010'000);
  const auto before = read_exactly(e, sub, kN, 1);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events"), 0);
  EXPECT_EQ(e.signal_and_wait(SIGKILL), 128 + SIGKILL);
  // Restarted with a ring of 1,024 slots: the 3,000 events of the old ring must all be carried.
  k.crash_ring_slots = 1024;
  k.flush_interval_ms = 20;
  e.reconfigure(k);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events WHERE recovered"), kN);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alerts WHERE status = 'triggered'"), kN);
  // Recovery is paged (2,000 records per transaction) and says how far it is (issue 28: a
  // recovery of a burst sat for minutes with no port open and no word).
  EXPECT_NE(e.log_text().find("crash recovery: page 1/2"), std::string::npos) << e.log_tail();
  EXPECT_NE(e.log_text().find("crash recovery: page 2/2"), std::string::npos) << e.log_tail();
  expect_quiet_for_ticks(e, 100);  // the price still crosses every target
  auto again = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  const auto after = read_exactly(e, again, kN, 1);
  for (std::size_t i = 0; i < after.size() && i < before.size(); ++i)
    EXPECT_EQ(sfield(after[i], "alert_id"), sfield(before[i], "alert_id"));
  // And new events continue the sequence.
  add_alert(e, kN + 1, 1, "price_above", "greater_than", "80001");
  const auto next = read_n(*again, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(seq_of(next[0]), kN + 1u);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

TEST(Faults, SigkillWithFillsOnlyInTheRingLeavesEveryFillInTheDatabaseOnce) {
  constexpr int kOrders = 200;  // 40 per user: each user's first opens a long, the rest increase it
  DaemonKnobs k{.flush_interval_ms = 60'000};  // nothing reaches the database before the kill
  E2E e("fault_fills", k);
  e.exec(
      "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) SELECT "
      "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'USDT', 1000000 FROM "
      "generate_series(1, 5) g");
  e.mock().pin_price("BTCUSDT", 8'000'000);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  auto sub = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  e.exec(
      "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, leverage) "
      "SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
      "('0000000c-0000-4000-8000-' || lpad(to_hex(1 + g % 5), 12, '0'))::uuid, "
      "('0000000e-0000-4000-8000-' || lpad(to_hex(1 + g % 5), 12, '0'))::uuid, '" +
      std::string(kMarket) + "', 'market', 'long', 0.001, 10 FROM generate_series(1, " +
      std::to_string(kOrders) + ") g");
  // Every fill is two events (order.filled, then position.opened / increased).
  const auto before = read_exactly(e, sub, 2 * kOrders, 1);
  EXPECT_EQ(count(e, "SELECT count(*) FROM trades"), 0);
  EXPECT_EQ(e.signal_and_wait(SIGKILL), 128 + SIGKILL);

  k.flush_interval_ms = 20;
  e.reconfigure(k);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  // The ring's fills were applied at start-up: each once, whole.
  EXPECT_EQ(count(e, "SELECT count(*) FROM trades"), kOrders);
  EXPECT_EQ(count(e, "SELECT count(*) FROM orders WHERE status = 'filled'"), kOrders);
  EXPECT_EQ(count(e,
                  "SELECT count(*) FROM positions WHERE status = 'open' AND size = 0.04 AND "
                  "side = 'long'"),
            5);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events WHERE recovered"), 2 * kOrders);
  // Per wallet: the balance moved by its trades' realized PnL (the fees), and what is locked is
  // the margin of its open position.
  EXPECT_EQ(count(e,
                  "SELECT count(*) FROM wallet_balances b WHERE b.balance - 1000000 = (SELECT "
                  "sum(realized_pnl) FROM trades t WHERE t.wallet_id = b.wallet_id) AND "
                  "b.locked_balance = (SELECT sum(margin) FROM positions p WHERE p.wallet_id = "
                  "b.wallet_id AND p.status = 'open') AND b.balance < 1000000"),
            5);
  EXPECT_EQ(count(e, "SELECT count(*) FROM audit_logs WHERE action = 'order.filled'"), kOrders);
  EXPECT_EQ(e.metric("laminator_writer_conflicts_total"), 0);
  // The stream replays the same events from the journal; nothing fills again.
  auto again = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  const auto after = read_exactly(e, again, 2 * kOrders, 1);
  for (std::size_t i = 0; i < after.size() && i < before.size(); ++i)
    EXPECT_EQ(sfield(after[i], "order_id"), sfield(before[i], "order_id"));
  expect_quiet_for_ticks(e, 100);
  ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  expect_quiet_for_ticks(e, 100);
  EXPECT_EQ(count(e, "SELECT count(*) FROM trades"), kOrders);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events"), 2 * kOrders);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

TEST(Faults, ResumeFromTheJournalsFirstSeqWhileEventsKeepFiring) {
  constexpr int kN = 20'000;
  // A small in-memory ring: the catch-up comes from journal pages, paced by the socket.
  E2E e("fault_resume", DaemonKnobs{.ring_events = 1024});
  bulk_alerts(e, kN);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  e.mock().pin_price("BTCUSDT", 8'010'000);
  ASSERT_TRUE(wait_for([&] { return count(e, "SELECT count(*) FROM alert_events") == kN; }, 30s));
  // Load: the bot keeps adding alerts that fire at once, 20 every 20 ms.
  std::atomic<bool> stop{false};
  std::atomic<int> added{0};
  std::thread bot([&] {
    int next = kN + 1;
    while (!stop.load() && next < kN + 4000) {
      e.exec(
          "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, "
          "target_price) SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, "
          "'0'))::uuid, '" +
          user(2) + "', '" + kMarket +
          "', 'price_above', 'greater_than', 80000 FROM generate_series(" + std::to_string(next) +
          ", " + std::to_string(next + 19) + ") g");
      next += 20;
      added += 20;
      std::this_thread::sleep_for(20ms);
    }
  });
  std::this_thread::sleep_for(100ms);  // let live events start before the subscriber arrives
  auto sub = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  std::size_t resumes = 0;
  const auto got = read_exactly(e, sub, kN + 500, 1, &resumes);  // the journal, then live ones
  stop = true;
  bot.join();
  EXPECT_GE(added.load(), 500);  // the live events were there while it caught up
  EXPECT_EQ(resumes, 0u) << "a reader keeping pace was cut: catch-up must be paced by its writes";
  EXPECT_FALSE(sub->closed()) << sub->close_code() << " " << sub->close_reason();
  EXPECT_EQ(e.metric("laminator_stream_slow_cuts_total"), 0);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

TEST(Faults, APoisonedRowAmongThousandsIsDeadLetteredAndEverythingElseWritten) {
  constexpr int kN = 3'000;
  E2E e("fault_poison");
  bulk_alerts(e, kN);
  const std::string poison = alert_id(1234);
  // A constraint the engine does not know about (a DBA's), violated by one alert's transition.
  e.exec("ALTER TABLE alerts ADD CONSTRAINT dba_rule CHECK (status <> 'triggered' OR id <> '" +
         poison + "') NOT VALID");
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  auto sub = std::make_unique<StreamClient>(e.stream_url("?since=0"), kToken);
  e.mock().pin_price("BTCUSDT", 8'010'000);
  read_exactly(e, sub, kN, 1);
  ASSERT_TRUE(wait_for([&] { return count(e, "SELECT count(*) FROM alert_events") == kN; }, 30s))
      << e.log_text();
  EXPECT_EQ(count(e, "SELECT count(*) FROM alerts WHERE status = 'triggered'"), kN - 1);
  const auto d = e.query("SELECT table_name, row_id, kind, sqlstate FROM engine_dead_letters");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0][0].as<std::string>(), "alerts");
  EXPECT_EQ(d[0][1].as<std::string>(), poison);
  EXPECT_EQ(d[0][2].as<std::string>(), "alert_triggered");
  EXPECT_EQ(d[0][3].as<std::string>(), "23514");
  EXPECT_EQ(e.metric("laminator_writer_dead_letters_total"), 1);
  EXPECT_EQ(e.health().first, 200) << e.health().second;  // the database is fine; one row is not
  // Later transitions still flow.
  add_alert(e, kN + 1, 1, "price_above", "greater_than", "80001");
  ASSERT_TRUE(wait_for([&] {
    return count(e, "SELECT count(*) FROM alerts WHERE status = 'triggered'") == kN;
  })) << e.log_text();
  // A restart does not fire the dead-lettered alert again (it is still 'active' in the table).
  ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  expect_quiet_for_ticks(e, 100);
  EXPECT_EQ(count(e, "SELECT count(*) FROM alert_events"), kN + 1);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

// Issue 28, section 3: thousands of random bot writes, valid, hostile and racing (orders of every
// type, cancels, finished orders set back to open, orders on another user's wallet, positions the
// bot writes and closes, deposits, bursts of one wallet's market orders in one transaction), price
// moves, a feed outage (the first connections go silent, the symbol is held, the watchdog
// reconnects), a SIGKILL and a SIGTERM of the daemon; then `laminator reconcile` over the whole
// database must find the books right, every invariant, and a fresh load of them (a restart at the
// same price) must find nothing left to do: no fill, trigger or liquidation happens again.
TEST(Faults, RandomBotWritesAndKillsLeaveTheBooksReconciled) {
  const unsigned seed =
      28'000 + static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  E2E e("fault_books",
        DaemonKnobs{.flush_interval_ms = 30, .stale_budget_ms = 300, .idle_budget_ms = 1500});
  mockex::Faults outage;  // the first two Binance connections fall silent after 400 frames
  outage.connections = 2;
  outage.stall_after = 400;
  e.mock().set_faults(feeds::Venue::binance, outage);
  auto wallet = [](int u) {
    char b[40];
    std::snprintf(b, sizeof b, "0000000e-0000-4000-8000-%012x", u);
    return std::string(b);
  };
  auto order_id = [](int n) {
    char b[40];
    std::snprintf(b, sizeof b, "0000000f-0000-4000-8000-%012x", n);
    return std::string(b);
  };
  auto position_id = [](int n) {
    char b[40];
    std::snprintf(b, sizeof b, "0000000b-0000-4000-8000-%012x", n);
    return std::string(b);
  };
  for (int u = 1; u <= 3; ++u)
    e.exec("INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" + wallet(u) +
           "', 'USDT', 100000)");
  std::int64_t cents = 8'000'000;
  e.mock().pin_price("BTCUSDT", cents);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto price = [&](int offset_bp) {
    const std::int64_t c = cents + cents * offset_bp / 10'000;
    return std::to_string(c / 100) + "." + std::to_string(c % 100 / 10) + std::to_string(c % 10);
  };
  int orders = 0, positions = 0, refused = 0, accepted = 0, writes = 0;
  auto try_exec = [&](const std::string& sql, int rows = 1) {
    writes += rows;
    try {
      e.exec(sql);
      ++accepted;
      return true;
    } catch (const std::exception&) {
      ++refused;  // the database said no (a guard, a constraint, a race): fine, as long as it did
      return false;
    }
  };
  const char* kSides[] = {"long", "short", "sell", "buy"};
  auto new_order = [&](int u, int w, std::string extra_cols = "", std::string extra_vals = "") {
    const int n = ++orders;
    const char* type = std::array{"market", "market", "limit", "stop"}[pick(0, 3)];
    const char* side = kSides[pick(0, 3)];
    const std::string px = std::string(type) == "limit" ? price(pick(-30, 30)) : "NULL";
    const std::string trig = std::string(type) == "stop" ? price(pick(-40, 40)) : "NULL";
    return "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price, "
           "trigger_price, leverage" +
           extra_cols + ") VALUES ('" + order_id(n) + "', '" + user(u) + "', '" + wallet(w) +
           "', '" + kMarket + "', '" + type + "', '" + side + "', 0.0" +
           std::to_string(pick(1, 9)) + ", " + px + ", " + trig + ", " +
           std::to_string(pick(2, 20)) + extra_vals + ")";
  };
  for (int step = 1; step <= 400; ++step) {
    const int u = pick(1, 3);
    switch (pick(0, 11)) {
      case 0:
      case 1:
      case 2:
      case 3:
        try_exec(new_order(u, u));
        break;
      case 4:  // the bot's cancel, racing the engine
        if (orders > 0)
          try_exec("UPDATE orders SET status = 'cancelled' WHERE id = '" +
                   order_id(pick(1, orders)) + "'");
        break;
      case 5:  // a finished order set back to open: the database refuses it
        if (orders > 0)
          try_exec("UPDATE orders SET status = 'open' WHERE id = '" + order_id(pick(1, orders)) +
                   "' AND status IN ('filled', 'cancelled', 'expired', 'failed')");
        break;
      case 6:  // an order on another user's wallet: refused
        EXPECT_FALSE(try_exec(new_order(u, u % 3 + 1))) << "an order on another user's wallet";
        break;
      case 7: {  // a position the bot writes (an import): it locks its margin
        const int n = ++positions;
        try_exec(
            "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, "
            "entry_price, leverage, margin) VALUES ('" +
            position_id(n) + "', '" + user(u) + "', '" + wallet(u) + "', '" + kMarket + "', '" +
            (pick(0, 1) ? "long" : "short") + "', 0.01, " + price(0) + ", 10, " +
            std::to_string(pick(50, 200)) + ")");
        break;
      }
      case 8:  // the bot closes one of its positions
        if (positions > 0)
          try_exec("UPDATE positions SET status = 'closed', closed_at = now() WHERE id = '" +
                   position_id(pick(1, positions)) + "' AND status = 'open'");
        break;
      case 9:  // a deposit
        try_exec("UPDATE wallet_balances SET balance = balance + " + std::to_string(pick(1, 500)) +
                 " WHERE wallet_id = '" + wallet(u) + "'");
        break;
      case 10: {  // one wallet's burst: 40 market orders in one transaction
        std::string sql;
        for (int k = 0; k < 40; ++k) {
          const int n = ++orders;
          sql +=
              "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
              "leverage) VALUES ('" +
              order_id(n) + "', '" + user(u) + "', '" + wallet(u) + "', '" + kMarket +
              "', 'market', '" + kSides[pick(0, 1)] + "', 0.01, 10);";
        }
        try_exec(sql, 40);
        break;
      }
      default:  // the price moves
        cents += cents * pick(-40, 40) / 10'000;
        e.mock().pin_price("BTCUSDT", cents);
        break;
    }
    if (step == 150) {
      ASSERT_EQ(e.signal_and_wait(SIGKILL), 128 + SIGKILL);
      e.start();
      ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
    }
    if (step == 300) {
      ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
      e.start();
      ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(0, 8)));
  }
  // Settle: everything the engine did is written.
  ASSERT_TRUE(wait_for([&] { return e.metric("laminator_writer_pending_rows") == 0; }, 20s));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(wait_for([&] { return e.metric("laminator_writer_pending_rows") == 0; }, 20s));
  // A fresh load of the books at the same price finds nothing left to do.
  ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
  const int trades_before = count(e, "SELECT count(*) FROM trades");
  expect_quiet_for_ticks(e, 200);
  EXPECT_EQ(count(e, "SELECT count(*) FROM trades"), trades_before);
  ASSERT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
  std::string out;
  FILE* p = ::popen((std::string(LAMINATOR_BINARY) + " reconcile --database-url '" + e.url() +
                     "' --limit 20 2>&1")
                        .c_str(),
                    "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int st = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  // The run did something: fills, refusals and bot writes.
  EXPECT_GT(count(e, "SELECT count(*) FROM trades"), 10) << out;
  EXPECT_GT(refused, 10);
  EXPECT_GT(accepted, 200);
  EXPECT_GT(writes, 1000) << "thousands of the bot's writes";
  EXPECT_EQ(count(e, "SELECT count(*) FROM wallet_balances WHERE locked_balance < 0"), 0);
}

}  // namespace
}  // namespace lam::test
