#pragma once
/// `laminator run`: builds and wires every component from a validated Config (the composition root
/// of the daemon), runs until asked to stop, and shuts down in order.
///
/// Start-up: migrate check (or apply), crash recovery (crash_ring.h), bulk load of markets, open
/// positions and active alerts, then the writer, listener, matcher thread, stream server and the
/// feeds. Shutdown: feeds stop, the matcher drains the tick queue, the server publishes what is
/// left and closes subscribers with 1001, the writer flushes, all within ~5 s.

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/config.h"
#include "stream/stage_latency.h"

namespace lam::daemon {

/// One line for people: ticks/s, events, alerts fired, p99 latency, subscribers, writer lag.
struct StatusLine {
  double ticks_per_s = 0;
  double events_per_s = 0;    ///< since the previous status line
  double commands_per_s = 0;  ///< the bot's changes applied (listener commands)
  std::uint64_t ticks = 0, held = 0, events = 0, fired = 0, liquidations = 0, subscribers = 0;
  /// The stream server's receive -> publish histogram since start (bucket upper bounds, us).
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::uint64_t latency_count = 0;  ///< events in that histogram
  /// By stage (queue, matcher, bus; stream/stage_latency.h): p50, p99, the events slower than 1 ms
  /// whose largest stage it was, and the stage's time summed over those slow events (us).
  std::array<double, kStages> stage_p50_us{}, stage_p99_us{};
  std::array<std::uint64_t, kStages> slow_events{};
  std::array<double, kStages> slow_stage_us{};
  std::uint64_t writer_pending = 0;
  [[nodiscard]] std::string format() const;
};

class Daemon {
 public:
  explicit Daemon(Config cfg);
  ~Daemon();  ///< stop()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Runs the start-up sequence; throws (std::runtime_error, pqxx errors) when it cannot start.
  void start();
  /// Orderly shutdown (idempotent).
  void stop();
  /// Port the alert stream listens on (after start()).
  [[nodiscard]] std::uint16_t stream_port() const;
  /// Snapshot for the periodic status line (any thread).
  [[nodiscard]] StatusLine status();

  struct Parts;
  struct Loaded;

 private:
  // The start-up sequence, in order (start() is only these three).
  /// Schema checked or migrated, a shard's journal schema, crash recovery: the first seq of this
  /// run.
  std::uint64_t open_database();
  /// Markets, positions, alerts, orders and balances into a new matcher; which feeds they need.
  void load_state(std::uint64_t first_seq, Loaded& out);
  /// Queues, writer, listener, feeds, the matcher thread, the stream server (and the JetStream
  /// publisher), maintenance; started from the back of the pipeline to the front.
  void start_threads(std::uint64_t first_seq, Loaded& loaded);

  void render_metrics(std::string& out) const;  ///< server thread, via ServerHooks
  bool health(std::string& out) const;          ///< server thread, via ServerHooks

  Config cfg_;
  std::unique_ptr<Parts> p_;
};

}  // namespace lam::daemon
