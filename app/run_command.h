#pragma once
/// `laminator run`, `laminator config check` and `laminator tail`.

#include <cstdint>
#include <optional>
#include <string>

namespace lam::app {

struct RunOptions {
  std::string config_path;
  double status_every_s = 5;  ///< periodic one-line status on stderr (0: off)
};
/// Runs the daemon until SIGTERM/SIGINT; returns the exit status.
int run_daemon(const RunOptions& opt);

/// Validates a config file; prints `file:line: what is wrong` or a summary. Exit status.
int check_config(const std::string& path);

struct TailOptions {
  std::string url;  ///< ws://host:port/v1/stream[?filters]
  std::string token;
  std::optional<std::uint64_t> since;
  std::uint64_t count = 0;    ///< stop after this many events (0: never)
  double idle_timeout_s = 0;  ///< stop after this long without an event (0: never)
  bool resume = true;  ///< reconnect with since=<last seq> after the server closes or cuts us
};
int run_tail(const TailOptions& opt);

}  // namespace lam::app
