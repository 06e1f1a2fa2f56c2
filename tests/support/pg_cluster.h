#pragma once
// A throwaway PostgreSQL 15 cluster for tests: initdb into a temporary directory, a Unix socket
// only (no TCP), started and stopped by the test run. Under root (CI) the server runs as the
// `postgres` user, since initdb and postgres refuse to run as root.

#include <string>

namespace lam::test {

class PgCluster {
 public:
  PgCluster();   ///< initdb + start; throws std::runtime_error with the server log on failure
  ~PgCluster();  ///< stop (immediate) + remove the directory
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  /// Creates a fresh database and returns its libpq connection string.
  std::string create_database(const std::string& name);
  /// Connection string for an existing database.
  [[nodiscard]] std::string conninfo(const std::string& db) const;

  /// Crash-stops the server (pg_ctl stop -m immediate) and starts it again only when asked.
  void kill();
  void start();
  [[nodiscard]] bool running() const { return running_; }

 private:
  int run(const std::string& cmd, bool as_server_user) const;

  std::string dir_;
  std::string bin_;
  int port_ = 0;
  bool as_postgres_ = false;
  bool running_ = false;
};

/// The process-wide cluster, started on first use and stopped at exit.
PgCluster& shared_cluster();

}  // namespace lam::test
