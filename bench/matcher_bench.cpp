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
#include "workloads/matcher_workload.h"

namespace lam::bench {
namespace {

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
    run_quiet(w, i++, 1, events);
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

/// Ticks that each trigger and fill one stop order among N resting ones (OrderFillBatch).
void BM_Matcher_OrderFillTick(benchmark::State& state) {
  World<Matcher>& w = world<Matcher>(static_cast<std::size_t>(state.range(0)), true);
  OrderFillBatch fills;
  std::vector<Event> events;
  std::size_t ticks = 0;
  double timed_seconds = 0;
  for (auto _ : state) {
    const double secs = fills.run(w, events);
    if (secs < 0) {
      state.SkipWithError("each tick must trigger, fill and open exactly once");
      return;
    }
    state.SetIterationTime(secs / static_cast<double>(fills.batch.size()));  // per tick
    timed_seconds += secs;
    ticks += fills.batch.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] =
      ticks > 0 ? timed_seconds * 1e9 / static_cast<double>(ticks) : 0.0;
}

/// Ticks that each fire exactly one alert (FiringBatch): 1,000 per timed batch.
void BM_Matcher_FiringTick(benchmark::State& state) {
  World<Matcher>& w = world<Matcher>(static_cast<std::size_t>(state.range(0)));
  FiringBatch firing;
  std::vector<Event> events;
  std::size_t ticks = 0;
  double timed_seconds = 0;
  for (auto _ : state) {
    const double secs = firing.run(w, events);
    if (secs < 0) {
      state.SkipWithError("each firing tick must fire exactly one alert");
      return;
    }
    state.SetIterationTime(secs);
    timed_seconds += secs;
    ticks += firing.batch.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] =
      ticks > 0 ? timed_seconds * 1e9 / static_cast<double>(ticks) : 0.0;
  state.counters["fired"] = static_cast<double>(ticks);
}

/// The world of BM_Matcher_QuietTickOrders plus N trailing stops none of its ticks reach: the
/// quiet tick must not notice them.
void BM_Matcher_QuietTickTrailing(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  static std::unique_ptr<World<Matcher>> w;
  static std::size_t held = 0;
  if (held != n) {
    w.reset();
    world<Matcher>(1, false);  // frees the cached world of the other benchmarks first
    w = std::make_unique<World<Matcher>>(n, true);
    add_quiet_trailing(*w, n);
    held = n;
  }
  std::vector<Event> events;
  std::size_t i = 0;
  for (auto _ : state) {
    run_quiet(*w, i++, 1, events);
    benchmark::DoNotOptimize(events.data());
  }
  if (!events.empty()) state.SkipWithError("quiet ticks fired events");
  state.SetItemsProcessed(state.iterations());
  if (state.range(0) == 1'000'000) {  // the last run of it: hand the memory back
    w.reset();
    held = 0;
  }
}

TrailWorld& trail_world(std::size_t n) {
  static std::unique_ptr<TrailWorld> w;
  if (!w || w->n != n) {
    w.reset();
    w = std::make_unique<TrailWorld>(n);
  }
  return *w;
}

/// N trailing stops in one market, activated in ~1,000 groups: ticks that each make a new high
/// (timed per 1,000), beside quiet ticks of the same world; the first high's meld of every group
/// is reported once (first_meld_us).
template <bool kNewHigh>
void trail_ticks(benchmark::State& state) {
  TrailWorld& w = trail_world(static_cast<std::size_t>(state.range(0)));
  std::vector<Event> events;
  std::size_t ticks = 0;
  double timed = 0;
  for (auto _ : state) {
    const double secs = kNewHigh ? trail_new_highs(w, 1000, events) : trail_quiet(w, 1000, events);
    if (secs < 0) {
      state.SkipWithError("a trailing tick fired");
      return;
    }
    state.SetIterationTime(secs / 1000);
    timed += secs;
    ticks += 1000;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] = ticks > 0 ? timed * 1e9 / static_cast<double>(ticks) : 0.0;
  state.counters["first_meld_us"] = w.first_meld_ns / 1000;
  state.counters["first_meld_groups"] = static_cast<double>(w.first_meld_groups);
}
void BM_Matcher_TrailNewHighTick(benchmark::State& state) {
  trail_ticks<true>(state);
}
void BM_Matcher_TrailQuietTick(benchmark::State& state) {
  trail_ticks<false>(state);
}

/// Ticks that each trigger and fill one trailing stop among N (trail_triggers).
void BM_Matcher_TrailTriggerTick(benchmark::State& state) {
  TrailWorld& w = trail_world(static_cast<std::size_t>(state.range(0)));
  std::vector<Event> events;
  std::size_t ticks = 0;
  double timed = 0;
  for (auto _ : state) {
    const double secs = trail_triggers(w, events);
    if (secs < 0) {
      state.SkipWithError("each tick must trigger, fill and open exactly once");
      return;
    }
    state.SetIterationTime(secs / 1000);
    timed += secs;
    ticks += 1000;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ticks));
  state.counters["ns_per_tick"] = ticks > 0 ? timed * 1e9 / static_cast<double>(ticks) : 0.0;
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
BENCHMARK(BM_Matcher_QuietTickTrailing)->Arg(1'000)->Arg(1'000'000);
BENCHMARK(BM_Matcher_TrailQuietTick)->Arg(1'000)->Arg(1'000'000)->UseManualTime()->Iterations(200);
BENCHMARK(BM_Matcher_TrailNewHighTick)
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Iterations(200);
BENCHMARK(BM_Matcher_TrailTriggerTick)
    ->Arg(1'000)
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Iterations(100);

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
          {"quiet tick with 1k trailing stops more / without", "BM_Matcher_QuietTickTrailing/1000",
           "BM_Matcher_QuietTickOrders/1000", "<= 1.1"},
          {"quiet tick with 1M trailing stops more / without",
           "BM_Matcher_QuietTickTrailing/1000000", "BM_Matcher_QuietTickOrders/1000000", "<= 1.1"},
          {"trailing: new-high tick / quiet tick at 1M in one market",
           "BM_Matcher_TrailNewHighTick/1000000/iterations:200/manual_time",
           "BM_Matcher_TrailQuietTick/1000000/iterations:200/manual_time", "O(1)"},
          {"trailing: new-high tick 1M / 1k",
           "BM_Matcher_TrailNewHighTick/1000000/iterations:200/manual_time",
           "BM_Matcher_TrailNewHighTick/1000/iterations:200/manual_time", "O(1)"},
          {"trailing: trigger+fill tick 1M / 1k",
           "BM_Matcher_TrailTriggerTick/1000000/iterations:100/manual_time",
           "BM_Matcher_TrailTriggerTick/1000/iterations:100/manual_time", "O(log n)"},
          {"trailing trigger+fill / stop trigger+fill tick at 1M",
           "BM_Matcher_TrailTriggerTick/1000000/iterations:100/manual_time",
           "BM_Matcher_OrderFillTick/1000000/iterations:300/manual_time", "-"},
          {"flat scan quiet tick / ladder trigger+fill tick at 1M orders",
           "BM_FlatScan_QuietTickOrders/1000000",
           "BM_Matcher_OrderFillTick/1000000/iterations:300/manual_time", ">= 1000"},
      });
}
