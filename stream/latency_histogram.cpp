#include "stream/latency_histogram.h"

#include <cmath>
#include <cstdio>

namespace lam::daemon {

double LatencyHistogram::upper_us(std::size_t i) noexcept {
  return std::exp2(static_cast<double>(i) / 4.0);
}

void LatencyHistogram::record_ns(std::int64_t ns) noexcept {
  if (ns < 0) ns = 0;
  const double us = static_cast<double>(ns) / 1e3;
  std::size_t i = 0;
  if (us > 1.0) i = static_cast<std::size_t>(std::ceil(4.0 * std::log2(us)));
  if (i > kBuckets) i = kBuckets;
  ++counts_[i];
  ++count_;
  sum_s_ += us / 1e6;
}

double LatencyHistogram::quantile_us(double q) const noexcept {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i <= kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank && seen > 0) return upper_us(i);
  }
  return upper_us(kBuckets);
}

void LatencyHistogram::render(std::string& out, const char* name, const char* help) const {
  char line[256];
  std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  out += line;
  render_samples(out, name, "");
}

void LatencyHistogram::render_samples(std::string& out, const char* name, const char* label) const {
  char line[320];
  const char* sep = label[0] != '\0' ? "," : "";
  // The label set of _sum and _count: {label} or nothing.
  std::string plain;
  if (label[0] != '\0') plain.append("{").append(label).append("}");
  std::uint64_t cum = 0;
  // Every 4th bucket (powers of two) keeps the exposition short.
  for (std::size_t i = 0; i < kBuckets; ++i) {
    cum += counts_[i];
    if (i % 4 != 0) continue;
    std::snprintf(line, sizeof line, "%s_bucket{%s%sle=\"%.9g\"} %llu\n", name, label, sep,
                  upper_us(i) / 1e6, static_cast<unsigned long long>(cum));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s %.9g\n%s_count%s %llu\n", name, label,
                sep, static_cast<unsigned long long>(count_), name, plain.c_str(), sum_s_, name,
                plain.c_str(), static_cast<unsigned long long>(count_));
  out += line;
}

}  // namespace lam::daemon
