#pragma once
// The tests' throwaway PostgreSQL cluster: persistence/local_cluster.h with the tests' settings
// (shared_buffers from LAMINATOR_TEST_PG_SHARED_BUFFERS, e.g. "1GB", else 128MB).

#include <string>

#include "persistence/local_cluster.h"

namespace lam::test {

class PgCluster : public db::LocalCluster {
 public:
  PgCluster();  ///< initdb + start; throws std::runtime_error with the server log on failure
  /// With more settings (shared_buffers still from the environment when it is set).
  explicit PgCluster(db::LocalClusterOptions opt);
};

/// The process-wide cluster, started on first use and stopped at exit.
PgCluster& shared_cluster();

}  // namespace lam::test
