// The matcher's compact records (issue 17): what does not fit a record, or only some objects need,
// is kept aside, exactly, and given back when no longer needed; rows come back as upserted.
#include <gtest/gtest.h>

#include <limits>

#include "builders.h"
#include "engine/matcher.h"

namespace lam {
namespace {
using namespace lam::test;

class Records : public ::testing::Test {
 protected:
  void SetUp() override {
    m.upsert_market(market(1));
    m.upsert_market(market(2));
  }
  void tick(std::uint32_t mk, const std::string& price) {
    ev.clear();
    m.on_tick(test::mark(mk, price), ev);
  }
  Matcher m;
  std::vector<Event> ev;
};

TEST_F(Records, ARealizedPnlOrALeverageBeyondTheRecordIsKeptExactlyAside) {
  PositionSpec p = position(1, Side::long_side, "1", "100", "10");
  p.realized_pnl = static_cast<Wide>(std::numeric_limits<std::int64_t>::max()) * 1000;  // > int64
  p.leverage = raw("0.005");  // not whole hundredths
  m.upsert_position(p, ev);
  PositionSpec q = position(2, Side::short_side, "1", "100", "10");
  q.realized_pnl = std::numeric_limits<std::int64_t>::min();  // the record's own marker value
  q.leverage = raw("1000");                                   // past 655.35x
  m.upsert_position(q, ev);
  PositionSpec r = position(3, Side::long_side, "1", "100", "10", 1, 2);
  r.realized_pnl = -raw("12.5");
  r.leverage = raw("12.25");  // fits the record
  m.upsert_position(r, ev);
  EXPECT_EQ(m.footprint().position_extras, 2U);
  EXPECT_EQ(m.position(p.id)->realized_pnl, p.realized_pnl);
  EXPECT_EQ(m.position(p.id)->leverage, p.leverage);
  EXPECT_EQ(m.position(q.id)->realized_pnl, q.realized_pnl);
  EXPECT_EQ(m.position(q.id)->leverage, q.leverage);
  EXPECT_EQ(m.position(r.id)->realized_pnl, r.realized_pnl);
  EXPECT_EQ(m.position(r.id)->leverage, r.leverage);
  // Back within the record: the extra is released.
  p.realized_pnl = 0;
  p.leverage = raw("2");
  m.upsert_position(p, ev);
  EXPECT_EQ(m.footprint().position_extras, 1U);
  m.remove_position(q.id);
  EXPECT_EQ(m.footprint().position_extras, 0U);
}

TEST_F(Records, LoadedPricesAreLetGoOnceTheMarketHasItsOwn) {
  for (std::uint64_t n = 1; n <= 3; ++n) {
    PositionSpec p = position(n, Side::long_side, "1", "100", "10", n == 3 ? 2 : 1);
    p.current_price = raw("101");
    p.unrealized_pnl = raw("1");
    m.upsert_position(p, ev);
  }
  EXPECT_EQ(m.footprint().position_extras, 3U);
  EXPECT_EQ(m.position(id(1, kPositionKind))->current_price, raw("101"));
  tick(1, "105");
  EXPECT_EQ(m.footprint().position_extras, 1U);  // market 2 has no price yet
  EXPECT_EQ(m.position(id(1, kPositionKind))->current_price, raw("105"));
  EXPECT_EQ(m.position(id(2, kPositionKind))->unrealized_pnl, raw("5") * kScale);
  EXPECT_EQ(m.position(id(3, kPositionKind))->current_price, raw("101"));
  EXPECT_EQ(m.position(id(3, kPositionKind))->unrealized_pnl, raw("1") * kScale);
  tick(2, "99");
  EXPECT_EQ(m.footprint().position_extras, 0U);
  EXPECT_EQ(m.position(id(3, kPositionKind))->unrealized_pnl, -raw("1") * kScale);
  // Loaded once the market has a price: nothing is kept.
  PositionSpec late = position(4, Side::long_side, "1", "100", "10");
  late.current_price = raw("90");
  m.upsert_position(late, ev);
  EXPECT_EQ(m.footprint().position_extras, 0U);
  EXPECT_EQ(m.position(late.id)->current_price, raw("105"));
}

TEST_F(Records, ManyEditsOfAnUnpricedMarketsPositionsKeepItsListBounded) {
  // Every upsert of an open position with a loaded price notes it for its market; edits of the
  // same rows must not grow that without bound before the market's first price.
  for (int round = 0; round < 50; ++round) {
    for (std::uint64_t n = 1; n <= 100; ++n) {
      PositionSpec p = position(n, Side::long_side, "1", "100", "10", 2, n);
      p.current_price = raw(std::to_string(100 + round));
      m.upsert_position(p, ev);
    }
  }
  EXPECT_EQ(m.footprint().position_extras, 100U);
  // 5,000 notes of 100 positions, compacted: never more than twice what survived the last
  // compaction, past the first 1,024.
  EXPECT_LE(m.footprint().loaded_notes, 1025U);
  tick(2, "120");
  EXPECT_EQ(m.footprint().position_extras, 0U);
  EXPECT_EQ(m.footprint().loaded_notes, 0U);
  EXPECT_EQ(m.position(id(7, kPositionKind))->current_price, raw("120"));
}

TEST_F(Records, AClosedPositionKeepsItsLoadedValuesAndAnUnknownMarketItsId) {
  PositionSpec closed = position(1, Side::long_side, "1", "100", "10");
  closed.status = PositionStatus::closed;
  closed.closed_at = 5 * kNsPerSec;
  closed.current_price = raw("110");
  closed.unrealized_pnl = 0;
  m.upsert_position(closed, ev);
  tick(1, "120");
  const auto v = m.position(closed.id);
  EXPECT_EQ(v->current_price, raw("110"));
  EXPECT_EQ(v->closed_at, 5 * kNsPerSec);
  PositionSpec lost = position(2, Side::long_side, "1", "100", "10", 9);  // market 9: unknown
  m.upsert_position(lost, ev);
  EXPECT_EQ(m.position(lost.id)->market_id, id(9, kMarketKind));
  EXPECT_EQ(m.position(lost.id)->user_id, id(1, kUserKind));
}

TEST_F(Records, AnAlertIsUnchangedOnlyWhenEveryFieldOfItsRowIs) {
  AlertSpec a = alert(1, AlertType::price_above, ConditionType::greater_than);
  a.target_price = dec("150");
  m.upsert_alert(a, ev);
  EXPECT_TRUE(m.alert_unchanged(a));
  EXPECT_EQ(m.footprint().alert_extras, 0U);  // a price alert without expiry needs none
  const auto changed = [&](auto&& edit) {
    AlertSpec b = a;
    edit(b);
    return !m.alert_unchanged(b);
  };
  EXPECT_TRUE(changed([](AlertSpec& b) { b.target_price = dec("150.000000001"); }));
  EXPECT_TRUE(changed([](AlertSpec& b) {
    b.target_price = Decimal{raw("150"), Remainder::below_half};
  }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.user_id = id(2, kUserKind); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.market_id = id(2, kMarketKind); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.market_id.reset(); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.status = AlertStatus::cancelled; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.expires_at = 1; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.anchor_price = raw("1"); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.triggered_at = 1; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.target_value = dec("1"); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.target_percentage = dec("1"); }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.window_seconds = 60; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.type = AlertType::price_below; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.condition = ConditionType::less_than; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.invalid = RejectReason::out_of_range; }));
  EXPECT_TRUE(changed([](AlertSpec& b) { b.id = id(2, kAlertKind); }));  // not held at all
  // Firing does not change what it was upserted with.
  tick(1, "151");
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_TRUE(m.alert_unchanged(a));
  EXPECT_EQ(m.alert(a.id)->triggered_at, 1000 * kNsPerMs);
}

