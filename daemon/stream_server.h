#pragma once
/// The alert stream: one Boost.Beast server thread on the configured address.
///
///   GET /v1/stream   WebSocket upgrade. `Authorization: Bearer TOKEN` (401 before the upgrade when
///                    missing or wrong; 403 when the filter names a user outside the token's scope).
///                    Query: user_id, market_id, type (comma lists), since=SEQ. A JSON text message
///                    from the client replaces the filter. Events newer than `since` come from the
///                    in-memory ring or, beyond it, the alert_events journal; then live.
///   GET /metrics     Prometheus text format.
///   GET /healthz     200 + JSON when feeds are live and the database reachable; 503 + reason.
///
/// Each subscriber has a bounded queue; when it is full the subscriber is closed with 1008 and a
/// reason naming the `since` to resume from. The matcher never waits for the server (event_bus.h).
/// The Beast code stays in stream_server.cpp.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/config.h"
#include "daemon/event_bus.h"
#include "daemon/journal_reader.h"

namespace lam::daemon {

struct ServerStats {
  std::atomic<std::uint64_t> subscribers{0};  ///< gauge
  std::atomic<std::uint64_t> connections{0}, auth_failures{0}, forbidden{0}, bad_requests{0},
      events_published{0}, events_sent{0}, slow_cuts{0}, resumes{0}, journal_reads{0},
      bus_gaps{0};
  std::atomic<std::uint64_t> latency_count{0};
  std::atomic<double> latency_p50_us{0}, latency_p99_us{0}, latency_p999_us{0};
};

struct ServerHooks {
  /// Appends the other components' metrics (feeds, queues, engine, writer) to /metrics.
  std::function<void(std::string&)> metrics;
  /// Fills a JSON body for /healthz; returns true when healthy.
  std::function<bool(std::string&)> health;
};

class StreamServer {
 public:
  /// `last_seq`: the last seq published before this run (resume with since >= it is live at once).
  /// `journal` may be null (no resume beyond the ring).
  StreamServer(const StreamConfig& cfg, EventBus& bus, JournalReader* journal, ServerHooks hooks,
               std::uint64_t last_seq);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  /// Binds and starts the server thread. Throws std::runtime_error when it cannot bind.
  void start();
  /// Publishes what is left on the bus, closes every subscriber with 1001, joins (<= deadline).
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(2));
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] const ServerStats& stats() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lam::daemon
