#include "persistence/partition_keeper.h"

#include <pqxx/pqxx>

namespace lam::db {
namespace {

/// One step in its own transaction; a failure other than a lost connection is reported.
template <class Step>
bool step(pqxx::connection& c, const PartitionPolicy& p, PartitionReport& r,
          const std::string& what, Step&& body) {
  try {
    pqxx::work w(c);
    w.exec("SET LOCAL lock_timeout = " + std::to_string(p.lock_timeout_ms));
    body(w);
    w.commit();
    return true;
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    r.errors.push_back(what + ": " + msg);
    return false;
  }
}

}  // namespace

PartitionReport keep_partitions(pqxx::connection& c, const PartitionPolicy& policy, YearMonth now) {
  PartitionReport r;
  r.table = policy.table;
  std::vector<std::string> existing;
  std::vector<YearMonth> default_months;
  const bool read = step(c, policy, r, "read the catalog", [&](pqxx::work& w) {
    const pqxx::result parts = w.exec_params(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass",
        policy.table);
    for (const auto& row : parts) existing.push_back(row[0].as<std::string>());
    // Months of the default partition's rows, finite and within the names' four-digit years (an
    // `infinity` row or one in year 20000 stays where it is, counted in default_rows).
    const std::string def = w.quote_name(policy.table + "_default");
    const pqxx::result months = w.exec(
        "SELECT DISTINCT EXTRACT(YEAR FROM created_at)::int, EXTRACT(MONTH FROM created_at)::int "
        "FROM " +
        def + " WHERE created_at >= '1000-01-01' AND created_at < '9999-12-01'");
    for (const auto& row : months) default_months.push_back({row[0].as<int>(), row[1].as<int>()});
  });
  if (!read) return r;
  const PartitionPlan plan = plan_partitions(policy, now, existing, default_months);
  for (const YearMonth m : plan.create) {
    const std::string name = partition_name(policy.table, m);
    if (step(c, policy, r, "create " + name, [&](pqxx::work& w) {
          w.exec_params("SELECT create_monthly_partitions($1::regclass, 0, $2::date)", policy.table,
                        m.first_day());
        })) {
      r.created.push_back(name);
    }
  }
  for (const std::string& name : plan.expire) {
    if (step(c, policy, r, "expire " + name, [&](pqxx::work& w) {
          const std::string parent = w.quote_name(policy.table), part = w.quote_name(name);
          w.exec("ALTER TABLE " + parent + " DETACH PARTITION " + part);
          if (policy.expiry == Expiry::drop) {
            w.exec("DROP TABLE " + part);
          } else {
            const std::string schema = w.quote_name(policy.archive_schema);
            w.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
            w.exec("ALTER TABLE " + part + " SET SCHEMA " + schema);
          }
        })) {
      r.expired.push_back(name);
    }
  }
  step(c, policy, r, "count", [&](pqxx::work& w) {
    existing.clear();
    const pqxx::result parts = w.exec_params(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = $1::regclass",
        policy.table);
    for (const auto& row : parts) existing.push_back(row[0].as<std::string>());
    r.months_ahead = months_covered(policy.table, now, existing);
    r.default_rows = w.exec("SELECT count(*) FROM " + w.quote_name(policy.table + "_default"))[0][0]
                         .as<std::int64_t>();
  });
  return r;
}

}  // namespace lam::db
