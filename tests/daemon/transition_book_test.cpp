// The engine loop's bookkeeping, without threads or sockets: stale listener reads, resyncs, and
// markets no feed serves.
#include "daemon/transition_book.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace lam::daemon {
namespace {

using namespace std::chrono_literals;
using Clock = TransitionBook::Clock;

Uuid id(std::uint64_t n) {
  return Uuid{0xD, n};
}

TEST(TransitionBook, AReadNoticedBeforeOurJournaledWriteIsStale) {
  TransitionBook b(10min);
  const auto t0 = Clock::now();
  b.published(id(1), 5);
  // not journaled yet: any read of the row is older than our write
  EXPECT_TRUE(b.stale_read(id(1), t0 + 1h));
  EXPECT_FALSE(b.stale_read(id(2), t0));
  EXPECT_TRUE(b.confirm(4, t0 + 1s).empty());
  EXPECT_EQ(b.unconfirmed(), 1u);
  b.confirm(5, t0 + 2s);  // journaled at t0 + 2 s
  EXPECT_EQ(b.unconfirmed(), 0u);
  EXPECT_EQ(b.finished(), 1u);
  EXPECT_TRUE(b.stale_read(id(1), t0 + 1s));   // read before the write landed
  EXPECT_FALSE(b.stale_read(id(1), t0 + 3s));  // the bot's change after it: applied
}

TEST(TransitionBook, ARepublishedIdStaysUnconfirmedUntilItsNewestSeqIsJournaled) {
  TransitionBook b(10min);
  const auto t0 = Clock::now();
  b.published(id(1), 5);
  b.published(id(1), 9);  // re-armed by the bot and fired again
  b.confirm(5, t0);
  EXPECT_EQ(b.unconfirmed(), 1u);
  EXPECT_TRUE(b.stale_read(id(1), t0 + 1h));
  b.confirm(9, t0 + 1s);
  EXPECT_EQ(b.unconfirmed(), 0u);
}

TEST(TransitionBook, FinishedIdsAreReleasedAfterTheirMemoryOnlyOnce) {
  TransitionBook b(1min);
  const auto t0 = Clock::now();
  b.published(id(1), 1);
  b.published(id(2), 2);
  b.confirm(2, t0);
  EXPECT_TRUE(b.confirm(2, t0 + 30s).empty());
  b.published(id(2), 3);  // finished again later: its first entry must not release it
  b.confirm(3, t0 + 50s);
  auto released = b.confirm(3, t0 + 61s);
  EXPECT_EQ(released, std::vector<Uuid>{id(1)});
  released = b.confirm(3, t0 + 111s);
  EXPECT_EQ(released, std::vector<Uuid>{id(2)});
  EXPECT_EQ(b.finished(), 0u);
}

TEST(ResyncBook, APositionTheEngineOpenedDuringTheResyncIsNotGone) {
  // Seen in the demo: a fill opened a position while the listener's start-up resync ran; the
  // snapshot lacked it, the engine dropped it, and the side's next order opened a second one.
  ResyncBook r;
  const std::vector<Uuid> held{id(7), id(9)};
  r.opened_position(id(9));  // before a resync: nothing to remember
  r.begin();
  r.saw_position(id(7));
  r.opened_position(id(9));
  auto [alerts, positions] = r.end([](auto&&) {},
                                   [&](auto&& visit) {
                                     for (const Uuid& u : held) visit(u);
                                   });
  EXPECT_TRUE(alerts.empty());
  EXPECT_TRUE(positions.empty());
}

TEST(ResyncBook, WhatTheSnapshotLackedIsGone) {
  ResyncBook r;
  const std::vector<Uuid> held_alerts{id(1), id(2), id(3)}, held_positions{id(7), id(8)};
  auto each = [](const std::vector<Uuid>& v) {
    return [&v](auto&& visit) {
      for (const Uuid& u : v) visit(u);
    };
  };
  // outside a resync nothing is gone
  auto [a0, p0] = r.end(each(held_alerts), each(held_positions));
  EXPECT_TRUE(a0.empty() && p0.empty());
  r.begin();
  r.saw_alert(id(1));
  r.saw_alert(id(3));
  r.saw_position(id(8));
  EXPECT_TRUE(r.active());
  auto [alerts, positions] = r.end(each(held_alerts), each(held_positions));
  EXPECT_EQ(alerts, std::vector<Uuid>{id(2)});
  EXPECT_EQ(positions, std::vector<Uuid>{id(7)});
  EXPECT_FALSE(r.active());
  r.saw_alert(id(2));  // after the resync: not recorded
  r.begin();
  auto [a2, p2] = r.end(each(held_alerts), each(held_positions));
  EXPECT_EQ(a2.size(), 3u);
  EXPECT_EQ(p2.size(), 2u);
}

TEST(MarketCoverage, ARenamedSymbolNoFeedServesIsReportedOnceAndClearedWhenServedAgain) {
  // instruments 0 and 1 are subscribed; okx is disabled
  MarketCoverage c({true, true}, {"okx"});
  using Ch = MarketCoverage::Change;
  EXPECT_EQ(c.update(id(1), 0, "binance"), Ch::none);
  EXPECT_EQ(c.update(id(2), 1, "binance"), Ch::none);
  EXPECT_EQ(c.unserved(), 0u);
  // renamed: re-interned to instrument 5, which no connection subscribes to
  EXPECT_EQ(c.update(id(1), 5, "binance"), Ch::became_unserved);
  EXPECT_EQ(c.update(id(1), 5, "binance"), Ch::none);  // once
  EXPECT_EQ(c.unserved(), 1u);
  EXPECT_EQ(c.update(id(1), 0, "binance"), Ch::became_served);  // renamed back
  EXPECT_EQ(c.unserved(), 0u);
  // a disabled venue's market is not a fault; an unknown venue is
  EXPECT_EQ(c.update(id(3), kNoInstrument, "okx"), Ch::none);
  EXPECT_EQ(c.disabled(), 1u);
  EXPECT_EQ(c.update(id(4), 9, "kraken"), Ch::became_unserved);
  EXPECT_EQ(c.unserved(), 1u);
}

TEST(ResyncBook, AUserSettingsRowTheResyncDidNotDeliverIsGone) {
  ResyncBook r;
  const std::vector<Uuid> held{id(21), id(22)};
  auto each = [&](auto&& visit) {
    for (const Uuid& u : held) visit(u);
  };
  EXPECT_TRUE(r.gone_settings(each).empty()) << "outside a resync nothing is gone";
  r.begin();
  r.saw_setting(id(22));
  EXPECT_EQ(r.gone_settings(each), std::vector<Uuid>{id(21)});
  (void)r.end([](auto&&) {}, [](auto&&) {});
  r.begin();  // a new resync starts from nothing seen
  EXPECT_EQ(r.gone_settings(each), held);
}

}  // namespace
}  // namespace lam::daemon
