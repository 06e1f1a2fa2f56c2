#pragma once
// A child process for tests and benchmark workloads: spawned with extra environment, stderr (and
// stdout) to a log file, signalled and reaped. Loopback servers (nats-server, the laminator binary)
// run as these.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace lam::testbed {

/// The last `lines` lines of `all`.
inline std::string last_lines(const std::string& all, std::size_t lines) {
  std::size_t at = all.size();
  for (std::size_t n = 0; n <= lines && at > 0;) {
    at = all.rfind('\n', at - 1);
    if (at == std::string::npos) return all;
    ++n;
  }
  return all.substr(at + 1);
}

class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill(); }

  void spawn(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
             const std::string& log) {
    kill();
    log_ = log;
    std::vector<std::string> a = args;
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = extra_env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    const int rc = posix_spawn(&pid_, a[0].c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot spawn " + a[0]);
  }

  /// Sends `sig`; returns the exit status if the process ends within `limit` (else -1).
  int signal_and_wait(int sig, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  [[nodiscard]] bool running() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
  [[nodiscard]] std::string log_text() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  /// The last `lines` lines of the log.
  [[nodiscard]] std::string log_tail(std::size_t lines = 40) const {
    return last_lines(log_text(), lines);
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

}  // namespace lam::testbed
