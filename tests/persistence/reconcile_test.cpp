// laminator reconcile's invariants against a real PostgreSQL: books the writer made hold every one
// of them (the engine's audit rows and the bot's balance writes add up to the balances), and each
// kind of corruption is named by its invariant and row.
#include "persistence/reconcile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>

#include "engine/matcher.h"
#include "persistence/migrator.h"
#include "persistence/writer.h"
#include "tests/persistence/writer_support.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/seed.h"

namespace lam::db {
namespace {
using namespace std::chrono_literals;
using test::seq_id;
using test::seq_uuid;

constexpr unsigned kOrder = 0xF;
constexpr TimeNs kT0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction(c).exec(sql);
}

WriteOp fill(long long order, const Uuid& position, const char* price, const char* size,
             const char* fee, const char* realized, const char* locked, const char* entry,
             std::uint8_t flags, TimeNs ts) {
  return fill_op(seq_id(kOrder, order), position, price, size, fee, realized, locked, entry, flags,
                 ts);
}

std::uint64_t count_of(const ReconcileReport& r, const std::string& invariant) {
  const auto& inv = invariants();
  for (std::size_t i = 0; i < inv.size(); ++i)
    if (inv[i].name == invariant) return r.counts.at(i);
  ADD_FAILURE() << "no invariant " << invariant;
  return 0;
}

bool names(const ReconcileReport& r, const std::string& invariant, const std::string& row) {
  return std::any_of(r.violations.begin(), r.violations.end(), [&](const Violation& v) {
    return v.invariant == invariant && v.row_id.find(row) != std::string::npos;
  });
}

/// Three users with a wallet each (the bot's writes: balances, orders); user 1 opens a long with a
/// market order, a stop closes it, user 2 opens and is liquidated; all written by the Writer.
class Books : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!url_.empty()) return;  // Corrupt shares Books' database
    url_ = test::shared_cluster().create_database("reconcile");
    Migrator(url_).migrate({});
    exec(url_,
         "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
         "lpad(to_hex(g), 12, '0'))::uuid, g FROM generate_series(1, 3) g;"
         "INSERT INTO wallets (id, user_id, wallet_address) SELECT ('0000000e-0000-4000-8000-' || "
         "lpad(to_hex(g), 12, '0'))::uuid, ('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, "
         "'0'))::uuid, 'W' || lpad(g::text, 40, '0') FROM generate_series(1, 3) g;"
         "INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) VALUES ('" +
             seq_uuid(test::kMarket, 1) +
             "', 'BTCUSDT', 'BTC', 'Q', 'binance');"
             "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) SELECT "
             "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1000 FROM "
             "generate_series(1, 3) g;"
             "UPDATE wallet_balances SET balance = balance + 500 WHERE wallet_id = '" +
             seq_uuid(test::kWallet, 3) + "'");  // a deposit
    auto order = [&](long long n, int u, const char* type, const char* side) {
      exec(url_,
           "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
           "trigger_price, leverage) VALUES ('" +
               seq_uuid(kOrder, n) + "', '" + seq_uuid(test::kUser, u) + "', '" +
               seq_uuid(test::kWallet, u) + "', '" + seq_uuid(test::kMarket, 1) + "', '" + type +
               "', '" + side + "', 2, 90, 5)");
    };
    order(1, 1, "market", "long");
    order(2, 1, "stop", "sell");
    order(3, 2, "market", "long");
    const Uuid p1 = Matcher::position_id_for(seq_id(kOrder, 1));
    const Uuid p3 = Matcher::position_id_for(seq_id(kOrder, 3));
    Writer w({.conninfo = url_, .flush_interval = 10ms});
    ASSERT_TRUE(w.try_submit(fill(1, p1, "100", "2", "0.1", "-0.1", "40", "100",
                                  WriteOp::kTaker | WriteOp::kOpened, kT0)));
    ASSERT_TRUE(w.try_submit(fill(3, p3, "100", "2", "0.1", "-0.1", "40", "100",
                                  WriteOp::kTaker | WriteOp::kOpened, kT0)));
    ASSERT_TRUE(wait_idle(w));
    WriteOp trig;
    trig.kind = WriteKind::order_triggered;
    trig.id = seq_id(kOrder, 2);
    trig.ts = kT0 + 5'000'000'000;
    ASSERT_TRUE(w.try_submit(trig));
    ASSERT_TRUE(w.try_submit(fill(2, p1, "89", "2", "0.089", "-22.089", "-40", "100",
                                  WriteOp::kTaker | WriteOp::kReduce, kT0 + 5'000'000'000)));
    WriteOp liq;
    liq.kind = WriteKind::position_liquidated;
    liq.id = p3;
    liq.price = *parse_raw("80.5");
    liq.amount = *parse_raw("-40.1");
    liq.ts = kT0 + 6'000'000'000;
    ASSERT_TRUE(w.try_submit(liq));
    ASSERT_TRUE(wait_idle(w));
    ASSERT_EQ(w.stats().conflicts.load(), 0u);
    ASSERT_EQ(w.stats().dead_letters.load(), 0u);
  }
  static ReconcileReport check(pqxx::transaction_base& tx) { return reconcile(tx, 50); }
  static inline std::string url_;
};

TEST_F(Books, WhatTheWriterMadeHoldsEveryInvariant) {
  pqxx::connection c(url_);
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
  const ReconcileReport r = check(tx);
  for (const Violation& v : r.violations)
    ADD_FAILURE() << v.invariant << " " << v.table << " " << v.row_id << ": " << v.detail;
  EXPECT_EQ(r.total(), 0u);
  EXPECT_EQ(r.counts.size(), invariants().size());
  EXPECT_EQ(r.balances_unchecked, 0u);
  // The check covered real books: two fills closed a position, one was liquidated.
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM trades")[0].as<int>(), 3);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM positions WHERE status = 'liquidated'")[0].as<int>(), 1);
}

