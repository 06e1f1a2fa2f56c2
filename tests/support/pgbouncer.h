#pragma once
// A PgBouncer for tests: the shipped configs/pgbouncer/pgbouncer.ini as it is, with only the listen
// port, the database entry (the test cluster's socket), authentication (trust, on loopback) and
// its files replaced; started as the `postgres` user under root (PgBouncer refuses root) and
// stopped with the test.

#include <sys/types.h>

#include <string>

namespace lam::test {

class PgBouncer {
 public:
  /// `server_conninfo_host`/`port`: the cluster's socket directory and port; `dbname` is served
  /// under the same name. Throws std::runtime_error when it does not start (its log attached).
  PgBouncer(const std::string& shipped_ini, const std::string& socket_dir, int server_port,
            const std::string& dbname);
  ~PgBouncer();
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;

  /// libpq connection string of `dbname` through the pooler (127.0.0.1:port).
  [[nodiscard]] std::string conninfo() const;
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string log() const;

 private:
  std::string dir_, dbname_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace lam::test
