#pragma once
/// Reads of the alert_events journal (the writer journals in its batch statement, batch.cpp): pages
/// for subscribers that resume, the head, retention. Every statement on alert_events that is not a
/// write of the batch lives here.

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "engine/uuid.h"

namespace lam::db {

struct JournalRecord {
  std::uint64_t seq = 0;
  std::string type;  ///< wire name, e.g. "alert.triggered"
  Uuid user_id;
  Uuid market_id;
  bool has_market = false;
  std::string body;  ///< the event's JSON as first published
  bool recovered = false;
};

struct JournalSlice {
  std::vector<JournalRecord> rows;  ///< ascending seq
  std::uint64_t max_seq = 0;        ///< the journal's head when read
  std::size_t scanned = 0;          ///< rows read, kept or not (== limit: more may follow)
  std::uint64_t last_seq = 0;       ///< highest seq read, kept or not (0: none)
};

/// Prepares the statements below on `c` (once per connection).
void prepare_journal(pqxx::connection& c);
/// Rows with seq > after (and < before unless before == 0) for `users` (empty: all), ascending,
/// at most `limit`. A row whose ids do not parse is skipped.
JournalSlice read_journal(pqxx::transaction_base& tx, std::uint64_t after, std::uint64_t before,
                          std::size_t limit, const std::vector<Uuid>& users);
/// Highest journaled seq (0: empty).
std::uint64_t journal_max_seq(pqxx::transaction_base& tx);
/// Gaps in the journal's seqs above `after`: [first, last] of each run of missing seqs, ascending,
/// at most `limit` of them. Retention only trims the bottom, so a gap means lost rows (a commit
/// lost in a server crash with asynchronous commit, or events overwritten in a crash ring).
std::vector<std::pair<std::uint64_t, std::uint64_t>> journal_holes(pqxx::transaction_base& tx,
                                                                   std::uint64_t after,
                                                                   std::size_t limit);
/// Deletes rows older than `hours` from the journal's default partition (rows no seq range holds,
/// migration 0010); the ranges themselves expire whole (persistence/journal_partitions.h). Returns
/// how many.
std::uint64_t delete_journal_older_than(pqxx::transaction_base& tx, std::uint32_t hours);

/// The seq gaps a restore declared (migration 0009, `engine_seq_gaps`), ordered by their end:
/// (from, to] pairs: a new history starts above the last one, and a gap is not a hole.
[[nodiscard]] std::vector<std::pair<std::uint64_t, std::uint64_t>> declared_seq_gaps(
    pqxx::transaction_base& tx);

/// What the crash ring is bound to: the cluster's system identifier, the database's name, and the
/// random instance id of migration 0004 ("" when `engine_instance` is empty).
struct DatabaseIdentity {
  std::string system_identifier;  ///< the cluster's (pg_control_system())
  std::string database;           ///< its name
  std::string instance_id;        ///< engine_instance (migration 0004): copied by a clone
  std::string
      database_oid;  ///< pg_database.oid: a clone (CREATE DATABASE ... TEMPLATE) gets its own
};
[[nodiscard]] DatabaseIdentity database_identity(pqxx::transaction_base& tx);

/// A shard's journal schema (migration 0011's `engine_shard_schema()`: created with its tables when
/// missing), connecting once to `conninfo`. The shard's connections then name it first on their
/// search_path (db::with_search_path).
[[nodiscard]] std::string ensure_shard_schema(const std::string& conninfo,
                                              const std::string& shard_id);

}  // namespace lam::db
