#include "tests/support/pg_cluster.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>

#include "persistence/migrator.h"
#include "tests/support/seed.h"

namespace lam::test {
namespace fs = std::filesystem;

namespace {

std::string find_bin() {
  for (const char* d :
       {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}) {
    if (fs::exists(fs::path(d) / "initdb")) return d;
  }
  throw std::runtime_error("PostgreSQL server binaries not found (apt-get install postgresql-15)");
}

/// LAMINATOR_TEST_PG_SHARED_BUFFERS (e.g. "1GB"), when set to digits and a unit; else 128MB.
std::string shared_buffers() {
  const char* v = std::getenv("LAMINATOR_TEST_PG_SHARED_BUFFERS");
  if (v == nullptr) return "128MB";
  const std::string s(v);
  const std::size_t digits = s.find_first_not_of("0123456789");
  const std::string unit = digits == std::string::npos ? "" : s.substr(digits);
  if (digits == 0 || (unit != "MB" && unit != "GB")) return "128MB";
  return s;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

PgCluster::PgCluster() : bin_(find_bin()) {
  char tmpl[] = "/tmp/laminator-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  as_postgres_ = ::geteuid() == 0;
  if (as_postgres_ && run("chown postgres: " + dir_, false) != 0) {
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  }
  // The socket file's name carries the port number; any free-ish number works for a private
  // directory.
  port_ = 20000 + static_cast<int>(::getpid() % 20000);
  if (run(bin_ + "/initdb -D " + dir_ +
              "/data -U postgres --auth=trust -E UTF8 --no-sync --no-instructions >" + dir_ +
              "/initdb.log 2>&1",
          true) != 0) {
    throw std::runtime_error("initdb failed:\n" + slurp(dir_ + "/initdb.log"));
  }
  std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
  conf << "listen_addresses = ''\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "port = " << port_ << "\n"
       << "fsync = off\n"  // a crash-stop of the server is recovered from WAL; the OS never crashes
                           // here
       // PostgreSQL's default; benchmarks may size it as a production server would (the marks
       // benchmark at 1M positions: docs/performance.md).
       << "shared_buffers = " << shared_buffers() << "\n"
       << "max_connections = 50\n";
  conf.close();
  start();
}

PgCluster::~PgCluster() {
  if (running_) run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate stop >/dev/null 2>&1", true);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

int PgCluster::run(const std::string& cmd, bool as_server_user) const {
  std::string full = cmd;
  if (as_server_user && as_postgres_) full = "runuser -u postgres -- sh -c '" + cmd + "'";
  return std::system(full.c_str());
}

void PgCluster::start() {
  if (run(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
              "/server.log -w -t 60 start >/dev/null 2>&1",
          true) != 0) {
    throw std::runtime_error("PostgreSQL did not start:\n" + slurp(dir_ + "/server.log"));
  }
  running_ = true;
}

void PgCluster::kill() {
  run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate stop >/dev/null 2>&1", true);
  running_ = false;
}

std::string PgCluster::conninfo(const std::string& db) const {
  return "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + db;
}

std::string PgCluster::create_database(const std::string& name) {
  pqxx::connection c(conninfo("postgres"));
  pqxx::nontransaction n(c);
  n.exec("DROP DATABASE IF EXISTS " + n.quote_name(name));
  n.exec("CREATE DATABASE " + n.quote_name(name));
  return conninfo(name);
}

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
