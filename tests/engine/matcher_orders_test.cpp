// Orders in the matcher: triggers, paper fills, positions and balances (../shared/orders.md and
// docs/semantics.md, "Orders"). Market 1: maker 0.02 %, taker 0.05 %, tick 0.01, step 0.001,
// max leverage 50x, quoted in USDC; the wallet starts with 10,000 USDC.
#include <gtest/gtest.h>

#include "builders.h"
#include "engine/matcher.h"
#include "engine/naive_matcher.h"

namespace lam {
namespace {
using namespace lam::test;

constexpr std::uint64_t kOrderKind = 0x0D0;
constexpr std::uint64_t kWalletKind = 0xE;

std::vector<EventType> types(const std::vector<Event>& ev) {
  std::vector<EventType> t;
  for (const Event& e : ev) t.push_back(e.type);
  return t;
}

class Orders : public ::testing::Test {
 protected:
  void SetUp() override { setup_world(mk); }
  /// Market 1 (reference: mark) and market 2 (reference: BBO mid), USDC, fees 2/5 bp; 10,000 USDC.
  template <class M>
  static void setup_world(M& mk) {
    MarketSpec m = market(1);
    m.rules = mk_rules();
    mk.upsert_market(m);
    MarketSpec mid = m;  // market 2: its reference price is the mid of the BBO
    mid.id = id(2, kMarketKind);
    mid.instrument = 2;
    mid.source = PriceSource::mid;
    mk.upsert_market(mid);
    mk.upsert_balance({wallet(), Asset::of("USDC"), raw("10000"), 0});
  }
  static TradingRules mk_rules() {
    TradingRules r;
    r.maker_fee = raw("0.0002");
    r.taker_fee = raw("0.0005");
    r.tick_size = raw("0.01");
    r.step_size = raw("0.001");
    r.min_size = raw("0.001");
    r.max_size = raw("1000");
    r.max_leverage = raw("50");
    r.quote = Asset::of("USDC");
    return r;
  }
  void set_balance(const std::string& b, const std::string& locked = "0") {
    mk.upsert_balance({wallet(), Asset::of("USDC"), raw(b), raw(locked)});
  }
  static Uuid wallet() { return id(1, kWalletKind); }
  OrderSpec order(std::uint64_t n, OrderType type, OrderSide side, const std::string& size,
                  std::optional<std::string> price = std::nullopt,
                  std::optional<std::string> trigger = std::nullopt, std::uint32_t mkt = 1) {
    OrderSpec o;
    o.id = id(n, kOrderKind);
    o.user_id = id(1, kUserKind);
    o.wallet_id = wallet();
    o.market_id = id(mkt, kMarketKind);
    o.type = type;
    o.side = side;
    o.size = raw(size);
    if (price) o.price = raw(*price);
    if (trigger) o.trigger_price = raw(*trigger);
    o.leverage = raw("10");
    return o;
  }
  std::vector<Event> place(const OrderSpec& o) {
    ev.clear();
    mk.upsert_order(o, ev);
    return ev;
  }
  std::vector<Event> tick(const Tick& t) {
    ev.clear();
    mk.on_tick(t, ev);
    return ev;
  }
  OrderStatus status(std::uint64_t n) { return mk.order(id(n, kOrderKind))->status; }
  OrderView view(std::uint64_t n) { return *mk.order(id(n, kOrderKind)); }
  BalanceView bal() { return mk.balance(wallet(), Asset::of("USDC")); }
  std::optional<PositionView> pos(std::uint64_t opening_order) {
    return mk.position(Matcher::position_id_for(id(opening_order, kOrderKind)));
  }

  Matcher mk;
  std::vector<Event> ev;
};

// ---- the table of types x sides ------------------------------------------------------------

TEST_F(Orders, AMarketOrderWaitsForATradeablePriceThenFillsAtTheAskAsTaker) {
  place(order(1, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(status(1), OrderStatus::pending);
  EXPECT_TRUE(tick(mark(1, "100")).empty()) << "a mark is never tradeable";
  auto e = tick(bbo(1, "99.9", "100.1"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_opened}));
  const OrderView v = view(1);
  EXPECT_EQ(v.status, OrderStatus::filled);
  EXPECT_EQ(*v.avg_fill_price, raw("100.1"));
  EXPECT_TRUE(v.liquidity_taker);
  EXPECT_EQ(v.total_fees, raw("0.05005"));  // 100.1 x 0.0005
  const auto p = pos(1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->size, raw("1"));
  EXPECT_EQ(p->entry_price, raw("100.1"));
  EXPECT_EQ(p->margin, raw("10.01"));  // 100.1 / 10x
  EXPECT_EQ(p->realized_pnl, -raw("0.05005"));
  EXPECT_EQ(bal().locked, raw("10.01"));
  EXPECT_EQ(bal().balance, raw("10000") - raw("0.05005"));
  // once a price is known, a market order fills when it is placed
  e = place(order(2, OrderType::market, OrderSide::short_side, "2"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_opened}));
  EXPECT_EQ(*view(2).avg_fill_price, raw("99.9"));  // sells at the bid
}

TEST_F(Orders, BeforeAnyBboTheLastTradeIsTheTradeablePrice) {
  tick(trade(1, "101", "1", 1000));
  place(order(1, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(*view(1).avg_fill_price, raw("101"));
}

TEST_F(Orders, ALimitThatCrossesWhenArmedFillsAtTheBestPriceAsTaker) {
  tick(bbo(1, "99", "100"));
  place(order(1, OrderType::limit, OrderSide::long_side, "1", "100.5"));
  const OrderView v = view(1);
  EXPECT_EQ(v.status, OrderStatus::filled);
  EXPECT_EQ(*v.avg_fill_price, raw("100"));  // the ask, not the limit
  EXPECT_TRUE(v.liquidity_taker);
}

TEST_F(Orders, ARestingLimitFillsAtItsPriceOnATouchOfTheQuoteOrATradeThroughNotAtATradeAtIt) {
  tick(bbo(1, "99", "100"));
  place(order(1, OrderType::limit, OrderSide::long_side, "1", "98"));    // buy: rests
  place(order(2, OrderType::limit, OrderSide::short_side, "1", "102"));  // sell: rests
  EXPECT_EQ(status(1), OrderStatus::open);
  EXPECT_EQ(status(2), OrderStatus::open);
  EXPECT_TRUE(tick(trade(1, "98", "5", 2000)).empty()) << "a trade at the limit is not through it";
  EXPECT_TRUE(tick(trade(1, "102", "5", 2001)).empty());
  auto e = tick(trade(1, "97.99", "1", 2002));  // strictly through the buy
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].type, EventType::order_filled);
  EXPECT_EQ(view(1).avg_fill_price, raw("98"));  // at its limit, maker
  EXPECT_FALSE(view(1).liquidity_taker);
  EXPECT_EQ(view(1).total_fees, raw("0.0196"));  // 98 x 0.0002
  e = tick(bbo(1, "102", "102.5", 2003));        // the bid touches the sell
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(status(2), OrderStatus::filled);
  EXPECT_EQ(view(2).avg_fill_price, raw("102"));
}

TEST_F(Orders, ALimitThatStartsRestingOnATickDoesNotAlsoFillOnThatTick) {
  // stop_limit: triggers on this tick, its limit does not cross the ask, so it rests; the same
  // tick's quote would reach it only as a maker, which starts from the next tick
  tick(bbo(2, "99", "100"));
  place(order(1, OrderType::stop_limit, OrderSide::long_side, "1", "100.5", "101", 2));
  auto e = tick(bbo(2, "100.9", "101.0", 2000));  // mid 100.95: not yet
  EXPECT_TRUE(e.empty());
  e = tick(bbo(2, "101.0", "101.2", 2001));  // mid 101.1 >= 101: triggers; ask 101.2 > 100.5: rests
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered}));
  EXPECT_EQ(status(1), OrderStatus::open);
  e = tick(bbo(2, "100.4", "100.5", 2002));  // now the ask reaches the limit: maker fill at 100.5
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(view(1).avg_fill_price, raw("100.5"));
  EXPECT_FALSE(view(1).liquidity_taker);
}

