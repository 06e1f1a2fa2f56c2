// Matcher cost per tick with 1k, 100k and 1M armed alerts and open positions over 1,000 markets,
// against the naive scan-every-alert reference on the same workload.
//
//   build/release/bench/matcher_bench --benchmark_repetitions=5
//   --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "bench/ratio_report.h"
#include "engine/matcher.h"
#include "engine/naive_matcher.h"
#include "engine/thresholds.h"

namespace lam::bench {
namespace {

constexpr std::uint32_t kMarkets = 1000;
constexpr std::size_t kTickRing = 1 << 16;
constexpr std::int64_t kBasePrice = 1000 * kScale;  // every market trades around 1000

Uuid make_id(std::uint64_t kind, std::uint64_t n) {
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
std::vector<Tick> mixed_quiet_ring() {
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

std::vector<Tick> quiet_ring() {
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

std::uint32_t market_of(const Uuid& market_id) {
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

template <class M>
World<M>& world(std::size_t n, bool orders = false) {
  static std::map<std::pair<std::size_t, bool>, std::unique_ptr<World<M>>> cache;
  const std::pair<std::size_t, bool> key{n, orders};
  if (!cache.contains(key)) {
    cache.clear();  // one world at a time: 1M of everything is ~1 GB
    cache[key] = std::make_unique<World<M>>(n, orders);
  }
  return *cache[key];
}

template <class M>
void quiet_ticks(benchmark::State& state, bool orders = false) {
  World<M>& w = world<M>(static_cast<std::size_t>(state.range(0)), orders);
  std::vector<Event> events;
  // Check first: the workload must really cross nothing (fewer ticks for the O(n) engines).
  const std::size_t check = std::is_same_v<M, Matcher> ? kTickRing : 64;
  for (std::size_t i = 0; i < check; ++i) w.matcher.on_tick(w.quiet[i], events);
  if (!events.empty()) {
    state.SkipWithError("quiet ticks fired events");
    return;
  }
  std::size_t i = 0;
  for (auto _ : state) {
    w.matcher.on_tick(w.quiet[i++ & (kTickRing - 1)], events);
    benchmark::DoNotOptimize(events.data());
  }
  if (!events.empty()) state.SkipWithError("quiet ticks fired events");
  state.SetItemsProcessed(state.iterations());
}

void BM_Matcher_QuietTick(benchmark::State& state) {
  quiet_ticks<Matcher>(state);
}
void BM_Naive_QuietTick(benchmark::State& state) {
  quiet_ticks<NaiveMatcher>(state);
}
void BM_FlatScan_QuietTick(benchmark::State& state) {
  quiet_ticks<FlatScan>(state);
}
/// N alerts + N positions + N resting orders; ticks of every kind.
void BM_Matcher_QuietTickOrders(benchmark::State& state) {
  quiet_ticks<Matcher>(state, true);
}
void BM_FlatScan_QuietTickOrders(benchmark::State& state) {
  quiet_ticks<FlatScan>(state, true);
}

/// Ticks that each trigger and fill one stop order among N resting ones: per batch, a buy stop is
/// armed just below the price of each of 1,000 mark ticks (one per market, untimed); each timed
/// tick triggers it, fills it at the ask and opens a position (3 events). Time is per tick.
void BM_Matcher_OrderFillTick(benchmark::State& state) {
  World<Matcher>& w = world<Matcher>(static_cast<std::size_t>(state.range(0)), true);
  std::mt19937_64 rng(8);
  std::vector<Event> events;
  std::vector<Tick> batch(kMarkets);
  std::vector<OrderSpec> arms(kMarkets);
  std::size_t ticks = 0;
  double timed_seconds = 0;
  for (auto _ : state) {
    events.clear();
    for (std::uint32_t m = 0; m < kMarkets; ++m) {
      Tick& t = batch[m];
      t.instrument = m;
      t.kind = TickKind::mark;
      t.price = kBasePrice + static_cast<std::int64_t>(rng() % 1000) * 1000;
      t.exch_ts += 1000;
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
      // settle the mark below the trigger first (untimed)
      Tick settle{};
      settle.instrument = m;
      settle.price = kBasePrice - kBasePrice / 200;
      w.matcher.on_tick(settle, events);
      w.matcher.upsert_order(o, events);
    }
    std::shuffle(batch.begin(), batch.end(), rng);
    events.clear();
    const auto start = std::chrono::steady_clock::now();
    for (const Tick& t : batch) w.matcher.on_tick(t, events);
    const auto stop = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(stop - start).count();
    state.SetIterationTime(secs / static_cast<double>(batch.size()));  // per tick
    timed_seconds += secs;
    ticks += batch.size();
    if (events.size() != 3 * batch.size()) {
      state.SkipWithError("each tick must trigger, fill and open exactly once");
      return;
    }
    // untimed: forget the positions and orders of this batch, so that the world stays at N
    for (const OrderSpec& o : arms) {
      w.matcher.remove_position(Matcher::position_id_for(o.id));
      w.matcher.remove_order(o.id);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] =
      ticks > 0 ? timed_seconds * 1e9 / static_cast<double>(ticks) : 0.0;
}

/// Ticks that each fire exactly one alert: per batch, one alert is armed just below the price of
/// each of 1,000 ticks (one per market, untimed), then the 1,000 ticks are timed.
void BM_Matcher_FiringTick(benchmark::State& state) {
  World<Matcher>& w = world<Matcher>(static_cast<std::size_t>(state.range(0)));
  std::mt19937_64 rng(7);
  std::vector<Event> events;
  std::vector<Tick> batch(kMarkets);
  std::vector<AlertSpec> arms(kMarkets);
  std::size_t fired = 0;
  std::size_t ticks = 0;
  double timed_seconds = 0;
  for (auto _ : state) {
    for (std::uint32_t m = 0; m < kMarkets; ++m) {
      Tick& t = batch[m];
      t.instrument = m;
      t.kind = TickKind::mark;
      t.price = kBasePrice + static_cast<std::int64_t>(rng() % 1000) * 1000;
      t.exch_ts += 1000;
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
    for (std::uint32_t m = 0; m < kMarkets; ++m) {
      Tick settle{};
      settle.instrument = m;
      settle.price = kBasePrice - kBasePrice / 200;
      w.matcher.on_tick(settle, events);
    }
    events.clear();
    const auto start = std::chrono::steady_clock::now();
    for (const Tick& t : batch) w.matcher.on_tick(t, events);
    const auto stop = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(stop - start).count();
    state.SetIterationTime(secs);
    timed_seconds += secs;
    fired += events.size();
    ticks += batch.size();
    for (const AlertSpec& a : arms)
      w.matcher.forget_alert(a.id);  // untimed (manual time); keeps memory flat
    if (events.size() != batch.size()) {
      state.SkipWithError("each firing tick must fire exactly one alert");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] =
      ticks > 0 ? timed_seconds * 1e9 / static_cast<double>(ticks) : 0.0;
  state.counters["fired"] = static_cast<double>(fired);
}

BENCHMARK(BM_Matcher_QuietTick)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);
BENCHMARK(BM_FlatScan_QuietTick)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);
// The full reference matcher costs ~50 ms per tick at 1M: measured up to 100k only.
BENCHMARK(BM_Naive_QuietTick)->Arg(1'000)->Arg(100'000);
/// Heap bytes in use (malloc's arenas and its mmapped chunks) and resident bytes of the process.
struct MemoryUse {
  double heap = 0;
  double rss = 0;
  static MemoryUse now() {
    const struct mallinfo2 mi = mallinfo2();
    MemoryUse m;
    m.heap = static_cast<double>(mi.uordblks + mi.hblkhd);
    std::ifstream statm("/proc/self/statm");
    long long pages = 0, resident = 0;
    statm >> pages >> resident;
    m.rss = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
    return m;
  }
};

/// Memory per armed object (issue 17): a fresh matcher with 1,000 markets takes N alerts, then N
/// positions, then N resting orders; each phase's heap and RSS growth is divided by N. Run it alone
/// (`--benchmark_filter=Memory`): RSS only grows, so a world freed earlier in the process would be
/// reused and hide the growth; the heap figure does not have that problem.
void BM_Matcher_MemoryPerObject(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    std::vector<Event> sink;
    auto m = std::make_unique<Matcher>();
    for (std::uint32_t i = 0; i < kMarkets; ++i) {
      MarketSpec spec;
      spec.id = make_id(0xA, i);
      spec.instrument = i;
      spec.rules.quote = Asset::of("USDC");
      m->upsert_market(spec);
      Tick b{};
      b.instrument = i;
      b.kind = TickKind::bbo;
      b.price = kBasePrice;
      b.ask = kBasePrice + kScale / 100;
      m->on_tick(b, sink);
    }
    for (std::uint64_t u = 0; u < 100'000; ++u)
      m->upsert_balance({make_id(0xE, u), Asset::of("USDC"), Wide{1} << 100, 0});
    std::vector<AlertSpec> alerts;
    std::vector<PositionSpec> positions;
    alerts.reserve(n);
    positions.reserve(n);
    generate(
        n, [&](const AlertSpec& a) { alerts.push_back(a); },
        [&](const PositionSpec& p) { positions.push_back(p); });
    const MemoryUse m0 = MemoryUse::now();
    for (const AlertSpec& a : alerts) m->upsert_alert(a, sink);
    const MemoryUse m1 = MemoryUse::now();
    for (const PositionSpec& p : positions) m->upsert_position(p, sink);
    const MemoryUse m2 = MemoryUse::now();
    generate_orders(n, [&](const OrderSpec& o) { m->upsert_order(o, sink); });
    const MemoryUse m3 = MemoryUse::now();
    if (!sink.empty() || m->alert_count() != n || m->position_count() != n) {
      state.SkipWithError("every object must be armed, and nothing may fire");
      return;
    }
    const auto per = [n](double bytes) {
      return benchmark::Counter(bytes / static_cast<double>(n));
    };
    state.counters["alert_heap_B"] = per(m1.heap - m0.heap);
    state.counters["position_heap_B"] = per(m2.heap - m1.heap);
    state.counters["order_heap_B"] = per(m3.heap - m2.heap);
    state.counters["alert_rss_B"] = per(m1.rss - m0.rss);
    state.counters["position_rss_B"] = per(m2.rss - m1.rss);
    state.counters["order_rss_B"] = per(m3.rss - m2.rss);
  }
}

// 1k: the smoke test's run of the code path; the figure is the 1M one.
BENCHMARK(BM_Matcher_MemoryPerObject)
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Matcher_FiringTick)->Arg(1'000)->Arg(100'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Matcher_QuietTickOrders)->Arg(1'000)->Arg(1'000'000);
BENCHMARK(BM_FlatScan_QuietTickOrders)->Arg(1'000)->Arg(1'000'000);
// Per-tick manual time would make the library run millions of 1,000-tick batches: fixed count.
BENCHMARK(BM_Matcher_OrderFillTick)->Arg(1'000)->Arg(1'000'000)->UseManualTime()->Iterations(300);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  lam::map_large_tables();  // as laminator does
  using lam::bench::Ratio;
  return lam::bench::run_with_ratios(
      argc, argv,
      {
          {"ladder quiet tick 1M / 1k", "BM_Matcher_QuietTick/1000000", "BM_Matcher_QuietTick/1000",
           "<= 1.5"},
          {"flat scan / ladder quiet tick at 1k", "BM_FlatScan_QuietTick/1000",
           "BM_Matcher_QuietTick/1000", "-"},
          {"flat scan / ladder quiet tick at 100k", "BM_FlatScan_QuietTick/100000",
           "BM_Matcher_QuietTick/100000", "-"},
          {"flat scan / ladder quiet tick at 1M", "BM_FlatScan_QuietTick/1000000",
           "BM_Matcher_QuietTick/1000000", ">= 1000"},
          {"naive reference / ladder quiet tick at 1k", "BM_Naive_QuietTick/1000",
           "BM_Matcher_QuietTick/1000", "-"},
          {"naive reference / ladder quiet tick at 100k", "BM_Naive_QuietTick/100000",
           "BM_Matcher_QuietTick/100000", "-"},
          {"ladder firing batch 1M / 1k", "BM_Matcher_FiringTick/1000000/manual_time",
           "BM_Matcher_FiringTick/1000/manual_time", "O(log n)"},
          {"quiet tick with 1M alerts+positions+orders / 1k", "BM_Matcher_QuietTickOrders/1000000",
           "BM_Matcher_QuietTickOrders/1000", "<= 1.5"},
          {"flat scan / ladder quiet tick with orders at 1M", "BM_FlatScan_QuietTickOrders/1000000",
           "BM_Matcher_QuietTickOrders/1000000", ">= 1000"},
          {"flat scan quiet tick / ladder trigger+fill tick at 1M orders",
           "BM_FlatScan_QuietTickOrders/1000000",
           "BM_Matcher_OrderFillTick/1000000/iterations:300/manual_time", ">= 1000"},
      });
}
