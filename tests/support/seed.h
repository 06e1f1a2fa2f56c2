#pragma once
// Bulk test data (persistence/seed_rows.h) under the names the tests use.

#include <string>

#include "persistence/seed_rows.h"

namespace lam::test {

using db::kAlert;
using db::kMarket;
using db::kPosition;
using db::kUser;
using db::kWallet;
using db::seed;
using db::seq_id;
using db::seq_uuid;

/// A fresh database in the shared cluster, migrated and seeded (see seed()). Defined in
/// pg_cluster.cpp.
std::string migrated_seeded_db(const std::string& name, int markets, long long n);

}  // namespace lam::test
