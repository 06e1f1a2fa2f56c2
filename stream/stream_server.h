#pragma once
/// The alert stream: one Boost.Beast server thread on the configured address.
///
///   GET /v1/stream   WebSocket upgrade. `Authorization: Bearer TOKEN` (401 before the upgrade when
///                    missing or wrong; 403 when the filter names a user outside the token's
///                    scope). Query: user_id, market_id, type (comma lists), since=SEQ. A JSON text
///                    message from the client replaces the filter. Events newer than `since` come
///                    from the in-memory ring or, beyond it, the alert_events journal; then live.
///   GET /metrics     Prometheus text format.
///   GET /healthz     200 + JSON when feeds are live and the database reachable; 503 + reason.
///
/// Each subscriber has a bounded queue; when it is full the subscriber is closed with 1008 and a
/// reason naming the `since` to resume from. The matcher never waits for the server (event_bus.h).
/// A subscriber joins the fan-out only once its WebSocket handshake completed: before that it
/// receives nothing and cannot be closed (a frame written while Beast's stream is still in its
/// client role goes out masked). Resume logic lives in subscription.h; the Beast code in
/// stream_server.cpp, http_session.cpp and ws_session.cpp.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "stream/event_bus.h"
#include "stream/journal_reader.h"
#include "stream/stage_latency.h"
#include "stream/stream_config.h"

namespace lam::daemon {

struct ServerStats {
  std::atomic<std::uint64_t> subscribers{0};       ///< gauge
  std::atomic<std::uint64_t> open_connections{0};  ///< gauge: HTTP and WebSocket
  std::atomic<std::uint64_t> connections{0}, auth_failures{0}, forbidden{0}, bad_requests{0},
      events_published{0}, events_sent{0}, slow_cuts{0}, resumes{0}, journal_reads{0}, bus_gaps{0},
      accept_errors{0}, refused_connections{0}, ahead_refusals{0}, not_journaled_cuts{0};
  std::atomic<std::uint64_t> latency_count{0};
  std::atomic<double> latency_p50_us{0}, latency_p90_us{0}, latency_p99_us{0}, latency_p999_us{0},
      latency_max_us{0};  ///< bucket upper bounds
  /// By stage (stream/stage_latency.h's Stage order: queue, matcher, bus): each stage's p50, p99
  /// (bucket upper bound), the events slower than 1 ms whose largest stage it was, and its time
  /// summed over those slow events.
  std::array<std::atomic<double>, kStages> stage_p50_us{}, stage_p99_us{};
  std::array<std::atomic<std::uint64_t>, kStages> slow_events{};
  std::array<std::atomic<double>, kStages> slow_stage_us{};
};

/// What a test may do on the server thread at a chosen moment (ServerHooks::before_accept).
class ServerProbe {
 public:
  virtual ~ServerProbe() = default;
  /// Publishes `p` now, as if drained from the bus.
  virtual void publish(const Published& p) = 0;
  /// What stop() does first: refuse new subscribers, close everyone with 1001.
  virtual void begin_stop() = 0;
};

struct ServerHooks {
  /// Appends the other components' metrics (feeds, queues, engine, writer) to /metrics.
  std::function<void(std::string&)> metrics;
  /// Fills a JSON body for /healthz; returns true when healthy.
  std::function<bool(std::string&)> health;
  /// Tests only: runs on the server thread after an upgrade request was authorised, before the
  /// WebSocket accept starts (the window of the old masked-frame race).
  std::function<void(ServerProbe&)> before_accept;
  /// Runs on the server thread for every event as it enters the ring (the shard's JetStream
  /// publisher taps the stream here). Must be cheap and never block.
  std::function<void(const Entry&)> on_publish;
  /// The highest seq that exists beyond the ring (Subscription's `known_head`; the gateway's:
  /// the stream's last seq). Unset: the ring's head.
  std::function<std::uint64_t()> known_head;
  /// Every event up to this seq is journaled (the daemon's: the writer's). `committed=1`
  /// subscribers receive nothing beyond it. Unset: every event is (the gateway's come from
  /// JetStream, stored).
  std::function<std::uint64_t()> committed_head;
};

class StreamServer {
 public:
  /// `last_seq`: the last seq published before this run (resume with since >= it is live at once).
  /// `journal` may be null (no resume beyond the ring).
  StreamServer(const StreamConfig& cfg, EventBus& bus, JournalReader* journal, ServerHooks hooks,
               std::uint64_t last_seq);
  /// The gateway's: events arrive rendered (their seq is the JetStream stream sequence).
  StreamServer(const StreamConfig& cfg, EntryBus& entries, JournalReader* journal,
               ServerHooks hooks, std::uint64_t last_seq);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  /// Binds and starts the server thread. Throws std::runtime_error when it cannot bind.
  void start();
  /// Publishes what is left on the bus, closes every subscriber with 1001, joins (<= deadline).
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(2));
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] const ServerStats& stats() const noexcept;

 private:
  std::unique_ptr<struct ServerCore> impl_;
};

}  // namespace lam::daemon