TEST_F(Orders, StopsTriggerOnTheirSourceEqualityFiresAndFillAtTheBestPriceNotTheTrigger) {
  tick(bbo(1, "99", "100"));
  auto stop = order(1, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "95");
  stop.trigger_source = TriggerSource::mark;
  place(stop);
  EXPECT_TRUE(tick(mark(1, "95.01", 2000)).empty());
  auto e = tick(mark(1, "95", 2001));  // equality fires
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered, EventType::order_filled,
                                   EventType::position_opened}));
  EXPECT_EQ(e[0].price, raw("95"));
  EXPECT_EQ(view(1).avg_fill_price, raw("99"));  // the bid: a mark is never a fill price
  EXPECT_TRUE(view(1).liquidity_taker);
  EXPECT_EQ(view(1).triggered_at, 2001 * kNsPerMs);
}

TEST_F(Orders, AStopLimitThatGapsPastItsLimitRests) {
  tick(bbo(2, "100", "100.1"));
  auto sl = order(1, OrderType::stop_limit, OrderSide::short_side, "1", "95", "96", 2);
  place(sl);
  auto e = tick(bbo(2, "90", "90.1", 2000));  // gaps through trigger 96 and limit 95
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered}));
  EXPECT_EQ(status(1), OrderStatus::open);  // resting at 95: the bid is below it
  e = tick(bbo(2, "95", "95.1", 2001));
  EXPECT_EQ(status(1), OrderStatus::filled);
  EXPECT_EQ(view(1).avg_fill_price, raw("95"));
}

TEST_F(Orders, DueOrdersRunNearestFirstTiesById) {
  tick(bbo(2, "100", "100.1"));
  // sell stops (short) at 99 and 98 (two at 98), triggered by one tick to 97
  place(order(3, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "98", 2));
  place(order(2, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "98", 2));
  place(order(1, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "99", 2));
  auto e = tick(bbo(2, "96.9", "97.1", 2000));  // mid 97
  EXPECT_EQ(subjects(e, EventType::order_triggered),
            (std::vector{id(2, kOrderKind), id(3, kOrderKind), id(1, kOrderKind)}));
}

// ---- positions and balances ------------------------------------------------------------------

TEST_F(Orders, IncreasePartialReduceCloseAndReopen) {
  tick(bbo(1, "100", "100"));
  place(order(1, OrderType::market, OrderSide::long_side, "1"));  // 1 @ 100
  tick(bbo(1, "110", "110", 2000));
  auto e = place(order(2, OrderType::market, OrderSide::long_side, "1"));  // +1 @ 110
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_increased}));
  auto p = pos(1);
  EXPECT_EQ(p->size, raw("2"));
  EXPECT_EQ(p->entry_price, raw("105"));
  EXPECT_EQ(p->margin, raw("21"));                                 // 10 + 11
  e = place(order(3, OrderType::market, OrderSide::sell, "0.5"));  // reduce 0.5 @ 110
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_reduced}));
  p = pos(1);
  EXPECT_EQ(p->size, raw("1.5"));
  EXPECT_EQ(p->margin, raw("15.75"));                           // 21 x 0.75
  EXPECT_EQ(view(3).realized_pnl, raw("2.5") - raw("0.0275"));  // (110-105) x 0.5 - fee
  EXPECT_EQ(view(3).position_id, pos(1)->id);
  // a reduce larger than the position fills the position's size and closes it
  e = place(order(4, OrderType::market, OrderSide::sell, "5"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_closed}));
  EXPECT_EQ(view(4).filled_size, raw("1.5"));
  p = pos(1);
  EXPECT_EQ(p->status, PositionStatus::closed);
  EXPECT_EQ(p->size, 0);
  EXPECT_EQ(p->margin, 0);
  EXPECT_EQ(bal().locked, 0);
  // reopening the side makes a new position
  e = place(order(5, OrderType::market, OrderSide::long_side, "1"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_opened}));
  EXPECT_NE(pos(5)->id, pos(1)->id);
  EXPECT_EQ(pos(1)->status, PositionStatus::closed);
}

TEST_F(Orders, InsufficientMarginFailsExactlyEnoughPasses) {
  tick(bbo(1, "100", "100"));
  // 1 @ 100 at 10x: margin 10 + taker fee 0.05 = 10.05
  set_balance("10.049999999");
  auto e = place(order(1, OrderType::market, OrderSide::long_side, "1"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_rejected}));
  EXPECT_EQ(e[0].reason, RejectReason::insufficient_margin);
  EXPECT_EQ(view(1).status, OrderStatus::failed);
  set_balance("10.05");
  e = place(order(2, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(view(2).status, OrderStatus::filled);
  EXPECT_EQ(bal().balance - bal().locked, 0);
  // a wallet with no balance row has nothing available
  auto other = order(3, OrderType::market, OrderSide::long_side, "1");
  other.wallet_id = id(9, kWalletKind);
  e = place(other);
  EXPECT_EQ(e[0].reason, RejectReason::insufficient_margin);
}

TEST_F(Orders, AReduceWithNoPositionIsCancelled) {
  tick(bbo(1, "100", "100"));
  auto e = place(order(1, OrderType::stop, OrderSide::sell, "1", std::nullopt, "90"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_cancelled}));
  EXPECT_EQ(e[0].reason, RejectReason::no_position);
  EXPECT_EQ(view(1).reason, RejectReason::no_position);
  auto other = order(2, OrderType::market, OrderSide::buy, "1");
  other.wallet_id = id(9, kWalletKind);  // a wallet with no balance row
  place(other);
  std::size_t rows = 0;
  mk.for_each_balance([&](const BalanceView&) { ++rows; });
  EXPECT_EQ(rows, 1u) << "a cancelled reduce must not leave a balance row behind";
}

