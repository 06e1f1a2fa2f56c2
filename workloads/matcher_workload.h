#pragma once
// The matcher benchmark's workload, shared by bench/matcher_bench (Google Benchmark) and
// `laminator bench matcher`: the same generated alerts, positions and orders over 1,000 markets,
// the same quiet tick rings, the same flat-scan baseline, the same firing batch. One implementation
// of what is measured; each harness only times it.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <vector>

#include "engine/matcher.h"
#include "engine/naive_matcher.h"
#include "engine/thresholds.h"

namespace lam::bench {

inline constexpr std::uint32_t kMarkets = 1000;
inline constexpr std::size_t kTickRing = 1 << 16;
inline constexpr std::int64_t kBasePrice = 1000 * kScale;  // every market trades around 1000

inline Uuid make_id(std::uint64_t kind, std::uint64_t n) {
  return Uuid{kind << 48 | 0x4000, n};
}

/// The workload: N alerts and N open positions over 1,000 markets, none of which the quiet ticks
/// cross (alerts 2%..50% away from 1000, positions at 2x..20x leverage), generated
/// deterministically.
template <class OnAlert, class OnPosition>
void generate(std::size_t n, OnAlert&& on_alert, OnPosition&& on_position) {
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < n; ++i) {
    const auto away = static_cast<std::int64_t>(kBasePrice / 50 +
                                                rng() % static_cast<std::uint64_t>(kBasePrice / 2));
    const bool above = (rng() & 1) != 0;
    AlertSpec a;
    a.id = make_id(0xD, i);
    a.user_id = make_id(0xC, rng() % 100'000);
    a.market_id = make_id(0xA, rng() % kMarkets);
    a.type = above ? AlertType::price_above : AlertType::price_below;
    a.condition = above ? ConditionType::greater_than : ConditionType::less_than;
    a.target_price = Decimal{above ? kBasePrice + away : kBasePrice - away, Remainder::zero};
    on_alert(a);

    PositionSpec p;
    p.id = make_id(0xB, i);
    p.user_id = a.user_id;
    p.market_id = make_id(0xA, rng() % kMarkets);
    p.side = (rng() & 1) != 0 ? Side::long_side : Side::short_side;
    p.size = static_cast<std::int64_t>(1 + rng() % 10) * kScale;
    p.entry_price = kBasePrice;
    p.margin = p.size / kScale * kBasePrice / static_cast<std::int64_t>(2 + rng() % 19);
    // As the bot's rows look: the user's wallet, a leverage, and the fees or closes booked so far.
    p.wallet_id = make_id(0xE, p.user_id.lo);
    p.leverage = static_cast<std::int64_t>(1 + rng() % 20) * kScale;
    p.realized_pnl = -static_cast<Wide>(rng() % (10 * static_cast<std::uint64_t>(kScale)));
    on_position(p);
  }
}

/// N resting orders over the same markets, none of which the quiet ticks reach: stops 2%..50% away
/// (buy stops above, sell stops below), limits resting 2%..50% away (buys below, sells above).
template <class OnOrder>
void generate_orders(std::size_t n, OnOrder&& on_order) {
  std::mt19937_64 rng(44);
  for (std::size_t i = 0; i < n; ++i) {
    const auto away = static_cast<std::int64_t>(kBasePrice / 50 +
                                                rng() % static_cast<std::uint64_t>(kBasePrice / 2));
    OrderSpec o;
    o.id = make_id(0xF, i);
    o.user_id = make_id(0xC, rng() % 100'000);
    o.wallet_id = make_id(0xE, o.user_id.lo);
    o.market_id = make_id(0xA, rng() % kMarkets);
    o.side = (rng() & 1) != 0 ? OrderSide::long_side : OrderSide::short_side;
    const bool buy = o.side == OrderSide::long_side;
    o.size = kScale;
    o.leverage = 10 * kScale;
    if ((rng() & 1) != 0) {
      o.type = OrderType::stop;
      o.trigger_price = buy ? kBasePrice + away : kBasePrice - away;
    } else {
      o.type = OrderType::limit;
      o.price = buy ? kBasePrice - away : kBasePrice + away;
    }
    on_order(o);
  }
}

/// Quiet ticks of every kind (marks, trades, BBOs) within 0.5% of 1000.
inline std::vector<Tick> mixed_quiet_ring() {
  std::mt19937_64 rng(45);
  std::vector<Tick> quiet(kTickRing);
  for (std::size_t i = 0; i < kTickRing; ++i) {
    Tick& t = quiet[i];
    t.instrument = static_cast<InstrumentId>(rng() % kMarkets);
    t.kind = static_cast<TickKind>(rng() % 3);
    t.price = kBasePrice - kBasePrice / 200 +
              static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(kBasePrice / 100));
    t.ask = t.price + kScale / 100;
    t.size = kScale;
    t.exch_ts = static_cast<TimeNs>(1'767'225'600'000'000'000LL + static_cast<TimeNs>(i) * 1000);
  }
  return quiet;
}

inline std::vector<Tick> quiet_ring() {
  std::mt19937_64 rng(43);
  std::vector<Tick> quiet(kTickRing);
  for (std::size_t i = 0; i < kTickRing; ++i) {
    Tick& t = quiet[i];
    t.instrument = static_cast<InstrumentId>(rng() % kMarkets);
    t.kind = TickKind::mark;
    t.price = kBasePrice - kBasePrice / 200 +
              static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(kBasePrice / 100));
    t.exch_ts = static_cast<TimeNs>(1'767'225'600'000'000'000LL + static_cast<TimeNs>(i) * 1000);
  }
  return quiet;
}

