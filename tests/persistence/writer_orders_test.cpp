// The writer's order transitions against a real PostgreSQL: a fill lands whole (order, position,
// trade, balance, audit rows) and once, loses to the bot's cancel, coalesces with a trigger, and
// shares a batch with a liquidation and a mark of the same position without losing either.
#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <thread>

#include "engine/matcher.h"
#include "persistence/batch.h"
#include "persistence/loader.h"
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

std::string text(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  const auto r = t.exec(sql);
  std::string out;
  for (const auto& row : r) {
    for (const auto& f : row)
      out += (f.is_null() ? std::string("NULL") : f.c_str()) + std::string("|");
    out += "\n";
  }
  return out;
}

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::nontransaction(c).exec(sql);
}

/// An order of user/wallet `u` on market 1 (quote 'Q').
void add_order(const std::string& url, long long n, int u, const char* type, const char* side,
               const char* size, const char* status = "pending") {
  exec(url,
       "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
       "price, trigger_price, leverage, status) VALUES ('" +
           seq_uuid(kOrder, n) + "', '" + seq_uuid(test::kUser, u) + "', '" +
           seq_uuid(test::kWallet, u) + "', '" + seq_uuid(test::kMarket, 1) + "', '" + type +
           "', '" + side + "', " + size + ", 100, 100, 5, '" + status + "')");
}

Wide raw(const char* v) {
  return *parse_raw(v);
}

/// A fill as the engine loop builds it from the matcher's order view.
WriteOp fill(long long order, const Uuid& position, const char* price, const char* size,
             const char* fee, const char* realized, const char* locked, const char* entry,
             std::uint8_t flags, TimeNs ts) {
  return fill_op(seq_id(kOrder, order), position, price, size, fee, realized, locked, entry, flags,
                 ts);
}

WriteOp order_op(long long order, WriteKind k, TimeNs ts, OrderStatus status = OrderStatus::open,
                 RejectReason why = RejectReason::none) {
  WriteOp op;
  op.kind = k;
  op.id = seq_id(kOrder, order);
  op.ts = ts;
  op.code = static_cast<std::uint8_t>(status);
  op.reason = static_cast<std::uint8_t>(why);
  return op;
}

/// Collects the change notifications the listener would receive.
class Notes : public pqxx::notification_receiver {
 public:
  explicit Notes(pqxx::connection_base& c) : pqxx::notification_receiver(c, "laminator_changes") {}
  void operator()(const std::string& payload, int) override { got.push_back(payload); }
  std::vector<std::string> got;
};

constexpr TimeNs kT0 = 1'767'225'600'000'000'000;  // 2026-01-01T00:00:00Z

