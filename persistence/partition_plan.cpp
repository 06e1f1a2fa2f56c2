#include "persistence/partition_plan.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

namespace lam::db {

YearMonth YearMonth::plus(int months) const {
  const int index = year * 12 + (month - 1) + months;
  // Floor division: months before year 0 never occur, but a negative index must not wrap.
  const int y = index >= 0 ? index / 12 : -((-index + 11) / 12);
  return YearMonth{y, index - y * 12 + 1};
}

int YearMonth::months_since(YearMonth earlier) const {
  return (year - earlier.year) * 12 + (month - earlier.month);
}

std::string YearMonth::first_day() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-01", year, month);
  return buf;
}

YearMonth YearMonth::of(std::int64_t unix_seconds) {
  // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm), month precision.
  std::int64_t days = unix_seconds / 86'400;
  if (unix_seconds % 86'400 < 0) --days;
  const std::int64_t z = days + 719'468;
  const std::int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const std::int64_t doe = z - era * 146'097;
  const std::int64_t yoe = (doe - doe / 1'460 + doe / 36'524 - doe / 146'096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return YearMonth{static_cast<int>(y), static_cast<int>(m)};
}

std::optional<YearMonth> partition_month(std::string_view parent, std::string_view name) {
  // <parent>_yYYYYmMM
  if (name.size() != parent.size() + 9 || name.substr(0, parent.size()) != parent) return {};
  const std::string_view s = name.substr(parent.size());
  if (s[0] != '_' || s[1] != 'y' || s[6] != 'm') return {};
  int y = 0, m = 0;
  const auto digits = [](std::string_view d, int& out) {
    if (d.find_first_not_of("0123456789") != std::string_view::npos) return false;
    return std::from_chars(d.data(), d.data() + d.size(), out).ec == std::errc{};
  };
  if (!digits(s.substr(2, 4), y) || !digits(s.substr(7, 2), m) || m < 1 || m > 12) return {};
  return YearMonth{y, m};
}

std::string partition_name(std::string_view parent, YearMonth m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "_y%04dm%02d", m.year, m.month);
  return std::string(parent).append(buf);
}

namespace {

std::set<YearMonth> months_of(std::string_view parent, const std::vector<std::string>& names) {
  std::set<YearMonth> out;
  for (const std::string& n : names)
    if (const auto m = partition_month(parent, n)) out.insert(*m);
  return out;
}

int covered(const std::set<YearMonth>& have, YearMonth now) {
  int ahead = -1;
  while (have.count(now.plus(ahead + 1)) != 0) ++ahead;
  return ahead;
}

}  // namespace

int months_covered(std::string_view parent, YearMonth now,
                   const std::vector<std::string>& existing) {
  return covered(months_of(parent, existing), now);
}

PartitionPlan plan_partitions(const PartitionPolicy& policy, YearMonth now,
                              const std::vector<std::string>& existing,
                              const std::vector<YearMonth>& default_months) {
  PartitionPlan plan;
  std::set<YearMonth> have = months_of(policy.table, existing);
  std::set<YearMonth> create;
  for (int i = 0; i <= std::max(0, policy.months_ahead); ++i)
    if (have.count(now.plus(i)) == 0) create.insert(now.plus(i));
  for (const YearMonth m : default_months)
    if (have.count(m) == 0) create.insert(m);
  plan.create.assign(create.begin(), create.end());
  have.insert(create.begin(), create.end());
  if (policy.retain_months > 0) {
    for (const YearMonth m : have) {
      if (now.months_since(m) > policy.retain_months)
        plan.expire.push_back(partition_name(policy.table, m));
    }
  }
  plan.months_ahead = covered(have, now);
  return plan;
}

}  // namespace lam::db
