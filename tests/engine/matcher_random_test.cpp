// Randomized comparison of the ladder matcher against the naive scan-everything reference.
// Prices sit on a coarse grid so that ties at exactly a threshold are frequent.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "builders.h"
#include "engine/matcher.h"
#include "engine/naive_matcher.h"

namespace lam {
namespace {
using namespace lam::test;

constexpr std::uint32_t kMarkets = 3;
constexpr std::uint64_t kOrderKind = 0x0D0;
constexpr std::uint64_t kWalletKind = 0xE;

MarketSpec traded_market(std::uint32_t mk, PriceSource src, const std::string& mmr = "0.005") {
  MarketSpec m = market(mk, src, mmr);
  m.rules.maker_fee = raw("0.0002");
  m.rules.taker_fee = raw("0.0005");
  m.rules.tick_size = raw("0.5");
  m.rules.step_size = raw("0.25");
  m.rules.max_leverage = raw("20");
  m.rules.quote = Asset::of("USDC");
  return m;
}

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

  OrderSpec make_order(std::uint64_t n, TimeNs now) {
    OrderSpec o;
    o.id = id(n, kOrderKind);
    o.user_id = id(user_no(), kUserKind);
    o.wallet_id = id(o.user_id.lo, kWalletKind);
    o.market_id = id(market_no(), kMarketKind);
    o.type = static_cast<OrderType>(pick(5));
    o.side = static_cast<OrderSide>(pick(4));
    o.execution = pick(10) == 0 ? Execution::live : Execution::paper;
    o.size = raw(amount(3));
    if (o.type == OrderType::limit || o.type == OrderType::stop_limit || pick(8) == 0)
      o.price = raw(price());
    if (o.type == OrderType::stop || o.type == OrderType::stop_limit)
      o.trigger_price = raw(price());
    if (o.type == OrderType::trailing_stop) add_trail(o);
    o.trigger_source = static_cast<TriggerSource>(pick(3));
    static constexpr const char* kLeverage[] = {"1", "5", "10", "20", "25"};  // 25 > max: rejected
    o.leverage = raw(kLeverage[pick(5)]);
    if (pick(6) == 0) o.expires_at = now + pick(120) * kNsPerSec;
    if (pick(30) == 0) o.size = raw("0.1");  // off the step: rejected
    return o;
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

  /// A trailing stop's offsets (rate, distance or both; now and then one out of range or off the
  /// tick, which is rejected) and, for half of them, an activation price.
  void add_trail(OrderSpec& o) {
    o.price.reset();
    const int kind = pick(3);
    if (kind != 1) o.trail_rate = raw(pick(40) == 0 ? "0.6" : "0.00" + std::to_string(1 + pick(9)));
    if (kind != 0) o.trail_distance = raw(pick(40) == 0 ? "0.3" : std::to_string(1 + pick(4)));
    if (coin()) o.activation_price = raw(price());
    if (pick(4) == 0) {  // as a restart loads one that trails: the best price its group's row holds
      o.activated_at = 1'767'225'000LL * kNsPerSec;
      o.trail_extreme = raw(price());
      o.trail_group = id(1 + static_cast<std::uint64_t>(pick(3)), 0x7A);
    }
  }

  /// A user's own settings: a maximum leverage some orders exceed, a slippage of their own.
  UserSettings make_settings() {
    UserSettings us;
    if (coin()) us.max_leverage = raw(pick(2) == 0 ? "10" : "20");
    if (coin()) us.slippage_bps = static_cast<std::uint32_t>(pick(4) * 25);
    if (coin()) us.stop_loss_fraction = raw(pick(2) == 0 ? "0.002" : "0.01");  // protective stops
    return us;
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
    EXPECT_EQ(a[i].ref, b[i].ref);
    EXPECT_EQ(a[i].size, b[i].size);
    EXPECT_TRUE(a[i].amount == b[i].amount);
    EXPECT_EQ(a[i].taker, b[i].taker);
  }
}

class LadderVsNaive : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(LadderVsNaive, SameEventsInTheSameOrder) {
  Scenario sc(GetParam());
  // Every third world fills takers with slippage (docs/semantics.md): both must move them alike.
  const std::uint32_t slippage_bps = GetParam() % 3 == 0 ? 25 : 0;
  MatcherConfig cfg;
  cfg.slippage_bps = slippage_bps;
  // Every other world reports its trailing stops' activations and groups, as the daemon asks: the
  // rows they would make must give every trailing order the best price the matcher follows.
  cfg.report_trails = GetParam() % 4 < 2;
  test::GroupRows trail_rows;
  std::map<Uuid, Uuid> trail_group_of;  // order -> the group its activation joined
  std::vector<TrailActivation> activations;
  std::vector<TrailGroupChange> group_changes;
  Matcher fast(cfg);
  NaiveMatcher naive(slippage_bps);
  std::vector<Event> ef, en;
  std::uint64_t next_alert = 1, next_position = 1;
  std::uint64_t fired = 0, liquidated = 0;
  TimeNs now = 1'767'225'600LL * kNsPerSec;
  // Every other world is loaded as the cold start loads it: ladders staged, built from sorted runs.
  const bool bulk = GetParam() % 2 == 1;
  if (bulk) fast.begin_load();
  for (std::uint32_t mk = 1; mk <= kMarkets; ++mk) {
    const PriceSource src =
        mk == 1 ? PriceSource::mark : (mk == 2 ? PriceSource::last : PriceSource::mid);
    fast.upsert_market(traded_market(mk, src));
    naive.upsert_market(traded_market(mk, src));
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
  // Users 1 and 2 are well funded; user 3 runs out of margin now and then.
  for (std::uint64_t u = 1; u <= 3; ++u) {
    const BalanceSpec b{id(u, kWalletKind), Asset::of("USDC"), raw(u == 3 ? "60" : "100000"), 0};
    fast.upsert_balance(b);
    naive.upsert_balance(b);
  }
  for (std::uint64_t u = 1; u <= 3; ++u) {
    const UserSettings us = sc.make_settings();
    fast.set_user_settings(id(u, kUserKind), us);
    naive.set_user_settings(id(u, kUserKind), us);
  }
  if (bulk) fast.end_load();
  std::uint64_t next_order = 1, filled = 0, triggered = 0, rejected = 0, cancelled = 0, placed = 0;
  std::uint64_t trailed = 0;  // of them trailing stops
  expect_same(ef, en, -1);
  for (int step = 0; step < 3000; ++step) {
    ef.clear();
    en.clear();
    now += sc.pick(20'000) * kNsPerMs;
    const int action = sc.pick(120);
    if (action >= 100) {
      // orders: new ones, edits, the bot's cancels, the clock
      const int what = sc.pick(20);
      if (what < 14) {
        const std::uint64_t n =
            what < 11 ? next_order++
                      : 1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_order)));
        const OrderSpec o = sc.make_order(n, now);
        fast.upsert_order(o, ef);
        naive.upsert_order(o, en);
      } else if (what < 17 && next_order > 1) {
        const Uuid victim = id(
            1 + static_cast<std::uint64_t>(sc.pick(static_cast<int>(next_order - 1))), kOrderKind);
        if (const std::optional<OrderSpec> s = fast.order_spec(victim)) {
          OrderSpec c = *s;
          c.status = OrderStatus::cancelled;
          fast.upsert_order(c, ef);
          naive.upsert_order(c, en);
        }
      } else if (what == 19) {  // a user changes their own settings (issue 33 §3)
        const Uuid u = id(sc.user_no(), kUserKind);
        const UserSettings us = sc.make_settings();
        fast.set_user_settings(u, us);
        naive.set_user_settings(u, us);
      } else {
        fast.on_clock(now, ef);
        naive.on_clock(now, en);
      }
    } else if (action < 80) {
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
      const MarketSpec mk = traded_market(1, PriceSource::mark, sc.coin() ? "0.005" : "0.01");
      fast.upsert_market(mk);
      naive.upsert_market(mk);
    }
    expect_same(ef, en, step);
    if (::testing::Test::HasFailure()) return;
    if (fast.has_trails()) {
      activations.clear();
      group_changes.clear();
      fast.drain_trails(activations, group_changes);
      for (const TrailActivation& a : activations) trail_group_of[a.order] = a.group;
      trail_rows.apply(group_changes);
    }
    fired += subjects(ef, EventType::alert_triggered).size();
    liquidated += subjects(ef, EventType::position_liquidated).size();
    filled += subjects(ef, EventType::order_filled).size();
    for (const Uuid& o : subjects(ef, EventType::order_triggered)) {
      ++triggered;
      if (fast.order_spec(o)->type == OrderType::trailing_stop) ++trailed;
    }
    rejected += subjects(ef, EventType::order_rejected).size();
    placed += subjects(ef, EventType::order_placed).size();
    cancelled += subjects(ef, EventType::order_cancelled).size();
  }
  for (std::uint64_t n = 1; n < next_order; ++n) {
    const auto fo = fast.order(id(n, kOrderKind));
    const auto no = naive.order(id(n, kOrderKind));
    ASSERT_EQ(fo.has_value(), no.has_value());
    if (!fo) continue;
    SCOPED_TRACE("order " + std::to_string(n));
    EXPECT_EQ(fo->status, no->status);
    EXPECT_EQ(fo->reason, no->reason);
    EXPECT_EQ(fo->filled_size, no->filled_size);
    EXPECT_EQ(fo->avg_fill_price, no->avg_fill_price);
    EXPECT_TRUE(fo->total_fees == no->total_fees);
    EXPECT_EQ(fo->position_id, no->position_id);
    EXPECT_EQ(fo->triggered_at, no->triggered_at);
    EXPECT_EQ(fo->activated_at, no->activated_at);
    EXPECT_EQ(fo->trail_extreme, no->trail_extreme);
    // What a restart would read: the root of the group its activation joined (or its row's).
    if (cfg.report_trails && fo->trail_extreme) {
      const OrderSpec spec = *fast.order_spec(id(n, kOrderKind));
      const auto g = trail_group_of.find(id(n, kOrderKind));
      const Uuid group = g != trail_group_of.end() ? g->second : spec.trail_group.value_or(Uuid{});
      EXPECT_EQ(trail_rows.extreme(group), fo->trail_extreme);
    }
    if (fo->position_id) {
      const auto fp = fast.position(*fo->position_id);
      const auto np = naive.position_spec(*fo->position_id);
      ASSERT_TRUE(fp && np);
      EXPECT_EQ(fp->size, np->size);
      EXPECT_EQ(fp->entry_price, np->entry_price);
      EXPECT_EQ(fp->margin, np->margin);
      EXPECT_TRUE(fp->realized_pnl == np->realized_pnl);
    }
  }
  // The protective stops the engine placed: made, triggered and filled alike.
  for (std::uint64_t n = 1; n < next_order; ++n) {
    const Uuid pid = Matcher::protective_id_for(id(n, kOrderKind));
    const auto fo = fast.order(pid);
    const auto no = naive.order(pid);
    ASSERT_EQ(fo.has_value(), no.has_value()) << "protective stop of order " << n;
    if (!fo) continue;
    EXPECT_EQ(fo->status, no->status) << "protective stop of order " << n;
    EXPECT_EQ(fo->reason, no->reason) << "protective stop of order " << n;
    EXPECT_EQ(fo->filled_size, no->filled_size) << "protective stop of order " << n;
    EXPECT_EQ(fo->avg_fill_price, no->avg_fill_price) << "protective stop of order " << n;
  }
  for (std::uint64_t u = 1; u <= 3; ++u) {
    const BalanceView fb = fast.balance(id(u, kWalletKind), Asset::of("USDC"));
    const BalanceView nb = naive.balance(id(u, kWalletKind), Asset::of("USDC"));
    EXPECT_TRUE(fb.balance == nb.balance) << "wallet " << u;
    EXPECT_TRUE(fb.locked == nb.locked) << "wallet " << u;
  }
  EXPECT_GT(filled, 10u);
  EXPECT_GT(triggered, 3u);
  EXPECT_GT(trailed, 0u);
  EXPECT_GT(rejected + cancelled, 3u);
  EXPECT_GT(placed, 0u);
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