TEST_F(Orders, ALiquidationCancelsTheReduceOrdersOfItsPositionAndTakesTheMargin) {
  tick(bbo(1, "100", "100"));
  place(order(1, OrderType::market, OrderSide::long_side, "1"));               // margin 10 at 10x
  place(order(2, OrderType::stop, OrderSide::sell, "1", std::nullopt, "80"));  // stop-loss
  place(order(3, OrderType::limit, OrderSide::sell, "1", "150"));              // take-profit
  const Wide before = bal().balance;
  auto e = tick(mark(1, "89", 2000));  // liquidation price ~90.45 for a long at 100, 10x
  ASSERT_EQ(types(e), (std::vector{EventType::position_liquidated, EventType::order_cancelled,
                                   EventType::order_cancelled}));
  EXPECT_EQ(subjects(e, EventType::order_cancelled),
            (std::vector{id(2, kOrderKind), id(3, kOrderKind)}));
  EXPECT_EQ(e[1].reason, RejectReason::position_closed);
  EXPECT_EQ(bal().locked, 0);
  EXPECT_EQ(bal().balance, before - raw("10"));
}

TEST_F(Orders, ExpiryWinsOverAFillInTheSameTickAndTheClockExpiresQuietMarkets) {
  tick(bbo(1, "100", "100.1"));
  auto lim = order(1, OrderType::limit, OrderSide::long_side, "1", "99");
  lim.expires_at = 2000 * kNsPerMs;
  place(lim);
  auto e = tick(bbo(1, "98", "99", 2000));  // would fill, but it expires first
  ASSERT_EQ(types(e), (std::vector{EventType::order_expired}));
  EXPECT_EQ(status(1), OrderStatus::expired);
  auto stop = order(2, OrderType::stop, OrderSide::long_side, "1", std::nullopt, "200");
  stop.expires_at = 3000 * kNsPerMs;
  place(stop);
  ev.clear();
  mk.on_clock(2999 * kNsPerMs, ev);
  EXPECT_TRUE(ev.empty());
  mk.on_clock(3000 * kNsPerMs, ev);  // no tick of the market since: the clock expires it
  ASSERT_EQ(types(ev), (std::vector{EventType::order_expired}));
  EXPECT_EQ(ev[0].ts, 3000 * kNsPerMs);
}

TEST_F(Orders, ALiveStopIsTriggeredAndThenLeftToTheBot) {
  tick(bbo(2, "100", "100.1"));
  auto live = order(1, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "95", 2);
  live.execution = Execution::live;
  live.expires_at = 5000 * kNsPerMs;
  place(live);
  auto e = tick(bbo(2, "94", "94.1", 2000));
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered}));
  EXPECT_EQ(status(1), OrderStatus::open);
  EXPECT_TRUE(tick(bbo(2, "90", "90.1", 6000)).empty()) << "no fill, no expiry: the bot's now";
  EXPECT_FALSE(pos(1).has_value());
  // live market and limit rows are not touched at all
  auto m = order(2, OrderType::market, OrderSide::long_side, "1");
  m.execution = Execution::live;
  EXPECT_TRUE(place(m).empty());
  EXPECT_EQ(status(2), OrderStatus::pending);
}

TEST_F(Orders, ValidationRejectsWithAReason) {
  tick(bbo(1, "100", "100"));
  auto e = place(order(1, OrderType::market, OrderSide::long_side, "0.0005"));  // below min
  EXPECT_EQ(e[0].reason, RejectReason::invalid_size);
  e = place(order(2, OrderType::market, OrderSide::long_side, "1.0005"));  // off the step
  EXPECT_EQ(e[0].reason, RejectReason::invalid_size);
  e = place(order(3, OrderType::limit, OrderSide::long_side, "1", "100.005"));  // off the tick
  EXPECT_EQ(e[0].reason, RejectReason::invalid_price);
  e = place(order(4, OrderType::stop, OrderSide::long_side, "1"));  // no trigger
  EXPECT_EQ(e[0].reason, RejectReason::invalid_trigger);
  auto lev = order(5, OrderType::market, OrderSide::long_side, "1");
  lev.leverage = raw("51");
  e = place(lev);
  EXPECT_EQ(e[0].reason, RejectReason::invalid_leverage);
  EXPECT_EQ(status(5), OrderStatus::failed);
}

// ---- trailing stops (docs/semantics.md, "Trailing stops") ------------------------------------

TEST_F(Orders, ATrailingStopFollowsTheBestPriceSinceActivationAndFillsLikeAStop) {
  tick(bbo(1, "99.9", "100.1"));
  tick(mark(1, "100", 1000));
  place(order(1, OrderType::market, OrderSide::long_side, "1"));  // a long to protect
  auto ts = order(2, OrderType::trailing_stop, OrderSide::sell, "1");
  ts.trail_rate = raw("0.01");  // 1 %
  ts.trigger_source = TriggerSource::mark;
  EXPECT_TRUE(place(ts).empty());
  EXPECT_EQ(view(2).activated_at, 1000 * kNsPerMs) << "no activation price: armed at the mark now";
  EXPECT_EQ(view(2).trail_extreme, raw("100"));
  EXPECT_TRUE(tick(mark(1, "110", 2000)).empty());  // a new high: the trigger rises to 108.9
  EXPECT_EQ(view(2).trail_extreme, raw("110"));
  EXPECT_TRUE(tick(mark(1, "108.91", 3000)).empty());
  EXPECT_TRUE(tick(mark(1, "109.5", 4000)).empty()) << "below the high: it stays 110";
  auto e = tick(mark(1, "108.9", 5000));  // exactly 1 % below 110
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered, EventType::order_filled,
                                   EventType::position_closed}));
  EXPECT_EQ(e[0].price, raw("108.9"));
  EXPECT_EQ(view(2).avg_fill_price, raw("99.9")) << "the bid: a mark is never a fill price";
  EXPECT_EQ(view(2).triggered_at, 5000 * kNsPerMs);
  EXPECT_FALSE(view(2).trail_extreme.has_value());
}

TEST_F(Orders, ATrailingStopWaitsForItsActivationPriceThenTrailsADistance) {
  tick(bbo(2, "100", "100.2"));  // market 2: the mid is its reference
  auto ts =
      order(1, OrderType::trailing_stop, OrderSide::long_side, "1", std::nullopt, std::nullopt, 2);
  ts.trail_distance = raw("2");
  ts.activation_price = raw("95");  // a BUY trails a fall: it starts at or below 95
  place(ts);
  EXPECT_FALSE(view(1).activated_at.has_value());
  EXPECT_TRUE(tick(bbo(2, "97.9", "98.1", 2000)).empty());  // 98 after 100: nothing to follow yet
  EXPECT_TRUE(tick(bbo(2, "94.9", "95.1", 3000)).empty());  // mid 95: activated
  EXPECT_EQ(view(1).activated_at, 3000 * kNsPerMs);
  EXPECT_EQ(view(1).trail_extreme, raw("95"));
  EXPECT_TRUE(tick(bbo(2, "90.9", "91.1", 4000)).empty());    // a new low, 91: trigger at 93
  EXPECT_TRUE(tick(bbo(2, "92.89", "93.09", 5000)).empty());  // mid 92.99
  auto e = tick(bbo(2, "92.9", "93.1", 6000));                // mid 93: 2 above the low
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered, EventType::order_filled,
                                   EventType::position_opened}));
  EXPECT_EQ(view(1).avg_fill_price, raw("93.1")) << "a buy pays the ask";
}