inline std::uint32_t market_of(const Uuid& market_id) {
  return static_cast<std::uint32_t>(market_id.lo & 0xFFFFFFFF);
}

/// The best case for a scan-everything engine: every alert and position precompiled to one compact
/// {market, key, direction} record, and a tick is one tight loop over all of them.
class FlatScan {
 public:
  void upsert_market(const MarketSpec&) {}
  void upsert_alert(const AlertSpec& a, std::vector<Event>&) {
    const Keys k = price_keys(a.type, a.condition, *a.target_price);
    entries_.push_back({k.up ? *k.up : *k.down, market_of(*a.market_id), k.up.has_value()});
  }
  void upsert_position(const PositionSpec& p, std::vector<Event>&) {
    const auto k = liquidation_key(p.side, p.size, p.entry_price, p.margin, kDefaultMmrRaw);
    if (k) entries_.push_back({*k, market_of(p.market_id), p.side == Side::short_side});
  }
  void upsert_order(const OrderSpec& o, std::vector<Event>&) {
    const bool buy = buys(o.side);
    if (o.trigger_price) {
      entries_.push_back({*o.trigger_price, market_of(o.market_id), buy});
    } else {
      entries_.push_back({*o.price, market_of(o.market_id), !buy});  // buy limit: price falls to it
    }
  }
  void upsert_balance(const BalanceSpec&) {}
  void on_tick(const Tick& t, std::vector<Event>& out) {
    std::size_t crossed = 0;
    for (const Entry& e : entries_) {
      crossed += static_cast<std::size_t>(e.market == t.instrument &&
                                          (e.up ? t.price >= e.key : t.price <= e.key));
    }
    if (crossed != 0) out.emplace_back();  // the quiet workload never gets here
  }

 private:
  struct Entry {  // 16 bytes
    std::int64_t key;
    std::uint32_t market;
    bool up;
  };
  std::vector<Entry> entries_;
};

template <class M>
struct World {
  M matcher;
  std::vector<Tick> quiet;
  std::uint64_t next_alert = 0;
  std::uint64_t next_order = 0;

