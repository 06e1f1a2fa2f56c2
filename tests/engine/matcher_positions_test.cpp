// Marks, uPnL and liquidations of linear perpetual positions.
#include <gtest/gtest.h>

#include "builders.h"
#include "engine/matcher.h"

namespace lam {
namespace {
using namespace lam::test;

// Arms a position these tests expect the matcher to accept (no position.rejected).
void arm_position(Matcher& m, const PositionSpec& p) {
  std::vector<Event> rejected;
  m.upsert_position(p, rejected);
  EXPECT_TRUE(rejected.empty());
}

class Positions : public ::testing::Test {
 protected:
  void SetUp() override { m.upsert_market(market(1)); }
  void tick(const std::string& price, TimeNs ts_ms = 1000) {
    ev.clear();
    m.on_tick(test::mark(1, price, ts_ms), ev);
  }
  Matcher m;
  std::vector<Event> ev;
};

TEST_F(Positions, UnrealizedPnlForBothSidesIsMaterializedOnDemand) {
  arm_position(m, position(1, Side::long_side, "0.5", "64000", "3200"));
  arm_position(m, position(2, Side::short_side, "0.5", "64000", "3200"));
  tick("65000.123456789");
  const auto l = m.position(id(1, kPositionKind));
  const auto s = m.position(id(2, kPositionKind));
  ASSERT_TRUE(l && s);
  EXPECT_EQ(l->current_price, raw("65000.123456789"));
  // 0.5 * 1000.123456789 = 500.0617283945: one digit finer than the price grid, and exact
  const Wide expected = static_cast<Wide>(5000617283945LL) * 100'000'000;
  EXPECT_EQ(l->unrealized_pnl, expected);
  EXPECT_EQ(s->unrealized_pnl, -expected);
  EXPECT_EQ(format_fixed(l->unrealized_pnl, kPnlDigits), "500.0617283945");
  EXPECT_EQ(l->status, PositionStatus::open);
}

TEST_F(Positions, BeforeAnyPriceTheLoadedValuesStand) {
  PositionSpec p = position(1, Side::long_side, "1", "100", "10");
  p.current_price = raw("101");
  p.unrealized_pnl = raw("1");
  arm_position(m, p);
  EXPECT_EQ(m.position(p.id)->current_price, raw("101"));
  EXPECT_EQ(m.position(p.id)->unrealized_pnl, static_cast<Wide>(kScale) * kScale);
}

TEST_F(Positions, LongIsLiquidatedAtExactlyItsLiquidationPrice) {
  // LP = (110 - 10.5) / (1 - 0.005) = 100
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));
  tick("100.000000001");
  EXPECT_TRUE(ev.empty());
  tick("100", 7000);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::position_liquidated);
  EXPECT_EQ(ev[0].subject, id(1, kPositionKind));
  EXPECT_EQ(ev[0].price, raw("100"));
  const auto v = m.position(id(1, kPositionKind));
  EXPECT_EQ(v->status, PositionStatus::liquidated);
  EXPECT_EQ(v->closed_at, 7000 * kNsPerMs);
  EXPECT_EQ(v->realized_pnl, -raw("10.5"));
  EXPECT_EQ(v->unrealized_pnl, 0);
  EXPECT_EQ(v->current_price, raw("100"));
  tick("50");
  EXPECT_TRUE(ev.empty()) << "liquidated once";
  tick("200");
  EXPECT_EQ(m.position(id(1, kPositionKind))->current_price, raw("100")) << "no longer marked";
}

TEST_F(Positions, ShortIsLiquidatedAtExactlyItsLiquidationPrice) {
  // LP = (90 + 10.5) / (1 + 0.005) = 100
  PositionSpec p = position(1, Side::short_side, "1", "90", "10.5");
  p.realized_pnl = raw("3");
  arm_position(m, p);
  tick("99.999999999");
  EXPECT_TRUE(ev.empty());
  tick("100");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(m.position(p.id)->realized_pnl, raw("3") - raw("10.5"));
}

TEST_F(Positions, LiquidationsComeBeforeAlertsInOneTick) {
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));  // LP 100
  AlertSpec a = alert(1, AlertType::price_below, ConditionType::equals);
  a.target_price = dec("105");
  m.upsert_alert(a, ev);
  tick("99");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, EventType::position_liquidated);
  EXPECT_EQ(ev[1].type, EventType::alert_triggered);
  EXPECT_EQ(ev[1].seq, ev[0].seq + 1);
}

