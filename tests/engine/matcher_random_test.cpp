// Randomized comparison of the ladder matcher against the naive scan-everything reference.
// Prices sit on a coarse grid so that ties at exactly a threshold are frequent.
#include <gtest/gtest.h>

#include <random>

#include "builders.h"
#include "engine/matcher.h"
#include "engine/naive_matcher.h"

namespace lam {
namespace {
using namespace lam::test;

constexpr std::uint32_t kMarkets = 3;

class Scenario {
 public:
  explicit Scenario(std::uint64_t seed) : rng_(seed) {}

  std::string price() { return std::to_string(90 + pick(40)) + (coin() ? ".5" : ""); }
  std::string amount(int max) { return std::to_string(1 + pick(max)) + (coin() ? ".25" : ""); }
  std::uint32_t market_no() { return 1 + static_cast<std::uint32_t>(pick(kMarkets)); }
  std::uint64_t user_no() { return 1 + static_cast<std::uint64_t>(pick(3)); }
  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }
  bool coin() { return (rng_() & 1) != 0; }

  PositionSpec make_position(std::uint64_t n) {
    PositionSpec p = position(n, coin() ? Side::long_side : Side::short_side, amount(3), price(),
                              amount(15), market_no(), user_no());
    if (pick(10) == 0) p.status = PositionStatus::closed;
    return p;
  }

  AlertSpec make_alert(std::uint64_t n, TimeNs now) {
    static constexpr std::pair<AlertType, ConditionType> kKinds[] = {
        {AlertType::price_above, ConditionType::greater_than},
        {AlertType::price_above, ConditionType::equals},
        {AlertType::price_below, ConditionType::less_than},
        {AlertType::price_below, ConditionType::equals},
        {AlertType::price_change, ConditionType::greater_than},
        {AlertType::price_change, ConditionType::less_than},
        {AlertType::price_change, ConditionType::percentage_change},
        {AlertType::volume, ConditionType::greater_than},
        {AlertType::position_pnl, ConditionType::greater_than},
        {AlertType::position_pnl, ConditionType::less_than},
        {AlertType::price_above, ConditionType::less_than}};  // the last one is rejected
    const auto& [type, cond] = kKinds[pick(std::size(kKinds))];
    AlertSpec a = alert(n, type, cond, market_no(), user_no());
    switch (type) {
      case AlertType::price_above:
      case AlertType::price_below:
        a.target_price = dec(price());
        break;
      case AlertType::price_change:
        a.target_percentage = dec(std::to_string(pick(12)) + (coin() ? ".5" : ""));
        if (coin()) a.anchor_price = raw(price());
        break;
      case AlertType::volume:
        a.target_value = dec(amount(20));
        a.window_seconds = 10 + pick(600);
        break;
      case AlertType::position_pnl:
        if (coin()) {
          a.target_value = dec(std::to_string(pick(60) - 30));
        } else {
          a.target_percentage = dec(std::to_string(pick(200) - 100));
        }
        break;
      default:
        a.target_price = dec("1");
    }
    if (pick(6) == 0) a.expires_at = now + pick(120) * kNsPerSec;
    if (pick(25) == 0) a.market_id.reset();
    return a;
  }

