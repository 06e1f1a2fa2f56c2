#pragma once
/// The daemon's maintenance thread: its own PostgreSQL connection (TimeZone UTC), off the hot path.
/// Every [maintenance] health_interval_ms it reads the database's health (persistence/db_health.h);
/// at start-up and every partition_interval_ms it keeps the monthly partitions of transactions and
/// audit_logs (persistence/partition_keeper.h). Both feed /metrics; failures are logged (secrets
/// redacted), counted and retried at the next interval; a lost connection is reopened.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "persistence/db_health.h"
#include "persistence/journal_partitions.h"
#include "persistence/partition_keeper.h"
#include "persistence/reconcile.h"

namespace lam::daemon {

struct MaintenanceSnapshot {
  bool have_health = false;
  db::DbHealth health;
  std::vector<db::PartitionReport> partitions;  ///< the last run, one per policy
  db::JournalReport journal;                    ///< alert_events' seq ranges, the last run
  std::uint64_t health_runs = 0, partition_runs = 0;
  std::uint64_t errors = 0;  ///< failed collections, failed partition steps, lost connections
  bool have_reconcile = false;
  db::ReconcileReport reconcile;  ///< the last run (violations: the first few of each)
  std::uint64_t reconcile_runs = 0;
  double reconcile_at = 0;  ///< unix seconds of the last run
};

class Maintenance {
 public:
  Maintenance(std::string conninfo, MaintenanceConfig cfg);
  ~Maintenance();  ///< stop()
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  void start();
  void stop();
  /// Runs the partition upkeep now (tests, and an operator's SIGHUP one day).
  void wake_partitions();
  [[nodiscard]] MaintenanceSnapshot snapshot() const;
  /// Prometheus families: laminator_db_* and laminator_db_partition_* (any thread).
  void render(std::string& out) const;

 private:
  void run();

  std::string conninfo_;
  MaintenanceConfig cfg_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool partitions_now_ = true;
  MaintenanceSnapshot snap_;
  std::thread thread_;
};

}  // namespace lam::daemon
