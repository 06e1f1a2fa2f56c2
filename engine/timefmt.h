#pragma once
/// Timestamps: int64 nanoseconds since the Unix epoch (UTC) everywhere inside the engine.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lam {

using TimeNs = std::int64_t;
inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;

/// Parses ISO-8601 / RFC 3339 as PostgreSQL prints `timestamptz`: `YYYY-MM-DD[T ]hh:mm[:ss[.frac]]`
/// followed by `Z`, `+hh`, `+hh:mm` or `+hhmm` (no zone means UTC). Fractions beyond ns are
/// truncated. Times outside int64 nanoseconds (before 1677-09-22 or after 2262-04-10) give nullopt,
/// or with `saturate` the nearest representable time (kTimeMin / kTimeMax): a bot's `9999-12-31`
/// "never" stays far in the future instead of failing.
[[nodiscard]] std::optional<TimeNs> parse_iso8601(std::string_view text,
                                                  bool saturate = false) noexcept;

/// The wall clock now, for the threads around the matcher (feeds, the stream server, benchmarks).
/// The matcher itself never reads a clock: time reaches it in ticks and clock inputs.
[[nodiscard]] TimeNs wall_ns() noexcept;

inline constexpr TimeNs kTimeMin = INT64_MIN;
inline constexpr TimeNs kTimeMax = INT64_MAX;

/// `2026-01-01T00:00:00.000Z` (millisecond precision, truncated toward -inf).
[[nodiscard]] std::string format_iso8601_ms(TimeNs t);
void append_iso8601_ms(std::string& out, TimeNs t);

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
[[nodiscard]] constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m,
                                                     unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace lam
