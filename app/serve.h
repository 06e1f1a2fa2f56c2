#pragma once
/// What `laminator run` and `laminator gateway` (and `laminator-gateway`) share: the stop flag
/// their signal handlers set, and the loop that loads the config, starts the server and reports
/// status.

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "app/run_command.h"
#include "daemon/config.h"
#include "scaleout/jetstream.h"

namespace lam::app {

/// Set by SIGTERM/SIGINT (on_signal).
inline volatile std::sig_atomic_t g_stop = 0;
inline void on_signal(int) {
  g_stop = 1;
}

/// Loads the config with `load` (exit 2 on an error), then starts `Server` (daemon or gateway) and
/// runs it until SIGTERM/SIGINT with a status line every `status_every_s`. `check` validates what
/// start() needs from the environment; `redact` cleans a start-up error for the log.
template <class Server>
inline int serve(
    const RunOptions& opt, daemon::Config (*load)(const std::string&),
    const std::function<void(const daemon::Config&)>& check,
    const std::function<std::string(const daemon::Config&, const std::string&)>& redact) {
  daemon::Config cfg;
  try {
    cfg = load(opt.config_path);
    check(cfg);
  } catch (const daemon::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  const daemon::Config kept = cfg;
  auto owned = std::make_unique<Server>(std::move(cfg));
  Server& server = *owned;
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::error("start-up failed: {}", redact(kept, e.what()));
    return 2;
  }
  auto next_status = std::chrono::steady_clock::now();
  const auto every = std::chrono::duration<double>(opt.status_every_s);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (opt.status_every_s > 0 && std::chrono::steady_clock::now() >= next_status) {
      next_status += std::chrono::duration_cast<std::chrono::steady_clock::duration>(every);
      spdlog::info("status: {}", server.status().format());
    }
  }
  // The whole time from the signal to the exit, stop and teardown (threads joined, sockets closed)
  // apart: the stop's own line ("stopped in") does not see the teardown.
  const auto t0 = std::chrono::steady_clock::now();
  spdlog::info("signal received: shutting down");
  server.stop();
  const auto t1 = std::chrono::steady_clock::now();
  owned.reset();
  daemon::close_nats_library(std::chrono::seconds(1));  // its threads must not outlive main()
  const auto t2 = std::chrono::steady_clock::now();
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  spdlog::info("exit: {} ms after the signal (stop {} ms, teardown {} ms)", ms(t2 - t0),
               ms(t1 - t0), ms(t2 - t1));
  return 0;
}

}  // namespace lam::app
