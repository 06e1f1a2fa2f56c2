#pragma once
// A real `nats-server -js` on a loopback port, its JetStream files in a directory of its own:
// started, stopped, killed and started again on the same port and store (the scale-out tests'
// outages), or a throwaway one in a temporary directory (the fan-in benchmark). Debian's
// nats-server (scripts/setup installs it).

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "tools/mockex/loopback.h"
#include "tools/testbed/process.h"

namespace lam::testbed {

class NatsServer {
 public:
  /// `dir` empty: a temporary directory, removed with the server. `binary` empty: Debian's.
  /// `config`: more of nats-server's configuration (an `authorization` block, say); with it the
  /// server runs from a config file.
  explicit NatsServer(std::string dir = {}, std::string binary = {}, std::string config = {})
      : dir_(std::move(dir)),
        binary_(binary.empty() ? default_binary() : std::move(binary)),
        config_(std::move(config)) {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/laminator-nats-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
      dir_ = tmpl;
      owned_ = true;
    } else {
      std::filesystem::remove_all(dir_);
    }
    if (!std::filesystem::exists(binary_))
      throw std::runtime_error(binary_ + " not found (Debian package nats-server)");
    std::filesystem::create_directories(dir_ + "/store");
    port_ = mockex::free_port();
    start();
  }
  ~NatsServer() {
    child_.kill();
    if (owned_) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  void start() {
    if (config_.empty()) {
      child_.spawn(
          {binary_, "-a", "127.0.0.1", "-p", std::to_string(port_), "-js", "-sd", dir_ + "/store"},
          {}, dir_ + "/nats.log");
    } else {
      const std::string conf = dir_ + "/nats.conf";
      std::ofstream(conf) << "listen: 127.0.0.1:" << port_ << "\njetstream {\n  store_dir: \""
                          << dir_ << "/store\"\n}\n"
                          << config_;
      child_.spawn({binary_, "-c", conf}, {}, dir_ + "/nats.log");
    }
    for (int i = 0; i < 400 && !mockex::loopback_accepts(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    if (!mockex::loopback_accepts(port_))
      throw std::runtime_error("nats-server did not start:\n" + child_.log_tail());
  }
  /// SIGTERM (lame-duck off: a plain shutdown) and wait.
  void stop() { child_.signal_and_wait(SIGTERM); }
  /// SIGKILL: nothing flushed, nothing said goodbye.
  void kill() { child_.kill(); }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  /// The URL with a user's credentials (an `authorization` block's user).
  [[nodiscard]] std::string url_as(const std::string& user, const std::string& password) const {
    return "nats://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_);
  }
  [[nodiscard]] std::string log_tail(std::size_t lines = 40) const {
    return child_.log_tail(lines);
  }

  static std::string default_binary() {
    for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"})
      if (std::filesystem::exists(p)) return p;
    return "/usr/sbin/nats-server";
  }

 private:
  std::string dir_;
  std::string binary_;
  std::string config_;
  bool owned_ = false;
  int port_ = 0;
  Child child_;
};

}  // namespace lam::testbed
