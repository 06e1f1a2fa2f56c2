#include "persistence/partition_keeper.h"

#include <functional>
#include <pqxx/pqxx>

#include "persistence/partition_steps.h"

namespace lam::db {
namespace {

bool step(pqxx::connection& c, const PartitionPolicy& p, PartitionReport& r,
          const std::string& what, const std::function<void(pqxx::work&)>& body) {
  return detail::partition_step(c, p.lock_timeout_ms, r.errors, what, body);
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
          detail::expire_partition(w, policy.table, name, policy.expiry, policy.archive_schema);
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