  Tick make_tick(TimeNs now) {
    const std::uint32_t mk = market_no();
    switch (pick(3)) {
      case 0:
        return test::mark(mk, price(), now / kNsPerMs);
      case 1:
        return trade(mk, price(), amount(4), now / kNsPerMs);
      default: {
        const std::string bid = price();
        const Tick b = test::mark(mk, bid, now / kNsPerMs);
        Tick t = bbo(mk, bid, bid, now / kNsPerMs);
        t.ask = b.price + raw(coin() ? "1" : "0.5");
        return t;
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

void expect_same(const std::vector<Event>& a, const std::vector<Event>& b, int step) {
  ASSERT_EQ(a.size(), b.size()) << "step " << step;
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(step) + " event " + std::to_string(i));
    EXPECT_EQ(a[i].seq, b[i].seq);
    EXPECT_EQ(a[i].type, b[i].type);
    EXPECT_EQ(a[i].subject, b[i].subject);
    EXPECT_EQ(a[i].user_id, b[i].user_id);
    EXPECT_EQ(a[i].ts, b[i].ts);
    EXPECT_EQ(a[i].reason, b[i].reason);
    EXPECT_EQ(a[i].has_price, b[i].has_price);
    if (a[i].has_price) {
      EXPECT_EQ(a[i].price, b[i].price);
    }
  }
}

class LadderVsNaive : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(LadderVsNaive, SameEventsInTheSameOrder) {
  Scenario sc(GetParam());
  Matcher fast;
  NaiveMatcher naive;
  std::vector<Event> ef, en;
  std::uint64_t next_alert = 1, next_position = 1;
  std::uint64_t fired = 0, liquidated = 0;
  TimeNs now = 1'767'225'600LL * kNsPerSec;
  for (std::uint32_t mk = 1; mk <= kMarkets; ++mk) {
    const PriceSource src =
        mk == 1 ? PriceSource::mark : (mk == 2 ? PriceSource::last : PriceSource::mid);
    fast.upsert_market(market(mk, src));
    naive.upsert_market(market(mk, src));
    // Keeps an hour of trade history in every market, so that later volume windows agree.
    AlertSpec keeper = alert(1'000'000 + mk, AlertType::volume, ConditionType::greater_than, mk);
    keeper.target_value = dec("1000000000");
    keeper.window_seconds = 3600;
    fast.upsert_alert(keeper, ef);
    naive.upsert_alert(keeper, en);
  }
  for (int i = 0; i < 40; ++i) {
    const PositionSpec p = sc.make_position(next_position++);
    fast.upsert_position(p, ef);
    naive.upsert_position(p, en);
  }
  for (int i = 0; i < 120; ++i) {
    const AlertSpec a = sc.make_alert(next_alert++, now);
    fast.upsert_alert(a, ef);
    naive.upsert_alert(a, en);
  }
  expect_same(ef, en, -1);
  for (int step = 0; step < 3000; ++step) {
    ef.clear();
    en.clear();
    now += sc.pick(20'000) * kNsPerMs;
    const int action = sc.pick(100);
    if (action < 80) {
      const Tick t = sc.make_tick(now);
      fast.on_tick(t, ef);
      naive.on_tick(t, en);
    } else if (action < 88) {
      // new alert, or an edit of an existing one
      const std::uint64_t n =
          sc.coin() ? next_alert++
                    : 1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_alert)));
      const AlertSpec a = sc.make_alert(n, now);
      fast.upsert_alert(a, ef);
      naive.upsert_alert(a, en);
    } else if (action < 90) {
      // Release a finished alert in the fast matcher only (the naive one keeps it, inactive).
      (void)fast.forget_alert(
          id(1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_alert))), kAlertKind));
    } else if (action < 92) {
      const Uuid victim =
          id(1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_alert))), kAlertKind);
      fast.cancel_alert(victim);
      naive.cancel_alert(victim);
    } else if (action < 98) {
      const std::uint64_t n =
          sc.coin() ? next_position++
                    : 1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_position)));
      const PositionSpec p = sc.make_position(n);
      fast.upsert_position(p, ef);
      naive.upsert_position(p, en);
    } else {
      const MarketSpec mk = market(1, PriceSource::mark, sc.coin() ? "0.005" : "0.01");
      fast.upsert_market(mk);
      naive.upsert_market(mk);
    }
    expect_same(ef, en, step);
    if (::testing::Test::HasFailure()) return;
    fired += subjects(ef, EventType::alert_triggered).size();
    liquidated += subjects(ef, EventType::position_liquidated).size();
  }
  for (std::uint64_t n = 1; n < next_alert; ++n) {
    const auto fa = fast.alert(id(n, kAlertKind));
    const auto na = naive.alert_status(id(n, kAlertKind));
    if (fa) {
      ASSERT_TRUE(na.has_value());
      EXPECT_EQ(fa->status, *na) << "alert " << n;
    }
  }
  for (std::uint64_t n = 1; n < next_position; ++n) {
    const auto fp = fast.position(id(n, kPositionKind));
    const auto np = naive.position_status(id(n, kPositionKind));
    ASSERT_EQ(fp.has_value(), np.has_value());
    if (fp) {
      EXPECT_EQ(fp->status, *np) << "position " << n;
    }
  }
  // The scenario must exercise the machinery, not pass vacuously.
  EXPECT_GT(fired, 20u);
  EXPECT_GT(liquidated, 2u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, LadderVsNaive, ::testing::Range<std::uint64_t>(1, 25));

}  // namespace
}  // namespace lam