  /// `orders`: also N resting orders (and a BBO on every market, so that limits rest), ticked by a
  /// ring of every tick kind.
  explicit World(std::size_t n, bool orders = false)
      : quiet(orders ? mixed_quiet_ring() : quiet_ring()) {
    std::vector<Event> sink;
    for (std::uint32_t i = 0; i < kMarkets; ++i) {
      MarketSpec m;
      m.id = make_id(0xA, i);
      m.instrument = i;
      m.rules.quote = Asset::of("USDC");
      m.rules.maker_fee = 200'000;
      m.rules.taker_fee = 500'000;
      matcher.upsert_market(m);
    }
    generate(
        n, [&](const AlertSpec& a) { matcher.upsert_alert(a, sink); },
        [&](const PositionSpec& p) { matcher.upsert_position(p, sink); });
    next_alert = n;
    if (!orders) return;
    for (std::uint64_t u = 0; u < 100'000; ++u)
      matcher.upsert_balance({make_id(0xE, u), Asset::of("USDC"), Wide{1} << 100, 0});
    for (std::uint32_t i = 0; i < kMarkets; ++i) {
      Tick b{};
      b.instrument = i;
      b.kind = TickKind::bbo;
      b.price = kBasePrice;
      b.ask = kBasePrice + kScale / 100;
      matcher.on_tick(b, sink);
    }
    generate_orders(n, [&](const OrderSpec& o) { matcher.upsert_order(o, sink); });
    next_order = n;
    if (!sink.empty()) throw std::runtime_error("the resting orders must not fill when armed");
  }
};

/// Runs ticks [i, i + n) of the world's quiet ring: the quiet-tick measurement of both harnesses.
template <class M>
inline void run_quiet(World<M>& w, std::size_t i, std::size_t n, std::vector<Event>& events) {
  for (std::size_t k = 0; k < n; ++k) w.matcher.on_tick(w.quiet[(i + k) & (kTickRing - 1)], events);
}

/// The next timed tick of a batch for market m: a mark a little above the base price.
inline void next_batch_tick(Tick& t, std::uint32_t m, std::mt19937_64& rng) {
  t.instrument = m;
  t.kind = TickKind::mark;
  t.price = kBasePrice + static_cast<std::int64_t>(rng() % 1000) * 1000;
  t.exch_ts += 1000;
}

/// Settles market m's mark below every batch tick's price (untimed), so each timed tick crosses.
inline void settle_below(World<Matcher>& w, std::uint32_t m, std::vector<Event>& events) {
  Tick settle{};
  settle.instrument = m;
  settle.price = kBasePrice - kBasePrice / 200;
  w.matcher.on_tick(settle, events);
}

/// One batch of firing ticks: one alert is armed just below the price of each of 1,000 ticks (one
/// per market) and every market settled below it (untimed), then the 1,000 ticks are timed; the
/// alerts are forgotten afterwards so the world stays at N. Returns the timed seconds, or a
/// negative value when a tick did not fire exactly one alert.
struct FiringBatch {
  std::mt19937_64 rng{7};
  std::vector<Tick> batch = std::vector<Tick>(kMarkets);
  std::vector<AlertSpec> arms = std::vector<AlertSpec>(kMarkets);

  double run(World<Matcher>& w, std::vector<Event>& events) {
    for (std::uint32_t m = 0; m < kMarkets; ++m) {
      Tick& t = batch[m];
      next_batch_tick(t, m, rng);
      AlertSpec& a = arms[m];
      a.id = make_id(0xE, w.next_alert++);
      a.user_id = make_id(0xC, 1);
      a.market_id = make_id(0xA, m);
      a.type = AlertType::price_above;
      a.condition = ConditionType::equals;
      a.target_price = Decimal{t.price - 500, Remainder::zero};
    }
    std::shuffle(batch.begin(), batch.end(), rng);
    events.clear();
    for (const AlertSpec& a : arms) w.matcher.upsert_alert(a, events);
    // Settle every market below its new alert first (untimed), so each timed tick crosses one.
    for (std::uint32_t m = 0; m < kMarkets; ++m) settle_below(w, m, events);
    events.clear();
    const auto start = std::chrono::steady_clock::now();
    for (const Tick& t : batch) w.matcher.on_tick(t, events);
    const auto stop = std::chrono::steady_clock::now();
    for (const AlertSpec& a : arms) w.matcher.forget_alert(a.id);  // keeps memory flat
    if (events.size() != batch.size()) return -1;
    return std::chrono::duration<double>(stop - start).count();
  }
};

/// One batch of ticks that each trigger and fill one stop order among the N resting ones: a buy
/// stop is armed just above a settled mark of each of 1,000 markets (untimed); each timed tick
/// triggers it, fills it at the ask and opens a position (3 events). The positions and orders are
/// forgotten afterwards so the world stays at N. Returns the timed seconds, or a negative value
/// when a tick did not trigger, fill and open exactly once.
struct OrderFillBatch {
  std::mt19937_64 rng{8};
  std::vector<Tick> batch = std::vector<Tick>(kMarkets);
  std::vector<OrderSpec> arms = std::vector<OrderSpec>(kMarkets);

