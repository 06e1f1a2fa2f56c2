// Marks per market (docs/schema.md, "Marks"): the publisher, the market_marks row, and the views
// that compute a position's current price, uPnL and ROE from it exactly as the matcher does.
#include "persistence/marks.h"

#include <gtest/gtest.h>

#include <map>
#include <pqxx/pqxx>

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
using test::kMarket;
using test::kPosition;
using test::seq_id;
using test::seq_uuid;
using Clock = MarkPublisher::Clock;

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec(sql);
  w.commit();
}

std::string opt_text(const std::optional<Wide>& v, int digits) {
  return v ? format_fixed(*v, digits) : "NULL";
}

Tick mark_tick(InstrumentTable& instruments, const char* symbol, const char* price) {
  Tick t;
  t.instrument = *instruments.find("binance", symbol);
  t.kind = TickKind::mark;
  t.price = *parse_raw(price);
  t.exch_ts = 1'700'000'000'000'000'000;
  return t;
}

// ---- the publisher alone (a real matcher, no database) --------------------------------------

struct Published {
  std::vector<WriteOp> ops;
  bool accept = true;
  MarkPublisher::Submit submit() {
    return [this](const WriteOp& op) {
      if (!accept) return false;
      ops.push_back(op);
      return true;
    };
  }
  std::size_t count(WriteKind k) const {
    return static_cast<std::size_t>(
        std::count_if(ops.begin(), ops.end(), [&](const WriteOp& o) { return o.kind == k; }));
  }
};

/// Two markets (M0, M1) and `n` open longs on M0.
void small_book(Matcher& m, InstrumentTable& instruments, int n) {
  std::vector<Event> ev;
  for (int i = 0; i < 2; ++i) {
    MarketSpec s;
    s.id = seq_id(kMarket, i);
    s.instrument = instruments.intern("binance", i == 0 ? "M0" : "M1");
    m.upsert_market(s);
  }
  for (int i = 1; i <= n; ++i) {
    PositionSpec p;
    p.id = seq_id(kPosition, i);
    p.market_id = seq_id(kMarket, 0);
    p.size = 1 * kScale;
    p.entry_price = 100 * kScale;
    p.margin = 10 * kScale;
    m.upsert_position(p, ev);
  }
}

TEST(MarkPublisher, SendsAMarketOnlyWhenItsPriceMovedAndRetriesWhatTheQueueRefused) {
  Matcher m;
  InstrumentTable instruments;
  small_book(m, instruments, 0);
  MarkPublisher pub({.market_interval = 10ms, .refresh_interval = 1h});
  Published out;
  std::vector<Event> ev;
  const Clock::time_point t0{};
  EXPECT_FALSE(pub.step(m, t0 + 1h, 1, out.submit())) << "nothing sent: the loop may sleep";
  EXPECT_TRUE(out.ops.empty()) << "no market has a price yet";
  m.on_tick(mark_tick(instruments, "M0", "101"), ev);
  pub.step(m, t0 + 1h + 5ms, 2, out.submit());
  EXPECT_TRUE(out.ops.empty()) << "before market_interval";
  EXPECT_TRUE(pub.markets_due(t0 + 1h + 10ms));
  EXPECT_TRUE(pub.step(m, t0 + 1h + 10ms, 3, out.submit()));
  ASSERT_EQ(out.ops.size(), 1u);
  EXPECT_EQ(out.ops[0].kind, WriteKind::market_mark);
  EXPECT_EQ(out.ops[0].id, seq_id(kMarket, 0));
  EXPECT_EQ(out.ops[0].price, 101 * kScale);
  EXPECT_EQ(out.ops[0].ts, 3);
  EXPECT_FALSE(pub.step(m, t0 + 1h + 20ms, 4, out.submit()));
  EXPECT_EQ(out.ops.size(), 1u) << "unchanged: not sent again";
  m.on_tick(mark_tick(instruments, "M0", "102"), ev);
  m.on_tick(mark_tick(instruments, "M1", "7"), ev);
  out.accept = false;
  pub.step(m, t0 + 1h + 30ms, 5, out.submit());
  EXPECT_EQ(out.ops.size(), 1u);
  out.accept = true;
  pub.step(m, t0 + 1h + 40ms, 6, out.submit());
  ASSERT_EQ(out.ops.size(), 3u) << "what the full queue refused is sent at the next interval";
  EXPECT_EQ(out.ops[1].price, 102 * kScale);
  EXPECT_EQ(out.ops[2].id, seq_id(kMarket, 1));
  EXPECT_EQ(pub.market_marks_sent(), 3u);
}

