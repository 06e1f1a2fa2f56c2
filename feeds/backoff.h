#pragma once
/// Reconnect delays: the first retry is immediate, then exponential from `initial`, capped at
/// `max`, with "equal jitter" (a delay d becomes uniform in [d/2, d]) so that many connections
/// dropped together do not reconnect together. Deterministic for a given seed.

#include <chrono>
#include <cstdint>

namespace lam::feeds {

class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  Backoff(Millis initial, Millis max, std::uint64_t seed) noexcept
      : initial_(initial), max_(max < initial ? initial : max), state_(seed | 1) {}

  /// The delay before the next attempt; advances the attempt count.
  Millis next() noexcept;
  /// Back to "first retry immediate" (call once a connection has proved stable).
  void reset() noexcept { attempts_ = 0; }
  [[nodiscard]] unsigned attempts() const noexcept { return attempts_; }

 private:
  std::uint64_t rand() noexcept;  // xorshift64*

  Millis initial_;
  Millis max_;
  std::uint64_t state_;
  unsigned attempts_ = 0;
};

}  // namespace lam::feeds
