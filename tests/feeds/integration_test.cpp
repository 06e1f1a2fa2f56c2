// Every venue against the mock exchange on loopback, through the real session, runner and queue:
// subscribe and receive, reconnect after a drop, detect a stall, survive garbage, close codes and
// notices, merge Bybit deltas, detect sequence gaps, respect the venue's message rate, and never
// block on a full queue.
#include <gtest/gtest.h>

#include <map>

#include "tests/feeds/harness.h"

namespace lam::feeds {
namespace {

using mockex::Faults;
using mockex::MockExchange;
using test::VenueFeed;

mockex::Options mock_options(double rate = 2000) {
  mockex::Options o;
  o.rate = rate;
  o.heartbeat_every = std::chrono::milliseconds(100);
  return o;
}

std::uint8_t expected_kinds(Venue v) {
  std::uint8_t k = 0;
  for (const Route& r : venue_routes(v)) k |= r.kinds;
  return k;
}

class EveryVenue : public ::testing::TestWithParam<Venue> {};

TEST_P(EveryVenue, SubscribesReceivesEveryTickKindAndGoesLive) {
  const Venue v = GetParam();
  MockExchange ex(mock_options());
  ex.start();
  VenueFeed f(ex, v);
  f.runner.start();
  const std::uint8_t kinds = expected_kinds(v);
  auto all_kinds = [&] {
    for (TickKind k : {TickKind::mark, TickKind::trade, TickKind::bbo}) {
      if ((kinds & kind_bit(k)) && f.ticks(k) < 20) return false;
    }
    return f.states(FeedState::live) >= 2 * f.runner.size();
  };
  EXPECT_TRUE(f.drain_until(all_kinds)) << venue_name(v);
  f.runner.stop();
  EXPECT_EQ(f.sum([](auto& c) { return c.malformed.load(); }), 0u);
  EXPECT_EQ(f.sum([](auto& c) { return c.unknown_symbol.load(); }), 0u);
  EXPECT_EQ(f.sum([](auto& c) { return c.opens.load(); }), f.runner.size());
  EXPECT_GE(ex.counters(v).subscribes.load(), f.runner.size());
  // Every tick belongs to a subscribed symbol and carries sane fields.
  for (const FeedEvent& e : f.events) {
    if (e.kind != FeedEventKind::tick) continue;
    EXPECT_LT(e.tick.instrument, f.table.size());
    EXPECT_GT(e.tick.price, 0);
    EXPECT_GT(e.tick.recv_ts, 0);
    EXPECT_GT(e.tick.exch_ts, 0);
    if (e.tick.kind == TickKind::bbo) {
      EXPECT_GT(e.tick.ask, 0);
    }
  }
}

TEST_P(EveryVenue, ReconnectsAfterTheConnectionIsDropped) {
  const Venue v = GetParam();
  mockex::Options o = mock_options();
  Faults fl;
  fl.drop_after = 30;
  o.faults[static_cast<std::size_t>(v)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, v);
  f.runner.start();
  const std::size_t conns = f.runner.size();
  // Live again after the drop: a `live` state event for every symbol after a `disconnected` one.
  auto live_after_drop = [&] {
    bool dropped = false;
    std::size_t live = 0;
    for (const FeedEvent& e : f.events) {
      if (e.kind != FeedEventKind::state) continue;
      if (e.reason == FeedReason::disconnected) dropped = true;
      if (dropped && e.state == FeedState::live) ++live;
    }
    return live >= 2;
  };
  EXPECT_TRUE(f.drain_until([&] {
    return f.sum([](auto& c) { return c.opens.load(); }) >= conns + 1 && live_after_drop();
  })) << venue_name(v);
  f.runner.stop();
  EXPECT_GE(f.sum([](auto& c) { return c.disconnects.load(); }), 1u);
}

TEST_P(EveryVenue, DetectsAStallAndReconnects) {
  const Venue v = GetParam();
  mockex::Options o = mock_options();
  Faults fl;
  fl.silent_after_ack = true;  // handshake and ack fine, then nothing (Binance's wrong route)
  fl.connections = 1;
  o.faults[static_cast<std::size_t>(v)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, v, 1 << 16, [](ConnectionConfig& c) {
    c.rules.idle_budget = Millis{400};
    c.rules.stale_budget = Millis{200};
    c.rules.ping_every = Millis{0};  // a pong would count as traffic
  });
  f.runner.start();
  // Wait for the events themselves, not the counter: the counter is bumped before they are queued.
  EXPECT_TRUE(f.drain_until([&] {
    return f.states(FeedState::stale, FeedReason::no_data) >= 2 &&
           f.states(FeedState::connecting, FeedReason::idle_timeout) >= 2 &&
           f.states(FeedState::live) >= 2;
  })) << venue_name(v);
  f.runner.stop();
  EXPECT_GE(f.sum([](auto& c) { return c.idle_timeouts.load(); }), 1u);
}

TEST_P(EveryVenue, SurvivesGarbageAndTruncatedFrames) {
  const Venue v = GetParam();
  mockex::Options o = mock_options();
  Faults fl;
  fl.garbage_every = 5;
  fl.truncate_every = 7;
  fl.connections = 0;
  o.faults[static_cast<std::size_t>(v)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, v);
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] {
    return f.sum([](auto& c) { return c.malformed.load(); }) >= 20 &&
           f.count(FeedEventKind::tick) >= 100;
  })) << venue_name(v);
  f.runner.stop();
  // Bad frames are skipped, not a reason to reconnect.
  EXPECT_EQ(f.sum([](auto& c) { return c.opens.load(); }), f.runner.size());
}