TEST(MarkPublisher, TheRefreshPassIsPacedToItsRateAndStartsAtMostEveryInterval) {
  Matcher m;
  InstrumentTable instruments;
  small_book(m, instruments, 10'000);
  std::vector<Event> ev;
  m.on_tick(mark_tick(instruments, "M0", "101"), ev);
  MarkPublisher pub({.market_interval = 1h, .refresh_interval = 10s, .refresh_rows_per_s = 1'000});
  Published out;
  const Clock::time_point t0{};
  // Steps every millisecond for 12 s: 10,000 positions at 1,000/s take 10 s, then the next pass
  // waits for the 10 s interval from the first one's start.
  std::map<int, std::size_t> by_second;
  for (int ms = 0; ms < 12'000; ++ms) {
    const std::size_t before = out.count(WriteKind::position_mark);
    pub.step(m, t0 + std::chrono::milliseconds(ms), 0, out.submit());
    by_second[ms / 1000] += out.count(WriteKind::position_mark) - before;
  }
  for (int s = 0; s < 9; ++s) {
    EXPECT_LE(by_second[s], 1'000u + MarkPublisher::kChunk) << "second " << s;
    EXPECT_GE(by_second[s], 900u) << "second " << s;
  }
  EXPECT_EQ(pub.passes(), 1u);
  EXPECT_NEAR(pub.pass_seconds(), 9.5, 0.6);
  EXPECT_GE(out.count(WriteKind::position_mark), 10'000u) << "every open position once a pass";
  const WriteOp& op = out.ops.front();
  EXPECT_EQ(op.price, 101 * kScale);
  EXPECT_EQ(op.amount, Wide{1} * kScale * kScale) << "1 x (101 - 100), in 1e-18";
}

TEST(MarkPublisher, WithoutARateAPassVisitsAChunkPerStep) {
  Matcher m;
  InstrumentTable instruments;
  small_book(m, instruments, 2'000);
  std::vector<Event> ev;
  m.on_tick(mark_tick(instruments, "M0", "101"), ev);
  MarkPublisher pub({.market_interval = 1h, .refresh_interval = 1h, .refresh_rows_per_s = 0});
  Published out;
  const Clock::time_point t0{};
  for (int i = 0; i < 4; ++i) pub.step(m, t0, 0, out.submit());
  EXPECT_EQ(out.count(WriteKind::position_mark), 2'000u);
  EXPECT_EQ(pub.passes(), 1u);
  pub.step(m, t0 + 1s, 0, out.submit());
  EXPECT_EQ(out.count(WriteKind::position_mark), 2'000u) << "the next pass waits for the interval";
}

// ---- against PostgreSQL ---------------------------------------------------------------------

TEST(MarketMarks, AMarkNeverMovesBackAndADeletedMarketIsSkipped) {
  const std::string url = test::migrated_seeded_db("marks_rows", 3, 0);
  auto op = [](int market, const char* price, TimeNs ts) {
    WriteOp o;
    o.kind = WriteKind::market_mark;
    o.id =
        market < 0 ? *Uuid::parse("00000000-0000-4000-8000-00000000dead") : seq_id(kMarket, market);
    o.price = *parse_raw(price);
    o.ts = ts;
    return o;
  };
  constexpr TimeNs kT = 1'700'000'000'000'000'000;
  {
    Writer w({.conninfo = url, .flush_interval = 20ms});
    ASSERT_TRUE(w.try_submit(op(0, "100.5", kT)));
    ASSERT_TRUE(w.try_submit(op(0, "101.25", kT + 1'000'000)));  // coalesced: the later wins
    ASSERT_TRUE(w.try_submit(op(1, "7", kT)));
    ASSERT_TRUE(w.try_submit(op(-1, "1", kT)));  // no such market
    ASSERT_TRUE(wait_idle(w));
    ASSERT_TRUE(w.try_submit(op(0, "99", kT)));  // older than what is stored
    ASSERT_TRUE(wait_idle(w));
    EXPECT_EQ(w.stats().dead_letters.load(), 0u);
    EXPECT_EQ(w.stats().failures.load(), 0u);
  }
  {  // The statement reports what it applied: an older mark nothing, the deleted market nothing.
    pqxx::connection c(url);
    prepare_batch(c);
    Batch b;
    b.add(op(0, "98", kT));
    b.add(op(-1, "1", kT));
    pqxx::nontransaction n(c);
    EXPECT_EQ(apply_batch(n, b).market_marks_applied, 0u);
    b.clear();
    b.add(op(2, "3", kT));  // a market's first mark
    EXPECT_EQ(apply_batch(n, b).market_marks_applied, 1u);
  }
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  const pqxx::result r = t.exec(
      "SELECT market_id::text, price::text, marked_at = to_timestamp(1700000000.001) "
      "FROM market_marks ORDER BY market_id");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0][0].as<std::string>(), seq_uuid(kMarket, 0));
  EXPECT_EQ(r[0][1].as<std::string>(), "101.250000000000000000");
  EXPECT_TRUE(r[0][2].as<bool>());
  EXPECT_EQ(r[1][1].as<std::string>(), "7.000000000000000000");
}

// The view and the matcher, on the same rows and the same prices: every position's current price,
// uPnL and ROE agree to the last digit, and user_portfolio sums the fresh values.
TEST(MarketMarks, TheFreshViewAndTheMatcherAgreeExactlyOnPnlAndRoe) {
  const std::string url = test::migrated_seeded_db("marks_view", 5, 0);
  const std::string u = seq_uuid(test::kUser, 1), w = seq_uuid(test::kWallet, 1);
  exec(url, "INSERT INTO users (id, telegram_id) VALUES ('" + u +
                "', 1); "
                "INSERT INTO wallets (id, user_id, wallet_address) VALUES ('" +
                w + "', '" + u +
                "', 'W' || lpad('1', 40, '0')); "
                "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" +
                w + "', 'Q', 1000)");
  // (n, market, side, size, entry, margin, status, stored current_price, stored uPnL)
  struct Row {
    int n, market;
    const char *side, *size, *entry, *margin, *status = "open", *price = "NULL", *pnl = "0";
  };
  const std::vector<Row> rows = {
      {1, 0, "long", "1.5", "100", "10"},
      {2, 0, "short", "2.25", "100.123456789", "7.5"},
      // Digits beyond 1e-9 are rounded half away from zero, by the engine and by the view alike.
      {3, 1, "long", "0.0000000015", "0.0000000025", "0.0000000005"},
      {4, 1, "short", "3.3333333335", "99.9999999995", "0.333333333"},  // ROE% truncates
      {5, 3, "short", "111111110", "9000000000", "1"},        // notional near 1e18, price 3e-9
      {6, 3, "long", "9000000000", "0.000000001", "9"},       // margin covers it: held, not armed
      {7, 4, "short", "1", "5", "0"},                         // no margin: ROE is NULL
      {8, 2, "long", "1", "100", "10", "open", "42", "-58"},  // market without a price: stored
      {9, 0, "long", "1", "100", "10", "closed", "90", "0"},  // closed: stored
  };
  for (const Row& r : rows) {
    // One user holds them all; sides other than the open ones' need distinct (market, side).
    exec(url, std::string("INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, "
                          "entry_price, margin, status, current_price, unrealized_pnl, closed_at) "
                          "VALUES ('") +
                  seq_uuid(kPosition, r.n) + "', '" + u + "', '" + w + "', '" +
                  seq_uuid(kMarket, r.market) + "', '" + r.side + "', " + r.size + ", " + r.entry +
                  ", " + r.margin + ", '" + r.status + "', " + r.price + ", " + r.pnl + ", " +
                  (std::string(r.status) == "open" ? "NULL" : "now()") + ")");
  }
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  Loader(url).load_all(matcher_sink(m, instruments, ev));
  m.on_tick(mark_tick(instruments, "S0", "101.123456789"), ev);
  m.on_tick(mark_tick(instruments, "S1", "99.5"), ev);
  m.on_tick(mark_tick(instruments, "S3", "0.000000003"), ev);
  m.on_tick(mark_tick(instruments, "S4", "4.5"), ev);
  for (const Event& e : ev)
    EXPECT_NE(e.type, EventType::position_liquidated) << "the prices liquidate nothing";

  {
    Writer wr({.conninfo = url, .flush_interval = 20ms});
    MarkPublisher pub({.market_interval = 0ms, .refresh_interval = 1h, .refresh_rows_per_s = 0});
    pub.step(m, Clock::now(), 1'700'000'000'000'000'000,
             [&](const WriteOp& op) { return wr.try_submit(op); });
    ASSERT_TRUE(wait_idle(wr));
    EXPECT_EQ(pub.market_marks_sent(), 4u);
    EXPECT_EQ(wr.stats().dead_letters.load(), 0u);
  }

  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  Wide total = 0;
  for (const Row& r : rows) {
    SCOPED_TRACE("position " + std::to_string(r.n));
    std::optional<PositionView> v = m.position(seq_id(kPosition, r.n));
    if (std::string(r.status) != "open") {
      ASSERT_FALSE(v) << "the engine loads open positions only";
      v = PositionView{};  // the view shows what is stored
      v->current_price = parse_raw(r.price);
      v->unrealized_pnl = parse_decimal(r.pnl).value.floor * kScale;
      v->margin = *parse_raw(r.margin);
    }
    ASSERT_TRUE(v);
    const std::string price = v->current_price ? format_fixed(*v->current_price) : "NULL";
    const std::string pnl = format_fixed(v->unrealized_pnl, kPnlDigits);
    const std::string roe = opt_text(roe_percent(v->unrealized_pnl, v->margin), kScaleDigits);
    if (std::string(r.status) == "open") total += v->unrealized_pnl;
    // Compared as numbers (the column's text carries its scale's trailing zeros) and printed.
    const pqxx::row x = t.exec_params1(
        "SELECT current_price IS NOT DISTINCT FROM $2::numeric, unrealized_pnl = $3::numeric, "
        "roe_percent IS NOT DISTINCT FROM $4::numeric, current_price::text, unrealized_pnl::text, "
        "roe_percent::text, marked_at IS NOT NULL FROM positions_live WHERE id = $1",
        seq_uuid(kPosition, r.n), price == "NULL" ? std::optional<std::string>{} : price, pnl,
        roe == "NULL" ? std::optional<std::string>{} : roe);
    EXPECT_TRUE(x[0].as<bool>()) << "view " << x[3].c_str() << " matcher " << price;
    EXPECT_TRUE(x[1].as<bool>()) << "view " << x[4].c_str() << " matcher " << pnl;
    EXPECT_TRUE(x[2].as<bool>()) << "view " << (x[5].is_null() ? "NULL" : x[5].c_str())
                                 << " matcher " << roe;
    EXPECT_EQ(x[6].as<bool>(), r.market != 2 && std::string(r.status) == "open")
        << "marked_at is set exactly when the value is fresh";
  }
  // Spot checks of the arithmetic itself, by hand: 1.5 x (101.123456789 - 100) and its ROE%.
  EXPECT_EQ(t.exec1("SELECT unrealized_pnl::text, roe_percent::text FROM positions_live WHERE id "
                    "= '" +
                    seq_uuid(kPosition, 1) + "'")[0]
                .as<std::string>(),
            "1.685185183500000000");
  // 4: 3.333333334 x 0.5 = 1.666666667, x 100 / 0.333333333 = 500.00000060000000060..., truncated.
  EXPECT_EQ(t.exec1("SELECT roe_percent::text FROM positions_live WHERE id = '" +
                    seq_uuid(kPosition, 4) + "'")[0]
                .as<std::string>(),
            "500.000000600");
  EXPECT_EQ(format_fixed(*roe_percent(m.position(seq_id(kPosition, 4))->unrealized_pnl,
                                      m.position(seq_id(kPosition, 4))->margin)),
            "500.0000006");
  // user_portfolio: the fresh total over the open positions (8's stored -58 included).
  const pqxx::row p = t.exec1(
      "SELECT open_positions, total_unrealized_pnl = $$" + format_fixed(total, kPnlDigits) +
      "$$::numeric, total_unrealized_pnl::text FROM user_portfolio WHERE user_id = '" + u + "'");
  EXPECT_EQ(p[0].as<int>(), 8);
  EXPECT_TRUE(p[1].as<bool>()) << p[2].c_str() << " vs " << format_fixed(total, kPnlDigits);
}

// The background refresh writes what the view computes into the stored columns.
TEST(MarketMarks, TheRefreshedStoredColumnsEqualTheView) {
  const std::string url = test::migrated_seeded_db("marks_refresh", 4, 200);
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  Loader(url).load_all(matcher_sink(m, instruments, ev));
  for (const char* s : {"S0", "S1", "S2", "S3"}) m.on_tick(mark_tick(instruments, s, "1001.5"), ev);
  {
    Writer wr({.conninfo = url, .flush_interval = 20ms});
    MarkPublisher pub({.market_interval = 0ms, .refresh_interval = 1h, .refresh_rows_per_s = 0});
    while (pub.passes() == 0)
      pub.step(m, Clock::now(), 1'700'000'000'000'000'000,
               [&](const WriteOp& op) { return wr.try_submit(op); });
    ASSERT_TRUE(wait_idle(wr));
    EXPECT_EQ(pub.positions_sent(), 200u);
  }
  pqxx::connection c(url);
  pqxx::read_transaction t(c);
  EXPECT_EQ(t.exec1("SELECT count(*) FROM positions p JOIN positions_fresh f USING (id) "
                    "WHERE p.current_price = f.current_price "
                    "AND p.unrealized_pnl = f.unrealized_pnl AND f.marked_at IS NOT NULL")[0]
                .as<int>(),
            200);
}

}  // namespace
}  // namespace lam::db
