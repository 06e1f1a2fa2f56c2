// Every row of the alert table (docs/semantics.md), with ties at exactly the target.
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

class AlertRules : public ::testing::Test {
 protected:
  void SetUp() override { m.upsert_market(market(1)); }

  void arm(const AlertSpec& a) {
    ev.clear();
    m.upsert_alert(a, ev);
    ASSERT_TRUE(ev.empty()) << "unexpected rejection";
  }
  /// Feeds a mark tick and returns the ids of the alerts it triggered.
  std::vector<Uuid> tick(const std::string& price, TimeNs ts_ms = 1000) {
    ev.clear();
    m.on_tick(test::mark(1, price, ts_ms), ev);
    return subjects(ev, EventType::alert_triggered);
  }
  AlertSpec price_alert(std::uint64_t n, AlertType t, ConditionType c, const std::string& target) {
    AlertSpec a = alert(n, t, c);
    a.target_price = dec(target);
    return a;
  }

  Matcher m;
  std::vector<Event> ev;
};

// Issue 33 §1: a funding tick carries a rate (1e-18 grid) where a price tick carries a price. Read
// as a mark, this one (raw 150 x 1e9) would fire the alert at 100; it must only be kept.
TEST_F(AlertRules, AFundingTickIsNeverAPriceAndTheLatestSettlementsRateIsKept) {
  arm(price_alert(1, AlertType::price_above, ConditionType::greater_than, "100"));
  EXPECT_EQ(m.funding(id(1, kMarketKind)), FundingNotice{});  // none received
  Tick f;
  f.instrument = 1;
  f.kind = TickKind::funding;
  f.price = 150 * kScale;  // a rate of 1.5e-7
  f.size = 28'800'000 * kNsPerMs;
  f.exch_ts = 2000 * kNsPerMs;
  ev.clear();
  m.on_tick(f, ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(m.funding(id(1, kMarketKind)),
            (FundingNotice{150 * kScale, 28'800'000 * kNsPerMs, 0, 2000 * kNsPerMs}));
  EXPECT_EQ(m.stats().funding_ticks, 1u);
  EXPECT_EQ(m.stats().ticks_slow_path, 0u);
  // Prices still move the market as before: below the target nothing, above it fires.
  EXPECT_TRUE(tick("99").empty());
  EXPECT_EQ(tick("100.5"), std::vector<Uuid>{id(1, kAlertKind)});
  // A late frame about an earlier settlement never replaces the later one's rate; a new rate for
  // the same settlement does, and so does the next settlement's.
  Tick late = f;
  late.size = 1;
  late.price = -5;
  m.on_tick(late, ev);
  EXPECT_EQ(m.funding(id(1, kMarketKind))->rate, 150 * kScale);
  Tick update = f;
  update.price = -kRateScale / 1000;  // -0.1 %
  update.ask = 7 * kScale;            // paid at another price (Hyperliquid's oracle)
  m.on_tick(update, ev);
  EXPECT_EQ(m.funding(id(1, kMarketKind))->rate, -kRateScale / 1000);
  EXPECT_EQ(m.funding(id(1, kMarketKind))->pay_price, 7 * kScale);
  EXPECT_FALSE(m.funding(id(9, kMarketKind)).has_value());
}

TEST_F(AlertRules, PriceAboveGreaterThanIsStrict) {
  arm(price_alert(1, AlertType::price_above, ConditionType::greater_than, "100"));
  EXPECT_TRUE(tick("99.999999999").empty());
  EXPECT_TRUE(tick("100").empty());
  EXPECT_EQ(tick("100.000000001"), std::vector<Uuid>{id(1, kAlertKind)});
  EXPECT_TRUE(tick("200").empty()) << "fires once";
  EXPECT_EQ(m.alert(id(1, kAlertKind))->status, AlertStatus::triggered);
}

TEST_F(AlertRules, PriceAboveEqualsFiresOnReaching) {
  arm(price_alert(1, AlertType::price_above, ConditionType::equals, "100"));
  EXPECT_TRUE(tick("99.999999999").empty());
  EXPECT_EQ(tick("100"), std::vector<Uuid>{id(1, kAlertKind)});
}

TEST_F(AlertRules, PriceBelowLessThanIsStrict) {
  arm(price_alert(1, AlertType::price_below, ConditionType::less_than, "100"));
  EXPECT_TRUE(tick("100").empty());
  EXPECT_EQ(tick("99.999999999"), std::vector<Uuid>{id(1, kAlertKind)});
}

TEST_F(AlertRules, PriceBelowEqualsFiresOnReaching) {
  arm(price_alert(1, AlertType::price_below, ConditionType::equals, "100"));
  EXPECT_TRUE(tick("100.000000001").empty());
  EXPECT_EQ(tick("100"), std::vector<Uuid>{id(1, kAlertKind)});
}

TEST_F(AlertRules, TriggeredEventCarriesTickTimeAndPrice) {
  arm(price_alert(1, AlertType::price_above, ConditionType::equals, "100"));
  tick("100.5", 1767225600123);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].seq, 1u);
  EXPECT_EQ(ev[0].ts, 1767225600123 * kNsPerMs);
  EXPECT_EQ(ev[0].price, raw("100.5"));
  EXPECT_EQ(ev[0].user_id, id(1, kUserKind));
  EXPECT_EQ(ev[0].market_id, id(1, kMarketKind));
  EXPECT_EQ(m.alert(id(1, kAlertKind))->triggered_at, 1767225600123 * kNsPerMs);
}

