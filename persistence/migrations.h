#pragma once
/// The SQL migrations compiled into the binary (from migrations/NNNN_name.sql).

#include <string>
#include <vector>

namespace lam::db {

struct Migration {
  int version = 0;   ///< NNNN of the file name
  std::string name;  ///< the file name, e.g. "0001_schema.sql"
  std::string sql;   ///< the file's exact contents
};

/// Every migration file, ordered by version.
const std::vector<Migration>& embedded_migrations();

}  // namespace lam::db
