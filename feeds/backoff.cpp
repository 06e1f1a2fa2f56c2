#include "feeds/backoff.h"

namespace lam::feeds {

std::uint64_t Backoff::rand() noexcept {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return state_ * 0x2545F4914F6CDD1DULL;
}

Backoff::Millis Backoff::next() noexcept {
  const unsigned n = attempts_++;
  if (n == 0) return Millis{0};
  // initial * 2^(n-1), saturating at max (shift capped to avoid overflow).
  const unsigned shift = n - 1 < 30 ? n - 1 : 30;
  const long long base = initial_.count();
  long long d = base << shift;
  if (d > max_.count() || d < base) d = max_.count();
  const long long half = d / 2;
  const long long span = d - half + 1;
  return Millis{half + static_cast<long long>(rand() % static_cast<std::uint64_t>(span))};
}

}  // namespace lam::feeds
