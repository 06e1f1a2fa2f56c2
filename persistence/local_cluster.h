#pragma once
/// A throwaway local PostgreSQL cluster (the Debian `postgresql` package's binaries): initdb into a
/// temporary directory, a Unix socket only (no TCP), trust authentication, started and stopped by
/// the owner. Used by the tests, the benchmarks and `laminator bench writer|pipeline`. Under root
/// the server runs as the `postgres` user, since initdb and postgres refuse to run as root.

#include <string>

namespace lam::db {

struct LocalClusterOptions {
  /// "128MB", "1GB": digits and MB or GB; anything else is refused.
  std::string shared_buffers = "128MB";
  /// Off for tests and benchmarks of the engine's statements: a crash-stop of the server is still
  /// recovered from WAL (only an OS crash could lose data, and nothing here outlives the run).
  bool fsync = false;
  int max_connections = 50;
  /// More postgresql.conf lines (WAL archiving for a backup test, ...), appended as they are.
  std::string extra_conf;
};

class LocalCluster {
 public:
  /// initdb + start; throws std::runtime_error with the server's log on failure.
  explicit LocalCluster(LocalClusterOptions opt = {});
  ~LocalCluster();  ///< stop (immediate) + remove the directory
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// Creates a fresh database (dropping one of that name) and returns its libpq connection string.
  std::string create_database(const std::string& name);
  /// Connection string for an existing database.
  [[nodiscard]] std::string conninfo(const std::string& db) const;
  [[nodiscard]] const std::string& directory() const { return dir_; }  ///< also the socket's
  [[nodiscard]] int port() const { return port_; }
  /// "15.14": the server binaries' version, from `postgres --version`.
  [[nodiscard]] std::string version() const;

  /// Crash-stops the server (pg_ctl stop -m immediate) and starts it again only when asked.
  void kill();
  void start();
  [[nodiscard]] bool running() const { return running_; }

  /// The directory of the newest installed server binaries (/usr/lib/postgresql/N/bin), or throws
  /// naming the package to install.
  static std::string find_binaries();

 private:
  int run(const std::string& cmd, bool as_server_user) const;

  std::string dir_;
  std::string bin_;
  int port_ = 0;
  bool as_postgres_ = false;
  bool running_ = false;
};

}  // namespace lam::db
