// The migrations against a real PostgreSQL 15: every object exists, migrate is idempotent and
// refuses edited files, partitions route by month, RLS isolates users, encryption round-trips,
// views add up.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "persistence/migrator.h"
#include "tests/support/pg_cluster.h"

namespace lam::db {
namespace {

class Schema : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = test::shared_cluster().create_database("schema_test");
    Migrator(url_).migrate({});
  }
  static std::set<std::string> names(const std::string& sql) {
    pqxx::connection c(url_);
    pqxx::read_transaction t(c);
    std::set<std::string> out;
    for (const auto& row : t.exec(sql)) out.insert(row[0].as<std::string>());
    return out;
  }
  static void expect_all(const std::set<std::string>& have,
                         std::initializer_list<const char*> want) {
    for (const char* w : want) EXPECT_TRUE(have.contains(w)) << "missing: " << w;
  }
  static inline std::string url_;
};

TEST_F(Schema, EveryTableTypeIndexPolicyViewAndFunctionExists) {
  expect_all(names("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
             {"users", "wallets", "wallet_balances", "markets", "orders", "positions",
              "transactions_default", "transactions_y2024m01", "alerts", "user_settings",
              "audit_logs_default", "audit_logs_y2024m01", "schema_migrations", "trades",
              "engine_dead_letters", "engine_instance", "engine_seq_gaps"});
  expect_all(names("SELECT relname FROM pg_class WHERE relkind = 'p'"),
             {"transactions", "audit_logs"});
  expect_all(names("SELECT typname FROM pg_type WHERE typtype = 'e'"),
             {"user_status",        "wallet_type",     "chain_type",      "wallet_status",
              "market_type",        "market_status",   "order_type",      "order_side",
              "order_status",       "position_side",   "position_status", "transaction_type",
              "transaction_status", "alert_type",      "condition_type",  "alert_status",
              "price_source",       "order_execution", "trigger_source",  "trade_liquidity"});
  expect_all(names("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"),
             {"idx_audit_logs_user_action",
              "idx_audit_logs_created_at",
              "idx_users_telegram_id",
              "idx_users_privy_user_id",
              "idx_wallets_user_id",
              "idx_wallets_address",
              "idx_orders_user_status",
              "idx_orders_market_status",
              "idx_positions_user_market",
              "idx_wallet_balances_updated",
              "idx_transactions_user_created",
              "idx_transactions_wallet_type",
              "idx_alerts_active_market",
              "idx_positions_open_market",
              "uq_positions_open_side",
              "idx_trades_user_executed",
              "idx_trades_order",
              "idx_trades_position",
              "idx_orders_active_market",
              "idx_orders_user_created",
              "idx_orders_position",
              "idx_positions_user_status"});
  expect_all(names("SELECT policyname FROM pg_policies"),
             {"wallet_balances_user_policy", "orders_user_policy", "positions_user_policy",
              "wallets_user_policy", "trades_user_policy"});
  expect_all(names("SELECT relname FROM pg_class WHERE relrowsecurity"),
             {"wallet_balances", "orders", "positions", "wallets"});
  expect_all(names("SELECT viewname FROM pg_views WHERE schemaname = 'public'"),
             {"user_portfolio", "trading_stats"});
  expect_all(
      names("SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"),
      {"current_user_id", "encrypt_sensitive_data", "decrypt_sensitive_data",
       "create_monthly_partitions", "set_updated_at", "notify_change", "engine_mark_restored"});
  expect_all(names("SELECT rolname FROM pg_roles"), {"authenticated_user"});
  expect_all(names("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"),
             {"users_updated_at", "positions_updated_at", "alerts_updated_at", "markets_notify",
              "positions_notify", "alerts_notify", "orders_notify", "wallet_balances_notify"});
  expect_all(
      names("SELECT column_name FROM information_schema.columns WHERE table_name = 'alerts'"),
      {"target_value", "anchor_price", "expires_at", "metadata"});
  expect_all(
      names("SELECT column_name FROM information_schema.columns WHERE table_name = 'markets'"),
      {"price_source", "maintenance_margin_rate", "maker_fee_rate", "taker_fee_rate"});
  expect_all(
      names("SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"),
      {"trigger_price", "trigger_source", "triggered_at", "execution", "status_reason",
       "position_id", "filled_at"});
}

// 0006: a fill's rows check only what nothing else guards (docs/schema.md, "0006").
TEST_F(Schema, AFillsRowsCheckOnlyTheKeysNothingElseGuards) {
  const std::string fks =
      "SELECT c.conrelid::regclass::text || '.' || a.attname FROM pg_constraint c "
      "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
      "WHERE c.contype = 'f' AND c.conrelid IN ('trades'::regclass, 'audit_logs'::regclass)";
  EXPECT_EQ(names(fks), (std::set<std::string>{"trades.order_id", "trades.position_id"}));
  // wallet_balances (wallet_id, token_symbol): the UNIQUE constraint's index only
  const std::set<std::string> idx = names(
      "SELECT indexname FROM pg_indexes WHERE tablename = 'wallet_balances' AND indexdef LIKE "
      "'%(wallet_id%'");
  EXPECT_EQ(idx.size(), 1U);
  EXPECT_FALSE(idx.contains("idx_wallet_balances_wallet_token"));
  // Deleting a user keeps the audit rows about them: history is not rewritten.
  pqxx::connection c(url_);
  pqxx::work w(c);
  w.exec(
      "INSERT INTO users (id, telegram_id, telegram_username) VALUES "
      "('00000000-0000-4000-8000-0000000000aa', 990001, 'gone')");
  w.exec(
      "INSERT INTO audit_logs (user_id, action, resource_type) VALUES "
      "('00000000-0000-4000-8000-0000000000aa', 'order.filled', 'order')");
  w.exec("DELETE FROM users WHERE id = '00000000-0000-4000-8000-0000000000aa'");
  EXPECT_EQ(w.exec("SELECT count(*) FROM audit_logs WHERE user_id = "
                   "'00000000-0000-4000-8000-0000000000aa'")[0][0]
                .as<int>(),
            1);
  w.abort();
}

TEST_F(Schema, MonthsAheadArePartitioned) {
  pqxx::connection c(url_);
  pqxx::read_transaction t(c);
  const auto month = t.exec("SELECT to_char(now(), '\"y\"YYYY\"m\"MM')")[0][0].as<std::string>();
  EXPECT_FALSE(t.exec("SELECT to_regclass('transactions_" + month + "')")[0][0].is_null());
  EXPECT_FALSE(t.exec("SELECT to_regclass('audit_logs_" + month + "')")[0][0].is_null());
}

TEST(Migrate, IsIdempotentAndReportsStatus) {
  const std::string url = test::shared_cluster().create_database("migrate_idem");
  const MigrateReport first = Migrator(url).migrate({});
  EXPECT_EQ(first.applied.size(), embedded_migrations().size());
  EXPECT_GT(first.partitions_created, 0);
  const MigrateReport second = Migrator(url).migrate({});
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.partitions_created, 0);
  for (const MigrationStatus& s : Migrator(url).status()) {
    EXPECT_EQ(s.state, MigrationState::applied) << s.name;
    EXPECT_TRUE(s.applied_at.has_value());
  }
}

