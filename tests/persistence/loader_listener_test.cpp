// Start-up loading and live change capture against a real PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "engine/matcher.h"
#include "persistence/change_heartbeat.h"
#include "persistence/listener.h"
#include "persistence/loader.h"
#include "persistence/migrator.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/seed.h"

namespace lam::db {
namespace {
using namespace std::chrono_literals;
using test::kAlert;
using test::kMarket;
using test::kPosition;
using test::seq_id;
using test::seq_uuid;

std::string fresh(const std::string& name, long long n) {
  return test::migrated_seeded_db(name, 4, n);
}

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec(sql);
  w.commit();
}

// The listener's heartbeat (persistence/change_heartbeat.h): the probe after each connect, one
// heartbeat in flight, another daemon's ignored, a late one is death.
TEST(ChangeHeartbeat, AProbeAfterEachConnectThenOneInFlightAndALateOneIsDeath) {
  using namespace std::chrono_literals;
  using C = ChangeHeartbeat::Clock;
  ChangeHeartbeat hb({.interval = 5s, .timeout = 2s}, 42);
  const C::time_point t0{};
  hb.reconnected(t0);
  EXPECT_FALSE(hb.proven());
  const auto probe = hb.due(t0);
  ASSERT_TRUE(probe) << "the probe is due at once";
  EXPECT_FALSE(hb.due(t0 + 1s)) << "one in flight";
  EXPECT_FALSE(hb.heard(*probe + 1, t0 + 10ms)) << "another daemon's heartbeat";
  EXPECT_FALSE(hb.dead(t0 + 1999ms));
  EXPECT_EQ(hb.wake_at(), t0 + 2s);
  EXPECT_TRUE(hb.heard(*probe, t0 + 30ms));
  EXPECT_TRUE(hb.proven());
  EXPECT_EQ(hb.last_rtt(), 30ms);
  EXPECT_FALSE(hb.heard(*probe, t0 + 40ms)) << "heard once";
  EXPECT_FALSE(hb.due(t0 + 5s)) << "the next one comes an interval after the last came back";
  const auto next = hb.due(t0 + 5030ms);
  ASSERT_TRUE(next);
  EXPECT_NE(*next, *probe);
  EXPECT_FALSE(hb.dead(t0 + 7029ms));
  EXPECT_TRUE(hb.dead(t0 + 7030ms)) << "not back within the timeout: the path is dead";
  // A new session: proven again only by its own probe; the old nonce means nothing.
  hb.reconnected(t0 + 8s);
  EXPECT_FALSE(hb.proven());
  EXPECT_FALSE(hb.dead(t0 + 20s)) << "nothing in flight until the probe is sent";
  const auto probe2 = hb.due(t0 + 8s);
  ASSERT_TRUE(probe2);
  EXPECT_FALSE(hb.heard(*next, t0 + 8010ms));
  EXPECT_TRUE(hb.heard(*probe2, t0 + 8010ms));
}

TEST(CopyText, SplitsAndUnescapes) {
  std::vector<std::optional<std::string_view>> f;
  std::deque<std::string> scratch;
  const std::string line = "a\t\\N\tb\\tc\t\t\\\\N";
  split_copy_line(line, f, scratch);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0], "a");
  EXPECT_FALSE(f[1].has_value());
  EXPECT_EQ(f[2], "b\tc");
  EXPECT_EQ(f[3], "");
  EXPECT_EQ(f[4], "\\N") << "an escaped backslash followed by N is text, not null";
  const std::string with_newline = "x\t1.5\n";
  split_copy_line(with_newline, f, scratch);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1], "1.5") << "the line's own newline is not data";
}

