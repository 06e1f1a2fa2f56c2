#include "engine/thresholds.h"

#include <gtest/gtest.h>

#include "builders.h"

namespace lam {
namespace {
using test::dec;
using test::raw;

TEST(PriceKeys, StrictAndReachingComparisonsOnTheGrid) {
  EXPECT_EQ(price_keys(AlertType::price_above, ConditionType::greater_than, dec("100")).up,
            raw("100") + 1);
  EXPECT_EQ(price_keys(AlertType::price_above, ConditionType::equals, dec("100")).up, raw("100"));
  EXPECT_EQ(price_keys(AlertType::price_below, ConditionType::less_than, dec("100")).down,
            raw("100") - 1);
  EXPECT_EQ(price_keys(AlertType::price_below, ConditionType::equals, dec("100")).down, raw("100"));
}

TEST(PriceKeys, TargetsFinerThanTheGridStayExact) {
  // target 100.0000000005: p > t <=> p >= 100.000000001 ; p >= t likewise; p < t <=> p <= 100
  const Decimal t = dec("100.0000000005");
  EXPECT_EQ(price_keys(AlertType::price_above, ConditionType::greater_than, t).up,
            raw("100.000000001"));
  EXPECT_EQ(price_keys(AlertType::price_above, ConditionType::equals, t).up, raw("100.000000001"));
  EXPECT_EQ(price_keys(AlertType::price_below, ConditionType::less_than, t).down, raw("100"));
  EXPECT_EQ(price_keys(AlertType::price_below, ConditionType::equals, t).down, raw("100"));
}

TEST(ChangeKeys, AnchorTimesOnePlusPercent) {
  Keys k = change_keys(ConditionType::percentage_change, raw("200"), dec("2.5"));
  EXPECT_EQ(k.up, raw("205"));
  EXPECT_EQ(k.down, raw("195"));
  // 1/3 % of 1: 1.00333... -> up rounds up, down rounds down
  k = change_keys(ConditionType::percentage_change, raw("1"), dec("0.3333"));
  EXPECT_EQ(k.up, raw("1.003333"));
  EXPECT_EQ(k.down, raw("0.996667"));
  k = change_keys(ConditionType::greater_than, raw("3"), dec("0.0001"));  // 3 * 1.000001
  EXPECT_EQ(k.up, raw("3.000003"));
  EXPECT_FALSE(k.down);
}

TEST(LiquidationKey, FormulaForBothSides) {
  // long: (1*110 - 10.5) / (1*(1-0.005)) = 99.5/0.995 = 100 exactly
  EXPECT_EQ(liquidation_key(Side::long_side, raw("1"), raw("110"), raw("10.5"), raw("0.005")),
            raw("100"));
  // short: (1*90 + 10.5) / (1*(1+0.005)) = 100.5/1.005 = 100 exactly
  EXPECT_EQ(liquidation_key(Side::short_side, raw("1"), raw("90"), raw("10.5"), raw("0.005")),
            raw("100"));
  // inexact: long 100/0.995 rounded down, short rounded up
  EXPECT_EQ(liquidation_key(Side::long_side, raw("2"), raw("100"), raw("20"), raw("0.005")),
            raw("90.452261306"));
  EXPECT_EQ(liquidation_key(Side::short_side, raw("2"), raw("100"), raw("20"), raw("0.005")),
            raw("109.452736319"));
  // a long with margin >= notional cannot be liquidated
  EXPECT_FALSE(liquidation_key(Side::long_side, raw("1"), raw("100"), raw("100"), raw("0.005")));
  // huge notional: the 192-bit path
  EXPECT_EQ(
      liquidation_key(Side::long_side, raw("9000000000"), raw("9000000000"), raw("0"), raw("0")),
      raw("9000000000"));
}

TEST(PnlKeys, LinearInPriceForMixedSides) {
  PnlAggregate agg;
  agg.add(Side::long_side, raw("2"), raw("100"), raw("20"));
  agg.add(Side::short_side, raw("1"), raw("120"), raw("12"));
  // uPnL(p) = 2(p-100) + (120-p) = p - 80 ; >= 50 at p >= 130
  EXPECT_EQ(pnl_keys(ConditionType::greater_than, agg, dec("50"), std::nullopt).up, raw("130"));
  EXPECT_EQ(pnl_keys(ConditionType::less_than, agg, dec("-30"), std::nullopt).down, raw("50"));
  // ROE: uPnL/32*100 >= 25 <=> p - 80 >= 8 <=> p >= 88
  EXPECT_EQ(pnl_keys(ConditionType::greater_than, agg, std::nullopt, dec("25")).up, raw("88"));
  // net short: uPnL(p) = -(p - 100) ; >= 10 when p <= 90
  PnlAggregate s;
  s.add(Side::short_side, raw("1"), raw("100"), raw("10"));
  EXPECT_EQ(pnl_keys(ConditionType::greater_than, s, dec("10"), std::nullopt).down, raw("90"));
  EXPECT_EQ(pnl_keys(ConditionType::less_than, s, dec("-10"), std::nullopt).up, raw("110"));
}

TEST(PnlKeys, FlatBookIsConstant) {
  PnlAggregate hedged;
  hedged.add(Side::long_side, raw("1"), raw("100"), raw("10"));
  hedged.add(Side::short_side, raw("1"), raw("110"), raw("10"));
  // uPnL = 10 at every price
  EXPECT_EQ(pnl_keys(ConditionType::greater_than, hedged, dec("10"), std::nullopt).up, kAlwaysUp);
  const Keys never = pnl_keys(ConditionType::greater_than, hedged, dec("10.5"), std::nullopt);
  EXPECT_FALSE(never.up);
  EXPECT_FALSE(never.down);
  EXPECT_FALSE(pnl_keys(ConditionType::greater_than, PnlAggregate{}, dec("-1"), std::nullopt).up);
}

TEST(ValidateAlert, EveryRejectionReason) {
  using test::alert;
  AlertSpec a = alert(1, AlertType::price_above, ConditionType::less_than);
  EXPECT_EQ(validate_alert(a), RejectReason::unsupported_condition);
  a = alert(1, AlertType::unknown, ConditionType::greater_than);
  EXPECT_EQ(validate_alert(a), RejectReason::unsupported_condition);
  a = alert(1, AlertType::price_above, ConditionType::greater_than);
  EXPECT_EQ(validate_alert(a), RejectReason::missing_target);
  a.target_price = dec("1");
  EXPECT_EQ(validate_alert(a), RejectReason::none);
  a.market_id.reset();
  EXPECT_EQ(validate_alert(a), RejectReason::missing_market);
  a = alert(1, AlertType::price_change, ConditionType::equals);
  EXPECT_EQ(validate_alert(a), RejectReason::unsupported_condition);
  a = alert(1, AlertType::price_change, ConditionType::less_than);
  a.target_percentage = dec("-1");
  EXPECT_EQ(validate_alert(a), RejectReason::invalid_target);
  a = alert(1, AlertType::volume, ConditionType::greater_than);
  a.target_value = dec("5");
  a.window_seconds = 0;
  EXPECT_EQ(validate_alert(a), RejectReason::invalid_window);
  a = alert(1, AlertType::volume, ConditionType::less_than);
  EXPECT_EQ(validate_alert(a), RejectReason::unsupported_condition);
  a = alert(1, AlertType::position_pnl, ConditionType::equals);
  EXPECT_EQ(validate_alert(a), RejectReason::unsupported_condition);
  a = alert(1, AlertType::position_pnl, ConditionType::less_than);
  EXPECT_EQ(validate_alert(a), RejectReason::missing_target);
  a.target_price = dec("1e20");
  a.target_percentage = dec("1");
  EXPECT_EQ(validate_alert(a), RejectReason::none);
  a = alert(1, AlertType::price_below, ConditionType::equals);
  a.target_price = dec("1e20");
  EXPECT_EQ(validate_alert(a), RejectReason::invalid_target);
}

}  // namespace
}  // namespace lam
