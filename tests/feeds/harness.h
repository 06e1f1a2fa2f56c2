#pragma once
// Integration harness: a mock exchange on loopback, feed connections for a venue pointed at it,
// and a bounded-time drain of the tick queue.

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include "feeds/feed_runner.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::feeds::test {

/// Test timings: everything 10-100x shorter than production.
inline ConnectionConfig fast_config(const mockex::MockExchange& ex, Venue v, const Route& r) {
  ConnectionConfig c;
  c.venue = v;
  c.route = r.name;
  c.url = ex.url(v, r.name);
  c.kinds = r.kinds;
  c.rules = default_rules(v);
  c.rules.idle_budget = Millis{1'500};
  c.rules.stale_budget = Millis{1'000};
  if (c.rules.ping_every.count() > 0) c.rules.ping_every = Millis{200};
  c.rules.max_msgs_per_s = v == Venue::binance ? 8 : 50;
  c.backoff_initial = Millis{20};
  c.backoff_max = Millis{200};
  c.stable_after = Millis{60'000};
  return c;
}

inline RunnerOptions fast_runner() {
  RunnerOptions o;
  o.housekeeping = Millis{10};
  return o;
}

/// A runner with every route of `v` against `ex`.
struct VenueFeed {
  InstrumentTable table;
  TickQueue queue;
  FeedRunner runner;
  std::vector<FeedEvent> events;

  static constexpr std::int64_t kTestContractSize = kScale / 100;

  VenueFeed(const mockex::MockExchange& ex, Venue v, std::size_t queue_capacity = 1 << 16,
            const std::function<void(ConnectionConfig&)>& tweak = {},
            RunnerOptions ro = fast_runner())
      : queue(queue_capacity), runner(ro, queue) {
    for (const Route& r : venue_routes(v)) {
      ConnectionConfig c = fast_config(ex, v, r);
      if (tweak) tweak(c);
      SymbolMap map(v, nullptr);
      for (const std::string& s : sample_symbols(v)) {
        // OKX SWAP sizes are in contracts: as configured live (0.01 base units each).
        map.add(table, s, size_unit(v, s) == SizeUnit::contracts ? kTestContractSize : kScale);
      }
      runner.add(std::move(c), std::move(map));
    }
  }

  /// Drains the queue until `done()` or `limit`; true if done.
  bool drain_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(10'000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    FeedEvent buf[256];
    while (std::chrono::steady_clock::now() < end) {
      const std::size_t n = queue.pop_bulk(buf, 256);
      events.insert(events.end(), buf, buf + n);
      if (done()) return true;
      if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
  }

  [[nodiscard]] std::size_t count(FeedEventKind k) const {
    std::size_t n = 0;
    for (const FeedEvent& e : events) n += e.kind == k;
    return n;
  }
  [[nodiscard]] std::size_t ticks(TickKind k) const {
    std::size_t n = 0;
    for (const FeedEvent& e : events) n += e.kind == FeedEventKind::tick && e.tick.kind == k;
    return n;
  }
  [[nodiscard]] std::size_t states(FeedState s, FeedReason r = FeedReason::none) const {
    std::size_t n = 0;
    for (const FeedEvent& e : events) {
      n += e.kind == FeedEventKind::state && e.state == s &&
           (r == FeedReason::none || e.reason == r);
    }
    return n;
  }
  template <class F>
  std::uint64_t sum(F f) const {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < runner.size(); ++i) n += f(runner.counters(i));
    return n;
  }
};

}  // namespace lam::feeds::test