INSTANTIATE_TEST_SUITE_P(Feeds, EveryVenue,
                         ::testing::Values(Venue::binance, Venue::bybit, Venue::okx,
                                           Venue::hyperliquid, Venue::coinbase, Venue::pyth),
                         [](const ::testing::TestParamInfo<Venue>& p) {
                           return std::string(venue_name(p.param));
                         });

TEST(BybitFeed, PartialDeltasMergeIntoCompleteBooks) {
  mockex::Options o = mock_options();
  o.bybit_snapshot_every = 10;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::bybit);
  f.runner.start();
  EXPECT_TRUE(f.drain_until(
      [&] { return f.ticks(TickKind::bbo) >= 200 && f.ticks(TickKind::mark) >= 50; }));
  f.runner.stop();
  // Every delta carries one side or the mark only; every book tick still has both sides (the
  // unchanged one merged from earlier frames).
  std::size_t checked = 0;
  for (const FeedEvent& e : f.events) {
    if (e.kind == FeedEventKind::tick && e.tick.kind == TickKind::bbo) {
      ++checked;
      EXPECT_GT(e.tick.price, 0);
      EXPECT_GT(e.tick.ask, 0);
    }
  }
  EXPECT_GE(checked, 200u);
  EXPECT_EQ(f.sum([](auto& c) { return c.malformed.load() + c.bad_values.load(); }), 0u);
}

TEST(CoinbaseFeed, SequenceGapIsAnEventForEverySymbol) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.skip_seq_every = 25;
  fl.connections = 0;
  o.faults[static_cast<std::size_t>(Venue::coinbase)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::coinbase);
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] { return f.count(FeedEventKind::gap) >= 6; }));
  f.runner.stop();
  for (const FeedEvent& e : f.events) {
    if (e.kind == FeedEventKind::gap) {
      EXPECT_EQ(e.reason, FeedReason::sequence_gap);
      EXPECT_EQ(e.count, 1u);
    }
  }
}

// Issue 16: Coinbase trades come from `market_trades` with their sizes; the snapshot each subscribe
// is answered with re-sends the latest trades, and across reconnects no trade is emitted twice.
TEST(CoinbaseFeed, TradesHaveSizesAndAreEmittedOnceAcrossReconnects) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.drop_after = 150;
  fl.connections = 3;
  o.faults[static_cast<std::size_t>(Venue::coinbase)] = fl;
  MockExchange ex(o);
  ex.start();
  // Subscribes paced fast enough that each connection gets its market_trades snapshot.
  VenueFeed f(ex, Venue::coinbase, 1 << 16,
              [](ConnectionConfig& c) { c.rules.max_msgs_per_s = 100; });
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] {
    return f.sum([](auto& c) { return c.opens.load(); }) >= 4 && f.ticks(TickKind::trade) >= 60;
  }));
  f.runner.stop();
  std::map<std::pair<InstrumentId, std::uint32_t>, int> seen;
  for (const FeedEvent& e : f.events) {
    if (e.kind != FeedEventKind::tick || e.tick.kind != TickKind::trade) continue;
    EXPECT_GT(e.tick.size, 0);
    const auto key = std::make_pair(e.tick.instrument, e.tick.venue_seq);
    EXPECT_EQ(++seen[key], 1) << "trade " << e.tick.venue_seq << " emitted twice";
  }
  EXPECT_GE(seen.size(), 60u);
  EXPECT_GE(f.sum([](auto& c) { return c.out_of_order.load(); }), 3u)
      << "the reconnects' snapshots were recognized";
}

