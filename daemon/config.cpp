// The config's TOML (daemon/config_toml.h): every section but the daemon's [feeds] and [shard]
// (config_daemon.cpp). `laminator-gateway` links this file only, so no feed code.
#include "daemon/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "daemon/config_toml.h"
#include "engine/fixed.h"
#include "engine/uuid.h"
#include "persistence/database_url.h"

namespace lam::daemon {
namespace config_detail {

std::uint8_t hex_digit(char c, bool& ok) {
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
  ok = false;
  return 0;
}

void read_tokens(Section& stream, StreamConfig& out) {
  const toml::array* tokens = stream.array("tokens");
  if (tokens == nullptr) return;
  for (const toml::node& n : *tokens) {
    if (!n.is_table()) stream.fail(n.source(), "stream.tokens: expected [[stream.tokens]] tables");
    Section t(*n.as_table(), "stream.tokens", stream.file());
    TokenConfig tc;
    t.str("name", tc.name);
    std::string hex, env;
    t.str("sha256", hex);
    t.str("token_env", env);
    const std::vector<std::string> users = t.strings("users");
    t.finish();
    if (tc.name.empty()) t.fail(n.source(), "stream.tokens: every token needs a name");
    if (hex.empty() == env.empty())
      t.fail(n.source(), "stream.tokens '" + tc.name + "': set exactly one of sha256, token_env");
    if (!env.empty()) {
      const char* v = std::getenv(env.c_str());
      if (v == nullptr) t.fail_key("token_env", "environment variable " + env + " is not set");
      if (*v == '\0') t.fail_key("token_env", "environment variable " + env + " is set but empty");
      tc.sha256 = token_hash(v);
    } else {
      bool ok = hex.size() == 64;
      for (std::size_t i = 0; ok && i < 32; ++i)
        tc.sha256[i] = static_cast<std::uint8_t>(hex_digit(hex[2 * i], ok) << 4 |
                                                 hex_digit(hex[2 * i + 1], ok));
      if (!ok) t.fail_key("sha256", "expected 64 hex digits (sha256sum of the token)");
    }
    // Empty would read as "every user" (no scope): a token meant for nobody, or a list that a
    // template left empty, must never see everyone's events (issue 32).
    if (users.empty() && n.as_table()->contains("users"))
      t.fail_key("users",
                 "empty: this token would be scoped to nobody; omit `users` for a token that sees "
                 "every user, or list the user ids it may see");
    for (const std::string& u : users) {
      const auto id = Uuid::parse(u);
      if (!id) t.fail_key("users", "'" + u + "' is not a UUID");
      tc.users.push_back(*id);
    }
    for (const TokenConfig& other : out.tokens)
      if (other.name == tc.name) t.fail_key("name", "duplicate token name '" + tc.name + "'");
    out.tokens.push_back(std::move(tc));
  }
}

/// `expiry`, `archive_schema`, `lock_timeout_ms` of a [maintenance.*] table.
void read_expiry(Section& s, db::Expiry& expiry, std::string& schema, int& lock_timeout_ms) {
  std::string e = expiry == db::Expiry::drop ? "drop" : "archive";
  s.str("expiry", e);
  if (e == "archive") {
    expiry = db::Expiry::archive;
  } else if (e == "drop") {
    expiry = db::Expiry::drop;
  } else {
    s.fail_key("expiry", "\"drop\" or \"archive\"");
  }
  s.str("archive_schema", schema);
  if (schema.empty() || schema.size() > 63 ||
      schema.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    s.fail_key("archive_schema", "a lower-case identifier of letters, digits and _");
  s.integer("lock_timeout_ms", lock_timeout_ms, 10, 600'000);
}

Config build(const toml::table& root, const std::string& file, DaemonSections daemon) {
  // Long: the table of TOML keys, one line per key with its range (a section per module); the
  // checks across keys follow at the end.
  Config c;
  c.path = file;
  Section top(root, "", file);
  top.str("log_level", c.log_level);
  static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "off"};
  if (!kLevels.count(c.log_level))
    top.fail_key("log_level", "one of trace, debug, info, warn, error, off");

  if (const toml::table* t = top.table("database")) {
    Section s(*t, "database", file);
    s.str("url", c.database.url);
    s.str("url_env", c.database.url_env);
    std::string policy = "check";
    s.str("migrate", policy);
    if (policy == "check") {
      c.database.migrate = MigratePolicy::check;
    } else if (policy == "apply") {
      c.database.migrate = MigratePolicy::apply;
    } else {
      s.fail_key("migrate", "\"check\" or \"apply\", got \"" + policy + "\"");
    }
    s.finish();
  }
  if (const toml::table* t = top.table("engine")) {
    Section s(*t, "engine", file);
    s.integer("tick_queue_capacity", c.engine.tick_queue_capacity, 1024, 1 << 26);
    s.integer("pin_cpu", c.engine.pin_cpu, -1, 4095);
    std::string idle = "sleep";
    s.str("idle", idle);
    if (idle == "spin") {
      c.engine.idle = IdlePolicy::spin;
    } else if (idle != "sleep") {
      s.fail_key("idle", "\"spin\" or \"sleep\"");
    }
    s.millis("market_mark_interval_ms", c.engine.marks.market_interval, 1, 60'000);
    s.millis("position_refresh_interval_ms", c.engine.marks.refresh_interval, 100);
    s.integer("position_refresh_rows_per_s", c.engine.marks.refresh_rows_per_s, 0, 10'000'000);
    if (t->contains("mark_interval_ms"))
      s.fail_key(
          "mark_interval_ms",
          "replaced: marks are per market (market_mark_interval_ms); positions' stored columns "
          "are refreshed by position_refresh_interval_ms and position_refresh_rows_per_s "
          "(docs/schema.md, \"Marks\")");
    s.str("crash_ring", c.engine.crash_ring);
    s.integer("crash_ring_slots", c.engine.crash_ring_slots, 1024, 1 << 24);
    s.finish();
  }
  if (const toml::table* t = top.table("maintenance")) {
    Section s(*t, "maintenance", file);
    s.millis("health_interval_ms", c.maintenance.health_interval, 1'000, 3'600'000);
    s.millis("partition_interval_ms", c.maintenance.partition_interval, 60'000, 86'400'000);
    s.millis("reconcile_interval_ms", c.maintenance.reconcile_interval, 0, 86'400'000);
    if (const toml::table* jt = s.table("alert_events")) {
      db::JournalPolicy& j = c.maintenance.journal;
      Section js(*jt, "maintenance.alert_events", file);
      js.integer("partition_seqs", j.partition_seqs, 1'000, 1'000'000'000);
      read_expiry(js, j.expiry, j.archive_schema, j.lock_timeout_ms);
      js.finish();
    }
    for (db::PartitionPolicy& p : c.maintenance.partitions) {
      const toml::table* pt = s.table(p.table);
      if (pt == nullptr) continue;
      Section ps(*pt, "maintenance." + p.table, file);
      ps.integer("months_ahead", p.months_ahead, 1, 24);
      ps.integer("retain_months", p.retain_months, 0, 1'200);
      read_expiry(ps, p.expiry, p.archive_schema, p.lock_timeout_ms);
      ps.finish();
    }
    s.finish();
  }
  if (const toml::table* t = top.table("paper")) {
    Section s(*t, "paper", file);
    s.integer("slippage_bps", c.paper.slippage_bps, 0, 1'000);
    s.finish();
  }
  if (const toml::table* t = top.table("writer")) {
    Section s(*t, "writer", file);
    s.millis("flush_interval_ms", c.writer.flush_interval, 1, 60'000);
    s.integer("max_batch_rows", c.writer.max_batch_rows, 1, 1'000'000);
    s.integer("queue_capacity", c.writer.queue_capacity, 1024, 1 << 24);
    s.finish();
  }
  if (const toml::table* t = top.table("listener")) {
    Section s(*t, "listener", file);
    s.millis("batch_window_ms", c.listener.batch_window, 0, 1'000);
    s.millis("heartbeat_interval_ms", c.listener.heartbeat.interval, 100, 3'600'000);
    s.millis("heartbeat_timeout_ms", c.listener.heartbeat.timeout, 100, 600'000);
    s.finish();
  }
  if (const toml::table* t = top.table("stream")) {
    Section s(*t, "stream", file);
    s.str("address", c.stream.address);
    s.integer("port", c.stream.port, 0, 65535);
    s.integer("ring_events", c.stream.ring_events, 16, 1 << 24);
    s.integer("client_queue", c.stream.client_queue, 1024, 1 << 20);
    s.integer("max_connections", c.stream.max_connections, 1, 1 << 20);
    s.integer("bus_capacity", c.stream.bus_capacity, 1024, 1 << 24);
    s.integer("journal_retention_hours", c.stream.journal_retention_hours, 1, 24 * 3650);
    read_tokens(s, c.stream);
    s.finish();
    if (c.stream.address.empty()) s.fail_key("address", "must not be empty");
  }
  if (daemon != nullptr) {
    daemon(top, c);
  } else {
    for (const char* key : {"feeds", "shard"})
      if (root.contains(key))
        top.fail_key(key, "a daemon's section (laminator run): a gateway reads none");
  }
  if (const toml::table* t = top.table("nats")) {
    Section s(*t, "nats", file);
    NatsConfig n;
    s.str("url", n.url);
    s.str("url_env", n.url_env);
    s.str("ca_file", n.ca_file);
    s.str("stream", n.stream);
    if (n.stream.empty() || n.stream.find_first_of(" .*>\t/") != std::string::npos)
      s.fail_key("stream", "a JetStream stream name (no spaces, '.', '*', '>')");
    s.str("subject_prefix", n.subject_prefix);
    if (n.subject_prefix.empty() || n.subject_prefix.find_first_of(" *>") != std::string::npos ||
        n.subject_prefix.front() == '.' || n.subject_prefix.back() == '.')
      s.fail_key("subject_prefix", "dot-separated subject tokens without wildcards");
    std::string storage = "file";
    s.str("storage", storage);
    if (storage == "memory") {
      n.storage = NatsConfig::Storage::memory;
    } else if (storage != "file") {
      s.fail_key("storage", "\"file\" or \"memory\"");
    }
    s.integer("replicas", n.replicas, 1, 5);
    s.integer("max_age_hours", n.max_age_hours, 1, 24 * 3650);
    s.integer("max_bytes", n.max_bytes, -1, INT64_MAX);
    s.millis("duplicate_window_ms", n.duplicate_window, 1'000, 7 * kMaxMillis);
    s.integer("max_pending", n.max_pending, 1, 1 << 20);
    s.millis("ack_wait_ms", n.ack_wait, 10, 600'000);
    s.integer("queue_capacity", n.queue_capacity, 1024, 1 << 24);
    s.millis("reconnect_wait_ms", n.reconnect_wait, 10, 60'000);
    s.finish();
    c.nats = std::move(n);
  }
  if (const toml::table* t = top.table("gateway")) {
    c.is_gateway = true;
    Section s(*t, "gateway", file);
    s.str("durable", c.gateway.durable);
    if (c.gateway.durable.empty() ||
        c.gateway.durable.find_first_of(" .*>\t/") != std::string::npos)
      s.fail_key("durable", "a consumer name (no spaces, '.', '*', '>')");
    s.integer("fetch_batch", c.gateway.fetch_batch, 8, 4'096);
    c.gateway.shards = s.strings("shards");
    for (const std::string& id : c.gateway.shards)
      if (!valid_shard_id(id)) s.fail_key("shards", "'" + id + "' is not a shard id");
    s.millis("ack_wait_ms", c.gateway.ack_wait, 1'000, kMaxMillis);
    s.finish();
  }
  if (c.shard && !c.nats)
    top.fail_key("shard", "a shard publishes to JetStream: add a [nats] section");
  if (c.is_gateway && !c.nats)
    top.fail_key("gateway", "the gateway reads JetStream: add a [nats] section");
  if (c.is_gateway && c.shard)
    top.fail_key("shard", "[shard] and [gateway] are two programs' sections: one per file");
  top.finish();
  c.maintenance.journal.retain_hours = c.stream.journal_retention_hours;
  return c;
}

Config parse(const std::string& name, const std::string* text, DaemonSections daemon) {
  try {
    const toml::table root = text != nullptr ? toml::parse(*text, name) : toml::parse_file(name);
    return build(root, name, daemon);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << name << ':' << e.source().begin.line << ": " << e.description();
    throw ConfigError(s.str());
  }
}

}  // namespace config_detail

Config load_gateway_config(const std::string& path) {
  return config_detail::parse(path, nullptr, nullptr);
}

std::string database_url(const Config& c) {
  if (!c.database.url.empty()) return c.database.url;
  const char* v = std::getenv(c.database.url_env.c_str());
  if (v != nullptr && *v != '\0') return v;
  throw ConfigError(c.path + ": no database: set database.url or $" + c.database.url_env +
                    (v != nullptr ? " (it is set but empty)" : " (it is not set)"));
}

std::string nats_url(const Config& c) {
  if (!c.nats) throw ConfigError(c.path + ": no [nats] section");
  if (!c.nats->url.empty()) return c.nats->url;
  const char* v = std::getenv(c.nats->url_env.c_str());
  if (v != nullptr && *v != '\0') return v;
  throw ConfigError(c.path + ": no NATS server: set nats.url or $" + c.nats->url_env);
}

}  // namespace lam::daemon