  double run(World<Matcher>& w, std::vector<Event>& events) {
    events.clear();
    for (std::uint32_t m = 0; m < kMarkets; ++m) {
      Tick& t = batch[m];
      next_batch_tick(t, m, rng);
      OrderSpec& o = arms[m];
      o.id = make_id(0x10, w.next_order++);
      o.user_id = make_id(0xC, 7);
      o.wallet_id = make_id(0xE, 7);
      o.market_id = make_id(0xA, m);
      o.type = OrderType::stop;
      o.side = OrderSide::long_side;
      o.trigger_source = TriggerSource::mark;
      o.size = kScale;
      o.leverage = 10 * kScale;
      o.trigger_price = t.price - 500;
      settle_below(w, m, events);  // the mark below the trigger first
      w.matcher.upsert_order(o, events);
    }
    std::shuffle(batch.begin(), batch.end(), rng);
    events.clear();
    const auto start = std::chrono::steady_clock::now();
    for (const Tick& t : batch) w.matcher.on_tick(t, events);
    const auto stop = std::chrono::steady_clock::now();
    const bool once_each = events.size() == 3 * batch.size();
    for (const OrderSpec& o : arms) {
      w.matcher.remove_position(Matcher::position_id_for(o.id));
      w.matcher.remove_order(o.id);
    }
    if (!once_each) return -1;
    return std::chrono::duration<double>(stop - start).count();
  }
};

// ---- trailing stops (issue 33 §2) ----------------------------------------------------------

/// A mark tick of market m at `price` (untimed set-up).
inline void mark_at(Matcher& m, std::uint32_t market, std::int64_t price, TimeNs& ts,
                    std::vector<Event>& sink) {
  Tick t{};
  t.instrument = market;
  t.kind = TickKind::mark;
  t.price = price;
  t.exch_ts = ts += 1000;
  m.on_tick(t, sink);
}

/// A trailing stop on the mark, opening (no position needed), at a rate or a distance.
inline OrderSpec trailing_order(std::uint64_t n, std::uint32_t market, bool buy,
                                std::optional<std::int64_t> rate,
                                std::optional<std::int64_t> distance) {
  OrderSpec o;
  o.id = make_id(0x11, n);
  o.user_id = make_id(0xC, n % 100'000);
  o.wallet_id = make_id(0xE, o.user_id.lo);
  o.market_id = make_id(0xA, market);
  o.type = OrderType::trailing_stop;
  o.side = buy ? OrderSide::long_side : OrderSide::short_side;
  o.trigger_source = TriggerSource::mark;
  o.size = kScale;
  o.leverage = 10 * kScale;
  o.trail_rate = rate;
  o.trail_distance = distance;
  return o;
}

/// Adds N trailing stops over the world's 1,000 markets that none of its quiet ticks (995..1005)
/// reach: in each market, SELL ones activated at a mark of 1006 (2 %..20 %: triggers at or below
/// 985.88), then BUY ones at a mark of 994 (triggers at or above 1013.88). The markets' marks stay
/// at 994, which the quiet ring neither passes (no new low) nor reaches from below.
inline void add_quiet_trailing(World<Matcher>& w, std::size_t n) {
  std::vector<Event> sink;
  std::mt19937_64 rng(46);
  TimeNs ts = 1'767'225'500'000'000'000LL;
  for (std::uint32_t m = 0; m < kMarkets; ++m)
    mark_at(w.matcher, m, kBasePrice + 6 * kScale, ts, sink);
  for (std::size_t i = 0; i < n / 2; ++i) {
    const auto rate = static_cast<std::int64_t>(20 + rng() % 181) * kScale / 1000;
    w.matcher.upsert_order(
        trailing_order(i, static_cast<std::uint32_t>(rng() % kMarkets), false, rate, {}), sink);
  }
  for (std::uint32_t m = 0; m < kMarkets; ++m)
    mark_at(w.matcher, m, kBasePrice - 6 * kScale, ts, sink);
  for (std::size_t i = n / 2; i < n; ++i) {
    const auto rate = static_cast<std::int64_t>(20 + rng() % 181) * kScale / 1000;
    w.matcher.upsert_order(
        trailing_order(i, static_cast<std::uint32_t>(rng() % kMarkets), true, rate, {}), sink);
  }
  if (!sink.empty()) throw std::runtime_error("the trailing stops must not trigger when armed");
}

/// N SELL trailing stops in ONE market (market 0 of a fresh matcher with a BBO, so fills have a
/// price), activated over a falling mark in ~1,000 groups (rates 2 %..50 %): the worst case for the
/// groups, which the first new high melds into one. `high` is the mark the timed ticks start from.
struct TrailWorld {
  Matcher matcher;
  std::int64_t high = kBasePrice;
  TimeNs ts = 1'767'225'600'000'000'000LL;
  std::size_t first_meld_groups = 0;
  double first_meld_ns = 0;
  std::uint64_t next = 0;
  std::size_t n = 0;

  explicit TrailWorld(std::size_t members) : n(members) {
    std::vector<Event> sink;
    MarketSpec m;
    m.id = make_id(0xA, 0);
    m.instrument = 0;
    m.rules.quote = Asset::of("USDC");
    m.rules.taker_fee = 500'000;
    matcher.upsert_market(m);
    matcher.upsert_balance({make_id(0xE, 7), Asset::of("USDC"), Wide{1} << 100, 0});
    Tick b{};
    b.instrument = 0;
    b.kind = TickKind::bbo;
    b.price = kBasePrice - 20 * kScale;  // a fill at 980 opens a short far from liquidation
    b.ask = b.price + kScale / 100;
    matcher.on_tick(b, sink);
    std::mt19937_64 rng(47);
    const std::size_t per_group = std::max<std::size_t>(1, n / 1000);
    std::int64_t price = kBasePrice;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % per_group == 0) mark_at(matcher, 0, price -= kScale / 100, ts, sink);
      const auto rate = static_cast<std::int64_t>(20 + rng() % 481) * kScale / 1000;
      matcher.upsert_order(trailing_order(next++, 0, false, rate, {}), sink);
    }
    const auto start = std::chrono::steady_clock::now();
    mark_at(matcher, 0, high, ts, sink);  // the first new high melds every group into one
    first_meld_ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    first_meld_groups = per_group == 1 ? n : 1000;
    if (!sink.empty()) throw std::runtime_error("the trailing stops must not trigger when armed");
  }
};