TEST(BinanceFeed, AggTradeGapsAreReported) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.skip_seq_every = 20;
  fl.connections = 0;
  o.faults[static_cast<std::size_t>(Venue::binance)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::binance);
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] { return f.count(FeedEventKind::gap) >= 3; }));
  f.runner.stop();
}

TEST(OkxFeed, CloseCode4004AndTheUpgradeNoticeBothReconnect) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.close_after = 40;
  fl.close_code = 4004;
  fl.connections = 1;
  o.faults[static_cast<std::size_t>(Venue::okx)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::okx);
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] { return f.sum([](auto& c) { return c.opens.load(); }) >= 2; }));
  // Now the notice: the next connection is warned instead of closed, and we leave first.
  fl.notice_before_close = true;
  fl.connections = 0;
  ex.set_faults(Venue::okx, fl);
  f.runner.stop();
  VenueFeed g(ex, Venue::okx);
  g.runner.start();
  EXPECT_TRUE(g.drain_until([&] {
    return g.states(FeedState::connecting, FeedReason::venue_notice) >= 2 &&
           g.sum([](auto& c) { return c.opens.load(); }) >= 2;
  }));
  g.runner.stop();
  EXPECT_GE(g.sum([](auto& c) { return c.notices.load(); }), 1u);
}

// ---- Pyth Hermes (issue 16) ----

// Hermes has wanted an API key since 2026-08-18: without it (or with a wrong one) the handshake is
// refused with 401 and we back off and retry; with it, the feed runs. The key travels only in the
// Authorization header.
TEST(PythFeed, TheApiKeyGoesInTheHandshakeAndAWrongOneIsRefused) {
  mockex::Options o = mock_options();
  o.pyth_api_key = "k3y-for-tests";
  MockExchange ex(o);
  ex.start();
  {
    VenueFeed f(ex, Venue::pyth, 1 << 16,
                [](ConnectionConfig& c) { c.client.authorization = "Bearer wrong"; });
    f.runner.start();
    EXPECT_TRUE(f.drain_until([&] { return ex.counters(Venue::pyth).unauthorized.load() >= 2; }));
    f.runner.stop();
    EXPECT_EQ(f.sum([](auto& c) { return c.opens.load(); }), 0u);
    EXPECT_EQ(f.count(FeedEventKind::tick), 0u);
  }
  VenueFeed f(ex, Venue::pyth, 1 << 16,
              [](ConnectionConfig& c) { c.client.authorization = "Bearer k3y-for-tests"; });
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] { return f.ticks(TickKind::mark) >= 50; }));
  f.runner.stop();
  EXPECT_EQ(f.sum([](auto& c) { return c.opens.load(); }), 1u);
}

// The rate-limit frame (no `type`) is counted as a rejection and the server's close is followed by
// a reconnect; the 24 h cut-off message reconnects at once as a venue notice; the server's pings
// are answered.
TEST(PythFeed, RateLimitAndTheDailyCutOffReconnectAndPingsAreAnswered) {
  mockex::Options o = mock_options();
  o.pyth_ping_every = std::chrono::milliseconds(50);
  Faults fl;
  fl.rate_limit_after = 40;
  fl.connections = 1;
  o.faults[static_cast<std::size_t>(Venue::pyth)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::pyth);
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] {
    return f.sum([](auto& c) { return c.opens.load(); }) >= 2 &&
           f.sum([](auto& c) { return c.rejected.load(); }) >= 1 &&
           ex.counters(Venue::pyth).pongs.load() >= 3;
  }));
  f.runner.stop();
  Faults cut;
  cut.close_after = 40;
  cut.notice_before_close = true;
  cut.connections = 0;  // connections are numbered per venue: these are past the first
  ex.set_faults(Venue::pyth, cut);
  VenueFeed g(ex, Venue::pyth);
  g.runner.start();
  EXPECT_TRUE(g.drain_until([&] {
    return g.states(FeedState::connecting, FeedReason::venue_notice) >= 2 &&
           g.sum([](auto& c) { return c.opens.load(); }) >= 2 && g.ticks(TickKind::mark) >= 60;
  }));
  g.runner.stop();
  EXPECT_EQ(g.sum([](auto& c) { return c.malformed.load() + c.bad_values.load(); }), 0u);
}