TEST_F(Orders, ATrailingStopWithBothOffsetsTriggersAtTheNearer) {
  tick(bbo(1, "99.9", "100.1"));
  tick(mark(1, "100", 1000));
  place(order(1, OrderType::market, OrderSide::short_side, "1"));
  auto ts = order(2, OrderType::trailing_stop, OrderSide::buy, "1");
  ts.trail_rate = raw("0.05");     // 105 above a low of 100
  ts.trail_distance = raw("1.5");  // 101.5: nearer, first
  place(ts);
  EXPECT_TRUE(tick(mark(1, "101.49", 2000)).empty());
  EXPECT_EQ(types(tick(mark(1, "101.5", 3000)))[0], EventType::order_triggered);
}

TEST_F(Orders, ATrailingReduceOrderEndsWithItsPositionAndALiveOneIsLeftToTheBotOnceTriggered) {
  tick(bbo(1, "99.9", "100.1"));
  tick(mark(1, "100", 1000));
  place(order(1, OrderType::market, OrderSide::long_side, "1"));
  auto ts = order(2, OrderType::trailing_stop, OrderSide::sell, "1");
  ts.trail_rate = raw("0.02");
  place(ts);
  place(order(3, OrderType::market, OrderSide::sell, "1"));  // the bot closes the long
  EXPECT_EQ(status(2), OrderStatus::cancelled);
  EXPECT_EQ(view(2).reason, RejectReason::position_closed);
  EXPECT_FALSE(view(2).trail_extreme.has_value());
  EXPECT_TRUE(tick(mark(1, "90", 2000)).empty()) << "out of the book: nothing fires";
  auto live = order(4, OrderType::trailing_stop, OrderSide::short_side, "1");
  live.execution = Execution::live;
  live.trail_distance = raw("1");
  place(live);
  EXPECT_EQ(view(4).trail_extreme, raw("90"));
  EXPECT_TRUE(tick(mark(1, "95", 3000)).empty());
  ASSERT_EQ(types(tick(mark(1, "94", 4000))), (std::vector{EventType::order_triggered}));
  EXPECT_EQ(status(4), OrderStatus::open);
  EXPECT_TRUE(tick(mark(1, "80", 5000)).empty()) << "the bot's now";
}

TEST_F(Orders, AMarketsNewReferenceSourceRestartsItsTrailingStopsAsTheReferenceDoes) {
  NaiveMatcher naive;
  setup_world(naive);
  std::vector<Event> en;
  auto both = [&](auto&& f) {
    ev.clear();
    en.clear();
    f(mk, ev);
    f(naive, en);
    ASSERT_EQ(types(ev), types(en));
    for (std::size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].price, en[i].price);
    const auto fo = mk.order(id(1, kOrderKind));
    const auto n = naive.order(id(1, kOrderKind));
    ASSERT_EQ(fo.has_value(), n.has_value());
    if (!fo) return;
    EXPECT_EQ(fo->activated_at, n->activated_at);
    EXPECT_EQ(fo->trail_extreme, n->trail_extreme);
  };
  auto tick_both = [&](const Tick& t) {
    both([&](auto& m, std::vector<Event>& out) { m.on_tick(t, out); });
  };
  tick_both(bbo(1, "99.9", "100.1"));
  tick_both(mark(1, "100", 1000));
  auto ts = order(1, OrderType::trailing_stop, OrderSide::short_side, "1");
  ts.trail_distance = raw("2");  // follows the reference (the mark), from 100
  // as a restart reads it: its group's best price, 100 (the mark now is 100 too)
  ts.activated_at = 500 * kNsPerMs;
  ts.trail_extreme = raw("100");
  ts.trail_group = id(1, kOrderKind);
  both([&](auto& m, std::vector<Event>& out) { m.upsert_order(ts, out); });
  EXPECT_EQ(view(1).trail_extreme, raw("100"));
  EXPECT_EQ(view(1).activated_at, 500 * kNsPerMs);
  tick_both(mark(1, "105", 2000));
  EXPECT_EQ(view(1).trail_extreme, raw("105"));
  MarketSpec by_trade = market(1, PriceSource::last);
  by_trade.rules = mk_rules();
  both([&](auto& m, std::vector<Event>&) { m.upsert_market(by_trade); });
  EXPECT_FALSE(view(1).activated_at.has_value())
      << "waits for the new source's next price (not its row's best price, of the old source)";
  tick_both(mark(1, "90", 3000));         // a mark is not the reference any more: nothing
  tick_both(trade(1, "101", "1", 4000));  // activated at the first trade
  EXPECT_EQ(view(1).activated_at, 4000 * kNsPerMs);
  EXPECT_EQ(view(1).trail_extreme, raw("101"));
  tick_both(trade(1, "99", "1", 5000));  // 2 below 101
  EXPECT_EQ(types(ev)[0], EventType::order_triggered);
}

TEST_F(Orders, TrailingFieldsAreValidated) {
  tick(bbo(1, "100", "100"));
  auto none = order(1, OrderType::trailing_stop, OrderSide::long_side, "1");
  EXPECT_EQ(place(none)[0].reason, RejectReason::invalid_trail) << "no offset";
  auto wide = order(2, OrderType::trailing_stop, OrderSide::long_side, "1");
  wide.trail_rate = raw("0.500000001");
  EXPECT_EQ(place(wide)[0].reason, RejectReason::invalid_trail) << "rate above 50 %";
  auto off = order(3, OrderType::trailing_stop, OrderSide::long_side, "1");
  off.trail_distance = raw("0.005");
  EXPECT_EQ(place(off)[0].reason, RejectReason::invalid_trail) << "distance off the tick";
  auto trig = order(4, OrderType::trailing_stop, OrderSide::long_side, "1", std::nullopt, "99");
  trig.trail_rate = raw("0.01");
  EXPECT_EQ(place(trig)[0].reason, RejectReason::invalid_trail) << "a trigger price as well";
  auto other = order(5, OrderType::stop, OrderSide::long_side, "1", std::nullopt, "99");
  other.trail_rate = raw("0.01");
  EXPECT_EQ(place(other)[0].reason, RejectReason::invalid_trail) << "trailing fields on a stop";
  auto act = order(6, OrderType::trailing_stop, OrderSide::long_side, "1");
  act.trail_rate = raw("0.01");
  act.activation_price = raw("0");
  EXPECT_EQ(place(act)[0].reason, RejectReason::invalid_trail) << "activation price not positive";
}

// ---- the users' own settings (issue 33 §3) ----------------------------------------------------

