#pragma once
/// `laminator gateway`: the alert-stream server (auth, scopes, filters, `since`, slow consumers,
/// /metrics, /healthz) fed by a durable JetStream consumer over every shard instead of a matcher
/// (docs/operations.md, "Scale out"). Its `seq` is the JetStream stream sequence; each event also
/// carries its `shard` and `shard_seq` (docs/events.md, "Through JetStream").

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/config.h"

namespace lam::daemon {

struct GatewayStatus {
  std::uint64_t head = 0;         ///< the last stream seq published to subscribers
  std::uint64_t stream_last = 0;  ///< the stream's last seq when last seen
  std::uint64_t subscribers = 0;
  double events_per_s = 0;  ///< since the previous status
  [[nodiscard]] std::string format() const;
};

class Gateway {
 public:
  explicit Gateway(Config cfg);
  ~Gateway();  ///< stop()
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  /// Connects to JetStream, creates or checks the stream and the durable consumer, starts the
  /// server. Throws std::runtime_error when it cannot.
  void start();
  void stop();
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] GatewayStatus status();

  struct Parts;

 private:
  Config cfg_;
  std::unique_ptr<Parts> p_;
};

}  // namespace lam::daemon
