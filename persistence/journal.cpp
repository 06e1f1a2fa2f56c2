#include "persistence/journal.h"

#include "persistence/pg_array.h"

namespace lam::db {
namespace {

constexpr const char* kRead = R"SQL(
SELECT seq, type, user_id, market_id, body, recovered, (SELECT COALESCE(max(seq), 0) FROM alert_events)
FROM alert_events
WHERE seq > $1 AND ($2 = 0 OR seq < $2) AND (cardinality($3::uuid[]) = 0 OR user_id = ANY($3::uuid[]))
ORDER BY seq LIMIT $4
)SQL";
constexpr const char* kMax = "SELECT COALESCE(max(seq), 0) FROM alert_events";
constexpr const char* kRetention =
    "DELETE FROM alert_events_default WHERE created_at < now() - make_interval(hours => $1)";

}  // namespace

void prepare_journal(pqxx::connection& c) {
  c.prepare("journal_read", kRead);
  c.prepare("journal_max", kMax);
  c.prepare("journal_retention", kRetention);
}

JournalSlice read_journal(pqxx::transaction_base& tx, std::uint64_t after, std::uint64_t before,
                          std::size_t limit, const std::vector<Uuid>& users) {
  JournalSlice out;
  const pqxx::result r = tx.exec_prepared("journal_read", after, before, uuid_array(users), limit);
  out.rows.reserve(r.size());
  out.scanned = r.size();
  for (const auto& row : r) {
    out.max_seq = row[6].as<std::uint64_t>();
    JournalRecord j;
    j.seq = row[0].as<std::uint64_t>();
    out.last_seq = j.seq;
    j.type = row[1].c_str();
    const auto user = Uuid::parse(row[2].c_str());
    if (!user) continue;
    j.user_id = *user;
    if (!row[3].is_null()) {
      const auto market = Uuid::parse(row[3].c_str());
      if (!market) continue;
      j.market_id = *market;
      j.has_market = true;
    }
    j.body = row[4].c_str();
    j.recovered = row[5].as<bool>();
    out.rows.push_back(std::move(j));
  }
  if (r.empty()) out.max_seq = journal_max_seq(tx);
  return out;
}

std::uint64_t journal_max_seq(pqxx::transaction_base& tx) {
  return tx.exec1(kMax)[0].as<std::uint64_t>();
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> journal_holes(pqxx::transaction_base& tx,
                                                                   std::uint64_t after,
                                                                   std::size_t limit) {
  // An index-only walk of the primary key; lead() pairs each seq with the next one.
  const pqxx::result r = tx.exec_params(
      "SELECT seq + 1, next - 1 FROM (SELECT seq, lead(seq) OVER (ORDER BY seq) AS next "
      "FROM alert_events WHERE seq > $1) s WHERE next > seq + 1 ORDER BY seq LIMIT $2",
      static_cast<std::int64_t>(after), static_cast<std::int64_t>(limit));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> holes;
  holes.reserve(r.size());
  for (const auto& row : r)
    holes.emplace_back(row[0].as<std::uint64_t>(), row[1].as<std::uint64_t>());
  return holes;
}

std::uint64_t delete_journal_older_than(pqxx::transaction_base& tx, std::uint32_t hours) {
  return tx.exec_prepared("journal_retention", static_cast<int>(hours)).affected_rows();
}

std::string ensure_shard_schema(const std::string& conninfo, const std::string& shard_id) {
  pqxx::connection c(conninfo);
  pqxx::work tx(c);
  std::string schema =
      tx.exec_params1("SELECT engine_shard_schema($1)", shard_id)[0].as<std::string>();
  tx.commit();
  return schema;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> declared_seq_gaps(pqxx::transaction_base& tx) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;
  for (const auto& g : tx.exec("SELECT seq_from, seq_to FROM engine_seq_gaps ORDER BY seq_to"))
    gaps.emplace_back(g[0].as<std::uint64_t>(), g[1].as<std::uint64_t>());
  return gaps;
}

DatabaseIdentity database_identity(pqxx::transaction_base& tx) {
  const pqxx::row r = tx.exec1(
      "SELECT (SELECT system_identifier FROM pg_control_system())::text, current_database(), "
      "(SELECT instance_id::text FROM engine_instance), "
      "(SELECT oid::text FROM pg_database WHERE datname = current_database())");
  return {r[0].c_str(), r[1].c_str(), r[2].is_null() ? std::string() : r[2].c_str(),
          r[3].is_null() ? std::string() : r[3].c_str()};
}

}  // namespace lam::db