TEST_F(Orders, AUsersOwnMaximumLeverageRejectsWithItsReasonAndTheirSlippageApplies) {
  tick(bbo(1, "99.9", "100"));
  UserSettings us;
  us.max_leverage = raw("5");
  us.slippage_bps = 50;  // 0.5 %
  mk.set_user_settings(id(1, kUserKind), us);
  auto e = place(order(1, OrderType::market, OrderSide::long_side, "1"));  // leverage 10
  ASSERT_EQ(types(e), (std::vector{EventType::order_rejected}));
  EXPECT_EQ(e[0].reason, RejectReason::above_user_leverage);
  auto ok = order(2, OrderType::market, OrderSide::long_side, "1");
  ok.leverage = raw("5");  // at the maximum: armed
  place(ok);
  EXPECT_EQ(status(2), OrderStatus::filled);
  EXPECT_EQ(view(2).avg_fill_price, raw("100.5")) << "the ask moved 0.5 % against the buyer";
  mk.set_user_settings(id(1, kUserKind), UserSettings{});  // forgotten: the market's 50x, no slip
  place(order(3, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(status(3), OrderStatus::filled);
  EXPECT_EQ(view(3).avg_fill_price, raw("100"));
}

TEST_F(Orders, UserSettingRowsMergeByKeyAndARejectedRowIsNamedAndNotFollowed) {
  tick(bbo(1, "99.9", "100"));
  UserSettingRow risk;
  risk.id = id(1, 0x5E);
  risk.user_id = id(1, kUserKind);
  risk.key = UserSettingRow::Key::risk_management;
  risk.values.max_leverage = raw("5");
  UserSettingRow trading = risk;
  trading.id = id(2, 0x5E);
  trading.key = UserSettingRow::Key::trading;
  trading.values = UserSettings{};
  trading.values.slippage_bps = 50;
  mk.upsert_setting(risk, ev);
  mk.upsert_setting(trading, ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(mk.user_settings(id(1, kUserKind)).max_leverage, raw("5"));
  EXPECT_EQ(mk.user_settings(id(1, kUserKind)).slippage_bps, 50U);
  // A hostile value: the row is named on the stream and its part is unset; the other row holds.
  ev.clear();
  UserSettingRow bad = risk;
  bad.values = UserSettings{};
  bad.invalid = RejectReason::not_a_number;
  mk.upsert_setting(bad, ev);
  ASSERT_EQ(types(ev), (std::vector{EventType::settings_rejected}));
  EXPECT_EQ(ev[0].subject, risk.id);
  EXPECT_EQ(ev[0].user_id, risk.user_id);
  EXPECT_EQ(ev[0].reason, RejectReason::not_a_number);
  EXPECT_FALSE(mk.user_settings(id(1, kUserKind)).max_leverage.has_value());
  EXPECT_EQ(mk.user_settings(id(1, kUserKind)).slippage_bps, 50U);
  ev.clear();
  mk.upsert_setting(bad, ev);  // a resync re-reads the same row: not named again
  EXPECT_TRUE(ev.empty());
  place(order(1, OrderType::market, OrderSide::long_side, "1"));  // 10x: the market's 50x holds
  EXPECT_EQ(status(1), OrderStatus::filled);
  EXPECT_EQ(view(1).avg_fill_price, raw("100.5"));
  mk.remove_setting(trading.id);  // deleted by the bot
  EXPECT_EQ(mk.user_settings(id(1, kUserKind)), UserSettings{});
}

TEST(ProtectiveTrigger, RoundsTowardTheEntryOnTheTickAndNeverOntoIt) {
  const auto tick = std::optional<std::int64_t>(raw("0.01"));
  // long: 100.1 x 0.98 = 98.098 -> 98.10 (up, toward the entry); short: 102.102 -> 102.10
  EXPECT_EQ(FillMath::protective_trigger(raw("100.1"), true, raw("0.02"), tick), raw("98.1"));
  EXPECT_EQ(FillMath::protective_trigger(raw("100.1"), false, raw("0.02"), tick), raw("102.1"));
  // exact on the tick: kept
  EXPECT_EQ(FillMath::protective_trigger(raw("100"), true, raw("0.02"), tick), raw("98"));
  EXPECT_EQ(FillMath::protective_trigger(raw("100"), false, raw("0.02"), tick), raw("102"));
  // a fraction under one tick: one tick beyond the entry, never on it
  EXPECT_EQ(FillMath::protective_trigger(raw("100"), true, raw("0.00001"), tick), raw("99.99"));
  EXPECT_EQ(FillMath::protective_trigger(raw("100"), false, raw("0.00001"), tick), raw("100.01"));
  // an entry off the tick (a slipped fill): the nearest tick toward it
  EXPECT_EQ(FillMath::protective_trigger(raw("100.005"), true, raw("0.5"), tick), raw("50.01"));
  // nothing positive below a one-tick entry; nothing past what the engine holds
  EXPECT_FALSE(FillMath::protective_trigger(raw("0.01"), true, raw("0.5"), tick));
  EXPECT_FALSE(FillMath::protective_trigger(kMaxRaw, false, raw("0.5"), tick));
  // no tick rule: the 1e-9 grid
  EXPECT_EQ(FillMath::protective_trigger(raw("3"), true, raw("0.1"), std::nullopt), raw("2.7"));
}

TEST_F(Orders, AUsersStopLossPercentagePlacesAReduceOnlyStopOnThePositionAFillOpens) {
  tick(bbo(1, "99.9", "100.1"));
  UserSettings us;
  us.stop_loss_fraction = raw("0.02");  // stop_loss_percentage 2
  mk.set_user_settings(id(1, kUserKind), us);
  auto e = place(order(1, OrderType::market, OrderSide::long_side, "1.5"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_opened,
                                   EventType::order_placed}));
  const Uuid stop_id = Matcher::protective_id_for(id(1, kOrderKind));
  EXPECT_EQ(e[2].subject, stop_id);
  EXPECT_EQ(e[2].ref, Matcher::position_id_for(id(1, kOrderKind)));
  EXPECT_EQ(e[2].price, raw("98.1"));  // 100.1 x 0.98 = 98.098, toward the entry
  EXPECT_EQ(e[2].size, raw("1.5"));
  const OrderSpec s = *mk.order_spec(stop_id);
  EXPECT_EQ(s.type, OrderType::stop);
  EXPECT_EQ(s.side, OrderSide::sell);
  EXPECT_EQ(s.execution, Execution::paper);
  EXPECT_EQ(s.trigger_source, TriggerSource::reference);
  EXPECT_EQ(s.leverage, raw("10"));
  EXPECT_EQ(s.wallet_id, wallet());
  EXPECT_EQ(s.status, OrderStatus::pending);
  EXPECT_EQ(mk.order(stop_id)->opened_by, id(1, kOrderKind));
  EXPECT_EQ(mk.stats().orders_placed, 1U);
  // An increase places nothing more; the stop closes the whole position when it triggers.
  e = place(order(2, OrderType::market, OrderSide::long_side, "0.5"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_increased}));
  EXPECT_TRUE(tick(mark(1, "98.11")).empty());
  e = tick(mark(1, "98.1"));
  ASSERT_GE(e.size(), 3U);
  EXPECT_EQ(e[0].type, EventType::order_triggered);
  EXPECT_EQ(e[0].subject, stop_id);
  EXPECT_EQ(e[1].type, EventType::order_filled);
  EXPECT_EQ(e[2].type, EventType::position_reduced) << "1.5 of 2: the rest stays open";
  // A short: a buy stop above the entry (99.9 x 1.02 = 101.898 -> 101.89).
  e = place(order(3, OrderType::market, OrderSide::short_side, "1"));
  ASSERT_EQ(types(e).back(), EventType::order_placed);
  EXPECT_EQ(e.back().price, raw("101.89"));
  EXPECT_EQ(mk.order_spec(Matcher::protective_id_for(id(3, kOrderKind)))->side, OrderSide::buy);
}

TEST_F(Orders, TheProtectiveStopIsTheBotsToMoveOrCancelAndNoneIsPlacedWithoutTheSetting) {
  tick(bbo(1, "99.9", "100.1"));
  auto e = place(order(1, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(types(e), (std::vector{EventType::order_filled, EventType::position_opened}))
      << "no setting, no stop";
  UserSettings us;
  us.stop_loss_fraction = raw("0.05");
  mk.set_user_settings(id(1, kUserKind), us);
  auto live = order(2, OrderType::market, OrderSide::short_side, "1");
  live.execution = Execution::live;
  e = place(live);
  EXPECT_TRUE(e.empty()) << "a live order is the venue's: no paper fill, no stop";
  // Opened by a stop that triggers on a tick: placed after the tick's other events.
  place(order(3, OrderType::stop, OrderSide::short_side, "1", std::nullopt, "99"));
  e = tick(mark(1, "98.5"));
  ASSERT_EQ(types(e), (std::vector{EventType::order_triggered, EventType::order_filled,
                                   EventType::position_opened, EventType::order_placed}));
  const Uuid stop_id = Matcher::protective_id_for(id(3, kOrderKind));
  EXPECT_EQ(e[3].price, raw("104.89"));  // 99.9 x 1.05 = 104.895, down toward the entry
  // The bot moves it: followed as its own row.
  OrderSpec moved = *mk.order_spec(stop_id);
  moved.trigger_price = raw("100");
  ev.clear();
  mk.upsert_order(moved, ev);
  EXPECT_TRUE(ev.empty());
  EXPECT_TRUE(tick(mark(1, "99.99")).empty());
  e = tick(mark(1, "100"));
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0].type, EventType::order_triggered);
  EXPECT_EQ(e[0].subject, stop_id);
  EXPECT_EQ(mk.order(stop_id)->status, OrderStatus::filled);
  // The same order id fills again nowhere: a re-read of the opening order changes nothing.
  EXPECT_EQ(mk.stats().orders_placed, 1U);
}

TEST_F(Orders, AProtectiveStopMatchesTheReferenceMatcher) {
  NaiveMatcher nv;
  setup_world(nv);
  UserSettings us;
  us.stop_loss_fraction = raw("0.01");
  mk.set_user_settings(id(1, kUserKind), us);
  nv.set_user_settings(id(1, kUserKind), us);
  std::vector<Event> a, b;
  mk.on_tick(bbo(1, "99.9", "100.1"), a);
  nv.on_tick(bbo(1, "99.9", "100.1"), b);
  const auto o = order(1, OrderType::market, OrderSide::long_side, "1");
  mk.upsert_order(o, a);
  nv.upsert_order(o, b);
  mk.on_tick(mark(1, "99.09"), a);
  nv.on_tick(mark(1, "99.09"), b);
  ASSERT_EQ(types(a), types(b));
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].seq, b[i].seq);
    EXPECT_EQ(a[i].subject, b[i].subject);
    EXPECT_EQ(a[i].price, b[i].price);
  }
  EXPECT_EQ(types(a).back(), EventType::position_closed);
}

