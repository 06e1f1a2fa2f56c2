#include "tests/support/pg_cluster.h"

#include <csignal>
#include <cstdlib>
#include <memory>
#include <utility>

#include "persistence/migrator.h"
#include "tests/support/seed.h"

namespace lam::test {
namespace {

db::LocalClusterOptions test_options(db::LocalClusterOptions o = {}) {
  // PostgreSQL's default; benchmarks may size it as a production server would (the marks
  // benchmark at 1M positions: docs/performance.md). A malformed value keeps the default.
  if (const char* v = std::getenv("LAMINATOR_TEST_PG_SHARED_BUFFERS")) {
    const std::string s(v);
    const std::size_t digits = s.find_first_not_of("0123456789");
    const std::string unit = digits == std::string::npos ? "" : s.substr(digits);
    if (digits != 0 && (unit == "MB" || unit == "GB")) o.shared_buffers = s;
  }
  return o;
}

}  // namespace

PgCluster::PgCluster() : db::LocalCluster(test_options()) {}
PgCluster::PgCluster(db::LocalClusterOptions opt)
    : db::LocalCluster(test_options(std::move(opt))) {}

std::string migrated_seeded_db(const std::string& name, int markets, long long n) {
  std::signal(SIGPIPE, SIG_IGN);  // a broken connection must be an exception, not a signal
  const std::string url = shared_cluster().create_database(name);
  db::Migrator(url).migrate({});
  seed(url, markets, n);
  return url;
}

PgCluster& shared_cluster() {
  static std::unique_ptr<PgCluster> cluster = std::make_unique<PgCluster>();
  return *cluster;
}

}  // namespace lam::test