TEST(WriterOrders, AFillLandsWholeAndOnceThenAClosingFillSettlesTheWallet) {
  const std::string url = test::migrated_seeded_db("wo_fill", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000)");
  add_order(url, 1, 1, "market", "long", "2");
  add_order(url, 2, 1, "stop", "sell", "2");
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  Writer w({.conninfo = url, .flush_interval = 10ms});
  const WriteOp open =
      fill(1, pos, "100", "2", "0.1", "-0.1", "40", "100", WriteOp::kTaker | WriteOp::kOpened, kT0);
  ASSERT_TRUE(w.try_submit(open));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(text(url, "SELECT status, filled_size, avg_fill_price, total_fees, position_id = '" +
                          pos.str() + "', filled_at = '2026-01-01Z' FROM orders WHERE id = '" +
                          seq_uuid(kOrder, 1) + "'"),
            "filled|2.000000000000000000|100.000000000000000000|0.100000000000000000|t|t|\n");
  EXPECT_EQ(
      text(url,
           "SELECT side, status, size, entry_price, margin, realized_pnl, leverage, "
           "wallet_id = '" +
               seq_uuid(test::kWallet, 1) + "' FROM positions WHERE id = '" + pos.str() + "'"),
      "long|open|2.000000000000000000|100.000000000000000000|40.000000000000000000|-0."
      "100000000000000000|5.00|t|\n");
  EXPECT_EQ(text(url, "SELECT id = '" + Matcher::trade_id_for(seq_id(kOrder, 1)).str() +
                          "', side, size, price, fee, liquidity, realized_pnl FROM trades"),
            "t|long|2.000000000000000000|100.000000000000000000|0.100000000000000000|taker|-0."
            "100000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT balance, locked_balance FROM wallet_balances"),
            "999.900000000000000000|40.000000000000000000|\n");
  // (balance.set: the bot's deposit above, migration 0014's ledger row)
  EXPECT_EQ(text(url,
                 "SELECT action, resource_type, old_values->>'status', "
                 "new_values->>'status' FROM audit_logs ORDER BY action"),
            "balance.set|wallet_balance|NULL|NULL|\n"
            "balance.updated|wallet_balance|NULL|NULL|\n"
            "order.filled|order|pending|filled|\n"
            "position.opened|position|NULL|open|\n");

  // The same fill again (a retried batch, a crash ring replayed): nothing moves twice, and it is
  // recognised as ours, not as a conflict.
  ASSERT_TRUE(w.try_submit(open));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
  EXPECT_EQ(text(url, "SELECT count(*) FROM trades"), "1|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM audit_logs"), "4|\n");
  EXPECT_EQ(text(url, "SELECT balance, locked_balance FROM wallet_balances"),
            "999.900000000000000000|40.000000000000000000|\n");

  // A stop-loss triggers and fills in one flush: one row update, the trigger time kept.
  ASSERT_TRUE(w.try_submit(order_op(2, WriteKind::order_triggered, kT0 + 5'000'000'000)));
  ASSERT_TRUE(w.try_submit(fill(2, pos, "110", "2", "0.11", "19.89", "-40", "100",
                                WriteOp::kTaker | WriteOp::kReduce, kT0 + 5'000'000'000)));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(
      text(url, "SELECT status, triggered_at = filled_at, filled_size FROM orders WHERE id = '" +
                    seq_uuid(kOrder, 2) + "'"),
      "filled|t|2.000000000000000000|\n");
  EXPECT_EQ(text(url,
                 "SELECT status, size, margin, realized_pnl, closed_at = '2026-01-01 "
                 "00:00:05Z' FROM positions WHERE id = '" +
                     pos.str() + "'"),
            "closed|0.000000000000000000|0.000000000000000000|19.790000000000000000|t|\n");
  // Conservation: the wallet moved by the fills' realized PnL (fees included), and nothing is
  // locked once no position is open.
  EXPECT_EQ(text(url,
                 "SELECT b.balance - 1000 = (SELECT sum(realized_pnl) FROM trades), "
                 "b.locked_balance FROM wallet_balances b"),
            "t|0.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT action FROM audit_logs WHERE resource_id = '" + seq_uuid(kOrder, 2) +
                          "' OR resource_id = '" + pos.str() + "' ORDER BY action"),
            "order.filled|\norder.triggered|\nposition.closed|\nposition.opened|\n");
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
}

TEST(WriterOrders, TheBotsCancelWinsOverAFillNotYetStoredAndEndsAreConditional) {
  const std::string url = test::migrated_seeded_db("wo_race", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 2) + "', 'Q', 500)");
  add_order(url, 1, 2, "limit", "long", "1", "open");  // resting; the bot cancels it
  add_order(url, 2, 2, "stop", "long", "1");           // triggers, then lacks margin
  add_order(url, 3, 2, "limit", "short", "1");         // starts resting
  add_order(url, 4, 2, "market", "short", "1");        // expires
  add_order(url, 5, 2, "limit", "buy", "1");           // already filled by someone else
  exec(url, "UPDATE orders SET status = 'cancelled' WHERE id = '" + seq_uuid(kOrder, 1) + "'");
  exec(url, "SET app.origin = 'engine'; UPDATE orders SET status = 'filled' WHERE id = '" +
                seq_uuid(kOrder, 5) + "'");  // a fill is the engine's to write (0015)
  pqxx::connection listen(url);
  Notes notes(listen);
  listen.get_notifs();
  notes.got.clear();  // the bot's own changes above
  Writer w({.conninfo = url, .flush_interval = 50ms});
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  ASSERT_TRUE(
      w.try_submit(fill(1, pos, "100", "1", "0.02", "-0.02", "20", "100", WriteOp::kOpened, kT0)));
  ASSERT_TRUE(w.try_submit(order_op(2, WriteKind::order_triggered, kT0)));
  ASSERT_TRUE(w.try_submit(order_op(2, WriteKind::order_ended, kT0, OrderStatus::failed,
                                    RejectReason::insufficient_margin)));
  ASSERT_TRUE(w.try_submit(order_op(3, WriteKind::order_rested, kT0)));
  ASSERT_TRUE(w.try_submit(order_op(4, WriteKind::order_ended, kT0, OrderStatus::expired)));
  ASSERT_TRUE(w.try_submit(
      order_op(5, WriteKind::order_ended, kT0, OrderStatus::cancelled, RejectReason::no_position)));
  ASSERT_TRUE(wait_idle(w));
  // The cancel won: no position, no trade, the wallet untouched, and the lost race is reported.
  EXPECT_EQ(text(url,
                 "SELECT id::text, status, status_reason, triggered_at IS NOT NULL FROM "
                 "orders ORDER BY id"),
            seq_uuid(kOrder, 1) + "|cancelled|NULL|f|\n" + seq_uuid(kOrder, 2) +
                "|failed|insufficient_margin|t|\n" + seq_uuid(kOrder, 3) + "|open|NULL|f|\n" +
                seq_uuid(kOrder, 4) + "|expired|NULL|f|\n" + seq_uuid(kOrder, 5) +
                "|filled|NULL|f|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM positions WHERE id = '" + pos.str() + "'"), "0|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM trades"), "0|\n");
  EXPECT_EQ(text(url, "SELECT balance, locked_balance FROM wallet_balances"),
            "500.000000000000000000|0.000000000000000000|\n");
  EXPECT_EQ(w.stats().conflicts.load(), 2u);  // order 1 (cancelled first), order 5 (filled)
  // The lost fill's position and wallet rows are handed to the listener to re-read: the engine
  // moved them in memory, the database did not.
  const std::string wallet_row = text(url, "SELECT id FROM wallet_balances");
  for (int i = 0; i < 100 && notes.got.size() < 2; ++i) {
    listen.await_notification(0, 50'000);
  }
  std::sort(notes.got.begin(), notes.got.end());
  ASSERT_EQ(notes.got.size(), 2u);
  EXPECT_EQ(notes.got[0],
            R"({"t" : "positions", "op" : "RECONCILE", "id" : ")" + pos.str() + R"("})");
  EXPECT_EQ(notes.got[1], R"({"t" : "wallet_balances", "op" : "RECONCILE", "id" : ")" +
                              wallet_row.substr(0, 36) + R"("})");
  EXPECT_EQ(
      text(url, "SELECT action FROM audit_logs WHERE action <> 'balance.set' ORDER BY action"),
      "order.expired|\norder.failed|\norder.rested|\norder.triggered|\n");
}