TEST_F(Orders, TheBotsCancelDisarmsAndAnEditRearms) {
  tick(bbo(1, "100", "100.1"));
  auto stop = order(1, OrderType::stop, OrderSide::long_side, "1", std::nullopt, "105");
  place(stop);
  stop.trigger_price = raw("110");  // edited
  place(stop);
  EXPECT_TRUE(tick(bbo(1, "106", "106.1", 2000)).empty());
  stop.status = OrderStatus::cancelled;
  EXPECT_TRUE(place(stop).empty());
  EXPECT_TRUE(tick(bbo(1, "120", "120.1", 2001)).empty());
  EXPECT_EQ(status(1), OrderStatus::cancelled);
}

TEST_F(Orders, BalancesAreConservedAcrossFills) {
  // For the wallet: balance change = sum of the fills' realized PnL (fees included), and
  // locked = the margin of its open positions.
  const Wide start = bal().balance;
  tick(bbo(1, "100", "100.1"));
  std::uint64_t n = 1;
  const char* prices[] = {"101", "99.5", "103", "97", "100"};
  for (const char* px : prices) {
    place(order(n++, OrderType::market, OrderSide::long_side, "0.5"));
    place(order(n++, OrderType::market, OrderSide::short_side, "0.25"));
    tick(bbo(1, px, px, 2000 + static_cast<TimeNs>(n)));
    place(order(n++, OrderType::market, OrderSide::sell, "0.3"));
    place(order(n++, OrderType::limit, OrderSide::buy, "0.1", "98"));
  }
  Wide realized = 0;
  mk.for_each_order([&](const OrderView& o) {
    if (o.status == OrderStatus::filled) realized += o.realized_pnl;
  });
  Wide margin = 0;
  mk.for_each_position([&](const PositionView& p) {
    if (p.status == PositionStatus::open) margin += p.margin;
  });
  EXPECT_EQ(bal().balance - start, realized);
  EXPECT_EQ(bal().locked, margin);
  EXPECT_GT(margin, 0);
}

TEST_F(Orders, EngineOpenedPositionsAreLiquidatedAndFeedPositionPnlAlerts) {
  tick(bbo(1, "100", "100"));
  AlertSpec a = alert(1, AlertType::position_pnl, ConditionType::less_than);
  a.target_value = dec("-5");
  mk.upsert_alert(a, ev);  // waits: no open position yet
  place(order(1, OrderType::market, OrderSide::long_side, "1"));
  auto e = tick(mark(1, "94.9", 2000));  // uPnL -5.1 < -5
  EXPECT_EQ(subjects(e, EventType::alert_triggered), std::vector{id(1, kAlertKind)});
}

}  // namespace
}  // namespace lam

