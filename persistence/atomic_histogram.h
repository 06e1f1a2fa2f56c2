#pragma once
/// A histogram of durations recorded by one thread and read by any other (relaxed atomics, no
/// lock): fixed upper bounds in seconds, for Prometheus (`_bucket{le=..}`, `_sum`, `_count`). A
/// reader may see a count one record ahead of a bucket; Prometheus tolerates that, and nothing
/// here decides on it.

#include <array>
#include <atomic>
#include <cstdint>

namespace lam::db {

class AtomicHistogram {
 public:
  static constexpr std::array<double, 12> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1.0,  2.5,   5.0};

  void record(double seconds) noexcept {
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    const double us = seconds > 0 ? seconds * 1e6 : 0;
    sum_us_.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
  }
  /// Records in bucket i alone (i == kBounds.size(): above the last bound).
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept {
    return counts_[i].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] double sum_seconds() const noexcept {
    return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace lam::db
