#include "persistence/db_health.h"

#include <chrono>
#include <cmath>
#include <pqxx/pqxx>

namespace lam::db {
namespace {

std::int64_t int_or(const pqxx::field& f, std::int64_t unknown) {
  if (f.is_null()) return unknown;
  try {
    return f.as<std::int64_t>();
  } catch (const std::exception&) {
    return unknown;  // out of range or not a number: unknown, not a crash
  }
}

double seconds_or(const pqxx::field& f, double unknown) {
  if (f.is_null()) return unknown;
  try {
    const double v = f.as<double>();
    return std::isfinite(v) ? v : unknown;
  } catch (const std::exception&) {
    return unknown;
  }
}

}  // namespace

DbHealth collect_db_health(pqxx::connection& c) {
  const auto t0 = std::chrono::steady_clock::now();
  DbHealth h;
  try {
    pqxx::read_transaction tx(c);
    // The longest transaction is what its alert says it is: one that holds back vacuum of this
    // database's tables. A session of another database does not (its snapshot does not cover
    // ours), nor one that opened a transaction and took no snapshot and no xid (`BEGIN` and idle:
    // a pooler's or ORM's; issue 32 saw 735 s of that with nothing running); a prepared
    // transaction left behind does, and pg_stat_activity never shows it.
    const pqxx::row conn = tx.exec1(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
        "current_setting('max_connections')::bigint, "
        "GREATEST("
        " (SELECT EXTRACT(EPOCH FROM max(clock_timestamp() - xact_start)) FROM pg_stat_activity "
        "   WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
        "     AND datname = current_database() "
        "     AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)), "
        " (SELECT EXTRACT(EPOCH FROM max(clock_timestamp() - prepared)) FROM pg_prepared_xacts "
        "   WHERE database = current_database())), "
        "(SELECT age(datfrozenxid)::bigint FROM pg_database WHERE datname = current_database()), "
        "current_setting('archive_mode') <> 'off', "
        "a.archived_count, a.failed_count, "
        "EXTRACT(EPOCH FROM clock_timestamp() - a.last_archived_time) "
        "FROM pg_stat_archiver a");
    h.connections = int_or(conn[0], 0);
    h.max_connections = int_or(conn[1], 0);
    h.longest_transaction_s = seconds_or(conn[2], 0);
    h.xid_age = int_or(conn[3], 0);
    h.archive.enabled = !conn[4].is_null() && conn[4].as<bool>();
    h.archive.archived = int_or(conn[5], 0);
    h.archive.failed = int_or(conn[6], 0);
    h.archive.last_archived_age_s = seconds_or(conn[7], -1);
    for (const char* table : kHealthTables) {
      TableHealth t;
      t.table = table;
      // Partitioned parents hold nothing themselves: their partitions' figures are summed.
      const pqxx::row r = tx.exec_params1(
          "WITH rels AS ("
          "  SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind = 'r' "
          "  UNION ALL SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = to_regclass($1)) "
          "SELECT sum(s.n_live_tup)::bigint, sum(s.n_dead_tup)::bigint, "
          "  EXTRACT(EPOCH FROM clock_timestamp() - max(GREATEST(s.last_autovacuum, "
          "    s.last_vacuum))), "
          "  (SELECT sum(pg_total_relation_size(oid))::bigint FROM rels) "
          "FROM rels LEFT JOIN pg_stat_user_tables s ON s.relid = rels.oid",
          std::string(table));
      t.live_tuples = int_or(r[0], -1);
      t.dead_tuples = int_or(r[1], -1);
      t.seconds_since_autovacuum = seconds_or(r[2], -1);
      t.bytes = int_or(r[3], -1);
      h.tables.push_back(std::move(t));
    }
    for (const auto& r :
         tx.exec("SELECT COALESCE(NULLIF(application_name, ''), client_addr::text, 'replica'), "
                 "EXTRACT(EPOCH FROM replay_lag) FROM pg_stat_replication ORDER BY 1")) {
      h.replicas.push_back({r[0].as<std::string>(), seconds_or(r[1], -1)});
    }
    h.ok = true;
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception& e) {
    h.ok = false;
    h.error = e.what();
  }
  h.collect_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return h;
}

}  // namespace lam::db
