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

#include "engine/uuid.h"
#include "feeds/feed_runner.h"
#include "feeds/protocol.h"
#include "feeds/venue.h"
#include "persistence/journal_partitions.h"
#include "persistence/listener.h"
#include "persistence/marks.h"
#include "persistence/partition_plan.h"
#include "persistence/writer.h"
#include "scaleout/scaleout_config.h"
#include "scaleout/shard.h"
#include "stream/stream_config.h"

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
  bool is_gateway = false;           ///< the file has a [gateway] section: a gateway's config
};

/// Parses and validates; throws ConfigError("file:line: ...").
[[nodiscard]] Config load_config(const std::string& path);
/// Same, from text (`name` stands in for the file name in messages).
[[nodiscard]] Config parse_config(const std::string& text, const std::string& name);
/// A gateway's config (`laminator gateway`, `laminator-gateway`): as load_config, but [feeds] and
/// [shard] are refused, and the venue table is not linked (daemon/config.cpp alone).
[[nodiscard]] Config load_gateway_config(const std::string& path);

/// The database URL from config or its environment variable; ConfigError when neither is set.
[[nodiscard]] std::string database_url(const Config& c);

/// The NATS URL from config or its environment variable; ConfigError when neither is set.
[[nodiscard]] std::string nats_url(const Config& c);

/// Multi-line description with secrets redacted (database password, token hashes omitted).
[[nodiscard]] std::string redacted_summary(const Config& c);

}  // namespace lam::daemon
