#pragma once
/// Where an event's receive -> publish time went, stage by stage (issue 35's stall table):
///
///   queue    the tick's local receive -> the matcher's dequeue: the feed thread's decode, the tick
///            queue, and the matcher thread's wake-up;
///   matcher  dequeue -> the event made: the ticks ahead of it in the same dequeued batch and its
///            own evaluation;
///   bus      the event made -> published to the subscribers' queues: the event bus and the
///            stream server thread's wake-up and batch.
///
/// Pure and single-threaded (the stream server thread owns it): a histogram per stage, and each
/// slow event (total above `slow_ns`) counted under the stage that took most of it, with every
/// stage's time summed over the slow events. Timestamps are wall nanoseconds; a stamp that is 0
/// (not taken) or out of order clamps that stage at 0.

#include <array>
#include <cstdint>
#include <string>

#include "stream/latency_histogram.h"

namespace lam::daemon {

enum class Stage : std::uint8_t { queue, matcher, bus };
inline constexpr std::size_t kStages = 3;
[[nodiscard]] const char* stage_name(Stage s) noexcept;

/// The stamps of one event: recv (the tick's receive), dequeued (the matcher's pop), made (the
/// event's publish by the matcher), published (the server's fan-out).
struct StageStamps {
  std::int64_t recv = 0, dequeued = 0, made = 0, published = 0;
};

class StageLatency {
 public:
  static constexpr std::int64_t kDefaultSlowNs = 1'000'000;  ///< 1 ms: the daemon's p99 target
  explicit StageLatency(std::int64_t slow_ns = kDefaultSlowNs) : slow_ns_(slow_ns) {}

  /// Records one event with all four stamps (recv > 0; the others 0 when not taken).
  void record(const StageStamps& t) noexcept;

  [[nodiscard]] const LatencyHistogram& histogram(Stage s) const noexcept {
    return hist_[static_cast<std::size_t>(s)];
  }
  /// Slow events whose largest stage was `s`.
  [[nodiscard]] std::uint64_t slow(Stage s) const noexcept {
    return slow_[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] std::uint64_t slow_total() const noexcept { return slow_[0] + slow_[1] + slow_[2]; }
  /// Stage `s`'s time summed over the slow events (ns).
  [[nodiscard]] std::int64_t slow_ns_in(Stage s) const noexcept {
    return slow_sum_ns_[static_cast<std::size_t>(s)];
  }

  /// `laminator_event_stage_seconds` (a histogram per `stage` label) and
  /// `laminator_slow_events_total{stage}` in the Prometheus text format.
  void render(std::string& out) const;

 private:
  std::int64_t slow_ns_;
  std::array<LatencyHistogram, kStages> hist_{};
  std::array<std::uint64_t, kStages> slow_{};
  std::array<std::int64_t, kStages> slow_sum_ns_{};
};

}  // namespace lam::daemon
