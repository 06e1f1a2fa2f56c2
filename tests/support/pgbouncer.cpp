#include "tests/support/pgbouncer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/net.h"

extern char** environ;

namespace lam::test {

PgBouncer::PgBouncer(const std::string& shipped_ini, const std::string& socket_dir, int server_port,
                     const std::string& dbname)
    : dbname_(dbname) {
  char tmpl[] = "/tmp/laminator-pgbouncer-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  ::chmod(dir_.c_str(), 0777);  // the postgres user writes its log here
  port_ = free_port();
  {
    // The shipped file line by line, with the addresses, authentication and files replaced (a
    // second [pgbouncer] section after an %include would reset every setting to its default).
    const std::map<std::string, std::string> overrides{{"listen_port", std::to_string(port_)},
                                                       {"auth_type", "trust"},
                                                       {"auth_file", dir_ + "/userlist.txt"},
                                                       {"logfile", dir_ + "/pgbouncer.log"},
                                                       {"pidfile", ""}};
    std::ifstream in(shipped_ini);
    if (!in) throw std::runtime_error("cannot read " + shipped_ini);
    std::ofstream ini(dir_ + "/pgbouncer.ini");
    std::string section;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line[0] == '[') {
        if (section == "[pgbouncer]") {
          for (const auto& [k, v] : overrides) ini << k << " = " << v << "\n";
        }
        section = line.substr(0, line.find(']') + 1);
        ini << line << "\n";
        if (section == "[databases]") {
          ini << dbname << " = host=" << socket_dir << " port=" << server_port
              << " dbname=" << dbname << " user=postgres\n";
        }
        continue;
      }
      const std::size_t eq = line.find('=');
      std::string key = eq == std::string::npos ? "" : line.substr(0, eq);
      while (!key.empty() && key.back() == ' ') key.pop_back();
      if (section == "[databases]" && !key.empty() && key[0] != ';') continue;  // ours only
      if (overrides.count(key) != 0) continue;
      ini << line << "\n";
    }
    if (section == "[pgbouncer]") {
      for (const auto& [k, v] : overrides) ini << k << " = " << v << "\n";
    }
    std::ofstream(dir_ + "/userlist.txt") << "\"postgres\" \"\"\n";
  }
  ::chmod((dir_ + "/pgbouncer.ini").c_str(), 0644);
  ::chmod((dir_ + "/userlist.txt").c_str(), 0644);
  std::vector<std::string> args{"/usr/sbin/pgbouncer"};
  if (::geteuid() == 0) {
    args.emplace_back("-u");
    args.emplace_back("postgres");
  }
  args.push_back(dir_ + "/pgbouncer.ini");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string out = dir_ + "/stdout.log";
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  const int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error("cannot run /usr/sbin/pgbouncer (apt-get install pgbouncer)");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!loopback_accepts(port_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("pgbouncer exited:\n" + log());
    }
    if (std::chrono::steady_clock::now() > until)
      throw std::runtime_error("pgbouncer did not listen:\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

PgBouncer::~PgBouncer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string PgBouncer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname_ + " user=postgres";
}

std::string PgBouncer::log() const {
  std::ostringstream s;
  for (const char* f : {"/stdout.log", "/pgbouncer.log"}) {
    std::ifstream in(dir_ + f);
    s << in.rdbuf();
  }
  return s.str();
}

}  // namespace lam::test
