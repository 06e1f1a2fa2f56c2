#pragma once
/// Monthly partitions of `transactions` and `audit_logs` (PARTITION BY RANGE (created_at), one
/// `<parent>_yYYYYmMM` per month, a `<parent>_default` catching the rest): what to create and what
/// to expire, decided from the partitions that exist. Pure: the daemon's maintenance thread reads
/// the catalog, asks this plan, and runs it (persistence/partition_keeper.h).

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lam::db {

struct YearMonth {
  int year = 1970;
  int month = 1;  ///< 1..12
  auto operator<=>(const YearMonth&) const = default;
  [[nodiscard]] YearMonth plus(int months) const;
  /// Whole months from `earlier` to this one (negative when `earlier` is later).
  [[nodiscard]] int months_since(YearMonth earlier) const;
  /// "2026-12-01": the first day, as PostgreSQL's `date` input.
  [[nodiscard]] std::string first_day() const;
  /// The month holding `unix_seconds` (UTC).
  [[nodiscard]] static YearMonth of(std::int64_t unix_seconds);
};

enum class Expiry : std::uint8_t {
  drop,     ///< detach, then DROP TABLE
  archive,  ///< detach, then move into the archive schema (kept, out of every query's way)
};

struct PartitionPolicy {
  std::string table;      ///< the partitioned parent: transactions, audit_logs
  int months_ahead = 3;   ///< partitions exist for the current month and this many after it
  int retain_months = 0;  ///< 0: keep every month; else months older than this many expire
  Expiry expiry = Expiry::drop;
  std::string archive_schema = "archive";
  int lock_timeout_ms = 5'000;  ///< a step waiting longer for a lock fails and is tried next run
};

/// "transactions_y2026m12" -> 2026-12 for parent "transactions"; nullopt for any other name (the
/// default partition, a partition made by hand under another name, a malformed suffix).
[[nodiscard]] std::optional<YearMonth> partition_month(std::string_view parent,
                                                       std::string_view name);
[[nodiscard]] std::string partition_name(std::string_view parent, YearMonth m);

struct PartitionPlan {
  /// Months to create, ascending: missing ones in [now, now + months_ahead], and past months whose
  /// rows sit in the default partition (creating the partition moves them out of it).
  std::vector<YearMonth> create;
  /// Partitions to detach and drop or archive, oldest first (after `create`: a month created only
  /// to take its rows out of the default partition may expire at once).
  std::vector<std::string> expire;
  /// Months ahead of `now` covered without a gap once the plan ran (-1: not even `now`).
  int months_ahead = -1;
};

/// What `policy` asks for in month `now`, given the names of the parent's partitions and the months
/// that have rows in its default partition.
[[nodiscard]] PartitionPlan plan_partitions(const PartitionPolicy& policy, YearMonth now,
                                            const std::vector<std::string>& existing,
                                            const std::vector<YearMonth>& default_months);

/// Months ahead of `now` covered without a gap by `existing` partitions (-1: `now` has none).
[[nodiscard]] int months_covered(std::string_view parent, YearMonth now,
                                 const std::vector<std::string>& existing);

}  // namespace lam::db