TEST_F(Positions, LiquidationRekeysTheUsersPnlAlertsInTheSameTick) {
  // Long LP 100 and a short: after the long is liquidated only the short counts.
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));
  arm_position(m, position(2, Side::short_side, "1", "120", "50"));
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::greater_than);
  a.target_value =
      dec("20");  // before: (p-110)+(120-p) = 10 constant, never; after: 120-p >= 20 <=> p <= 100
  m.upsert_alert(a, ev);
  tick("100.5");
  EXPECT_TRUE(ev.empty());
  tick("100");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].type, EventType::position_liquidated);
  EXPECT_EQ(ev[1].type, EventType::alert_triggered);
  EXPECT_EQ(ev[1].subject, a.id);
}

TEST_F(Positions, SeveralLiquidationsNearestFirst) {
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));  // LP 100
  arm_position(
      m, position(2, Side::long_side, "2", "120", "20.5"));  // (240-20.5)/(2*.995)=110.301507537
  arm_position(m, position(3, Side::long_side, "1", "110", "10.5"));  // LP 100, ties with 1
  tick("90");
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].subject, id(1, kPositionKind));
  EXPECT_EQ(ev[1].subject, id(3, kPositionKind));
  EXPECT_EQ(ev[2].subject, id(2, kPositionKind));
}

TEST_F(Positions, FullyCollateralizedLongIsNeverLiquidated) {
  arm_position(m, position(1, Side::long_side, "1", "100", "100"));
  tick("0.000000001");
  EXPECT_TRUE(ev.empty());
}

TEST_F(Positions, UpdatesAndRemovalsRekey) {
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));  // LP 100
  arm_position(m, position(1, Side::long_side, "1", "110", "60"));    // margin added: LP 50/0.995
  tick("60");
  EXPECT_TRUE(ev.empty());
  PositionSpec closed = position(1, Side::long_side, "1", "110", "60");
  closed.status = PositionStatus::closed;
  arm_position(m, closed);
  tick("1");
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(m.position(id(1, kPositionKind))->status, PositionStatus::closed);
  arm_position(m, position(2, Side::short_side, "1", "90", "10.5"));  // LP 100
  m.remove_position(id(2, kPositionKind));
  tick("1000");
  EXPECT_TRUE(ev.empty());
  EXPECT_FALSE(m.position(id(2, kPositionKind)));
}

TEST_F(Positions, MaintenanceMarginChangeRekeys) {
  arm_position(
      m, position(1, Side::long_side, "1", "110", "10"));  // mmr 0.005: LP 100/0.995=100.50...
  m.upsert_market(market(1, PriceSource::mark, "0"));      // mmr 0: LP 100
  tick("100.1");
  EXPECT_TRUE(ev.empty());
  tick("100");
  EXPECT_EQ(ev.size(), 1u);
}

TEST_F(Positions, RemovedSlotsAreReused) {
  m.upsert_market(market(2));
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5"));  // LP 100 on market 1
  m.remove_position(id(1, kPositionKind));
  arm_position(
      m, position(2, Side::short_side, "1", "90", "10.5", 2));  // LP 100 on market 2, same slot
  EXPECT_EQ(m.position_count(), 1u);
  tick("50");
  EXPECT_TRUE(ev.empty());
  m.upsert_market(market(1, PriceSource::mark, "0.01"));  // re-keys market 1's positions: none now
  ev.clear();
  m.on_tick(test::mark(2, "100"), ev);
  EXPECT_EQ(subjects(ev, EventType::position_liquidated), std::vector<Uuid>{id(2, kPositionKind)});
  // moving a position to another market moves its membership
  arm_position(m, position(3, Side::long_side, "1", "110", "10.5", 1));
  arm_position(m, position(3, Side::long_side, "1", "110", "10.5", 2));
  m.upsert_market(market(1, PriceSource::mark, "0.005"));
  tick("1");
  EXPECT_TRUE(ev.empty()) << "no longer on market 1";
}

TEST_F(Positions, UnknownMarketIsCountedNotArmed) {
  arm_position(m, position(1, Side::long_side, "1", "110", "10.5", 42));
  EXPECT_EQ(m.stats().positions_unarmed, 1u);
  EXPECT_EQ(m.position(id(1, kPositionKind))->status, PositionStatus::open);
}

}  // namespace
}  // namespace lam
