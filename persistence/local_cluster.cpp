#include "persistence/local_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>

namespace lam::db {
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool valid_size(const std::string& s) {
  const std::size_t digits = s.find_first_not_of("0123456789");
  if (digits == 0 || digits == std::string::npos) return false;
  const std::string unit = s.substr(digits);
  return unit == "MB" || unit == "GB";
}

}  // namespace

std::string LocalCluster::find_binaries() {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (fs::exists(e.path() / "bin" / "initdb")) {
      found.emplace_back(std::stoi(name), (e.path() / "bin").string());
    }
  }
  if (found.empty()) {
    throw std::runtime_error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install "
        "postgresql)");
  }
  return std::max_element(found.begin(), found.end())->second;
}

LocalCluster::LocalCluster(LocalClusterOptions opt) : bin_(find_binaries()) {
  if (!valid_size(opt.shared_buffers)) {
    throw std::invalid_argument("shared_buffers must be digits and MB or GB: " +
                                opt.shared_buffers);
  }
  char tmpl[] = "/tmp/laminator-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  as_postgres_ = ::geteuid() == 0;
  if (as_postgres_ && run("chown postgres: " + dir_, false) != 0) {
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  }
  // The socket file's name carries the port number; any number works in a private directory.
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
       << "fsync = " << (opt.fsync ? "on" : "off") << "\n"
       << "shared_buffers = " << opt.shared_buffers << "\n"
       << "max_connections = " << opt.max_connections << "\n"
       << opt.extra_conf;
  conf.close();
  start();
}

LocalCluster::~LocalCluster() {
  if (running_) run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate stop >/dev/null 2>&1", true);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

int LocalCluster::run(const std::string& cmd, bool as_server_user) const {
  std::string full = cmd;
  if (as_server_user && as_postgres_) full = "runuser -u postgres -- sh -c '" + cmd + "'";
  return std::system(full.c_str());
}

void LocalCluster::start() {
  if (run(bin_ + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
              "/server.log -w -t 60 start >/dev/null 2>&1",
          true) != 0) {
    throw std::runtime_error("PostgreSQL did not start:\n" + slurp(dir_ + "/server.log"));
  }
  running_ = true;
}

void LocalCluster::kill() {
  run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate stop >/dev/null 2>&1", true);
  running_ = false;
}

std::string LocalCluster::version() const {
  std::string out;
  if (std::FILE* p = ::popen((bin_ + "/postgres --version").c_str(), "r")) {
    char buf[128];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ::pclose(p);
  }
  // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n" -> "15.14"
  const std::size_t close = out.find(") ");
  if (close == std::string::npos) return "unknown";
  const std::size_t start = close + 2;
  const std::size_t end = out.find_first_of(" \n", start);
  return out.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string LocalCluster::conninfo(const std::string& db) const {
  return "host=" + dir_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + db;
}

std::string LocalCluster::create_database(const std::string& name) {
  pqxx::connection c(conninfo("postgres"));
  pqxx::nontransaction n(c);
  n.exec("DROP DATABASE IF EXISTS " + n.quote_name(name));
  n.exec("CREATE DATABASE " + n.quote_name(name));
  return conninfo(name);
}

}  // namespace lam::db
