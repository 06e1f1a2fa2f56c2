#pragma once
/// The whole daemon on loopback, shared by bench/e2e_bench and `laminator bench pipeline`: the mock
/// exchange (two Binance connections, 50 symbols) -> daemon (feeds, matcher, writer, stream
/// server) -> a subscriber, against a PostgreSQL database holding 100k alerts and 100k positions.
///
///  * run_wire_latency: background ticks at `rate` ticks/s; every 3 ms a probe moves BTCUSDT's mark
///    across exactly one alert. Latency = the subscriber's receive time - the time the mock handed
///    the crossing frame to its socket; beside it, the daemon's own receive -> publish histogram,
///    and a read-committed subscriber's (`committed=1`) latency for the same probes.
///  * run_max_rate: both connections send `frames` frames each as fast as TCP takes them; the
///    ticks/s the matcher evaluated after a warm-up, and whether anything was lost (ticks != frames
///    sent).
/// No Beast, nats.c or simdjson in this header.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/daemon.h"

namespace lam::db {
class LocalCluster;
}

namespace lam::bench {

struct PipelineOptions {
  double rate = 100'000;  ///< latency run: background ticks/s (both connections together)
  int probes = 2'000;     ///< latency run: alerts crossed one at a time
  std::uint32_t wire_frames_per_write = 1;  ///< latency run: frames per socket write of the mock
  std::uint64_t frames = 500'000;           ///< rate run: frames per connection
  std::uint32_t frames_per_write = 64;      ///< rate run: pre-encoded frames per socket write
  std::chrono::milliseconds warmup{3'000};  ///< rate run: not counted (the listener's resync)
  bool pregenerate = true;                  ///< rate run: frames made before the run
  std::string idle = "sleep";               ///< the daemon's engine.idle
  /// The stall table's A/B switches (latency run): each `false` turns that background work off
  /// (market marks: market_mark_interval_ms 60 s; the positions' refresh: a pass per day; the
  /// maintenance thread's health and partition passes: hourly and daily). The writer itself
  /// cannot be: it is the journal the stream resumes from.
  bool market_marks = true, position_refresh = true, maintenance = true;
  int pin_matcher = -1;  ///< the daemon's engine.pin_cpu (-1: not pinned)
  int load_nice = 0;     ///< the mock exchange thread's nice value (0: unchanged)
  /// Called with a short description of what runs now (for a progress line); may be empty.
  std::function<void(const std::string&)> progress;
};

/// Creates database `name` in `cluster`, migrated, with 50 Binance markets, 1,000 users, 100k
/// positions that never liquidate, 100k - probes alerts that never fire and `probes` BTCUSDT alerts
/// at 80001, 80002, ... Returns its connection string.
std::string make_pipeline_db(db::LocalCluster& cluster, const std::string& name, int probes);

struct LatencyRun {
  std::vector<double> wire_us;  ///< in probe order: mock's socket write -> subscriber's receive
  /// The same probes to a second subscriber in read-committed mode (`committed=1`: an event only
  /// once it is journaled), in probe order.
  std::vector<double> committed_us;
  std::uint64_t lost = 0;            ///< probes whose event never came (2 s each)
  daemon::StatusLine before, after;  ///< after: the daemon's receive -> publish histogram
};
LatencyRun run_wire_latency(const std::string& url, const PipelineOptions& opt);

struct RateRun {
  double seconds = 0;      ///< from the warm-up mark to the last tick
  double ticks_per_s = 0;  ///< ticks evaluated in that window / seconds
  std::uint64_t frames_sent = 0, ticks = 0, lost = 0;
  /// Ticks/s over 100 ms windows from the daemon's start (the warm-up included), for charts.
  std::vector<std::pair<double, double>> series;
  double warm_at_s = 0;  ///< where the counted window starts in `series`' time
};
/// Throws std::runtime_error when the run ended within the warm-up (raise `frames`).
RateRun run_max_rate(const std::string& url, const PipelineOptions& opt);

/// The q-quantile (0..1) of sorted samples, 1 = the maximum; 0 when empty.
[[nodiscard]] double sorted_quantile(const std::vector<double>& sorted, double q);

}  // namespace lam::bench
