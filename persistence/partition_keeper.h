#pragma once
/// Runs a partition plan (persistence/partition_plan.h) against PostgreSQL: reads the parent's
/// partitions and the months that have rows in its default partition, creates the missing months
/// (`create_monthly_partitions`, which moves a month's rows out of the default partition), and
/// expires the months past retention (DETACH, then DROP or SET SCHEMA archive, in one transaction).
/// Every step runs in its own transaction with a lock timeout, so one that fails (a lock held, a
/// name taken in the archive) is reported and the others still run; it is tried again next time.

#include <cstdint>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "persistence/partition_plan.h"

namespace lam::db {

struct PartitionReport {
  std::string table;
  std::vector<std::string> created, expired;  ///< partition names
  std::vector<std::string> errors;            ///< one line per failed step (secrets redacted)
  int months_ahead = -1;                      ///< covered without a gap after the run
  std::int64_t default_rows = 0;              ///< rows left in the default partition
};

/// Runs `policy` for month `now` on `c` (which should have TimeZone UTC: partition bounds are
/// dates). Throws only when the connection is lost (pqxx::broken_connection).
PartitionReport keep_partitions(pqxx::connection& c, const PartitionPolicy& policy, YearMonth now);

}  // namespace lam::db
