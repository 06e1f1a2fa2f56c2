#pragma once
/// `laminator run`'s configuration: typed structs with in-class defaults, loaded from TOML once,
/// validated once. Any unknown key, wrong type or impossible value is a `ConfigError` whose text is
/// `file:line: what is wrong`. Secrets (database URL, subscriber tokens) may come from environment
/// variables; `redacted_summary()` is the one form that may be logged.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/shard.h"
#include "engine/uuid.h"
#include "feeds/feed_runner.h"
#include "feeds/protocol.h"
#include "feeds/venue.h"
#include "persistence/journal_partitions.h"
#include "persistence/listener.h"
#include "persistence/marks.h"
#include "persistence/partition_plan.h"
#include "persistence/writer.h"

namespace lam::daemon {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Millis = std::chrono::milliseconds;

enum class MigratePolicy : std::uint8_t {
  check,  ///< refuse to start while a migration is pending or an applied one was edited
  apply,  ///< apply pending migrations at start-up
};

struct DatabaseConfig {
  std::string url;  ///< libpq URL / key=value; resolved from `url_env` when `url` is empty
  std::string url_env = "LAMINATOR_DATABASE_URL";
  MigratePolicy migrate = MigratePolicy::check;
};

enum class IdlePolicy : std::uint8_t {
  spin,   ///< busy-poll the queues (lowest latency, burns a core)
  sleep,  ///< spin briefly, then sleep until a feed pushes a tick (futex; at most 1 ms)
};

struct EngineConfig {
  std::size_t tick_queue_capacity = 1 << 16;
  int pin_cpu = -1;  ///< pin the matcher thread to this core (-1: no pinning)
  IdlePolicy idle = IdlePolicy::sleep;
  db::MarksConfig marks;   ///< market marks and the background refresh of positions' columns
  std::string crash_ring;  ///< file of the crash ring ("" disables SIGKILL recovery)
  std::size_t crash_ring_slots = 1 << 16;
};

/// A subscriber credential: only the SHA-256 of the token is kept.
struct TokenConfig {
  std::string name;
  std::array<std::uint8_t, 32> sha256{};
  std::vector<Uuid> users;  ///< users the token may see; empty: every user
};

struct StreamConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8700;
  std::size_t ring_events = 1 << 16;    ///< recent events kept in memory for `since`
  std::size_t client_queue = 4'096;     ///< events queued per subscriber before it is cut (1008)
  std::size_t max_connections = 1'024;  ///< open HTTP + WebSocket connections; more get 503
  std::size_t bus_capacity = 1 << 16;   ///< matcher -> server queue
  std::uint32_t journal_retention_hours = 168;
  std::vector<TokenConfig> tokens;
};

struct VenueSection {
  bool enabled = true;
  std::map<std::string, std::string> urls;            ///< route name -> URL override
  feeds::VenueRules rules;                            ///< defaults from feeds::default_rules()
  std::map<std::string, std::string> contract_sizes;  ///< symbol -> decimal (OKX SWAP)
  /// Oracle sources (Pyth): how old and how wide an update may be before it holds its markets.
  feeds::OracleLimits oracle;
  /// The environment variable holding the API key (Pyth Hermes), sent as `Authorization: Bearer`.
  /// The key itself is never in the config file nor in any log line.
  std::string api_key_env;
  std::string api_key;  ///< read from api_key_env at load time; empty: none
};

/// Each module's own config struct is held here, so its defaults live in one place (the module):
/// the TOML keys override fields of these; the daemon fills in what is not configuration
/// (connection strings, venue and route of each connection).
struct FeedsSection {
  feeds::RunnerOptions runner;         ///< housekeeping_ms, record_dir
  feeds::ConnectionConfig connection;  ///< template: backoff_*_ms, ca_file (client.ca_file)
  std::array<VenueSection, feeds::kVenueCount> venues;
};

/// The maintenance thread (daemon/maintenance.h): database health for /metrics, and the monthly
/// partitions of transactions and audit_logs kept ahead and expired (docs/operations.md).
struct MaintenanceConfig {
  Millis health_interval{15'000};
  Millis partition_interval{3'600'000};  ///< also once at start-up
  Millis reconcile_interval{300'000};    ///< the books' invariants (laminator reconcile); 0: never
  db::JournalPolicy journal;  ///< alert_events (retain_hours: [stream] journal_retention_hours)
  std::vector<db::PartitionPolicy> partitions{
      db::PartitionPolicy{"transactions", 3, 0, db::Expiry::drop, "archive", 5'000},
      db::PartitionPolicy{"audit_logs", 3, 0, db::Expiry::drop, "archive", 5'000}};
};

/// How paper orders fill (docs/semantics.md, "Orders").
struct PaperConfig {
  std::uint32_t slippage_bps = 0;  ///< a taker fill moves this many basis points against the trader
};

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
  std::size_t fetch_batch = 512;
  Millis ack_wait{30'000};  ///< the consumer's AckWait (redelivery after a gateway dies)
};

struct Config {
  std::string path;  ///< where it was loaded from
  std::string log_level = "info";
  DatabaseConfig database;
  EngineConfig engine;
  db::WriterConfig writer;      ///< flush_interval_ms, max_batch_rows, queue_capacity
  db::ListenerConfig listener;  ///< batch_window_ms
  StreamConfig stream;
  FeedsSection feeds;
  PaperConfig paper;
  MaintenanceConfig maintenance;
  std::optional<ShardConfig> shard;  ///< [shard]: this daemon owns some markets only
  std::optional<NatsConfig> nats;    ///< [nats]: publish every event to JetStream
  GatewayConfig gateway;             ///< [gateway]: `laminator gateway` only
};

/// Parses and validates; throws ConfigError("file:line: ...").
[[nodiscard]] Config load_config(const std::string& path);
/// Same, from text (`name` stands in for the file name in messages).
[[nodiscard]] Config parse_config(const std::string& text, const std::string& name);

/// The database URL from config or its environment variable; ConfigError when neither is set.
[[nodiscard]] std::string database_url(const Config& c);

/// The NATS URL from config or its environment variable; ConfigError when neither is set.
[[nodiscard]] std::string nats_url(const Config& c);

/// A NATS URL (or comma-separated list) with credentials replaced by ***.
[[nodiscard]] std::string redact_nats_url(std::string_view url);

/// Multi-line description with secrets redacted (database password, token hashes omitted).
[[nodiscard]] std::string redacted_summary(const Config& c);

/// SHA-256 of a token, as stored in TokenConfig.
[[nodiscard]] std::array<std::uint8_t, 32> token_hash(std::string_view token);

}  // namespace lam::daemon
