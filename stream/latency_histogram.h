#pragma once
/// Tick-to-event latency: a log-linear histogram (4 buckets per power of two, 1 us .. ~1 min),
/// owned by the stream server thread, exported as a Prometheus histogram and read for percentiles.

#include <array>
#include <cstdint>
#include <string>

namespace lam::daemon {

class LatencyHistogram {
 public:
  static constexpr std::size_t kBuckets = 4 * 26;  ///< upper bounds 2^(i/4) us, up to ~67 s

  void record_ns(std::int64_t ns) noexcept;
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  /// Upper bound (us) of the bucket holding quantile q in [0, 1]; 0 when empty.
  [[nodiscard]] double quantile_us(double q) const noexcept;
  /// Appends `name_bucket{le=..}`, `name_sum`, `name_count` (seconds).
  void render(std::string& out, const char* name, const char* help) const;
  /// The samples only (no HELP/TYPE), each with `label` (`stage="bus"`) before `le`.
  void render_samples(std::string& out, const char* name, const char* label) const;
  [[nodiscard]] static double upper_us(std::size_t i) noexcept;

 private:
  std::array<std::uint64_t, kBuckets + 1> counts_{};  ///< last: overflow
  std::uint64_t count_ = 0;
  double sum_s_ = 0;
};

}  // namespace lam::daemon