TEST_F(AlertRules, PriceChangeGreaterThanAtExactlyAnchorTimesOnePlusPct) {
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::greater_than);
  a.target_percentage = dec("2.5");
  a.anchor_price = raw("200");
  arm(a);
  EXPECT_TRUE(tick("204.999999999").empty());
  EXPECT_EQ(tick("205"), std::vector<Uuid>{id(1, kAlertKind)});
}

TEST_F(AlertRules, PriceChangeLessThanAtExactlyAnchorTimesOneMinusPct) {
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::less_than);
  a.target_percentage = dec("2.5");
  a.anchor_price = raw("200");
  arm(a);
  EXPECT_TRUE(tick("195.000000001").empty());
  EXPECT_TRUE(tick("300").empty()) << "less_than ignores rises";
  EXPECT_EQ(tick("195"), std::vector<Uuid>{id(1, kAlertKind)});
}

TEST_F(AlertRules, PercentageChangeFiresEitherWay) {
  for (const char* price : {"205", "195"}) {
    Matcher mm;
    mm.upsert_market(market(1));
    AlertSpec a = alert(1, AlertType::price_change, ConditionType::percentage_change);
    a.target_percentage = dec("2.5");
    a.anchor_price = raw("200");
    mm.upsert_alert(a, ev);
    ev.clear();
    mm.on_tick(test::mark(1, "204.9"), ev);
    mm.on_tick(test::mark(1, "195.1"), ev);
    EXPECT_TRUE(ev.empty());
    mm.on_tick(test::mark(1, price), ev);
    EXPECT_EQ(subjects(ev, EventType::alert_triggered), std::vector<Uuid>{id(1, kAlertKind)})
        << price;
  }
}

TEST_F(AlertRules, NullAnchorIsSetByTheNextReferencePriceAndReported) {
  tick("150");  // a price before the alert exists does not anchor it
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::greater_than);
  a.target_percentage = dec("10");
  arm(a);
  EXPECT_FALSE(m.alert(a.id)->anchor_price);
  EXPECT_TRUE(tick("200").empty());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_anchored);
  EXPECT_EQ(ev[0].price, raw("200"));
  EXPECT_EQ(m.alert(a.id)->anchor_price, raw("200"));
  EXPECT_TRUE(tick("219.999999999").empty());
  EXPECT_EQ(tick("220"), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, AnchorSurvivesARestart) {
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::greater_than);
  a.target_percentage = dec("10");
  arm(a);
  tick("200");
  const auto anchored = m.alert(a.id)->anchor_price;
  ASSERT_EQ(anchored, raw("200"));
  // "restart": a new matcher loads the alert with the anchor written back
  Matcher restarted;
  restarted.upsert_market(market(1));
  a.anchor_price = anchored;
  restarted.upsert_alert(a, ev);
  ev.clear();
  restarted.on_tick(test::mark(1, "210"), ev);
  EXPECT_TRUE(ev.empty()) << "no new anchor, no fire";
  restarted.on_tick(test::mark(1, "220"), ev);
  EXPECT_EQ(subjects(ev, EventType::alert_triggered), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, ZeroPercentFiresOnTheAnchoringTick) {
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::percentage_change);
  a.target_percentage = dec("0");
  arm(a);
  EXPECT_EQ(tick("100"), std::vector<Uuid>{a.id});
  EXPECT_EQ(ev.size(), 2u) << "anchored then triggered, once";
}