TEST(Loader, StreamsMarketsOpenPositionsAndActiveAlerts) {
  const std::string url = fresh("loader_all", 20);
  exec(
      url,
      "UPDATE markets SET price_source = 'mid', maintenance_margin_rate = 0.01 WHERE symbol = 'S1';"
      "UPDATE markets SET market_type = 'spot' WHERE symbol = 'S2';"
      "UPDATE positions SET status = 'closed' WHERE id = '" +
          seq_uuid(kPosition, 1) +
          "';"
          "UPDATE alerts SET status = 'cancelled' WHERE id = '" +
          seq_uuid(kAlert, 1) +
          "';"
          "UPDATE alerts SET alert_type = 'volume', target_value = 12.5, metadata = "
          "'{\"window_seconds\": 60}', "
          "  expires_at = '2026-01-01T00:00:00.5Z' WHERE id = '" +
          seq_uuid(kAlert, 2) +
          "';"
          "UPDATE positions SET size = 1e12 WHERE id = '" +
          seq_uuid(kPosition, 3) + "';");  // beyond the engine's range
  std::vector<MarketRow> markets;
  std::vector<PositionSpec> positions;
  std::vector<AlertSpec> alerts;
  Loader loader(url);
  const LoadCounts n = loader.load_all({[&](MarketRow&& m) { markets.push_back(std::move(m)); },
                                        [&](PositionSpec&& p) { positions.push_back(p); },
                                        [&](AlertSpec&& a) { alerts.push_back(a); }, nullptr});
  EXPECT_EQ(n.markets, 4u);
  EXPECT_EQ(n.positions, 19u);  // 20 - closed; the out-of-range one is passed on, marked
  EXPECT_EQ(n.alerts, 19u);
  EXPECT_EQ(n.bad_rows, 0u);
  EXPECT_EQ(n.rejected_rows, 1u);
  EXPECT_EQ(
      std::count_if(positions.begin(), positions.end(),
                    [](const PositionSpec& p) { return p.invalid == RejectReason::out_of_range; }),
      1);
  for (const MarketRow& m : markets) {
    if (m.symbol == "S1") {
      EXPECT_EQ(m.spec.source, PriceSource::mid);
      EXPECT_EQ(m.spec.mmr, 10'000'000);
    } else if (m.symbol == "S2") {
      EXPECT_EQ(m.spec.source, PriceSource::last) << "spot defaults to last";
    } else {
      EXPECT_EQ(m.spec.source, PriceSource::mark);
      EXPECT_EQ(m.spec.mmr, kDefaultMmrRaw);
    }
    EXPECT_EQ(m.dex_name, "binance");
  }
  const auto vol = std::find_if(alerts.begin(), alerts.end(),
                                [](const AlertSpec& a) { return a.id == seq_id(kAlert, 2); });
  ASSERT_NE(vol, alerts.end());
  EXPECT_EQ(vol->type, AlertType::volume);
  EXPECT_EQ(vol->window_seconds, 60);
  EXPECT_EQ(vol->target_value->floor, 12'500'000'000);
  EXPECT_EQ(vol->expires_at, 1767225600500LL * kNsPerMs);
  const auto p2 = std::find_if(positions.begin(), positions.end(),
                               [](const PositionSpec& p) { return p.id == seq_id(kPosition, 2); });
  ASSERT_NE(p2, positions.end());
  EXPECT_EQ(p2->side, Side::long_side);
  EXPECT_EQ(p2->size, 3 * kScale);
  EXPECT_EQ(p2->entry_price, 1000 * kScale);
}

TEST(Loader, ErrorsReachTheCallerAndNothingHangs) {
  LoadSink ignore{[](MarketRow&&) {}, [](PositionSpec&&) {}, [](AlertSpec&&) {}, nullptr};
  EXPECT_THROW(Loader("host=/nonexistent dbname=x connect_timeout=1").load_all(ignore),
               std::exception)
      << "a connection failure in the parser thread must surface here";
  const std::string url =
      fresh("loader_sink_throws", 20000);  // several chunks: the parser is ahead
  LoadSink throwing{[](MarketRow&&) {},
                    [](PositionSpec&&) { throw std::runtime_error("engine refused"); },
                    [](AlertSpec&&) {}, nullptr};
  EXPECT_THROW(Loader(url).load_all(throwing), std::runtime_error);
}

TEST(Loader, DatabaseStateDrivesTheMatcher) {
  const std::string url = fresh("loader_matcher", 8);
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  Loader(url).load_all(matcher_sink(m, instruments, ev));
  EXPECT_TRUE(ev.empty());
  // alert n: price_above > 1000 + n % 100 on market n % 4; alert 5 is on market 1 with target 1005
  Tick t;
  t.instrument = *instruments.find("binance", "S1");
  t.price = 1005'500'000'000;
  m.on_tick(t, ev);
  std::vector<Uuid> fired;
  for (const Event& e : ev) {
    if (e.type == EventType::alert_triggered) fired.push_back(e.subject);
  }
  EXPECT_EQ(fired, (std::vector<Uuid>{seq_id(kAlert, 5), seq_id(kAlert, 1)}));
}

// Values the bot (or a hand-edited row) can store and the engine must survive: the load finishes,
// every row that cannot be armed is rejected by id and reason, "never" stays never.
TEST(Loader, HostileValuesAreReadSaturatedOrRejectedAndTheLoadCompletes) {
  const std::string url = fresh("loader_hostile", 8);
  const auto alert = [](int n) { return "'" + seq_uuid(kAlert, n) + "'"; };
  const auto position = [](int n) { return "'" + seq_uuid(kPosition, n) + "'"; };
  exec(url, "UPDATE alerts SET expires_at = 'infinity' WHERE id = " + alert(1) +
                ";"
                "UPDATE alerts SET expires_at = '-infinity' WHERE id = " +
                alert(2) +
                ";"
                "UPDATE alerts SET expires_at = '9999-12-31 23:59:59+00' WHERE id = " +
                alert(3) +
                ";"
                "UPDATE alerts SET target_price = 'NaN' WHERE id = " +
                alert(4) +
                ";"
                "UPDATE alerts SET alert_type = 'volume', condition_type = 'greater_than', "
                "target_value = 5, metadata = '{\"window_seconds\": 9223372037}' WHERE id = " +
                alert(6) +
                ";"
                "UPDATE positions SET side = 'short', size = 8999999999, entry_price = 8999999999 "
                "WHERE id = " +
                position(1) +
                ";"
                "UPDATE positions SET closed_at = 'infinity' WHERE id = " +
                position(2) + ";");
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  std::map<Uuid, AlertSpec> alerts;
  LoadSink sink = matcher_sink(m, instruments, ev);
  auto to_matcher = sink.alert;
  sink.alert = [&](AlertSpec&& a) {
    alerts[a.id] = a;
    to_matcher(std::move(a));
  };
  const LoadCounts n = Loader(url).load_all(sink);
  EXPECT_EQ(n.alerts, 8u);
  EXPECT_EQ(n.positions, 8u);
  EXPECT_EQ(n.bad_rows, 0u);
  EXPECT_EQ(n.rejected_rows, 2u);  // the NaN target, the position beyond DECIMAL(36,18)
  const auto reason_of = [&](const Uuid& id, EventType type) {
    for (const Event& e : ev) {
      if (e.subject == id && e.type == type) return e.reason;
    }
    return RejectReason::none;
  };
  EXPECT_EQ(reason_of(seq_id(kAlert, 4), EventType::alert_rejected), RejectReason::not_a_number);
  EXPECT_EQ(reason_of(seq_id(kAlert, 6), EventType::alert_rejected), RejectReason::invalid_window);
  EXPECT_EQ(reason_of(seq_id(kPosition, 1), EventType::position_rejected),
            RejectReason::out_of_range);
  EXPECT_EQ(ev.size(), 3u);
  EXPECT_FALSE(alerts.at(seq_id(kAlert, 1)).expires_at.has_value());  // infinity: never
  EXPECT_EQ(alerts.at(seq_id(kAlert, 2)).expires_at, kTimeMin);
  EXPECT_EQ(alerts.at(seq_id(kAlert, 3)).expires_at, kTimeMax);  // 9999: saturated, far future
  EXPECT_TRUE(m.alert(seq_id(kAlert, 3))->armed);
  EXPECT_FALSE(m.position(seq_id(kPosition, 1)).has_value());
  EXPECT_TRUE(m.position(seq_id(kPosition, 2)).has_value());
}

// Orders and balances, read by the same reader (0005 columns), into a matcher: a stop armed, a
// resting limit, a filled one left alone, a stop_limit past its trigger, a balance per wallet.
TEST(Loader, PendingAndOpenOrdersAndEveryBalanceLoadIntoTheMatcher) {
  const std::string url = fresh("loader_orders", 4);
  const auto wallet = [](int n) {
    return "'0000000e-0000-4000-8000-" + std::string(11, '0') + std::to_string(n) + "'";
  };
  const auto user = [](int n) {
    return "'0000000c-0000-4000-8000-" + std::string(11, '0') + std::to_string(n) + "'";
  };
  const std::string market = "'" + seq_uuid(kMarket, 1) + "'";
  exec(url,
       "INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance) VALUES (" +
           wallet(1) + ", 'Q', 1000, 0), (" + wallet(2) +
           ", 'Q', 'NaN', 0);"
           "SET app.origin = 'engine';"  // a filled order is the engine's to write (0015)
           "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price, "
           "trigger_price, trigger_source, status, leverage) VALUES "
           "('00000000-0000-4000-8000-0000000f0001', " +
           user(1) + ", " + wallet(1) + ", " + market +
           ", 'stop', 'long', 1, NULL, 1500, 'mark', 'pending', 5),"
           "('00000000-0000-4000-8000-0000000f0002', " +
           user(1) + ", " + wallet(1) + ", " + market +
           ", 'limit', 'short', 1, 2000, NULL, NULL, 'pending', 5),"
           "('00000000-0000-4000-8000-0000000f0003', " +
           user(1) + ", " + wallet(1) + ", " + market +
           ", 'market', 'long', 1, NULL, NULL, NULL, 'filled', 5)");
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  const LoadCounts n = Loader(url).load_all(matcher_sink(m, instruments, ev, /*orders=*/true));
  EXPECT_EQ(n.orders, 2u);    // the filled one is not loaded
  EXPECT_EQ(n.balances, 1u);  // the NaN balance is unreadable: that wallet has none
  EXPECT_EQ(n.bad_rows, 1u);
  ASSERT_TRUE(m.order(*Uuid::parse("00000000-0000-4000-8000-0000000f0001")));
  EXPECT_EQ(m.order(*Uuid::parse("00000000-0000-4000-8000-0000000f0001"))->status,
            OrderStatus::pending);
  // no tradeable price yet: the limit waits, pending
  EXPECT_EQ(m.order(*Uuid::parse("00000000-0000-4000-8000-0000000f0002"))->status,
            OrderStatus::pending);
  EXPECT_EQ(m.balance(*Uuid::parse(wallet(1).substr(1, 36)), Asset::of("Q")).balance,
            1000 * kScale);
  EXPECT_TRUE(ev.empty());
}

// Issue 28: rows the database refuses since migration 0012 but that were written before it (here
// with the constraints and triggers off, as before the migration) are rejected by the engine with
// their reason, never armed: an order and a position of user 1 on user 2's wallet, and a filled
// order set back to open with its fill still on the row.
TEST(Loader, RowsOnAnotherUsersWalletAndRevivedOrdersAreRejectedNotArmed) {
  const std::string url = fresh("loader_integrity", 4);
  const std::string u1 = "'" + seq_uuid(kUser, 1) + "'", w1 = "'" + seq_uuid(kWallet, 1) + "'";
  const std::string w2 = "'" + seq_uuid(kWallet, 2) + "'";
  const std::string market = "'" + seq_uuid(kMarket, 1) + "'";
  exec(url, "DELETE FROM positions");
  exec(url,
       "SET session_replication_role = replica;"  // as before 0012: no constraint check
       "INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance) VALUES (" +
           w2 +
           ", 'Q', 1000, 0);"
           "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, status, "
           "filled_size, filled_at, leverage) VALUES "
           "('00000000-0000-4000-8000-0000000f0001', " +
           u1 + ", " + w2 + ", " + market +
           ", 'market', 'long', 1, 'pending', 0, NULL, 5),"
           "('00000000-0000-4000-8000-0000000f0002', " +
           u1 + ", " + w1 + ", " + market +
           ", 'market', 'long', 1, 'open', 1, now(), 5),"
           "('00000000-0000-4000-8000-0000000f0003', " +
           u1 + ", " + w1 + ", " + market +
           ", 'market', 'long', 1, 'pending', 0, NULL, 5);"
           "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, "
           "margin) VALUES ('00000000-0000-4000-8000-0000000b0001', " +
           u1 + ", " + w2 + ", " + market + ", 'long', 1, 100, 10)");
  Matcher m;
  InstrumentTable instruments;
  std::vector<Event> ev;
  const LoadCounts n = Loader(url).load_all(matcher_sink(m, instruments, ev, /*orders=*/true));
  EXPECT_EQ(n.orders, 3u);
  std::map<std::string, const Event*> by_subject;
  for (const Event& e : ev) by_subject[e.subject.str()] = &e;
  const Event* foreign_order = by_subject["00000000-0000-4000-8000-0000000f0001"];
  ASSERT_NE(foreign_order, nullptr);
  EXPECT_EQ(foreign_order->type, EventType::order_rejected);
  EXPECT_EQ(foreign_order->reason, RejectReason::foreign_wallet);
  const Event* revived = by_subject["00000000-0000-4000-8000-0000000f0002"];
  ASSERT_NE(revived, nullptr);
  EXPECT_EQ(revived->type, EventType::order_revival_refused);
  EXPECT_FALSE(m.order(*Uuid::parse("00000000-0000-4000-8000-0000000f0002")));
  const Event* foreign_position = by_subject["00000000-0000-4000-8000-0000000b0001"];
  ASSERT_NE(foreign_position, nullptr);
  EXPECT_EQ(foreign_position->type, EventType::position_rejected);
  EXPECT_EQ(foreign_position->reason, RejectReason::foreign_wallet);
  EXPECT_EQ(by_subject.count("00000000-0000-4000-8000-0000000f0003"), 0u) << "its own: armed";
  EXPECT_EQ(m.order(*Uuid::parse("00000000-0000-4000-8000-0000000f0003"))->status,
            OrderStatus::pending);
  // User 2's balance is untouched by anything of user 1.
  EXPECT_EQ(m.balance(*Uuid::parse(seq_uuid(kWallet, 2)), Asset::of("Q")).balance, 1000 * kScale);
  EXPECT_EQ(m.balance(*Uuid::parse(seq_uuid(kWallet, 2)), Asset::of("Q")).locked, 0);
}

/// What a sink saw, in the order it saw it.
struct Recorded {
  std::vector<char> kinds;  // 'm'arket, 'p'osition, 'a'lert, 'b'alance, 'o'rder
  std::vector<Uuid> positions, alerts, orders;
  LoadSink sink() {
    LoadSink s{[this](MarketRow&&) { kinds.push_back('m'); },
               [this](PositionSpec&& p) {
                 kinds.push_back('p');
                 positions.push_back(p.id);
               },
               [this](AlertSpec&& a) {
                 kinds.push_back('a');
                 alerts.push_back(a.id);
               },
               nullptr};
    s.balance = [this](BalanceSpec&&) { kinds.push_back('b'); };
    s.order = [this](OrderSpec&& o) {
      kinds.push_back('o');
      orders.push_back(o.id);
    };
    return s;
  }
  /// Every market first; every position before any alert or order; every balance before any
  /// order.
  void expect_an_order_the_rows_allow() const {
    const auto first = [&](char k) {
      return std::find(kinds.begin(), kinds.end(), k) - kinds.begin();
    };
    const auto last = [&](char k) {
      const auto it = std::find(kinds.rbegin(), kinds.rend(), k);
      return it == kinds.rend() ? -1 : kinds.rend() - it - 1;
    };
    EXPECT_LT(last('m'), first('p'));
    EXPECT_LT(last('m'), first('b'));
    EXPECT_LT(last('p'), first('a'));
    EXPECT_LT(last('p'), first('o'));
    EXPECT_LT(last('b'), first('o'));
  }
};

// The three streams read one snapshot: a writer commits a position and an alert together, over and
// over, while the tables load; every load sees as many of the pairs' positions as of their alerts.
// In parallel and in turn, the rows reach the sink in an order they allow.
TEST(Loader, ParallelStreamsShareOneSnapshotAndDeliverInAnOrderTheRowsAllow) {
  constexpr long long kRows = 20000;
  const std::string url = fresh("loader_parallel", kRows);
  exec(url,
       "INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance) SELECT "
       "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1000, 0 "
       "FROM generate_series(1, " +
           std::to_string(kRows) +
           ") g;"
           "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price, "
           "leverage) SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
           "('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
           "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
           "('0000000a-0000-4000-8000-' || lpad(to_hex(g % 4), 12, '0'))::uuid, 'limit', "
           "'long', 1, 10, 5 FROM generate_series(1, " +
           std::to_string(kRows) + ") g");
  std::atomic<bool> stop{false};
  std::atomic<long long> pairs{0};
  std::thread writer([&] {
    pqxx::connection c(url);
    for (long long k = 1; k <= kRows && !stop.load(); ++k) {
      // user k's other side in market k % 4: the open-position index allows it
      const std::string user = std::string("'").append(seq_uuid(test::kUser, k)).append("'");
      pqxx::work w(c);
      w.exec(
          "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, "
          "margin) VALUES ('" +
          seq_uuid(0x1B, k) + "', " + user + ", '" + seq_uuid(test::kWallet, k) + "', '" +
          seq_uuid(kMarket, k % 4) + "', '" + (k % 2 == 0 ? "short" : "long") +
          "', 1, 1000, 100);"
          "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, "
          "target_price) VALUES ('" +
          seq_uuid(0x1D, k) + "', " + user + ", '" + seq_uuid(kMarket, k % 4) +
          "', 'price_above', 'greater_than', 2000)");
      w.commit();
      pairs.store(k);
    }
  });
  const auto prefix = [](const std::vector<Uuid>& ids, unsigned kind) {
    return std::count_if(ids.begin(), ids.end(), [kind](const Uuid& id) {
      return static_cast<unsigned>(id.hi >> 32) == kind;
    });
  };
  long long seen_pairs = 0;
  for (int round = 0; round < 6; ++round) {
    const bool parallel = round % 2 == 0;
    SCOPED_TRACE(parallel ? "parallel" : "in turn");
    Recorded got;
    const LoadCounts n = Loader(url, parallel).load_all(got.sink());
    EXPECT_EQ(n.markets, 4u);
    EXPECT_EQ(n.orders, static_cast<std::size_t>(kRows));
    EXPECT_EQ(n.balances, static_cast<std::size_t>(kRows));
    EXPECT_EQ(n.positions, got.positions.size());
    EXPECT_EQ(n.alerts, got.alerts.size());
    EXPECT_EQ(prefix(got.positions, 0x1B), prefix(got.alerts, 0x1D)) << "one snapshot";
    seen_pairs = std::max<long long>(seen_pairs, prefix(got.positions, 0x1B));
    got.expect_an_order_the_rows_allow();
  }
  stop.store(true);
  writer.join();
  EXPECT_GT(seen_pairs, 0) << "the writer ran while the tables loaded";
  EXPECT_GT(pairs.load(), 0);
}

TEST(Loader, AFailureAnywhereReachesTheCallerAndEveryStreamStops) {
  const std::string url = fresh("loader_parallel_fail", 20000);
  exec(url,
       "INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance) SELECT "
       "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Q', 1000, 0 "
       "FROM generate_series(1, 20000) g");
  for (const char kind : {'p', 'a', 'b'}) {
    Recorded got;
    LoadSink sink = got.sink();
    const auto boom = [](auto&&) { throw std::runtime_error("engine refused"); };
    if (kind == 'p') sink.position = boom;
    if (kind == 'a') sink.alert = boom;
    if (kind == 'b') sink.balance = boom;
    EXPECT_THROW(Loader(url).load_all(sink), std::runtime_error) << kind;
  }
  // Nothing left behind: every connection of the failed loads is gone.
  pqxx::connection c(url);
  const auto others = [&] {
    return pqxx::nontransaction(c)
        .exec1(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid "
            "<> pg_backend_pid()")[0]
        .as<int>();
  };
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (others() > 0 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(others(), 0);
}

struct Drain {
  Listener& l;
  std::vector<EngineCommand> got;
  /// Waits until `pred` holds for a received command.
  bool until(const std::function<bool(const EngineCommand&)>& pred,
             std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      EngineCommand c;
      while (l.commands().try_dequeue(c)) {
        got.push_back(c);
        if (pred(got.back())) return true;
      }
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }
};

using K = EngineCommand::Kind;

TEST(Listener, ResyncsThenFollowsTheBotsChanges) {
  const std::string url = fresh("listener_follow", 5);
  Listener l({.conninfo = url});
  Drain d{l, {}};
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  EXPECT_EQ(d.got.front().kind, K::resync_begin);
  EXPECT_EQ(std::count_if(d.got.begin(), d.got.end(),
                          [](const EngineCommand& c) { return c.kind == K::upsert_alert; }),
            5);
  EXPECT_EQ(std::count_if(d.got.begin(), d.got.end(),
                          [](const EngineCommand& c) { return c.kind == K::upsert_position; }),
            5);

  const std::string fresh_id = "dddddddd-0000-4000-8000-000000000001";
  exec(url,
       "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
       "VALUES ('" +
           fresh_id + "', '" + seq_uuid(test::kUser, 1) + "', '" + seq_uuid(kMarket, 1) +
           "', 'price_below', 'less_than', 5)");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id.str() == fresh_id &&
           c.alert.status == AlertStatus::active;
  })) << "insert";
  exec(url, "UPDATE alerts SET status = 'cancelled' WHERE id = '" + fresh_id + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id.str() == fresh_id &&
           c.alert.status == AlertStatus::cancelled;
  })) << "cancel";
  exec(url, "DELETE FROM alerts WHERE id = '" + fresh_id + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::remove_alert && c.id.str() == fresh_id;
  })) << "delete";
  exec(url, "UPDATE positions SET size = 4 WHERE id = '" + seq_uuid(kPosition, 2) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_position && c.position.id == seq_id(kPosition, 2) &&
           c.position.size == 4 * kScale;
  })) << "position edit";
  exec(url, "UPDATE markets SET maintenance_margin_rate = 0.02 WHERE id = '" +
                seq_uuid(kMarket, 1) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_market && c.market.spec.mmr == 20'000'000;
  })) << "market edit";
  // A write made as the engine does not come back.
  exec(url, "SET app.origin = 'engine'; UPDATE alerts SET message = 'x' WHERE id = '" +
                seq_uuid(kAlert, 3) + "'");
  EXPECT_FALSE(d.until(
      [&](const EngineCommand& c) {
        return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 3);
      },
      500ms));
  EXPECT_EQ(l.stats().bad_payloads.load(), 0u);
}