/// Each timed tick makes a new high (one unit above the last): one group moves with it.
inline double trail_new_highs(TrailWorld& w, std::size_t ticks, std::vector<Event>& events) {
  events.clear();
  Tick t{};
  t.instrument = 0;
  t.kind = TickKind::mark;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < ticks; ++i) {
    t.price = ++w.high;
    t.exch_ts = w.ts += 1000;
    w.matcher.on_tick(t, events);
  }
  const auto stop = std::chrono::steady_clock::now();
  if (!events.empty()) return -1;
  return std::chrono::duration<double>(stop - start).count();
}

/// The baseline in the same world: ticks below the high and above every trigger (quiet).
inline double trail_quiet(TrailWorld& w, std::size_t ticks, std::vector<Event>& events) {
  events.clear();
  Tick t{};
  t.instrument = 0;
  t.kind = TickKind::mark;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < ticks; ++i) {
    t.price = w.high - 1 - static_cast<std::int64_t>(i % 1000) * kScale / 1000;
    t.exch_ts = w.ts += 1000;
    w.matcher.on_tick(t, events);
  }
  const auto stop = std::chrono::steady_clock::now();
  if (!events.empty()) return -1;
  return std::chrono::duration<double>(stop - start).count();
}

/// 1,000 ticks that each trigger and fill exactly one trailing stop: tight ones (distances of
/// 1..1,000 hundredths) are armed at the high (untimed), then the mark falls one hundredth a tick,
/// reaching one trigger each (3 events: triggered, filled, opened). Afterwards the positions and
/// orders are removed and the mark set back to the high, so the world stays at N.
inline double trail_triggers(TrailWorld& w, std::vector<Event>& events) {
  constexpr std::int64_t kStep = kScale / 100;
  std::vector<Event> sink;
  mark_at(w.matcher, 0, w.high, w.ts, sink);
  std::vector<OrderSpec> arms;
  for (std::int64_t k = 1; k <= 1000; ++k) {
    OrderSpec o = trailing_order(w.next++, 0, false, {}, k * kStep);
    o.user_id = make_id(0xC, 7);
    o.wallet_id = make_id(0xE, 7);
    w.matcher.upsert_order(o, sink);
    arms.push_back(o);
  }
  events.clear();
  Tick t{};
  t.instrument = 0;
  t.kind = TickKind::mark;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t k = 1; k <= 1000; ++k) {
    t.price = w.high - k * kStep;
    t.exch_ts = w.ts += 1000;
    w.matcher.on_tick(t, events);
  }
  const auto stop = std::chrono::steady_clock::now();
  const bool once_each = events.size() == 3 * arms.size() && sink.empty();
  for (const OrderSpec& o : arms) {
    w.matcher.remove_position(Matcher::position_id_for(o.id));
    w.matcher.remove_order(o.id);
  }
  mark_at(w.matcher, 0, w.high, w.ts, sink);
  if (!once_each) return -1;
  return std::chrono::duration<double>(stop - start).count();
}

}  // namespace lam::bench