// A missed update (prev_publish_time names one never received) is a gap; an update wider than the
// confidence limit holds its symbol (stale, oracle_uncertain) rather than pricing it.
TEST(PythFeed, MissedUpdatesAreGapsAndUncertainPricesHoldTheSymbol) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.skip_seq_every = 20;
  fl.connections = 0;
  o.faults[static_cast<std::size_t>(Venue::pyth)] = fl;
  MockExchange ex(o);
  ex.start();
  {
    VenueFeed f(ex, Venue::pyth);
    f.runner.start();
    EXPECT_TRUE(f.drain_until([&] { return f.count(FeedEventKind::gap) >= 3; }));
    f.runner.stop();
  }
  ex.set_faults(Venue::pyth, Faults{});
  // The mock quotes +-5 bps; a 4 bps limit makes every update too uncertain to use.
  VenueFeed f(ex, Venue::pyth, 1 << 16, [](ConnectionConfig& c) { c.oracle.max_conf_bps = 4; });
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] {
    return f.states(FeedState::stale, FeedReason::oracle_uncertain) >= 2 &&
           f.sum([](auto& c) { return c.oracle_uncertain.load(); }) >= 20;
  }));
  f.runner.stop();
  EXPECT_EQ(f.count(FeedEventKind::tick), 0u) << "an uncertain update priced something";
  EXPECT_EQ(f.states(FeedState::live), 0u);
}

TEST(Feeds, RejectedSubscriptionsAreCountedAndSymbolsGoStale) {
  mockex::Options o = mock_options();
  Faults fl;
  fl.reject_subscribe = true;
  fl.connections = 0;
  o.faults[static_cast<std::size_t>(Venue::hyperliquid)] = fl;
  MockExchange ex(o);
  ex.start();
  VenueFeed f(ex, Venue::hyperliquid, 1 << 16,
              [](ConnectionConfig& c) { c.rules.stale_budget = Millis{200}; });
  f.runner.start();
  EXPECT_TRUE(f.drain_until([&] {
    return f.sum([](auto& c) { return c.rejected.load(); }) >= 3 && f.states(FeedState::stale) >= 2;
  }));
  f.runner.stop();
  EXPECT_EQ(f.count(FeedEventKind::tick), 0u);
}

TEST(BinanceFeed, SubscribesArePacedBelowTheVenueLimit) {
  // 150 symbols: 300 market streams + 150 book streams = 45 messages of 10. Sent at 1000/s the
  // 30 market messages land within ~30 ms, so some calendar second gets more than 10 whichever
  // way they straddle it: the mock disconnects, as Binance does. Paced at 8/s they never trip.
  mockex::Options o = mock_options(200);
  MockExchange ex(o);
  ex.start();
  auto run = [&](double rate) {
    InstrumentTable table;
    TickQueue q(1 << 16);
    FeedRunner runner(test::fast_runner(), q);
    for (const Route& r : venue_routes(Venue::binance)) {
      ConnectionConfig c = test::fast_config(ex, Venue::binance, r);
      c.rules.max_msgs_per_s = rate;
      c.rules.topics_per_msg = 10;
      SymbolMap map(Venue::binance, nullptr);
      for (int i = 0; i < 150; ++i) map.add(table, "SYM" + std::to_string(i) + "USDT");
      runner.add(std::move(c), std::move(map));
    }
    const std::uint64_t before = ex.counters(Venue::binance).rejected_for_rate.load();
    runner.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(2'600));
    runner.stop();
    return ex.counters(Venue::binance).rejected_for_rate.load() - before;
  };
  EXPECT_EQ(run(8), 0u);
  EXPECT_GT(run(1000), 0u);
}

TEST(Feeds, AFullQueueNeverBlocksAndOverflowBecomesAGapEvent) {
  MockExchange ex(mock_options(0));  // as fast as possible
  ex.start();
  VenueFeed f(ex, Venue::binance, 64);
  f.runner.start();
  // Do not consume until the feed has dropped plenty.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.sum([](auto& c) { return c.queue_drops.load(); }) < 1000 &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(f.sum([](auto& c) { return c.queue_drops.load(); }), 1000u);
  EXPECT_TRUE(f.drain_until([&] {
    for (const FeedEvent& e : f.events) {
      if (e.kind == FeedEventKind::gap && e.reason == FeedReason::queue_overflow && e.count > 0)
        return true;
    }
    return false;
  }));
  f.runner.stop();
  EXPECT_GT(f.queue.overflows(), 0u);
}

}  // namespace
}  // namespace lam::feeds
