#pragma once
/// What the two partition keepers (monthly tables, the journal's seq ranges) share: a step in its
/// own transaction with a lock timeout whose failure is reported, not thrown, and the expiry of one
/// partition (detach, then drop or move into the archive schema). Internal to persistence/.

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "persistence/partition_plan.h"

namespace lam::db::detail {

/// Runs `body(work)` in one transaction; a failure other than a lost connection becomes a line in
/// `errors` ("what: message") and false. A lost connection is rethrown.
template <class Body>
bool partition_step(pqxx::connection& c, int lock_timeout_ms, std::vector<std::string>& errors,
                    const std::string& what, Body&& body) {
  try {
    pqxx::work w(c);
    w.exec("SET LOCAL lock_timeout = " + std::to_string(lock_timeout_ms));
    body(w);
    w.commit();
    return true;
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    errors.push_back(what + ": " + msg);
    return false;
  }
}

/// Detaches `name` from `parent`, then drops it or moves it into `archive_schema`.
inline void expire_partition(pqxx::work& w, const std::string& parent, const std::string& name,
                             Expiry expiry, const std::string& archive_schema) {
  const std::string part = w.quote_name(name);
  w.exec("ALTER TABLE " + w.quote_name(parent) + " DETACH PARTITION " + part);
  if (expiry == Expiry::drop) {
    w.exec("DROP TABLE " + part);
  } else {
    const std::string schema = w.quote_name(archive_schema);
    w.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
    w.exec("ALTER TABLE " + part + " SET SCHEMA " + schema);
  }
}

}  // namespace lam::db::detail