TEST(WriterOrders, FillsALiquidationAndAMarkOfOnePositionInOneBatchAllLand) {
  const std::string url = test::migrated_seeded_db("wo_liq", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 3) + "', 'Q', 100)");
  add_order(url, 1, 3, "market", "long", "1");
  add_order(url, 2, 3, "market", "long", "1");
  add_order(url, 3, 3, "market", "long", "1");
  add_order(url, 4, 3, "market", "short", "1");
  add_order(url, 5, 3, "market", "buy", "1");
  add_order(url, 6, 3, "market", "short", "1");
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  const Uuid reopened = Matcher::position_id_for(seq_id(kOrder, 3));
  const Uuid short1 = Matcher::position_id_for(seq_id(kOrder, 4));
  const Uuid short2 = Matcher::position_id_for(seq_id(kOrder, 6));
  // One batch (a long flush interval): open, increase, a mark, then the liquidation.
  Writer w({.conninfo = url, .flush_interval = 300ms});
  ASSERT_TRUE(w.try_submit(fill(1, pos, "100", "1", "0.02", "-0.02", "20", "100",
                                WriteOp::kTaker | WriteOp::kOpened, kT0)));
  ASSERT_TRUE(w.try_submit(fill(2, pos, "110", "1", "0.022", "-0.022", "22", "105", WriteOp::kTaker,
                                kT0 + 1'000'000'000)));
  WriteOp mark;
  mark.kind = WriteKind::position_mark;
  mark.id = pos;
  mark.price = *parse_raw("90");
  mark.amount = 0;
  ASSERT_TRUE(w.try_submit(mark));
  WriteOp liq;
  liq.kind = WriteKind::position_liquidated;
  liq.id = pos;
  liq.price = *parse_raw("84");
  liq.amount = raw("-42.042");
  liq.ts = kT0 + 2'000'000'000;
  ASSERT_TRUE(w.try_submit(liq));
  // The same side reopened after the liquidation, and a short opened, closed by a fill and
  // reopened, all in the same batch: uq_positions_open_side must see the old rows closed first.
  ASSERT_TRUE(w.try_submit(fill(3, reopened, "85", "1", "0.017", "-0.017", "17", "85",
                                WriteOp::kTaker | WriteOp::kOpened, kT0 + 3'000'000'000)));
  ASSERT_TRUE(w.try_submit(fill(4, short1, "85", "1", "0.017", "-0.017", "17", "85",
                                WriteOp::kTaker | WriteOp::kOpened, kT0 + 3'000'000'000)));
  ASSERT_TRUE(w.try_submit(fill(5, short1, "84", "1", "0.0168", "0.9832", "-17", "85",
                                WriteOp::kTaker | WriteOp::kReduce, kT0 + 4'000'000'000)));
  ASSERT_TRUE(w.try_submit(fill(6, short2, "84", "1", "0.0168", "-0.0168", "16.8", "84",
                                WriteOp::kTaker | WriteOp::kOpened, kT0 + 5'000'000'000)));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().dead_letters.load(), 0u);
  EXPECT_EQ(text(url, "SELECT id = '" + reopened.str() + "' OR id = '" + short2.str() +
                          "', side, status FROM positions WHERE user_id = '" +
                          seq_uuid(test::kUser, 3) + "' AND market_id = '" +
                          seq_uuid(test::kMarket, 1) + "' AND status = 'open' ORDER BY side"),
            "t|long|open|\nt|short|open|\n");
  EXPECT_EQ(text(url, "SELECT status, size FROM positions WHERE id = '" + short1.str() + "'"),
            "closed|0.000000000000000000|\n");
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(text(url,
                 "SELECT status, size, entry_price, margin, realized_pnl, current_price "
                 "FROM positions WHERE id = '" +
                     pos.str() + "'"),
            "liquidated|2.000000000000000000|105.000000000000000000|42.000000000000000000|-42."
            "042000000000000000|84.000000000000000000|\n");
  // Fees paid, the margin locked by the fills, released and lost by the liquidation; then the
  // reopened long and the second short hold theirs.
  EXPECT_EQ(text(url,
                 "SELECT balance = 100 - 0.042 - 42 - 0.017 - 0.017 + 0.9832 - 0.0168, "
                 "locked_balance FROM wallet_balances"),
            "t|33.800000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM trades"), "6|\n");
  EXPECT_EQ(text(url,
                 "SELECT action FROM audit_logs WHERE resource_type = 'position' ORDER BY "
                 "action"),
            "position.closed|\nposition.increased|\nposition.liquidated|\nposition.opened|\n"
            "position.opened|\nposition.opened|\nposition.opened|\n");
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
}

// Issue 28 (found comparing the daemon with replay): a stop triggered before another order opened
// the position it then fills into, all in one flush. The batch listed orders by their first
// transition, so the stop's fill came before the position existed: "changed by someone else\n//
// first", the order stayed pending and the position and wallet missed the fill, though order.filled
// was streamed. Orders are applied in the order of their last transition now.
TEST(WriterOrders, ATriggerBeforeTheFillThatOpensItsPositionInOneFlushIsNotLost) {
  const std::string url = test::migrated_seeded_db("wo_trigger_order", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000)");
  add_order(url, 1, 1, "market", "long", "1");
  add_order(url, 2, 1, "stop", "long", "1");
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  Writer w({.conninfo = url, .flush_interval = 2000ms});  // one batch
  ASSERT_TRUE(w.try_submit(order_op(2, WriteKind::order_triggered, kT0)));
  ASSERT_TRUE(w.try_submit(fill(1, pos, "100", "1", "0.05", "-0.05", "20", "100",
                                WriteOp::kTaker | WriteOp::kOpened, kT0 + 1'000'000)));
  ASSERT_TRUE(w.try_submit(
      fill(2, pos, "110", "1", "0.055", "-0.055", "22", "105", WriteOp::kTaker, kT0 + 1'000'000)));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
  EXPECT_EQ(text(url, "SELECT status FROM orders ORDER BY id"), "filled|\nfilled|\n");
  EXPECT_EQ(text(url, "SELECT status, size, entry_price, margin FROM positions WHERE id = '" +
                          pos.str() + "'"),
            "open|2.000000000000000000|105.000000000000000000|42.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT balance, locked_balance FROM wallet_balances"),
            "999.895000000000000000|42.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM trades"), "2|\n");
  // The position's audit rows in the fills' order: opened at 1, increased from 1 to 2.
  EXPECT_EQ(text(url,
                 "SELECT action, old_values->>'size', new_values->>'size' FROM audit_logs WHERE "
                 "resource_type = 'position' ORDER BY action DESC"),
            "position.opened|NULL|1|\nposition.increased|1|2|\n");
}

/// The protective stop the engine places on the position order `opener`'s fill opened.
WriteOp placed(long long opener, const char* trigger, const char* size, TimeNs ts) {
  WriteOp op;
  op.kind = WriteKind::order_placed;
  op.id = Matcher::protective_id_for(seq_id(kOrder, opener));
  op.ref = seq_id(kOrder, opener);
  op.price = *parse_raw(trigger);
  op.size = *parse_raw(size);
  op.ts = ts;
  return op;
}

// Issue 33 §3: a user's stop_loss_percentage. The engine inserts the stop row (from the opening
// order's user, wallet, market and leverage) ahead of the batch's other writes, so the stop's own
// trigger and fill in the same flush land too; once; never for an opening order the bot cancelled.
TEST(WriterOrders, AProtectiveStopRowIsInsertedOnceAndItsTransitionsInTheSameFlushLand) {
  const std::string url = test::migrated_seeded_db("wo_protective", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000), ('" + seq_uuid(test::kWallet, 2) +
                "', 'Q', 1000)");
  add_order(url, 1, 1, "market", "long", "2");
  add_order(url, 2, 2, "market", "short", "1");  // user 2 (the seed's user 1 holds a short)
  add_order(url, 3, 1, "market", "long", "1", "cancelled");  // the bot's cancel came first
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  const Uuid pos2 = Matcher::position_id_for(seq_id(kOrder, 2));
  const Uuid stop1 = Matcher::protective_id_for(seq_id(kOrder, 1));
  const Uuid stop2 = Matcher::protective_id_for(seq_id(kOrder, 2));
  const Uuid stop3 = Matcher::protective_id_for(seq_id(kOrder, 3));
  Writer w({.conninfo = url, .flush_interval = 2000ms});  // one batch
  ASSERT_TRUE(w.try_submit(fill(1, pos, "100", "2", "0.1", "-0.1", "40", "100",
                                WriteOp::kTaker | WriteOp::kOpened, kT0)));
  ASSERT_TRUE(w.try_submit(placed(1, "98", "2", kT0)));
  ASSERT_TRUE(w.try_submit(fill(2, pos2, "100", "1", "0.05", "-0.05", "20", "100",
                                WriteOp::kTaker | WriteOp::kOpened, kT0)));
  ASSERT_TRUE(w.try_submit(placed(2, "102", "1", kT0)));
  ASSERT_TRUE(w.try_submit(placed(3, "98", "1", kT0)));
  // Stop 1 triggers and fills in the same flush: it closes the long.
  const TimeNs t1 = kT0 + 1'000'000'000;
  WriteOp trig;
  trig.kind = WriteKind::order_triggered;
  trig.id = stop1;
  trig.ts = t1;
  ASSERT_TRUE(w.try_submit(trig));
  ASSERT_TRUE(w.try_submit(fill_op(stop1, pos, "98", "2", "0.098", "-4.098", "-40", "100",
                                   WriteOp::kTaker | WriteOp::kReduce, t1)));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
  EXPECT_EQ(w.stats().orders_placed.load(), 2u);
  auto cols = [](int u) {
    return "SELECT order_type, side, size, trigger_price, trigger_source, leverage, execution, "
           "status, user_id = '" +
           seq_uuid(test::kUser, u) + "', wallet_id = '" + seq_uuid(test::kWallet, u) +
           "', market_id = '" + seq_uuid(test::kMarket, 1) +
           "', created_at = '2026-01-01Z' FROM orders ";
  };
  EXPECT_EQ(
      text(url, cols(1) + "WHERE id = '" + stop1.str() + "'"),
      "stop|sell|2.000000000000000000|98.000000000000000000|NULL|5.00|paper|filled|t|t|t|t|\n");
  EXPECT_EQ(
      text(url, cols(2) + "WHERE id = '" + stop2.str() + "'"),
      "stop|buy|1.000000000000000000|102.000000000000000000|NULL|5.00|paper|pending|t|t|t|t|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM orders WHERE id = '" + stop3.str() + "'"), "0|\n");
  EXPECT_EQ(text(url, "SELECT status, size FROM positions WHERE id = '" + pos.str() + "'"),
            "closed|0.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT action, new_values->>'trigger_price', new_values->>'opened_by' = '" +
                          seq_uuid(kOrder, 2) + "' FROM audit_logs WHERE resource_id = '" +
                          stop2.str() + "'"),
            "order.placed|102.000000000000000000|t|\n");
  EXPECT_EQ(text(url, "SELECT action FROM audit_logs WHERE resource_id = '" + stop1.str() +
                          "' ORDER BY action"),
            "order.filled|\norder.placed|\norder.triggered|\n");
  // Placed again (a retried batch, a replayed crash ring) after the bot moved it: nothing changes.
  exec(url, "UPDATE orders SET trigger_price = 103 WHERE id = '" + stop2.str() + "'");
  ASSERT_TRUE(w.try_submit(placed(2, "102", "1", kT0)));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(text(url, "SELECT trigger_price FROM orders WHERE id = '" + stop2.str() + "'"),
            "103.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM audit_logs WHERE action = 'order.placed'"), "2|\n");
  EXPECT_EQ(w.stats().orders_placed.load(), 2u);
}

// Issue 28: a limit's `rested` transition (pending -> open) and its fill in one flush were one
// audit row (order.filled, pending -> filled); every transition is its own row.
TEST(WriterOrders, ARestedLimitFilledInTheSameFlushKeepsBothAuditRows) {
  const std::string url = test::migrated_seeded_db("wo_rested", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000)");
  add_order(url, 1, 1, "limit", "long", "1");
  add_order(url, 2, 1, "limit", "long", "1");
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  Writer w({.conninfo = url, .flush_interval = 2000ms});  // one batch
  ASSERT_TRUE(w.try_submit(order_op(1, WriteKind::order_rested, kT0)));
  ASSERT_TRUE(w.try_submit(fill(1, pos, "100", "1", "0.02", "-0.02", "20", "100", WriteOp::kOpened,
                                kT0 + 1'000'000'000)));
  ASSERT_TRUE(w.try_submit(order_op(2, WriteKind::order_rested, kT0)));  // rests, stays open
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(text(url,
                 "SELECT action, old_values->>'status', new_values->>'status' FROM audit_logs "
                 "WHERE resource_id = '" +
                     seq_uuid(kOrder, 1) + "' ORDER BY action"),
            "order.filled|open|filled|\norder.rested|pending|open|\n");
  EXPECT_EQ(text(url,
                 "SELECT action, old_values->>'status', new_values->>'status' FROM audit_logs "
                 "WHERE resource_id = '" +
                     seq_uuid(kOrder, 2) + "'"),
            "order.rested|pending|open|\n");
  EXPECT_EQ(text(url, "SELECT status FROM orders ORDER BY id"), "filled|\nopen|\n");
}

// Issue 28, section 2: which published event a conflict the statement reports voids.
// A fill that increases a position while the bot closes that position in a transaction that commits
// after the writer's statement began: the fill must lose (the bot wins, a conflict), never land on
// the closed row. Before the position was locked by the fill's check, the check read the
// statement's snapshot (still open), the update then waited for the bot's row lock and, re-checked
// after the bot's commit, moved the closed position's margin and the wallet's lock: locked_balance
// above the open margin (found by Faults.RandomBotWritesAndKillsLeaveTheBooksReconciled under
// ASan).
TEST(WriterOrders, AnIncreaseRacingTheBotsCloseOfItsPositionLosesWhole) {
  const std::string url = test::migrated_seeded_db("wo_close_race", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000)");
  add_order(url, 1, 1, "market", "long", "2");
  add_order(url, 3, 1, "market", "long", "1");
  const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
  Writer w({.conninfo = url, .flush_interval = 10ms});
  ASSERT_TRUE(w.try_submit(fill(1, pos, "100", "2", "0.1", "-0.1", "40", "100",
                                WriteOp::kTaker | WriteOp::kOpened, kT0)));
  ASSERT_TRUE(wait_idle(w));
  ASSERT_EQ(text(url, "SELECT locked_balance FROM wallet_balances"), "40.000000000000000000|\n");

  pqxx::connection listen(url);
  Notes notes(listen);
  pqxx::connection bot(url);
  pqxx::work close(bot);
  close.exec("UPDATE positions SET status = 'closed', closed_at = now() WHERE id = '" + pos.str() +
             "'");  // releases the 40 locked (migration 0013), not committed yet
  ASSERT_TRUE(w.try_submit(fill(3, pos, "100", "1", "0.05", "-0.05", "20", "100", WriteOp::kTaker,
                                kT0 + 1'000'000'000)));
  std::this_thread::sleep_for(400ms);  // the writer's statement has begun and waits for the row
  close.commit();
  ASSERT_TRUE(wait_idle(w));

  EXPECT_EQ(text(url, "SELECT status, margin, size FROM positions WHERE id = '" + pos.str() + "'"),
            "closed|40.000000000000000000|2.000000000000000000|\n");
  EXPECT_EQ(text(url, "SELECT status::text <> 'filled' FROM orders WHERE id = '" +
                          seq_uuid(kOrder, 3) + "'"),
            "t|\n");
  EXPECT_EQ(text(url, "SELECT count(*) FROM trades"), "1|\n");
  // The books: nothing locked once no position is open.
  EXPECT_EQ(text(url, "SELECT locked_balance FROM wallet_balances"), "0.000000000000000000|\n");
  EXPECT_GE(w.stats().conflicts.load(), 1u);
  // The order is still pending: the engine filled it in memory, so the writer has it re-read with
  // the position and the wallet (op RECONCILE) for the engine to void that fill and arm it again;
  // otherwise it sat pending until the next start filled it.
  const std::string wallet_row = text(url, "SELECT id FROM wallet_balances").substr(0, 36);
  std::vector<std::string> want = {
      R"({"t" : "orders", "op" : "RECONCILE", "id" : ")" + seq_uuid(kOrder, 3) + R"("})",
      R"({"t" : "positions", "op" : "RECONCILE", "id" : ")" + pos.str() + R"("})",
      R"({"t" : "wallet_balances", "op" : "RECONCILE", "id" : ")" + wallet_row + R"("})"};
  auto reconciles = [&] {
    std::vector<std::string> r;
    for (const auto& n : notes.got)
      if (n.find("RECONCILE") != std::string::npos) r.push_back(n);
    std::sort(r.begin(), r.end());
    return r;
  };
  for (int i = 0; i < 100 && reconciles().size() < want.size(); ++i)
    listen.await_notification(0, 50'000);
  EXPECT_EQ(reconciles(), want);
}

// Issue 33 §2 (0017): trailing stops' activations and their groups land in the flush's statement; a
// meld stays when a later write of the group carries none; an activation of an order that also
// moves in the flush lands with that move; one of an order no longer pending does not; and the
// loader reads each trailing order with its group's root and that root's best price.
TEST(WriterOrders, TrailingActivationsAndGroupsLandAndTheLoaderReadsTheRootsBestPrice) {
  const std::string url = test::migrated_seeded_db("wo_trailing", 4, 4);
  auto trailing = [&](long long n, const char* status) {
    exec(url,
         "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
         "leverage, trail_distance, status) VALUES ('" +
             seq_uuid(kOrder, n) + "', '" + seq_uuid(test::kUser, 1) + "', '" +
             seq_uuid(test::kWallet, 1) + "', '" + seq_uuid(test::kMarket, 1) +
             "', 'trailing_stop', 'short', 1, 5, 5, '" + status + "')");
  };
  trailing(1, "pending");
  trailing(2, "pending");
  trailing(3, "pending");
  trailing(4, "cancelled");  // the bot's cancel won
  auto activated = [](long long n, const Uuid& group) {
    WriteOp op = order_op(n, WriteKind::order_activated, kT0 + n * 1'000'000);
    op.ref = group;
    return op;
  };
  auto group = [](const Uuid& g, const char* best, const Uuid& into = {}) {
    WriteOp op;
    op.kind = WriteKind::trail_group;
    op.id = g;
    op.price = static_cast<std::int64_t>(raw(best));
    op.ref = into;
    return op;
  };
  const Uuid g1 = seq_id(kOrder, 1), g2 = seq_id(kOrder, 2);
  Writer w({.conninfo = url, .flush_interval = 2000ms});  // one batch
  for (const WriteOp& op :
       {activated(1, g1), group(g1, "100"), activated(2, g2), group(g2, "90"), activated(3, g1),
        order_op(3, WriteKind::order_triggered, kT0 + 9'000'000), activated(4, g1),
        group(g1, "110"), group(g2, "90", g1), group(g2, "90")})
    ASSERT_TRUE(w.try_submit(op));
  ASSERT_TRUE(wait_idle(w));
  EXPECT_EQ(w.stats().batches.load(), 1u);
  EXPECT_EQ(w.stats().conflicts.load(), 0u);
  EXPECT_EQ(
      text(url, "SELECT status, activated_at IS NOT NULL, trail_group_id FROM orders ORDER BY id"),
      "pending|t|" + g1.str() + "|\npending|t|" + g2.str() + "|\nopen|t|" + g1.str() +
          "|\ncancelled|f|NULL|\n");
  EXPECT_EQ(text(url, "SELECT id, best_price, merged_into FROM trail_groups ORDER BY id"),
            g1.str() + "|110.000000000000000000|NULL|\n" + g2.str() + "|90.000000000000000000|" +
                g1.str() + "|\n");
  Loader loader(url);
  const Loader::ById got = loader.load_by_id({}, {}, {}, {seq_id(kOrder, 2)});
  ASSERT_EQ(got.orders.size(), 1u);
  EXPECT_EQ(got.orders[0].type, OrderType::trailing_stop);
  EXPECT_EQ(got.orders[0].trail_distance, raw("5"));
  EXPECT_EQ(got.orders[0].trail_group, g1)
      << "its group melded into g1: it follows g1's best price";
  EXPECT_EQ(got.orders[0].trail_extreme, raw("110"));
  EXPECT_EQ(got.orders[0].activated_at, kT0 + 2'000'000);
  EXPECT_EQ(got.orders[0].invalid, RejectReason::none);
  // A cycle written by hand is no root: the order trails again from the price when armed.
  exec(url, "SET session_replication_role = replica; UPDATE trail_groups SET merged_into = '" +
                g2.str() + "' WHERE id = '" + g1.str() + "'");
  const Loader::ById cyc = loader.load_by_id({}, {}, {}, {seq_id(kOrder, 1)});
  ASSERT_EQ(cyc.orders.size(), 1u);
  EXPECT_FALSE(cyc.orders[0].trail_group.has_value());
  EXPECT_FALSE(cyc.orders[0].trail_extreme.has_value());
}

TEST(BatchVoided, AConflictNamesTheEventItVoids) {
  Batch b;
  WriteOp trig;
  trig.kind = WriteKind::alert_triggered;
  trig.id = seq_id(test::kAlert, 1);
  b.add(trig);
  WriteOp liq;
  liq.kind = WriteKind::position_liquidated;
  liq.id = seq_id(test::kPosition, 2);
  b.add(liq);
  b.add(order_op(3, WriteKind::order_ended, kT0, OrderStatus::expired));
  b.add(order_op(4, WriteKind::order_triggered, kT0));
  b.add(fill(5, seq_id(test::kPosition, 9), "1", "1", "0", "0", "0", "1", WriteOp::kOpened, kT0));
  b.add(order_op(6, WriteKind::order_rested, kT0));
  auto v = b.voided_by("alerts:" + seq_uuid(test::kAlert, 1) + ":cancelled");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->first, EventType::alert_triggered);
  EXPECT_EQ(v->second, seq_id(test::kAlert, 1));
  EXPECT_EQ(b.voided_by("positions:" + seq_uuid(test::kPosition, 2) + ":closed")->first,
            EventType::position_liquidated);
  EXPECT_EQ(b.voided_by("orders:" + seq_uuid(kOrder, 3) + ":cancelled")->first,
            EventType::order_expired);
  EXPECT_EQ(b.voided_by("orders:" + seq_uuid(kOrder, 4) + ":cancelled")->first,
            EventType::order_triggered);
  // A fill the bot's cancel beat is the engine's to void (order.fill_voided); a deleted order's
  // fill is not seen by it.
  EXPECT_FALSE(b.voided_by("orders:" + seq_uuid(kOrder, 5) + ":cancelled"));
  EXPECT_EQ(b.voided_by("orders:" + seq_uuid(kOrder, 5) + ":missing")->first,
            EventType::order_filled);
  EXPECT_FALSE(b.voided_by("orders:" + seq_uuid(kOrder, 6) + ":cancelled")) << "rested: no event";
  EXPECT_FALSE(b.voided_by("orders:" + seq_uuid(kOrder, 7) + ":cancelled")) << "not in the batch";
  EXPECT_FALSE(b.voided_by("nonsense"));
}

}  // namespace
}  // namespace lam::db

namespace lam::db {
namespace {

// Migration 0016: the engine's statement stamps updated_at on orders, balances and alerts itself
// (set_updated_at() no longer runs for its rows); the bot's writes still get the trigger's stamp.
TEST(WriterOrders, TheEnginesRowsAreStampedByItsStatementAndTheBotsByTheTrigger) {
  const std::string url = test::migrated_seeded_db("wo_stamps", 4, 4);
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                seq_uuid(test::kWallet, 1) + "', 'Q', 1000)");
  add_order(url, 1, 1, "market", "long", "2");
  add_order(url, 2, 1, "limit", "long", "1");
  const std::string old = "'2001-01-01Z'";
  // As the engine: the stamps go back (before 0016 the trigger overwrote them with now()).
  exec(url, "SET app.origin = 'engine'; UPDATE orders SET updated_at = " + old +
                "; UPDATE wallet_balances SET updated_at = " + old +
                "; UPDATE alerts SET updated_at = " + old);
  EXPECT_EQ(text(url, "SELECT count(*) FROM orders WHERE updated_at = " + old), "2|\n");
  {
    pqxx::connection c(url);
    pqxx::nontransaction(c).exec("SET app.origin = 'engine'");
    prepare_batch(c);
    Batch b;
    const Uuid pos = Matcher::position_id_for(seq_id(kOrder, 1));
    b.add(fill(1, pos, "100", "2", "0.1", "-0.1", "40", "100", WriteOp::kTaker | WriteOp::kOpened,
               kT0));
    WriteOp trig;
    trig.kind = WriteKind::alert_triggered;
    trig.id = seq_id(test::kAlert, 1);
    trig.price = raw("1001");
    trig.ts = kT0;
    b.add(trig);
    pqxx::nontransaction tx(c);
    const BatchResult r = apply_batch(tx, b);
    ASSERT_EQ(r.fills_applied, 1u);
    ASSERT_TRUE(r.conflicts.empty());
  }
  const std::string fresh = " > now() - interval '1 minute'";
  EXPECT_EQ(text(url, "SELECT status, updated_at" + fresh + " FROM orders WHERE id = '" +
                          seq_uuid(kOrder, 1) + "'"),
            "filled|t|\n");
  EXPECT_EQ(text(url, "SELECT updated_at" + fresh + " FROM wallet_balances"), "t|\n");
  EXPECT_EQ(text(url, "SELECT status, updated_at" + fresh + " FROM alerts WHERE id = '" +
                          seq_uuid(test::kAlert, 1) + "'"),
            "triggered|t|\n");
  // Untouched rows keep their stamps.
  EXPECT_EQ(text(url, "SELECT updated_at = " + old + " FROM orders WHERE id = '" +
                          seq_uuid(kOrder, 2) + "'"),
            "t|\n");
  // The bot's own writes: the trigger stamps them, whatever updated_at they set.
  exec(url, "UPDATE orders SET size = 3, updated_at = " + old + " WHERE id = '" +
                seq_uuid(kOrder, 2) + "'; UPDATE alerts SET target_price = 5 WHERE id = '" +
                seq_uuid(test::kAlert, 2) + "'");
  EXPECT_EQ(text(url, "SELECT updated_at" + fresh + " FROM orders WHERE id = '" +
                          seq_uuid(kOrder, 2) + "'"),
            "t|\n");
  EXPECT_EQ(text(url, "SELECT updated_at" + fresh + " FROM alerts WHERE id = '" +
                          seq_uuid(test::kAlert, 2) + "'"),
            "t|\n");
}

}  // namespace
}  // namespace lam::db
