#pragma once
/// Scale-out's configuration (`[nats]`, `[gateway]`): defaults here, parsed from TOML by
/// daemon/config.cpp. The shard map (`[shard]`) is scaleout/shard.h.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lam::daemon {

using Millis = std::chrono::milliseconds;

/// JetStream (docs/operations.md, "Scale out"): where a shard publishes and the gateway consumes.
struct NatsConfig {
  std::string url;  ///< nats:// or tls:// (credentials allowed); from `url_env` when empty
  std::string url_env = "LAMINATOR_NATS_URL";
  std::string ca_file;  ///< tls://: the CA bundle that verifies the server (default: system's)
  std::string stream = "LAMINATOR";
  std::string subject_prefix = "laminator.events";  ///< a shard publishes to <prefix>.<shard id>
  enum class Storage : std::uint8_t { file, memory } storage = Storage::file;
  int replicas = 1;
  std::uint32_t max_age_hours = 168;     ///< the stream's retention (the gateway's journal)
  std::int64_t max_bytes = -1;           ///< -1: unlimited
  Millis duplicate_window{120'000};      ///< Nats-Msg-Id de-duplication window
  std::size_t max_pending = 4'096;       ///< async publishes in flight per shard
  Millis ack_wait{5'000};                ///< a publish not acknowledged by then is retried
  std::size_t queue_capacity = 1 << 16;  ///< server thread -> publisher
  Millis reconnect_wait{250};            ///< between connection attempts
};

/// `laminator gateway`: the durable consumer it reads all shards through.
struct GatewayConfig {
  std::string durable = "laminator-gateway";
  /// A burst fetch's batch (8..4096); single fetches while idle (scaleout/fetch_plan.h).
  std::size_t fetch_batch = 512;
  /// The shards whose events it serves (empty: any shard id on the subjects); another's message,
  /// even well-formed, is passed over and counted.
  std::vector<std::string> shards;
  Millis ack_wait{30'000};  ///< the consumer's AckWait (redelivery after a gateway dies)
};

/// A NATS URL (or comma-separated list) with credentials replaced by ***.
[[nodiscard]] std::string redact_nats_url(std::string_view url);

}  // namespace lam::daemon