namespace lam {
namespace {

// [paper] slippage_bps: a taker's fill moves against the trader (a buy pays more, a sell gets less,
// rounded against the trader on the 1e-9 grid), fees and margin follow the slipped price, and a
// maker's fill stays at its limit.
TEST_F(Orders, SlippageMovesTakerFillsAgainstTheTraderAndLeavesMakersAtTheirLimit) {
  MatcherConfig cfg;
  cfg.slippage_bps = 30;  // 0.3%
  Matcher slip(cfg);
  setup_world(slip);
  std::vector<Event> e;
  slip.on_tick(bbo(1, "99.9", "100.1"), e);
  slip.upsert_order(order(1, OrderType::market, OrderSide::long_side, "1"), e);
  const OrderView buy = *slip.order(id(1, kOrderKind));
  EXPECT_EQ(*buy.avg_fill_price, raw("100.4003"));  // 100.1 x 1.003
  EXPECT_EQ(buy.total_fees, raw("0.05020015"));     // 100.4003 x 0.0005
  const auto p = slip.position(Matcher::position_id_for(id(1, kOrderKind)));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->margin, raw("10.04003"));  // 100.4003 / 10x
  slip.upsert_order(order(2, OrderType::market, OrderSide::short_side, "1"), e);
  EXPECT_EQ(*slip.order(id(2, kOrderKind))->avg_fill_price, raw("99.6003"));  // 99.9 x 0.997
  // Rounding is against the trader: 0.000000001 x 1.003 is paid as 0.000000002 ...
  EXPECT_EQ(FillMath::slipped(1, true, 30), 2);
  // ... and a sell never fills at zero.
  EXPECT_EQ(FillMath::slipped(1, false, 30), 1);
  EXPECT_EQ(FillMath::slipped(raw("100"), false, 0), raw("100"));
  // A resting limit is a maker: it fills at its price, unslipped.
  slip.upsert_order(order(3, OrderType::limit, OrderSide::long_side, "1", "99"), e);
  EXPECT_EQ(slip.order(id(3, kOrderKind))->status, OrderStatus::open);
  e.clear();
  slip.on_tick(bbo(1, "98.5", "99", 2000), e);
  const OrderView maker = *slip.order(id(3, kOrderKind));
  EXPECT_EQ(maker.status, OrderStatus::filled);
  EXPECT_EQ(*maker.avg_fill_price, raw("99"));
  EXPECT_FALSE(maker.liquidity_taker);
}

// A daemon runs for months: orders come and go, and the records of removed ones are reused, so the
// matcher's memory follows the orders it holds, not every order it ever saw. A reused record
// carries nothing of its previous order.
TEST_F(Orders, RemovedOrdersLeaveTheirRecordsForTheNextNotForever) {
  tick(bbo(1, "99", "101", 1000));
  for (std::uint64_t round = 0; round < 20; ++round) {
    for (std::uint64_t i = 0; i < 500; ++i) {
      place(order(round * 1000 + i + 1, OrderType::limit, OrderSide::long_side, "1", "90"));
    }
    for (std::uint64_t i = 0; i < 500; ++i) mk.remove_order(id(round * 1000 + i + 1, kOrderKind));
  }
  EXPECT_EQ(mk.order_slots(), 500U);
  EXPECT_FALSE(mk.order(id(1, kOrderKind)).has_value());
  // The last one placed in a reused record rests and fills like any other.
  place(order(99'999, OrderType::limit, OrderSide::long_side, "1", "100"));
  EXPECT_EQ(status(99'999), OrderStatus::open);
  const auto e = tick(bbo(1, "99", "100", 2000));
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e.front().type, EventType::order_filled);
  EXPECT_EQ(status(99'999), OrderStatus::filled);
  std::size_t live = 0;
  mk.for_each_order([&](const OrderView&) { ++live; });
  EXPECT_EQ(live, 1U);
}

// ---- integrity (issue 28; docs/semantics.md, "Integrity")
// ----------------------------------------

// A filled order the bot sets back to pending / open fills again, charging the wallet twice and
// growing the position: refused, whether the matcher still holds the finished order or knows it
// only from its row (the fill still on it), and reported.
TEST_F(Orders, AFinishedOrderSetBackToOpenIsNeverRearmed) {
  tick(bbo(1, "99.9", "100.1"));
  OrderSpec o = order(1, OrderType::market, OrderSide::long_side, "1");
  place(o);
  ASSERT_EQ(status(1), OrderStatus::filled);
  const BalanceView after_fill = bal();
  const PositionView p = *pos(1);
  // (The row exactly as first placed is a re-read of a row our fill has not reached yet: a no-op.)
  EXPECT_TRUE(place(o).empty());
  for (OrderStatus back : {OrderStatus::open, OrderStatus::pending}) {
    o.status = back;
    o.size = raw(back == OrderStatus::open ? "1" : "2");  // and edited
    const auto e = place(o);
    ASSERT_EQ(types(e), (std::vector{EventType::order_revival_refused}));
    EXPECT_EQ(e[0].reason, RejectReason::finished_order);
    EXPECT_EQ(e[0].subject, o.id);
    EXPECT_EQ(status(1), OrderStatus::filled);
  }
  EXPECT_TRUE(tick(bbo(1, "99.8", "100", 2000)).empty()) << "nothing armed";
  EXPECT_EQ(bal().balance, after_fill.balance);
  EXPECT_EQ(bal().locked, after_fill.locked);
  EXPECT_EQ(pos(1)->size, p.size);
  EXPECT_EQ(mk.stats().orders_revivals_refused, 2U);
  // Forgotten once written: the row's fill is what tells.
  ASSERT_TRUE(mk.forget_order(o.id));
  o.status = OrderStatus::open;
  o.invalid = RejectReason::finished_order;  // the row reader's verdict on filled_size > 0
  ASSERT_EQ(types(place(o)), (std::vector{EventType::order_revival_refused}));
  EXPECT_FALSE(mk.order(o.id).has_value());
  EXPECT_EQ(bal().balance, after_fill.balance);
  // Cancelled, expired and failed are terminal too; a new order (a new id) is how a bot retries.
  OrderSpec c = order(2, OrderType::limit, OrderSide::long_side, "1", "50");
  place(c);
  c.status = OrderStatus::cancelled;
  place(c);
  c.status = OrderStatus::pending;
  ASSERT_EQ(types(place(c)), (std::vector{EventType::order_revival_refused}));
  EXPECT_EQ(status(2), OrderStatus::cancelled);
  OrderSpec retry = order(3, OrderType::limit, OrderSide::long_side, "1", "50");
  EXPECT_TRUE(place(retry).empty());
  EXPECT_EQ(status(3), OrderStatus::open);
}

// The stream never contradicts the books: the bot's cancel reached the database before the
// engine's fill of the order was stored, so the fill never will be; the fill is voided on the
// stream (the position and wallet follow the rows the writer has re-read).
TEST_F(Orders, AFillTheBotsCancelBeatIsVoided) {
  tick(bbo(1, "99.9", "100.1"));
  OrderSpec o = order(1, OrderType::market, OrderSide::long_side, "2");
  place(o);
  ASSERT_EQ(status(1), OrderStatus::filled);
  o.status = OrderStatus::cancelled;
  const auto e = place(o);
  ASSERT_EQ(types(e), (std::vector{EventType::order_fill_voided}));
  EXPECT_EQ(e[0].subject, o.id);
  EXPECT_EQ(e[0].ref, Matcher::position_id_for(o.id));
  EXPECT_EQ(e[0].size, raw("2"));
  EXPECT_EQ(e[0].reason, RejectReason::changed_first);
  EXPECT_EQ(status(1), OrderStatus::cancelled);
  EXPECT_EQ(mk.stats().orders_fills_voided, 1U);
  EXPECT_TRUE(place(o).empty()) << "once";
}

// A fill that increased a position the bot closed first was never stored, and its order is still
// pending in the database: the writer has the position, the wallet and the order re-read (op
// RECONCILE). The fill is voided and the order armed again as the database holds it, so that it
// fills now (a new position) rather than at the next start; a re-read the bot caused (no
// RECONCILE) still refuses to re-arm a filled order.
TEST_F(Orders, AFillLostToTheBotsCloseOfItsPositionIsVoidedAndTheOrderArmedAgain) {
  tick(bbo(1, "99.9", "100.1"));
  place(order(1, OrderType::market, OrderSide::long_side, "2"));
  const OrderSpec o = order(3, OrderType::market, OrderSide::long_side, "1");
  ASSERT_EQ(types(place(o)), (std::vector{EventType::order_filled, EventType::position_increased}));
  const Uuid first = Matcher::position_id_for(id(1, kOrderKind));
  ASSERT_EQ(mk.position(first)->size, raw("3"));
  // The bot's read of the order (its own write, no RECONCILE): terminal is terminal.
  ASSERT_EQ(types(place(o)), (std::vector<EventType>{})) << "an unchanged row";
  // What the writer's statement left: the bot's close of the first position (its margin released
  // by the database), the wallet as before the lost fill, the order still pending.
  PositionSpec closed = position(0, Side::long_side, "2", "100.1", "20.02");
  closed.id = first;
  closed.wallet_id = wallet();
  closed.status = PositionStatus::closed;
  closed.closed_at = 2'000 * kNsPerMs;
  ev.clear();
  mk.upsert_position(closed, ev);
  EXPECT_EQ(mk.position(first)->status, PositionStatus::closed);
  set_balance("9999.8999");
  ev.clear();
  mk.reconcile_order(o, ev);
  ASSERT_EQ(types(ev), (std::vector{EventType::order_fill_voided, EventType::order_filled,
                                    EventType::position_opened}));
  EXPECT_EQ(ev[0].subject, o.id);
  EXPECT_EQ(ev[0].ref, first);
  EXPECT_EQ(ev[0].size, raw("1"));
  EXPECT_EQ(ev[0].reason, RejectReason::position_closed);
  EXPECT_EQ(mk.stats().orders_fills_voided, 1U);
  const auto reopened = pos(3);
  ASSERT_TRUE(reopened) << "the retried fill opens the side again (a new row)";
  EXPECT_EQ(reopened->size, raw("1"));
  EXPECT_EQ(status(3), OrderStatus::filled);
  // A RECONCILE read that finds the order cancelled (the bot's cancel beat the fill): voided as
  // changed_first, not armed.
  OrderSpec cancelled = o;
  cancelled.status = OrderStatus::cancelled;
  ev.clear();
  mk.reconcile_order(cancelled, ev);
  ASSERT_EQ(types(ev), (std::vector{EventType::order_fill_voided}));
  EXPECT_EQ(ev[0].reason, RejectReason::changed_first);
  EXPECT_EQ(status(3), OrderStatus::cancelled);
  // A row that shows a fill (the loader's finished_order) is never re-armed, RECONCILE or not.
  OrderSpec shown = order(1, OrderType::market, OrderSide::long_side, "2");
  shown.invalid = RejectReason::finished_order;
  ev.clear();
  mk.reconcile_order(shown, ev);
  EXPECT_EQ(types(ev), (std::vector{EventType::order_revival_refused}));
}

// An order or a position naming another user's wallet never locks, charges or liquidates it.
TEST_F(Orders, AnotherUsersWalletIsRejected) {
  tick(bbo(1, "99.9", "100.1"));
  OrderSpec o = order(1, OrderType::market, OrderSide::long_side, "1");
  o.invalid = RejectReason::foreign_wallet;  // the row reader's verdict on wallet_owner
  const auto e = place(o);
  ASSERT_EQ(types(e), (std::vector{EventType::order_rejected}));
  EXPECT_EQ(e[0].reason, RejectReason::foreign_wallet);
  EXPECT_EQ(status(1), OrderStatus::failed);
  EXPECT_EQ(bal().balance, raw("10000"));
  EXPECT_EQ(bal().locked, 0);
  PositionSpec p = position(7, Side::long_side, "1", "100", "1");
  p.wallet_id = wallet();
  p.invalid = RejectReason::foreign_wallet;
  ev.clear();
  mk.upsert_position(p, ev);
  ASSERT_EQ(types(ev), (std::vector{EventType::position_rejected}));
  EXPECT_EQ(ev[0].reason, RejectReason::foreign_wallet);
  EXPECT_TRUE(tick(mark(1, "1", 2000)).empty()) << "not armed: never liquidated";
  EXPECT_EQ(bal().balance, raw("10000"));
}

// With its feed down the market's last quotes are not tradeable: a market order placed during the
// outage waits and fills at the first fresh quote, never at the one from before.
TEST_F(Orders, NoFillAtAQuoteFromBeforeTheFeedWentDown) {
  tick(bbo(1, "99.9", "100.1"));
  tick(trade(1, "100", "1", 1001));
  mk.lapse_quotes(1, /*trades=*/true, /*bbo=*/true);  // the daemon: the feed is not live
  EXPECT_TRUE(place(order(1, OrderType::market, OrderSide::long_side, "1")).empty());
  EXPECT_EQ(status(1), OrderStatus::pending);
  OrderSpec lim = order(2, OrderType::limit, OrderSide::long_side, "1", "101");
  EXPECT_TRUE(place(lim).empty()) << "a crossing limit decides at the first fresh quote";
  EXPECT_EQ(status(2), OrderStatus::pending);
  const auto e = tick(bbo(1, "104.9", "105.1", 5000));  // the feed is back
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(status(1), OrderStatus::filled);
  EXPECT_EQ(*view(1).avg_fill_price, raw("105.1"));
  EXPECT_EQ(status(2), OrderStatus::open) << "105.1 does not cross 101: it rests";
  // Only the lapsed kinds: a BBO outage leaves the (live) trades tradeable.
  mk.lapse_quotes(1, false, true);
  tick(trade(1, "106", "1", 6000));
  place(order(3, OrderType::market, OrderSide::long_side, "1"));
  EXPECT_EQ(*view(3).avg_fill_price, raw("106"));
  mk.lapse_quotes(99, true, true);  // an instrument no market uses: nothing
}

// size x price with more than 9 decimals: the fee is rounded up once, not the notional first and
// the product again.
TEST(FillMathFee, RoundedUpOnceNotTwice) {
  // 1.5 x 1.000000001 = 1.5000000015 (10 decimals); x 0.6 = 0.9000000009 -> 0.900000001. Rounding
  // the notional up first (1.500000002) and then the product (0.9000000012) gave 0.900000002.
  EXPECT_EQ(FillMath::fee(raw("1.5"), raw("1.000000001"), raw("0.6")), raw("0.900000001"));
  EXPECT_EQ(FillMath::fee(raw("1"), raw("100"), raw("0.0005")), raw("0.05"));  // exact stays exact
  EXPECT_EQ(FillMath::fee(raw("0.000000001"), raw("1"), raw("0.5")), 1);       // 5e-19 -> up
  EXPECT_EQ(FillMath::fee(raw("3.000000001"), raw("3.000000001"), raw("1")), raw("9.000000007"));
  EXPECT_EQ(FillMath::fee(raw("1"), raw("1"), 0), 0);
  // The largest notional the engine validates (just under 1e27 raw x raw) at a 100 % rate: no
  // overflow of the 128-bit intermediates.
  EXPECT_EQ(FillMath::fee(raw("9000000000"), raw("100000000"), raw("1")),
            Wide{raw("9000000000")} * 100000000);
}

}  // namespace
}  // namespace lam
