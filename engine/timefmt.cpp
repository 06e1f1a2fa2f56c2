#include "engine/timefmt.h"

#include <chrono>
#include <cstdio>

namespace lam {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) noexcept {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

constexpr unsigned days_in_month(int y, unsigned m) noexcept {
  constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::optional<TimeNs> parse_iso8601(std::string_view s, bool saturate) noexcept {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 16 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi)) {
    return std::nullopt;
  }
  std::size_t i = 16;
  TimeNs frac_ns = 0;
  if (i < s.size() && s[i] == ':') {
    if (!digits(s, i + 1, 2, sec)) return std::nullopt;
    i += 3;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      const std::size_t start = i;
      TimeNs scale = 100'000'000;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        frac_ns += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
      }
      if (i == start) return std::nullopt;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 ||
      static_cast<unsigned>(d) > days_in_month(y, static_cast<unsigned>(mo)) || h > 23 || mi > 59 ||
      sec > 60) {
    return std::nullopt;
  }
  TimeNs offset_sec = 0;
  if (i < s.size()) {
    const char z = s[i];
    if ((z == 'Z' || z == 'z') && i + 1 == s.size()) {
      i += 1;
    } else if (z == '+' || z == '-') {
      int oh = 0, om = 0;
      if (!digits(s, i + 1, 2, oh)) return std::nullopt;
      std::size_t j = i + 3;
      if (j < s.size() && s[j] == ':') ++j;
      if (j < s.size()) {
        if (!digits(s, j, 2, om)) return std::nullopt;
        j += 2;
      }
      if (j != s.size() || oh > 23 || om > 59) return std::nullopt;
      offset_sec = (oh * 3600 + om * 60) * (z == '-' ? -1 : 1);
      i = j;
    } else {
      return std::nullopt;
    }
  }
  const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const TimeNs secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_sec;
  // Nanoseconds since the epoch fit int64 only from 1677-09-21 to 2262-04-11.
  constexpr TimeNs kMinSecs = INT64_MIN / kNsPerSec + 1, kMaxSecs = INT64_MAX / kNsPerSec - 1;
  if (secs < kMinSecs) return saturate ? std::optional<TimeNs>(kTimeMin) : std::nullopt;
  if (secs > kMaxSecs) return saturate ? std::optional<TimeNs>(kTimeMax) : std::nullopt;
  return secs * kNsPerSec + frac_ns;
}

void append_iso8601_ms(std::string& out, TimeNs t) {
  TimeNs ms = t / kNsPerMs;
  if (t % kNsPerMs < 0) --ms;
  std::int64_t secs = ms / 1000;
  int msr = static_cast<int>(ms % 1000);
  if (msr < 0) {
    msr += 1000;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  // civil_from_days (H. Hinnant)
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                              static_cast<long long>(y), m, d, static_cast<int>(sod / 3600),
                              static_cast<int>(sod % 3600 / 60), static_cast<int>(sod % 60), msr);
  out.append(buf, static_cast<std::size_t>(n));
}

std::string format_iso8601_ms(TimeNs t) {
  std::string s;
  append_iso8601_ms(s, t);
  return s;
}

TimeNs wall_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace lam
