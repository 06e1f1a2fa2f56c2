#pragma once
/// What an operator watches on PostgreSQL, read from its statistics views on a connection of its
/// own, off the hot path (the daemon's maintenance thread, every [maintenance] health_interval_s):
/// connections in use against max_connections, the longest open transaction, the database's
/// transaction-id age, dead tuples and the last autovacuum of the engine's hot tables, table and
/// journal sizes, and replication lag per replica. Every value is read defensively: NULL (a table
/// never vacuumed, a replica that has not replayed yet) becomes "unknown" (-1), never a crash.

#include <cstdint>
#include <pqxx/connection>
#include <string>
#include <vector>

namespace lam::db {

struct TableHealth {
  std::string table;
  std::int64_t live_tuples = -1, dead_tuples = -1;  ///< -1: unknown (no statistics yet)
  double seconds_since_autovacuum = -1;  ///< -1: never autovacuumed (nor vacuumed by hand)
  std::int64_t bytes = -1;               ///< with indexes and TOAST; partitions summed
};

struct ReplicaLag {
  std::string name;     ///< application_name, or the client address
  double seconds = -1;  ///< replay lag; -1: not reported yet
};

/// WAL archiving (pg_stat_archiver): the base of point-in-time recovery.
struct ArchiveHealth {
  bool enabled = false;             ///< archive_mode is on (or always)
  std::int64_t archived = 0;        ///< WAL files archived since the statistics' reset
  std::int64_t failed = 0;          ///< failed attempts (archive_command's exit status)
  double last_archived_age_s = -1;  ///< since the last success; -1: none yet
};

struct DbHealth {
  bool ok = false;
  std::string error;  ///< when !ok: the first failure (secrets redacted by the caller)
  std::int64_t connections = 0, max_connections = 0;
  /// The oldest transaction that holds back vacuum of this database: another session's of this
  /// database with a snapshot or an xid, or a prepared transaction's (0: none).
  double longest_transaction_s = 0;
  ArchiveHealth archive;
  std::int64_t xid_age = 0;          ///< age(datfrozenxid) of this database (wraparound at 2^31)
  std::vector<TableHealth> tables;   ///< kHealthTables, in that order
  std::vector<ReplicaLag> replicas;  ///< empty without streaming replicas
  double collect_seconds = 0;        ///< how long reading all this took
};

/// The tables reported: the engine's hot tables and the growing ones.
inline constexpr const char* kHealthTables[] = {"positions",    "alerts",       "orders",
                                                "alert_events", "transactions", "audit_logs"};

/// Reads everything in one read-only transaction. Throws only when the connection is lost.
[[nodiscard]] DbHealth collect_db_health(pqxx::connection& c);

}  // namespace lam::db