TEST(Migrate, RefusesAnEditedFile) {
  const std::string url = test::shared_cluster().create_database("migrate_edited");
  Migrator(url).migrate({});
  std::vector<Migration> edited = embedded_migrations();
  edited[0].sql += "\n-- a harmless-looking edit\n";
  try {
    Migrator(url, edited).migrate({});
    FAIL() << "an edited migration was accepted";
  } catch (const MigrationError& e) {
    EXPECT_NE(std::string(e.what()).find("0001_schema.sql was edited"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(Migrator(url, edited).status()[0].state, MigrationState::edited);
}

TEST(Migrate, DryRunAppliesNothing) {
  const std::string url = test::shared_cluster().create_database("migrate_dry");
  const MigrateReport r = Migrator(url).migrate({.dry_run = true});
  EXPECT_EQ(r.applied.size(), embedded_migrations().size());
  for (const MigrationStatus& s : Migrator(url).status())
    EXPECT_EQ(s.state, MigrationState::pending);
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  EXPECT_TRUE(t.exec("SELECT to_regclass('users')")[0][0].is_null());
}

TEST(Migrate, FailingFileIsRolledBackAndNamed) {
  const std::string url = test::shared_cluster().create_database("migrate_fail");
  std::vector<Migration> ms = embedded_migrations();
  ms.push_back({ms.back().version + 1, "9999_broken.sql",
                "CREATE TABLE ok_part (x int); SELECT no_such_fn();"});
  try {
    Migrator(url, ms).migrate({});
    FAIL() << "a broken migration was accepted";
  } catch (const MigrationError& e) {
    EXPECT_NE(std::string(e.what()).find("9999_broken.sql"), std::string::npos) << e.what();
  }
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  EXPECT_TRUE(t.exec("SELECT to_regclass('ok_part')")[0][0].is_null()) << "partly applied";
  EXPECT_FALSE(t.exec("SELECT to_regclass('users')")[0][0].is_null())
      << "earlier files stay applied";
}

TEST(Migrate, ConcurrentInstancesSerialize) {
  const std::string url = test::shared_cluster().create_database("migrate_race");
  std::vector<std::size_t> applied(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      try {
        applied[static_cast<std::size_t>(i)] = Migrator(url).migrate({}).applied.size();
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_EQ(applied[0] + applied[1], embedded_migrations().size())
      << "each file applied exactly once";
}

}  // namespace
}  // namespace lam::db