// Each corruption inside a transaction that is rolled back; reconcile runs in it.
class Corrupt : public Books {
 protected:
  void SetUp() override {
    c_ = std::make_unique<pqxx::connection>(url_);
    w_ = std::make_unique<pqxx::work>(*c_);
    // As before 0012-0014 (or a hand edit): no constraint, trigger or audit row of our own.
    w_->exec("SET LOCAL session_replication_role = replica");
  }
  void TearDown() override {
    w_->abort();
    w_.reset();
    c_.reset();
  }
  ReconcileReport after(const std::string& sql) {
    w_->exec(sql);
    return check(*w_);
  }
  std::unique_ptr<pqxx::connection> c_;
  std::unique_ptr<pqxx::work> w_;
};

TEST_F(Corrupt, AnOrdersFilledSizeThatIsNotItsTrades) {
  const auto r =
      after("UPDATE orders SET filled_size = 1 WHERE id = '" + seq_uuid(kOrder, 1) + "'");
  EXPECT_EQ(count_of(r, "order_filled_size"), 1u);
  EXPECT_TRUE(names(r, "order_filled_size", seq_uuid(kOrder, 1)));
}

TEST_F(Corrupt, AFilledOrderWithoutItsTrade) {
  const auto r = after("DELETE FROM trades WHERE order_id = '" + seq_uuid(kOrder, 2) + "'");
  EXPECT_TRUE(names(r, "fill_has_one_trade", seq_uuid(kOrder, 2)));
  EXPECT_TRUE(names(r, "order_filled_size", seq_uuid(kOrder, 2)));
}

TEST_F(Corrupt, AFillWithoutItsAuditRows) {
  const auto r = after("DELETE FROM audit_logs WHERE action = 'order.filled' AND resource_id = '" +
                       seq_uuid(kOrder, 1) + "'");
  EXPECT_EQ(count_of(r, "fill_audited_once"), 1u);
  EXPECT_TRUE(names(r, "fill_audited_once", Matcher::trade_id_for(seq_id(kOrder, 1)).str()));
}

TEST_F(Corrupt, ABalanceMovedWithoutAMove) {
  const auto r = after("UPDATE wallet_balances SET balance = balance + 1 WHERE wallet_id = '" +
                       seq_uuid(test::kWallet, 1) + "'");
  EXPECT_EQ(count_of(r, "balance_matches_moves"), 1u);
  EXPECT_EQ(count_of(r, "locked_is_open_margin"), 0u);
}

TEST_F(Corrupt, LockedMarginOfNoPosition) {
  const auto r = after("UPDATE wallet_balances SET locked_balance = 5 WHERE wallet_id = '" +
                       seq_uuid(test::kWallet, 1) + "'");
  EXPECT_EQ(count_of(r, "locked_is_open_margin"), 1u);
  EXPECT_EQ(count_of(r, "balance_matches_moves"), 1u);  // the lock moved without an audit row
}

TEST_F(Corrupt, ALiquidatedPositionFilledAfterwards) {
  const Uuid p3 = Matcher::position_id_for(seq_id(kOrder, 3));
  const auto r =
      after("UPDATE trades SET executed_at = '2026-01-01 00:00:09Z' WHERE position_id = '" +
            p3.str() + "'");
  EXPECT_TRUE(names(r, "liquidated_unchanged", p3.str()));
}

TEST_F(Corrupt, AnOrderOnAnotherUsersWallet) {
  const auto r = after(
      "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, "
      "size) VALUES ('" +
      seq_uuid(kOrder, 9) + "', '" + seq_uuid(test::kUser, 2) + "', '" +
      seq_uuid(test::kWallet, 1) + "', '" + seq_uuid(test::kMarket, 1) + "', 'market', 'long', 1)");
  EXPECT_TRUE(names(r, "wallet_owner", seq_uuid(kOrder, 9)));
}

TEST_F(Corrupt, AFilledOrderSetBackToOpen) {
  const auto r =
      after("UPDATE orders SET status = 'open' WHERE id = '" + seq_uuid(kOrder, 1) + "'");
  EXPECT_TRUE(names(r, "finished_stays_finished", seq_uuid(kOrder, 1)));
  EXPECT_TRUE(names(r, "fill_has_one_trade", seq_uuid(kOrder, 1)));
}

TEST_F(Corrupt, ABalanceWhoseHistoryExpiredIsCountedNotChecked) {
  const auto r = after(
      "DELETE FROM audit_logs WHERE resource_type = 'wallet_balance' AND "
      "resource_id = (SELECT id FROM wallet_balances WHERE wallet_id = '" +
      seq_uuid(test::kWallet, 3) + "')");
  EXPECT_EQ(r.balances_unchecked, 1u);
  EXPECT_EQ(count_of(r, "balance_matches_moves"), 0u);
}

}  // namespace
}  // namespace lam::db
