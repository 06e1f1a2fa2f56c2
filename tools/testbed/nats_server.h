#pragma once
// A real `nats-server -js` on a loopback port, its JetStream files in a directory of its own:
// started, stopped, killed and started again on the same port and store (the scale-out tests'
// outages). Debian's nats-server (scripts/setup installs it).

#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/net.h"
#include "tools/testbed/process.h"

namespace lam::test {

class NatsServer {
 public:
  explicit NatsServer(const std::string& dir) : dir_(dir), port_(free_port()) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/store");
    start();
  }
  ~NatsServer() { child_.kill(); }

  void start() {
    child_.spawn(
        {binary(), "-a", "127.0.0.1", "-p", std::to_string(port_), "-js", "-sd", dir_ + "/store"},
        {}, dir_ + "/nats.log");
    for (int i = 0; i < 400 && !loopback_accepts(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!loopback_accepts(port_))
      throw std::runtime_error("nats-server did not start:\n" + child_.log_tail());
  }
  /// SIGTERM (lame-duck off: a plain shutdown) and wait.
  void stop() { child_.signal_and_wait(SIGTERM); }
  /// SIGKILL: nothing flushed, nothing said goodbye.
  void kill() { child_.kill(); }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log_tail() const { return child_.log_tail(); }

  static std::string binary() {
    for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"})
      if (std::filesystem::exists(p)) return p;
    throw std::runtime_error("nats-server is not installed (scripts/setup)");
  }

 private:
  std::string dir_;
  int port_;
  Child child_;
};

}  // namespace lam::test
