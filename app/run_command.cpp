#include "app/run_command.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "app/serve.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "persistence/database_url.h"
#include "stream/stream_client.h"

namespace lam::app {
namespace {

/// The "seq" of an event line (0 if absent).
std::uint64_t seq_of(const std::string& json) {
  const auto at = json.find("\"seq\":");
  return at == std::string::npos ? 0 : std::strtoull(json.c_str() + at + 6, nullptr, 10);
}

}  // namespace

int check_config(const std::string& path) {
  try {
    const daemon::Config c = daemon::load_config(path);
    std::printf("%s\n", daemon::redacted_summary(c).c_str());
    return 0;
  } catch (const daemon::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}

int run_daemon(const RunOptions& opt) {
  return serve<daemon::Daemon>(
      opt, &daemon::load_config, [](const daemon::Config& c) { (void)daemon::database_url(c); },
      [](const daemon::Config& c, const std::string& what) {
        return lam::db::redact_secrets(what, daemon::database_url(c));
      });
}

int run_tail(const TailOptions& opt) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::optional<std::uint64_t> since = opt.since;
  std::uint64_t printed = 0;
  auto last_event = std::chrono::steady_clock::now();
  while (!g_stop) {
    std::string url = opt.url;
    if (since)
      url += std::string(url.find('?') == std::string::npos ? "?" : "&") +
             "since=" + std::to_string(*since);
    try {
      daemon::StreamClient c(url, opt.token);
      while (!g_stop) {
        auto msg = c.next(std::chrono::milliseconds(200));
        if (c.timed_out()) {
          if (opt.idle_timeout_s > 0 && std::chrono::steady_clock::now() - last_event >
                                            std::chrono::duration<double>(opt.idle_timeout_s))
            return 0;
          continue;
        }
        if (!msg) {
          std::fprintf(stderr, "tail: server closed the stream: %d %s\n", c.close_code(),
                       c.close_reason().c_str());
          // A since beyond the stream's head will not get better by retrying (docs/events.md).
          if (c.close_reason().rfind("since ahead", 0) == 0) return 3;
          break;
        }
        std::fwrite(msg->data(), 1, msg->size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        last_event = std::chrono::steady_clock::now();
        if (const auto s = seq_of(*msg); s > 0) since = s;
        if (opt.count > 0 && ++printed >= opt.count) return 0;
      }
    } catch (const daemon::StreamRefused& e) {
      std::fprintf(stderr, "tail: %s\n", e.what());
      if (e.status == 401 || e.status == 403 || e.status == 400) return 3;
    }
    if (!opt.resume || g_stop) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return 0;
}

}  // namespace lam::app