TEST(Listener, HostileValuesNeitherStallTheResyncNorTheChangesAfterThem) {
  const std::string url = fresh("listener_hostile", 5);
  // Present before the listener starts: its resync must get through them.
  exec(url, "UPDATE alerts SET expires_at = 'infinity' WHERE id = '" + seq_uuid(kAlert, 1) + "'");
  Listener l({.conninfo = url});
  Drain d{l, {}};
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  exec(url, "UPDATE alerts SET target_price = 'NaN' WHERE id = '" + seq_uuid(kAlert, 2) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 2) &&
           c.alert.invalid == RejectReason::not_a_number;
  })) << "a NaN target reaches the engine marked, to be rejected";
  exec(url, "UPDATE alerts SET expires_at = '-infinity' WHERE id = '" + seq_uuid(kAlert, 3) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 3) &&
           c.alert.expires_at == kTimeMin;
  }));
  // ... and an ordinary change after them still flows.
  exec(url, "UPDATE alerts SET status = 'cancelled' WHERE id = '" + seq_uuid(kAlert, 4) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 4) &&
           c.alert.status == AlertStatus::cancelled;
  }));
  EXPECT_EQ(l.stats().resyncs.load(), 1u);  // never fell back to a resync loop
}

TEST(Listener, AReadTheWriterAsksForIsMarkedReconcileAndTheBotsAreNot) {
  // The writer names the position of a fill the bot's cancel beat (op RECONCILE): the engine must
  // take that read past its stale-read check; a change the bot made is not marked.
  const std::string url = fresh("listener_reconcile", 3);
  Listener l({.conninfo = url});
  Drain d{l, {}};
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  exec(url, "UPDATE positions SET size = 2 WHERE id = '" + seq_uuid(kPosition, 1) + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_position && c.position.id == seq_id(kPosition, 1) && !c.reconcile;
  })) << "the bot's change";
  exec(url,
       "SELECT pg_notify('laminator_changes', json_build_object('t', 'positions', 'op', "
       "'RECONCILE', 'id', '" +
           seq_uuid(kPosition, 2) + "')::text)");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_position && c.position.id == seq_id(kPosition, 2) && c.reconcile;
  })) << "the writer's request";
}

