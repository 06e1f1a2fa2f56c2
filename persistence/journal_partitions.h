#pragma once
/// The alert_events journal's partitions (migration 0010): ranges of seq `[lo, hi)` named
/// `alert_events_s<lo>`, a default partition for any seq no range holds. The maintenance thread
/// keeps a range ready ahead of the journal's head and expires closed ranges whose newest row is
/// older than the journal's retention (detach, then drop or archive). The plan is pure; the keeper
/// runs it (each step its own transaction with a lock timeout, like the monthly partitions').

#include <cstdint>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <vector>

#include "persistence/partition_plan.h"

namespace lam::db {

struct SeqRange {
  std::string name;
  std::int64_t lo = 0, hi = 0;  ///< [lo, hi)
};

/// "FOR VALUES FROM ('1') TO ('1000001')" or without quotes -> {1, 1000001}; nullopt otherwise
/// (DEFAULT, MINVALUE/MAXVALUE bounds: a range made by hand is left alone).
[[nodiscard]] std::optional<std::pair<std::int64_t, std::int64_t>> parse_seq_bound(
    std::string_view expr);

struct JournalPolicy {
  std::int64_t partition_seqs = 1'000'000;  ///< seqs per range
  std::uint32_t retain_hours = 168;         ///< [stream] journal_retention_hours
  Expiry expiry = Expiry::drop;
  std::string archive_schema = "archive";
  int lock_timeout_ms = 5'000;
};

struct JournalPlan {
  std::vector<std::pair<std::int64_t, std::int64_t>> create;  ///< ranges to add, ascending
  /// Closed ranges (entirely at or below the head), oldest first: each expires when its newest row
  /// is older than the retention (checked by the keeper, which stops at the first that is not).
  std::vector<std::string> candidates;
  std::int64_t seqs_ahead = 0;  ///< seqs above the head a range holds once the plan ran
};

/// Ranges so that the head's next seq and partition_seqs / 2 more are held, and every seq of
/// `strays` (the default partition's rows: [min, max] per cell of the grid); new ranges lie on a
/// grid of partition_seqs, clipped to the ranges around them (a restore's gap costs one range, not
/// 10^12 / partition_seqs).
[[nodiscard]] JournalPlan plan_journal_partitions(
    const JournalPolicy& policy, std::int64_t head, const std::vector<SeqRange>& existing,
    const std::vector<std::pair<std::int64_t, std::int64_t>>& strays = {});

struct JournalReport {
  std::vector<std::string> created, expired, errors;
  std::int64_t head = 0, seqs_ahead = 0, default_rows = 0;
};

/// Reads the ranges and the head, runs the plan. Throws only when the connection is lost.
JournalReport keep_journal_partitions(pqxx::connection& c, const JournalPolicy& policy);

}  // namespace lam::db
