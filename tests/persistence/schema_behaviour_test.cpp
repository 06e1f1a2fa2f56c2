// What the schema does with data: partition routing, RLS, encryption, the views, triggers.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "persistence/migrator.h"
#include "tests/support/pg_cluster.h"

namespace lam::db {
namespace {

// Hand-made dataset: two users; alice has two wallets (USDC in both, SOL in one) and three open
// positions plus a closed one; bob has one wallet and no position.
constexpr const char* kAlice = "a0000000-0000-4000-8000-000000000001";
constexpr const char* kBob = "b0000000-0000-4000-8000-000000000002";

class SchemaData : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = test::shared_cluster().create_database("schema_data");
    Migrator(url_).migrate({});
    pqxx::connection c(url_);
    pqxx::work w(c);
    // A dataset as found (its positions are margined in USDT, its balances are USDC and SOL): not
    // the bot's writes, so 0013's trigger locks nothing for them.
    w.exec("SET LOCAL app.origin = 'engine'");
    w.exec(
        std::string(R"(
      INSERT INTO users (id, telegram_id, telegram_username) VALUES
        (')") +
        kAlice + R"(', 1, 'alice'), (')" + kBob + R"(', 2, 'bob');
      INSERT INTO wallets (id, user_id, wallet_address) VALUES
        ('a1000000-0000-4000-8000-000000000001', ')" +
        kAlice + R"(', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1'),
        ('a2000000-0000-4000-8000-000000000001', ')" +
        kAlice + R"(', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA2'),
        ('b1000000-0000-4000-8000-000000000002', ')" +
        kBob + R"(', 'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB1');
      INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance) VALUES
        ('a1000000-0000-4000-8000-000000000001', 'USDC', 100, 10),
        ('a2000000-0000-4000-8000-000000000001', 'USDC', 50, 0),
        ('a2000000-0000-4000-8000-000000000001', 'SOL', 3.5, 0.5),
        ('b1000000-0000-4000-8000-000000000002', 'USDC', 7, 0);
      INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) VALUES
        ('c0000000-0000-4000-8000-000000000001', 'BTCUSDT', 'BTC', 'USDT', 'binance'),
        ('c0000000-0000-4000-8000-000000000002', 'ETHUSDT', 'ETH', 'USDT', 'binance');
      INSERT INTO positions (user_id, wallet_id, market_id, side, size, entry_price, margin, unrealized_pnl, status) VALUES
        (')" +
        kAlice +
        R"(', 'a1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'long', 1, 100, 10, 5.5, 'open'),
        (')" +
        kAlice +
        R"(', 'a1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'short', 1, 100, 10, -2, 'open'),
        (')" +
        kAlice +
        R"(', 'a2000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000002', 'long', 2, 50, 10, 1.25, 'open'),
        (')" +
        kAlice +
        R"(', 'a2000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000002', 'short', 1, 50, 5, 100, 'closed');
      INSERT INTO orders (user_id, wallet_id, market_id, order_type, side, size, status, avg_fill_price, total_fees, created_at) VALUES
        (')" +
        kAlice +
        R"(', 'a1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'market', 'buy', 2, 'filled', 100, 1, '2026-01-01 10:00+00'),
        (')" +
        kAlice +
        R"(', 'a1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'limit', 'buy', 1, 'open', NULL, 0, '2026-01-01 11:00+00'),
        (')" +
        kBob +
        R"(', 'b1000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000002', 'market', 'sell', 3, 'filled', 50, 3, '2026-01-01 12:00+00'),
        (')" +
        kBob +
        R"(', 'b1000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000002', 'market', 'sell', 1, 'filled', 40, 0.5, '2026-01-02 12:00+00');
    )");
    w.commit();
  }
  static pqxx::result query(const std::string& sql) {
    pqxx::connection c(url_);
    pqxx::work w(c);
    w.exec("SET TIME ZONE 'UTC'");
    return w.exec(sql);
  }
  static inline std::string url_;
};

TEST_F(SchemaData, OneOpenPositionPerSideButAClosedSideMayReopen) {
  // Alice's ETH short is closed: a new one may open (0005 made the uniqueness open-only) ...
  const std::string open_short =
      std::string(
          "INSERT INTO positions (user_id, wallet_id, market_id, side, size, entry_price, "
          "margin) VALUES ('") +
      kAlice +
      "', 'a2000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000002', "
      "'short', 1, 60, 6)";
  pqxx::connection c(url_);
  {
    pqxx::work w(c);
    EXPECT_NO_THROW(w.exec(open_short));
    // ... but a second open one on the same side is refused
    EXPECT_THROW(w.exec(open_short), pqxx::unique_violation);
  }
  {
    pqxx::work w(c);
    EXPECT_THROW(w.exec("UPDATE orders SET filled_size = size + 1"), pqxx::check_violation);
  }
}

TEST_F(SchemaData, UserPortfolioDoesNotDoubleCount) {
  const auto r = query(
      "SELECT telegram_username, token_symbol, total_balance::text, open_positions, "
      "total_unrealized_pnl::text FROM user_portfolio ORDER BY 1, 2");
  ASSERT_EQ(r.size(), 3u);
  // alice SOL: 3.5 - 0.5 ; 3 open positions, uPnL 5.5 - 2 + 1.25 (the closed one is out)
  EXPECT_EQ(r[0][0].as<std::string>(), "alice");
  EXPECT_EQ(r[0][1].as<std::string>(), "SOL");
  EXPECT_EQ(r[0][2].as<std::string>(), "3.000000000000000000");
  EXPECT_EQ(r[0][3].as<int>(), 3);
  EXPECT_EQ(r[0][4].as<std::string>(), "4.750000000000000000");
  // alice USDC: (100 - 10) + 50 across two wallets, not multiplied by her positions
  EXPECT_EQ(r[1][2].as<std::string>(), "140.000000000000000000");
  EXPECT_EQ(r[1][3].as<int>(), 3);
  // bob: one balance, no positions
  EXPECT_EQ(r[2][0].as<std::string>(), "bob");
  EXPECT_EQ(r[2][2].as<std::string>(), "7.000000000000000000");
  EXPECT_EQ(r[2][3].as<int>(), 0);
  EXPECT_EQ(r[2][4].as<std::string>(), "0");
}

TEST_F(SchemaData, TradingStatsPerDay) {
  const auto r = query(
      "SELECT to_char(trading_date, 'YYYY-MM-DD'), total_orders, filled_orders, "
      "total_volume::text, round(avg_fees, 6)::text FROM trading_stats");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0][0].as<std::string>(), "2026-01-02");  // newest first
  EXPECT_EQ(r[0][3].as<std::string>(), "40.000000000000000000000000000000000000");
  EXPECT_EQ(r[1][0].as<std::string>(), "2026-01-01");
  EXPECT_EQ(r[1][1].as<int>(), 3);
  EXPECT_EQ(r[1][2].as<int>(), 2);
  EXPECT_EQ(r[1][3].as<std::string>(), "350.000000000000000000000000000000000000");  // 2*100 + 3*50
  EXPECT_EQ(r[1][4].as<std::string>(), "2.000000");  // (1 + 3) / 2 filled orders
}

TEST_F(SchemaData, RowLevelSecuritySeesOnlyOwnRows) {
  pqxx::connection c(url_);
  auto count_as = [&](const char* user, const char* table) {
    pqxx::work w(c);
    w.exec("SET LOCAL ROLE authenticated_user");
    if (user != nullptr) w.exec_params("SELECT set_config('app.current_user_id', $1, true)", user);
    return w.exec(std::string("SELECT count(*) FROM ") + table)[0][0].as<int>();
  };
  EXPECT_EQ(count_as(kAlice, "wallet_balances"), 3);
  EXPECT_EQ(count_as(kBob, "wallet_balances"), 1);
  EXPECT_EQ(count_as(kAlice, "positions"), 4);
  EXPECT_EQ(count_as(kBob, "positions"), 0);
  EXPECT_EQ(count_as(kAlice, "orders"), 2);
  EXPECT_EQ(count_as(kBob, "orders"), 2);
  EXPECT_EQ(count_as(nullptr, "orders"), 0) << "no user set: nothing visible";
  // and cannot write rows for someone else
  pqxx::work w(c);
  w.exec("SET LOCAL ROLE authenticated_user");
  w.exec_params("SELECT set_config('app.current_user_id', $1, true)", kBob);
  EXPECT_EQ(w.exec(std::string("UPDATE positions SET size = 9 WHERE user_id = '") + kAlice + "'")
                .affected_rows(),
            0u);
}

// Issue 28: the database refuses an order or a position naming another user's wallet, from the
// engine's role and from the bot's row-level-security role alike, and a wallet cannot be handed
// to another user while its owner's rows name it.
TEST_F(SchemaData, AnotherUsersWalletIsRefused) {
  const std::string bobs_wallet = "'b1000000-0000-4000-8000-000000000002'";
  const std::string order =
      std::string(
          "INSERT INTO orders (user_id, wallet_id, market_id, order_type, side, size) VALUES ('") +
      kAlice + "', " + bobs_wallet +
      ", 'c0000000-0000-4000-8000-000000000001', 'market', 'long', 1)";
  const std::string position = std::string(
                                   "INSERT INTO positions (user_id, wallet_id, market_id, side, "
                                   "size, entry_price, margin) VALUES ('") +
                               kAlice + "', " + bobs_wallet +
                               ", 'c0000000-0000-4000-8000-000000000002', 'short', 1, 10, 1)";
  pqxx::connection c(url_);
  for (const std::string& sql : {order, position}) {
    pqxx::work w(c);
    EXPECT_THROW(w.exec(sql), pqxx::foreign_key_violation) << sql;
  }
  for (const std::string& sql : {order, position}) {  // through the bot's role
    pqxx::work w(c);
    w.exec("SET LOCAL ROLE authenticated_user");
    w.exec_params("SELECT set_config('app.current_user_id', $1, true)", kAlice);
    EXPECT_THROW(w.exec(sql), pqxx::sql_error) << sql;
  }
  {  // moving alice's existing order onto bob's wallet
    pqxx::work w(c);
    EXPECT_THROW(w.exec("UPDATE orders SET wallet_id = " + bobs_wallet + " WHERE user_id = '" +
                        kAlice + "'"),
                 pqxx::foreign_key_violation);
  }
  {  // handing alice's wallet to bob while her positions and orders name it
    pqxx::work w(c);
    EXPECT_THROW(w.exec(std::string("UPDATE wallets SET user_id = '") + kBob +
                        "' WHERE id = 'a1000000-0000-4000-8000-000000000001'"),
                 pqxx::foreign_key_violation);
  }
}

// Issue 28: a finished order keeps its status; a bot retries with a new order.
TEST_F(SchemaData, AFinishedOrderCannotBeSetBackToOpen) {
  pqxx::connection c(url_);
  for (const char* to : {"open", "pending", "cancelled"}) {
    pqxx::work w(c);
    try {
      w.exec(std::string("UPDATE orders SET status = '") + to + "' WHERE status = 'filled'");
      ADD_FAILURE() << "filled -> " << to << " was accepted";
    } catch (const pqxx::check_violation& e) {
      EXPECT_NE(std::string(e.what()).find("a finished order cannot change status"),
                std::string::npos)
          << e.what();
    }
  }
  pqxx::work w(c);
  // Other columns of a finished order, and a live order's status, still change.
  EXPECT_GT(w.exec("UPDATE orders SET updated_at = now() WHERE status = 'filled'").affected_rows(),
            0u);
  EXPECT_EQ(w.exec("UPDATE orders SET status = 'cancelled' WHERE status = 'open'").affected_rows(),
            1u);
  try {
    w.exec("UPDATE orders SET status = 'open' WHERE status = 'cancelled'");
    ADD_FAILURE() << "cancelled -> open was accepted";
  } catch (const pqxx::check_violation&) {
  }
}

// Issue 28: seeded positions never locked their margin, and closing them released it: 1,849 of the
// demo's 2,000 wallets ended with a negative locked_balance. A position the bot writes locks its
// margin in the wallet's balance of the market's quote asset, and releases it when it closes.
TEST_F(SchemaData, APositionTheBotWritesLocksItsMarginUntilItCloses) {
  pqxx::connection c(url_);
  pqxx::work w(c);  // rolled back: the fixture stays as it is
  const std::string bob_wallet = "'b1000000-0000-4000-8000-000000000002'";
  const std::string eth = "'c0000000-0000-4000-8000-000000000002'";  // quoted in USDT
  auto locked = [&] {
    const auto r =
        w.exec("SELECT locked_balance::text FROM wallet_balances WHERE wallet_id = " + bob_wallet +
               " AND token_symbol = 'USDT'");
    return r.empty() ? std::string("none") : r[0][0].as<std::string>();
  };
  EXPECT_EQ(locked(), "none");
  w.exec(std::string("INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, "
                     "entry_price, margin) VALUES ('d0000000-0000-4000-8000-000000000001', '") +
         kBob + "', " + bob_wallet + ", " + eth + ", 'long', 1, 50, 5)");
  EXPECT_EQ(locked(), "5.000000000000000000") << "a wallet without a USDT row gets one";
  w.exec("UPDATE wallet_balances SET balance = 100 WHERE wallet_id = " + bob_wallet +
         " AND token_symbol = 'USDT'");
  w.exec("UPDATE positions SET margin = 7 WHERE id = 'd0000000-0000-4000-8000-000000000001'");
  EXPECT_EQ(locked(), "7.000000000000000000");
  w.exec(std::string("INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, "
                     "entry_price, margin) VALUES ('d0000000-0000-4000-8000-000000000002', '") +
         kBob + "', " + bob_wallet + ", " + eth + ", 'short', 1, 50, 3)");
  EXPECT_EQ(locked(), "10.000000000000000000");
  w.exec(
      "UPDATE positions SET status = 'closed' WHERE id = 'd0000000-0000-4000-8000-000000000001'");
  EXPECT_EQ(locked(), "3.000000000000000000");
  w.exec("DELETE FROM positions WHERE id = 'd0000000-0000-4000-8000-000000000002'");
  EXPECT_EQ(locked(), "0.000000000000000000");
  // The engine's own writes (its fills and liquidations move the lock in the batch statement) are
  // left alone.
  w.exec("SET LOCAL app.origin = 'engine'");
  w.exec(std::string("INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, "
                     "entry_price, margin) VALUES ('d0000000-0000-4000-8000-000000000003', '") +
         kBob + "', " + bob_wallet + ", " + eth + ", 'long', 1, 50, 5)");
  EXPECT_EQ(locked(), "0.000000000000000000");
}

TEST_F(SchemaData, EncryptionRoundTripNeedsTheKey) {
  pqxx::connection c(url_);
  {
    pqxx::work w(c);
    w.exec("SELECT set_config('app.encryption_key', 'correct horse battery staple', true)");
    const auto enc = w.exec_params("SELECT encrypt_sensitive_data($1)", "seed phrase words")[0][0]
                         .as<std::string>();
    EXPECT_EQ(enc.find("seed"), std::string::npos);
    const auto enc2 = w.exec_params("SELECT encrypt_sensitive_data($1)", "seed phrase words")[0][0]
                          .as<std::string>();
    EXPECT_NE(enc, enc2) << "salted: equal plaintexts must not give equal ciphertexts";
    EXPECT_EQ(w.exec_params("SELECT decrypt_sensitive_data($1)", enc)[0][0].as<std::string>(),
              "seed phrase words");
    w.exec("SELECT set_config('app.encryption_key', 'wrong key', true)");
    EXPECT_THROW(w.exec_params("SELECT decrypt_sensitive_data($1)", enc), pqxx::sql_error);
  }
  pqxx::work w(c);
  EXPECT_THROW(w.exec("SELECT encrypt_sensitive_data('x')"), pqxx::sql_error) << "no key set";
}

TEST_F(SchemaData, TransactionsRouteByMonthAndTheDefaultCatchesTheRest) {
  pqxx::connection c(url_);
  pqxx::work w(c);
  const std::string ids = std::string("'") + kAlice + "', 'a1000000-0000-4000-8000-000000000001'";
  w.exec("INSERT INTO transactions (user_id, wallet_id, tx_type, tx_hash, created_at) VALUES (" +
         ids + ", 'deposit', 'h1', '2024-01-15 00:00+00'), (" + ids +
         ", 'deposit', 'h2', '2031-05-01 00:00+00'), (" + ids + ", 'deposit', 'h3', now())");
  auto where = [&](const char* hash) {
    return w
        .exec_params("SELECT tableoid::regclass::text FROM transactions WHERE tx_hash = $1",
                     hash)[0][0]
        .as<std::string>();
  };
  EXPECT_EQ(where("h1"), "transactions_y2024m01");
  EXPECT_EQ(where("h2"), "transactions_default");
  EXPECT_EQ(where("h3").rfind("transactions_y", 0), 0u) << where("h3");
  // Creating the month later moves the rows out of the default partition.
  EXPECT_EQ(
      w.exec("SELECT create_monthly_partitions('transactions', 0, '2031-05-01')")[0][0].as<int>(),
      1);
  EXPECT_EQ(where("h2"), "transactions_y2031m05");
  // tx_hash is unique per partition key
  EXPECT_THROW(
      w.exec(
          "INSERT INTO transactions (user_id, wallet_id, tx_type, tx_hash, created_at) VALUES (" +
          ids + ", 'deposit', 'h1', '2024-01-15 00:00+00')"),
      pqxx::unique_violation);
}

TEST_F(SchemaData, UpdatedAtIsMaintained) {
  pqxx::connection c(url_);
  pqxx::work w(c);
  w.exec(std::string("UPDATE users SET updated_at = '2000-01-01' WHERE id = '") + kBob +
         "'");  // the trigger wins
  const auto r = w.exec(
      std::string("SELECT updated_at > now() - interval '1 minute' FROM users WHERE id = '") +
      kBob + "'");
  EXPECT_TRUE(r[0][0].as<bool>());
}

}  // namespace
}  // namespace lam::db