TEST_F(Records, AnOrderRowComesBackExactlyAsUpserted) {
  OrderSpec o;
  o.id = id(1, 0xF);
  o.user_id = id(1, kUserKind);
  o.wallet_id = id(1, 0xE);
  o.market_id = id(1, kMarketKind);
  o.type = OrderType::stop_limit;
  o.side = OrderSide::short_side;
  o.execution = Execution::live;
  o.size = raw("2");
  o.price = raw("90");
  o.trigger_price = raw("95");
  o.trigger_source = TriggerSource::last;
  o.leverage = raw("7.5");
  o.expires_at = 9 * kNsPerSec;
  m.upsert_order(o, ev);
  EXPECT_EQ(m.order_spec(o.id), o);
  OrderSpec bare;  // a market order on a market the engine does not know, nothing optional set
  bare.id = id(2, 0xF);
  bare.user_id = id(2, kUserKind);
  bare.wallet_id = id(2, 0xE);
  bare.market_id = id(9, kMarketKind);
  bare.size = raw("1");
  m.upsert_order(bare, ev);
  EXPECT_EQ(m.order_spec(bare.id), bare);
  EXPECT_EQ(m.order(bare.id)->status, OrderStatus::failed);
  EXPECT_EQ(m.order(bare.id)->reason, RejectReason::unknown_market);
  OrderSpec triggered = o;
  triggered.id = id(3, 0xF);
  triggered.status = OrderStatus::open;
  triggered.triggered_at = 4 * kNsPerSec;
  triggered.expires_at.reset();
  m.upsert_order(triggered, ev);
  EXPECT_EQ(m.order_spec(triggered.id), triggered);
  EXPECT_EQ(m.order_spec(id(4, 0xF)), std::nullopt);
  // Users and wallets are held once each, and let go with their last holder.
  EXPECT_EQ(m.footprint().interned_ids, 4U);
  m.remove_order(o.id);
  m.remove_order(triggered.id);
  EXPECT_EQ(m.footprint().interned_ids, 2U);
}

TEST_F(Records, APnlAlertsGroupCountsPositionsOpenedBeforeAndAfterIt) {
  m.upsert_position(position(1, Side::long_side, "1", "100", "10"), ev);
  EXPECT_EQ(m.footprint().groups, 0U);  // no position_pnl alert: no group
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::greater_than);
  a.target_value = dec("15");
  m.upsert_alert(a, ev);
  EXPECT_EQ(m.footprint().groups, 1U);
  tick(1, "110");  // uPnL 10
  EXPECT_TRUE(ev.empty());
  m.upsert_position(position(2, Side::long_side, "1", "104", "10", 1, 1), ev);  // a second one
  tick(1, "110.5");  // uPnL 10.5 + 6.5 = 17 > 15
  ASSERT_EQ(ev.size(), 1U);
  EXPECT_EQ(ev[0].type, EventType::alert_triggered);
}

}  // namespace
}  // namespace lam