TEST(Listener, FollowsOrdersAndBalancesWhenAskedTo) {
  const std::string url = fresh("listener_orders", 3);
  Listener l({.conninfo = url, .orders = true});
  Drain d{l, {}};
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  const std::string w1 = "0000000e-0000-4000-8000-000000000001";
  const std::string order = "00000000-0000-4000-8000-0000000f0001";
  exec(url, "INSERT INTO wallet_balances (wallet_id, token_symbol, balance) VALUES ('" + w1 +
                "', 'Q', 250)");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_balance && c.balance.wallet_id.str() == w1 &&
           c.balance.balance == 250 * kScale && !c.balance.row_id.is_nil();
  })) << "balance insert";
  exec(url,
       "INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, "
       "trigger_price) VALUES ('" +
           order + "', '" + seq_uuid(test::kUser, 1) + "', '" + w1 + "', '" + seq_uuid(kMarket, 1) +
           "', 'stop', 'sell', 1, 900)");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_order && c.order.id.str() == order &&
           c.order.type == OrderType::stop && c.order.side == OrderSide::sell &&
           c.order.trigger_price == 900 * kScale && c.order.execution == Execution::paper;
  })) << "order insert";
  exec(url,
       "SELECT pg_notify('laminator_changes', json_build_object('t', 'orders', 'op', "
       "'RECONCILE', 'id', '" +
           order + "')::text)");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_order && c.order.id.str() == order && c.reconcile;
  })) << "the writer's request (a fill of it lost to the bot's close of its position)";
  exec(url, "UPDATE orders SET status = 'cancelled' WHERE id = '" + order + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::upsert_order && c.order.id.str() == order &&
           c.order.status == OrderStatus::cancelled && !c.reconcile;
  })) << "cancel";
  exec(url, "DELETE FROM orders WHERE id = '" + order + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) {
    return c.kind == K::remove_order && c.id.str() == order;
  })) << "delete";
  exec(url, "DELETE FROM wallet_balances WHERE wallet_id = '" + w1 + "'");
  ASSERT_TRUE(d.until([&](const EngineCommand& c) { return c.kind == K::remove_balance; }))
      << "balance delete";
}

