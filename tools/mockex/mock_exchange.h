#pragma once
/// A local mock exchange: one WebSocket server on loopback that speaks each venue's protocol on the
/// venue's own path (Binance /market/stream and /public/stream, Bybit /v5/public/linear, OKX
/// /ws/v5/public, Hyperliquid /ws, Coinbase /, Pyth Hermes /hermes/ws): subscribe acks and error
/// acks, the venue's ping
/// rules, generated or replayed pushes at a set rate (or as fast as the socket takes them), and
/// fault modes. Runs its own thread; counters are atomics.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "feeds/venue.h"

namespace lam::mockex {

using feeds::kVenueCount;
using feeds::Venue;

/// Misbehaviour for a venue's connections.
struct Faults {
  std::uint32_t connections = 1;     ///< apply to the first N connections of the venue (0: all)
  std::uint64_t drop_after = 0;      ///< drop the TCP connection after N data frames
  bool silent_after_ack = false;     ///< ack subscriptions, then push nothing
  std::uint32_t garbage_every = 0;   ///< every Nth data frame is replaced by garbage text
  std::uint32_t truncate_every = 0;  ///< every Nth data frame is cut in half
  std::uint64_t close_after = 0;     ///< WebSocket close after N data frames ...
  std::uint16_t close_code = 1000;   ///< ... with this code (OKX 4004, ...)
  bool notice_before_close = false;  ///< OKX: send the 64008 notice instead of closing
  std::uint32_t skip_seq_every = 0;  ///< every Nth data frame skips a sequence id
  bool reject_subscribe = false;     ///< answer subscribes with the venue's error ack
  std::uint64_t stall_after = 0;     ///< after N data frames push nothing (connection stays open)
  /// Pyth: after N data frames send Hermes' rate-limit frame (it has no `type`) and close
  std::uint64_t rate_limit_after = 0;
};

struct Options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;        ///< 0: an ephemeral port
  double rate = 1000;            ///< data frames per second per connection (0: as fast as possible)
  std::uint64_t max_frames = 0;  ///< data frames per connection, then quiet (0: no limit)
  std::uint32_t bybit_snapshot_every = 100;
  std::uint64_t binance_max_msgs_per_s = 10;  ///< more client messages in a second: disconnect
  std::chrono::milliseconds coinbase_subscribe_deadline{5'000};
  std::chrono::milliseconds heartbeat_every{1'000};   ///< Coinbase heartbeats
  std::chrono::milliseconds pyth_ping_every{30'000};  ///< Hermes' WebSocket pings
  /// Pyth: when set, the handshake must carry `Authorization: Bearer <key>` (else HTTP 401), as
  /// Hermes has required since 2026-08-18.
  std::string pyth_api_key;
  std::array<Faults, kVenueCount> faults{};
  /// Replay instead of generating: "venue/route" -> data frames, pushed in order (looping).
  std::map<std::string, std::vector<std::string>> replay;
  std::uint64_t seed = 42;
  /// Random-walk mode (the demo): each generated frame moves its symbol's venue-wide price by up
  /// to this many basis points (0: the quiet +-2 cent walk per connection the tests pin against).
  double walk_bps = 0;
  /// Blaster mode for throughput benchmarks: > 1 pre-encodes this many data frames as raw
  /// WebSocket frames and writes them with one socket write (the wire format is the same: one
  /// WebSocket message per frame). 1: one Beast write per frame. The raw writes bypass Beast's
  /// own write serialization, so a control frame Beast answers by itself (the client's close or
  /// ping) must not arrive while the mock is still pumping: stop() the mock before the client
  /// closes (its close handshake then times out), or let the data run out (max_frames) first.
  std::uint32_t frames_per_write = 1;
  /// The mock's thread's nice value (0: unchanged; 1..19: it yields the CPU to the daemon it
  /// drives when both want it, as a load generator on another machine would).
  int nice = 0;
  /// Called on the mock's thread with every data frame as it is handed to the socket (benchmarks
  /// time wire-to-subscriber latency with it). Must be cheap.
  std::function<void(const std::string&)> on_data_frame;
  /// TLS: when both are set, the server also listens on tls_port() for wss:// (PEM files; the
  /// certificate file may hold the chain). TLS is terminated there and relayed to the plain server,
  /// so every venue path behaves the same on both.
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct VenueCounters {
  std::atomic<std::uint64_t> connections{0}, open{0}, subscribes{0}, frames{0}, pings{0},
      rejected_for_rate{0}, unauthorized{0}, pongs{0};
};

class MockExchange {
 public:
  explicit MockExchange(Options opt);
  ~MockExchange();  ///< stops
  MockExchange(const MockExchange&) = delete;
  MockExchange& operator=(const MockExchange&) = delete;

  /// Binds and starts the server thread. Throws std::runtime_error when it cannot bind.
  void start();
  void stop();
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The wss:// port (0 without Options::tls_cert_file).
  [[nodiscard]] std::uint16_t tls_port() const noexcept { return tls_port_; }
  /// ws:// URL of a venue route on this server (routes as in feeds::venue_routes()); with `tls`,
  /// the wss:// URL of the same route on tls_port().
  [[nodiscard]] std::string url(Venue v, const std::string& route, bool tls = false) const;
  [[nodiscard]] const VenueCounters& counters(Venue v) const {
    return counters_[static_cast<std::size_t>(v)];
  }
  /// Replaces a venue's faults for connections accepted from now on (thread-safe).
  void set_faults(Venue v, const Faults& f);
  /// Pins `symbol`'s generated price (1e-2 units; <= 0 releases) on every connection, from the next
  /// frame on (thread-safe; generated frames only).
  void pin_price(const std::string& symbol, std::int64_t cents);
  /// Sets a symbol's funding rate (decimal text) on every connection from their next frame on.
  void pin_funding(const std::string& symbol, const std::string& rate);
  /// Pyth: publish times `lag` behind the clock from the next frame on (thread-safe): updates
  /// arrive but age, as when the oracle network stalls.
  void set_pyth_publish_lag(std::chrono::seconds lag);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::uint16_t tls_port_ = 0;
  std::array<VenueCounters, kVenueCount> counters_;
};

/// Loads capture files (feeds/capture.h) into Options::replay, keeping only market-data frames.
void load_replay(Options& opt, const std::vector<std::string>& capture_files);

}  // namespace lam::mockex