TEST_F(AlertRules, VolumeSumsTradesInTheHalfOpenWindow) {
  AlertSpec a = alert(1, AlertType::volume, ConditionType::greater_than);
  a.target_value = dec("10");
  a.window_seconds = 60;
  arm(a);
  ev.clear();
  m.on_tick(trade(1, "100", "4", 0), ev);
  m.on_tick(trade(1, "100", "5", 30'000), ev);
  EXPECT_TRUE(ev.empty());  // 9
  // at t = 60s the trade at 0 is out: (0, 60] excludes 0 -> 5 + 4.999999999
  m.on_tick(trade(1, "100", "4.999999999", 60'000), ev);
  EXPECT_TRUE(ev.empty());
  m.on_tick(trade(1, "100", "0.000000001", 60'000), ev);  // exactly 10
  EXPECT_EQ(subjects(ev, EventType::alert_triggered), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, VolumeDefaultWindowIsOneDay) {
  AlertSpec a = alert(1, AlertType::volume, ConditionType::greater_than);
  a.target_value = dec("2");
  arm(a);
  ev.clear();
  m.on_tick(trade(1, "100", "1", 0), ev);
  m.on_tick(trade(1, "100", "1", 86'400'000), ev);  // the first is just outside
  EXPECT_TRUE(ev.empty());
  m.on_tick(trade(1, "100", "1", 86'400'001), ev);
  EXPECT_EQ(subjects(ev, EventType::alert_triggered), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, VolumeCountsTradesOnMarkSourcedMarkets) {
  // The reference price of this market comes from marks, but volume counts every trade.
  AlertSpec a = alert(1, AlertType::volume, ConditionType::greater_than);
  a.target_value = dec("1");
  arm(a);
  ev.clear();
  m.on_tick(trade(1, "100", "1", 5), ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].price, raw("100")) << "no reference price yet: the trade price";
}

TEST_F(AlertRules, PositionPnlAbsoluteTargetBothDirections) {
  arm_position(m, position(1, Side::long_side, "2", "100", "100"));
  AlertSpec up = alert(1, AlertType::position_pnl, ConditionType::greater_than);
  up.target_value = dec("50");  // 2(p-100) >= 50 <=> p >= 125
  AlertSpec down = alert(2, AlertType::position_pnl, ConditionType::less_than);
  down.target_value = dec("-20");  // p <= 90
  arm(up);
  arm(down);
  EXPECT_TRUE(tick("124.999999999").empty());
  EXPECT_EQ(tick("125"), std::vector<Uuid>{up.id});
  EXPECT_TRUE(tick("90.000000001").empty());
  EXPECT_EQ(tick("90"), std::vector<Uuid>{down.id});
}

TEST_F(AlertRules, PositionPnlRoePercentWhenTargetValueIsNull) {
  arm_position(m, position(1, Side::short_side, "1", "100", "10"));
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::greater_than);
  a.target_percentage = dec("50");  // (100-p)/10*100 >= 50 <=> p <= 95
  arm(a);
  EXPECT_TRUE(tick("95.000000001").empty());
  EXPECT_EQ(tick("95"), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, PositionPnlSumsOnlyTheUsersOpenPositionsInThatMarket) {
  m.upsert_market(market(2));
  arm_position(m, position(1, Side::long_side, "1", "100", "10", 1, 1));
  arm_position(m, position(2, Side::long_side, "1", "100", "10", 1, 2));  // another user
  arm_position(m, position(3, Side::long_side, "5", "100", "10", 2, 1));  // another market
  PositionSpec closed = position(4, Side::long_side, "7", "100", "10");
  closed.status = PositionStatus::closed;
  arm_position(m, closed);
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::greater_than);
  a.target_value = dec("10");  // only position 1 counts: p >= 110
  arm(a);
  EXPECT_TRUE(tick("109.999999999").empty());
  EXPECT_EQ(tick("110"), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, PositionPnlWaitsForAnOpenPosition) {
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::less_than);
  a.target_value = dec("100");  // with no position the total would be 0 <= 100: must not fire
  arm(a);
  EXPECT_TRUE(tick("100").empty());
  arm_position(m, position(1, Side::long_side, "1", "100", "10"));
  EXPECT_EQ(tick("100"), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, ExpiryAtTheFirstTickAtOrAfterExpiresAt) {
  AlertSpec a = price_alert(1, AlertType::price_above, ConditionType::greater_than, "100");
  a.expires_at = 5000 * kNsPerMs;
  arm(a);
  EXPECT_TRUE(tick("50", 4999).empty());
  EXPECT_TRUE(tick("150", 5000).empty()) << "expired, not triggered";
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_expired);
  EXPECT_EQ(m.alert(a.id)->status, AlertStatus::expired);
}

TEST_F(AlertRules, ExpiryOnAnyTickKindOfTheMarket) {
  AlertSpec a = price_alert(1, AlertType::price_above, ConditionType::greater_than, "100");
  a.expires_at = 5000 * kNsPerMs;
  arm(a);
  ev.clear();
  m.on_tick(trade(1, "1", "1", 6000), ev);  // not a reference-price tick on a mark market
  EXPECT_EQ(subjects(ev, EventType::alert_expired), std::vector<Uuid>{a.id});
}

TEST_F(AlertRules, RejectionsAreEventsNotCrashes) {
  AlertSpec bad = alert(1, AlertType::price_above, ConditionType::less_than);
  bad.target_price = dec("1");
  AlertSpec no_target = alert(2, AlertType::price_below, ConditionType::equals);
  AlertSpec no_market = price_alert(3, AlertType::price_above, ConditionType::equals, "1");
  no_market.market_id.reset();
  AlertSpec unknown_market = price_alert(4, AlertType::price_above, ConditionType::equals, "1");
  unknown_market.market_id = id(99, kMarketKind);
  AlertSpec unknown_type = alert(5, AlertType::unknown, ConditionType::unknown);
  for (const AlertSpec& a : {bad, no_target, no_market, unknown_market, unknown_type})
    m.upsert_alert(a, ev);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].reason, RejectReason::unsupported_condition);
  EXPECT_EQ(ev[1].reason, RejectReason::missing_target);
  EXPECT_EQ(ev[2].reason, RejectReason::missing_market);
  EXPECT_FALSE(ev[2].has_market);
  EXPECT_EQ(ev[3].reason, RejectReason::unknown_market);
  EXPECT_EQ(ev[4].reason, RejectReason::unsupported_condition);
  for (const Event& e : ev) EXPECT_EQ(e.type, EventType::alert_rejected);
  EXPECT_TRUE(tick("1").empty());
  EXPECT_FALSE(m.alert(id(3, kAlertKind))->armed);
  EXPECT_EQ(m.stats().alerts_rejected, 5u);
}

TEST_F(AlertRules, InactiveAlertsAreNotArmed) {
  AlertSpec a = price_alert(1, AlertType::price_above, ConditionType::equals, "1");
  a.status = AlertStatus::cancelled;
  arm(a);
  EXPECT_TRUE(tick("5").empty());
}

TEST_F(AlertRules, CancelAndEdit) {
  arm(price_alert(1, AlertType::price_above, ConditionType::equals, "100"));
  arm(price_alert(2, AlertType::price_above, ConditionType::equals, "100"));
  m.cancel_alert(id(1, kAlertKind));
  arm(price_alert(2, AlertType::price_above, ConditionType::equals,
                  "300"));  // edit: moves the target
  EXPECT_TRUE(tick("200").empty());
  EXPECT_EQ(m.alert(id(1, kAlertKind))->status, AlertStatus::cancelled);
  EXPECT_EQ(tick("300"), std::vector<Uuid>{id(2, kAlertKind)});
  // re-activating a triggered alert arms it again
  arm(price_alert(2, AlertType::price_below, ConditionType::equals, "250"));
  EXPECT_EQ(tick("250"), std::vector<Uuid>{id(2, kAlertKind)});
}

TEST_F(AlertRules, NearestThresholdFirstTiesById) {
  // A jump from 100 to 110 crosses 101, 105 (two alerts), 109 and, on the way down side, nothing.
  arm(price_alert(4, AlertType::price_above, ConditionType::equals, "101"));
  arm(price_alert(3, AlertType::price_above, ConditionType::equals, "105"));
  arm(price_alert(2, AlertType::price_above, ConditionType::equals, "105"));
  arm(price_alert(1, AlertType::price_above, ConditionType::equals, "109"));
  arm(price_alert(5, AlertType::price_above, ConditionType::greater_than, "109"));
  tick("100");
  const std::vector<Uuid> order = tick("110");
  // 109 (>) key 109.000000001 is nearer than 109 (>=); 105 ties by id
  EXPECT_EQ(order, (std::vector<Uuid>{id(5, kAlertKind), id(1, kAlertKind), id(2, kAlertKind),
                                      id(3, kAlertKind), id(4, kAlertKind)}));
  for (std::size_t i = 1; i < ev.size(); ++i) EXPECT_EQ(ev[i].seq, ev[i - 1].seq + 1);
}

TEST_F(AlertRules, OnlyTheMarketsPriceSourceMovesIt) {
  Matcher mm;
  mm.upsert_market(market(1, PriceSource::mark));
  mm.upsert_market(market(2, PriceSource::last));
  mm.upsert_market(market(3, PriceSource::mid));
  for (std::uint32_t mk = 1; mk <= 3; ++mk) {
    AlertSpec a = alert(mk, AlertType::price_above, ConditionType::equals, mk);
    a.target_price = dec("100");
    mm.upsert_alert(a, ev);
  }
  for (std::uint32_t mk = 1; mk <= 3; ++mk) {
    ev.clear();
    mm.on_tick(trade(mk, "200", "1", 1), ev);
    mm.on_tick(test::mark(mk, "200"), ev);
    mm.on_tick(bbo(mk, "199", "201"), ev);
    ASSERT_EQ(ev.size(), 1u) << "market " << mk;
    EXPECT_EQ(ev[0].subject, id(mk, kAlertKind));
  }
  // mid = (bid + ask) / 2
  EXPECT_EQ(mm.reference_price(id(3, kMarketKind)), raw("200"));
  ev.clear();
  mm.on_tick(bbo(3, "100.000000001", "100.000000004"), ev);
  EXPECT_EQ(mm.reference_price(id(3, kMarketKind)), raw("100.000000002")) << "odd sums round down";
}

TEST_F(AlertRules, ForgottenAlertsReleaseTheirSlots) {
  arm(price_alert(1, AlertType::price_above, ConditionType::equals, "100"));
  EXPECT_FALSE(m.forget_alert(id(1, kAlertKind))) << "armed alerts are kept";
  EXPECT_FALSE(m.forget_alert(id(9, kAlertKind))) << "unknown";
  EXPECT_EQ(tick("100").size(), 1u);
  EXPECT_TRUE(m.forget_alert(id(1, kAlertKind)));
  EXPECT_FALSE(m.alert(id(1, kAlertKind)));
  EXPECT_EQ(m.alert_count(), 0u);
  // The slot is reused by the next alert, which works normally.
  arm(price_alert(2, AlertType::price_above, ConditionType::equals, "200"));
  EXPECT_TRUE(tick("199").empty());
  EXPECT_EQ(tick("200"), std::vector<Uuid>{id(2, kAlertKind)});
  int seen = 0;
  m.for_each_alert([&](const AlertView&) { ++seen; });
  EXPECT_EQ(seen, 1);
}

TEST_F(AlertRules, ReusedSlotOfAPendingAnchorAnchorsOnce) {
  AlertSpec a = alert(1, AlertType::price_change, ConditionType::greater_than);
  a.target_percentage = dec("1");
  arm(a);
  m.cancel_alert(a.id);  // leaves a stale entry in the market's pending list
  ASSERT_TRUE(m.forget_alert(a.id));
  AlertSpec b = a;
  b.id = id(2, kAlertKind);
  arm(b);  // reuses the slot, pending in the same market
  tick("100");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_anchored);
  EXPECT_EQ(ev[0].subject, b.id);
  EXPECT_EQ(tick("101"), std::vector<Uuid>{b.id});
}

TEST_F(AlertRules, UnknownInstrumentIsCountedAndIgnored) {
  ev.clear();
  m.on_tick(test::mark(77, "1"), ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(m.stats().ticks_unknown_instrument, 1u);
}

}  // namespace
}  // namespace lam