TEST(Listener, AKilledConnectionReconnectsAndResyncsWithoutMissingChanges) {
  const std::string url = fresh("listener_kill", 3);
  Listener l({.conninfo = url, .backoff_min = 300ms});
  Drain d{l, {}};
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  const int pid = l.backend_pid();
  ASSERT_NE(pid, 0);
  exec(url, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  // While the listener is away (it waits >= 300 ms before reconnecting), the bot cancels an alert:
  // the notification is lost, the resync must carry the change.
  std::this_thread::sleep_for(100ms);
  exec(url, "UPDATE alerts SET status = 'cancelled' WHERE id = '" + seq_uuid(kAlert, 2) + "'");
  d.got.clear();
  ASSERT_TRUE(d.until([](const EngineCommand& c) { return c.kind == K::resync_end; }));
  EXPECT_GE(l.stats().resyncs.load(), 2u);
  EXPECT_NE(l.backend_pid(), pid);
  // The resync lists active alerts only: alert 2 is absent, which tells the engine it is no longer
  // active.
  EXPECT_EQ(std::count_if(d.got.begin(), d.got.end(),
                          [](const EngineCommand& c) { return c.kind == K::upsert_alert; }),
            2);
  EXPECT_TRUE(std::none_of(d.got.begin(), d.got.end(), [](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 2);
  }));
  // And live changes flow again.
  exec(url, "UPDATE alerts SET status = 'cancelled' WHERE id = '" + seq_uuid(kAlert, 3) + "'");
  ASSERT_TRUE(d.until([](const EngineCommand& c) {
    return c.kind == K::upsert_alert && c.alert.id == seq_id(kAlert, 3) &&
           c.alert.status == AlertStatus::cancelled;
  }));
}

}  // namespace
}  // namespace lam::db
