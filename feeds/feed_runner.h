#pragma once
/// Feed threads: a `FeedRunner` owns one thread, its io_context, and the connections added to it.
/// Each connection runs one venue route: connect, subscribe (paced to the venue's outgoing rate),
/// decode every frame into the tick queue, keep health per symbol, ping by the venue's rules,
/// reconnect with capped, jittered backoff after a drop, an idle timeout or a venue notice, and
/// optionally record every frame. Counters are atomics, readable from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "feeds/decoder.h"
#include "feeds/protocol.h"
#include "feeds/tick_queue.h"
#include "feeds/ws_client.h"

namespace lam::feeds {

/// One connection: a venue route, its URL, its symbols, and its rules.
struct ConnectionConfig {
  Venue venue = Venue::binance;
  std::string route;  ///< a name from venue_routes(venue)
  std::string url;    ///< ws:// or wss://
  VenueRules rules;
  std::uint8_t kinds = 0;  ///< TickKinds this route supplies (state events carry it)
  Millis backoff_initial{250};
  Millis backoff_max{30'000};
  Millis stable_after{10'000};  ///< connected this long: the next drop retries immediately again
  WsClientOptions client;
  OracleLimits oracle;  ///< oracle sources (Pyth): updates beyond these hold the market
};

/// A connection's counters (monotonic unless noted).
struct ConnectionCounters {
  std::atomic<std::uint64_t> frames{0}, bytes{0}, ticks{0}, malformed{0}, bad_values{0},
      unknown_symbol{0}, out_of_order{0}, gaps{0}, rejected{0}, unexpected{0}, unsized{0},
      rounded{0}, oracle_stale{0}, oracle_uncertain{0}, connects{0}, opens{0}, disconnects{0},
      idle_timeouts{0}, notices{0}, pings{0}, pongs{0}, queue_drops{0};
  std::atomic<std::uint8_t> connected{0};       ///< gauge: 1 while the socket is open
  std::atomic<std::uint32_t> live_symbols{0};   ///< gauge
  std::atomic<std::uint32_t> stale_symbols{0};  ///< gauge
  std::atomic<std::uint32_t> oracle_held{0};  ///< gauge: stale for an oracle update too old or wide
  std::atomic<std::int64_t> last_frame_ns{0};  ///< wall clock of the last frame
};

struct RunnerOptions {
  Millis housekeeping{100};  ///< watchdog/pacing period
  std::string record_dir;    ///< non-empty: record every frame there
  std::uint64_t record_rotate_bytes = std::uint64_t{64} << 20;
  std::uint64_t seed = 0x1a2b3c4d;  ///< backoff jitter seed
};

class FeedRunner {
 public:
  FeedRunner(RunnerOptions opt, TickQueue& queue);
  ~FeedRunner();  ///< stops if running
  FeedRunner(const FeedRunner&) = delete;
  FeedRunner& operator=(const FeedRunner&) = delete;

  /// Adds a connection (before start()). The decoder's symbol map defines the symbols.
  /// Returns its index for counters().
  std::size_t add(ConnectionConfig cfg, SymbolMap symbols);
  /// Starts the thread; connections connect at once.
  void start();
  /// Closes every connection (1000), flushes the capture, joins. Idempotent.
  void stop();

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] const ConnectionCounters& counters(std::size_t i) const;
  [[nodiscard]] const ConnectionConfig& config(std::size_t i) const;
  /// Frames recorded so far (0 when not recording); valid after stop() or from the feed thread.
  [[nodiscard]] std::uint64_t recorded_frames() const;

  struct Impl;  ///< defined in feed_runner.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lam::feeds
