// The one translation unit that includes toml++.
#include "daemon/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "engine/fixed.h"
#include "engine/uuid.h"
#include "feeds/ws_client.h"
#include "persistence/database_url.h"

namespace lam::daemon {
namespace {

constexpr std::int64_t kMaxMillis = 24LL * 3600 * 1000;

/// Reads one TOML table, remembering which keys were used so that the rest are reported unknown.
class Section {
 public:
  Section(const toml::table& t, std::string name, const std::string& file)
      : t_(t), name_(std::move(name)), file_(file) {}

  [[noreturn]] void fail(const toml::source_region& at, const std::string& what) const {
    std::ostringstream s;
    s << file_ << ':' << at.begin.line << ": " << what;
    throw ConfigError(s.str());
  }
  [[noreturn]] void fail_key(std::string_view key, const std::string& what) const {
    const toml::node* n = t_.get(key);
    fail(n != nullptr ? n->source() : t_.source(), qualified(key) + ": " + what);
  }
  std::string qualified(std::string_view key) const {
    return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  }

  const toml::node* node(std::string_view key) {
    used_.insert(std::string(key));
    return t_.get(key);
  }

  void str(std::string_view key, std::string& out) {
    if (const toml::node* n = node(key)) {
      if (!n->is_string()) fail_key(key, "expected a string");
      out = n->value<std::string>().value_or("");
    }
  }
  void boolean(std::string_view key, bool& out) {
    if (const toml::node* n = node(key)) {
      if (!n->is_boolean()) fail_key(key, "expected true or false");
      out = n->value<bool>().value_or(false);
    }
  }
  template <class T>
  void integer(std::string_view key, T& out, std::int64_t lo, std::int64_t hi) {
    if (const toml::node* n = node(key)) {
      if (!n->is_integer()) fail_key(key, "expected an integer");
      const std::int64_t v = n->value<std::int64_t>().value_or(0);
      if (v < lo || v > hi)
        fail_key(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                          std::to_string(v));
      out = static_cast<T>(v);
    }
  }
  void millis(std::string_view key, Millis& out, std::int64_t lo, std::int64_t hi = kMaxMillis) {
    std::int64_t v = out.count();
    integer(key, v, lo, hi);
    out = Millis(v);
  }
  void number(std::string_view key, double& out, double lo, double hi) {
    if (const toml::node* n = node(key)) {
      if (!n->is_number()) fail_key(key, "expected a number");
      const double v = n->is_integer() ? static_cast<double>(n->value<std::int64_t>().value_or(0))
                                       : n->value<double>().value_or(0);
      if (!(v >= lo && v <= hi))
        fail_key(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      out = v;
    }
  }
  const toml::table* table(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail_key(key, "expected a table");
    return n->as_table();
  }
  const toml::array* array(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array()) fail_key(key, "expected an array");
    return n->as_array();
  }
  std::vector<std::string> strings(std::string_view key) {
    std::vector<std::string> out;
    if (const toml::array* a = array(key)) {
      for (const toml::node& e : *a) {
        if (!e.is_string()) fail(e.source(), qualified(key) + ": expected an array of strings");
        out.push_back(e.value<std::string>().value_or(""));
      }
    }
    return out;
  }
  /// Every key of the table must have been read.
  void finish() const {
    for (auto&& [k, v] : t_) {
      if (!used_.count(std::string(k.str())))
        fail(k.source(), "unknown key '" + qualified(k.str()) + "'");
    }
  }
  const std::string& file() const { return file_; }

 private:
  const toml::table& t_;
  std::string name_;
  const std::string& file_;
  std::set<std::string> used_;
};

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

void read_venue(Section& feeds, feeds::Venue v, VenueSection& out) {
  const std::string name(feeds::venue_name(v));
  out.rules = feeds::default_rules(v);
  const toml::table* t = feeds.table(name);
  if (t == nullptr) return;
  Section s(*t, "feeds." + name, feeds.file());
  s.boolean("enabled", out.enabled);
  if (const toml::table* urls = s.table("urls")) {
    Section u(*urls, "feeds." + name + ".urls", feeds.file());
    for (const feeds::Route& r : feeds::venue_routes(v)) {
      const std::string& key = r.name;
      std::string url;
      u.str(key, url);
      if (url.empty()) continue;
      if (!feeds::WsUrl::parse(url)) u.fail_key(key, "not a ws:// or wss:// URL");
      out.urls[r.name] = url;
    }
    u.finish();
  }
  s.millis("idle_budget_ms", out.rules.idle_budget, 100);
  s.millis("stale_budget_ms", out.rules.stale_budget, 10);
  s.millis("ping_every_ms", out.rules.ping_every, 0);
  s.millis("max_lifetime_ms", out.rules.max_lifetime, 0, 7 * kMaxMillis);
  s.number("max_msgs_per_s", out.rules.max_msgs_per_s, 0.1, 1e6);
  s.integer("topics_per_msg", out.rules.topics_per_msg, 1, 1000);
  if (v == feeds::Venue::pyth) {
    s.millis("max_age_ms", out.oracle.max_age, 100, kMaxMillis);
    s.integer("max_conf_bps", out.oracle.max_conf_bps, 1, 10'000);
    s.str("api_key_env", out.api_key_env);
    if (!out.api_key_env.empty()) {
      const char* key = std::getenv(out.api_key_env.c_str());
      if (key == nullptr || *key == '\0')
        s.fail_key("api_key_env", "environment variable " + out.api_key_env + " is not set");
      out.api_key = key;
    }
  }
  if (const toml::table* cs = s.table("contract_sizes")) {
    for (auto&& [k, val] : *cs) {
      if (!val.is_string()) s.fail(val.source(), "contract sizes are decimal strings");
      const std::string text = val.value<std::string>().value_or("");
      const auto d = parse_decimal(text);
      if (d.error != DecimalError::none || d.value.floor <= 0)
        s.fail(val.source(), "contract size of " + std::string(k.str()) + " must be > 0");
      out.contract_sizes[std::string(k.str())] = text;
    }
  }
  s.finish();
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

Config build(const toml::table& root, const std::string& file) {
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
  if (const toml::table* t = top.table("feeds")) {
    Section s(*t, "feeds", file);
    s.millis("housekeeping_ms", c.feeds.runner.housekeeping, 5, 10'000);
    s.str("record_dir", c.feeds.runner.record_dir);
    s.str("ca_file", c.feeds.connection.client.ca_file);
    s.millis("backoff_initial_ms", c.feeds.connection.backoff_initial, 0, 60'000);
    s.millis("backoff_max_ms", c.feeds.connection.backoff_max, 1, 3'600'000);
    for (feeds::Venue v : feeds::kAllVenues)
      read_venue(s, v, c.feeds.venues[static_cast<std::size_t>(v)]);
    s.finish();
  } else {
    for (feeds::Venue v : feeds::kAllVenues)
      c.feeds.venues[static_cast<std::size_t>(v)].rules = feeds::default_rules(v);
  }
  if (const toml::table* t = top.table("shard")) {
    Section s(*t, "shard", file);
    ShardConfig sc;
    s.str("id", sc.id);
    if (!valid_shard_id(sc.id))
      s.fail_key("id", "1 to 32 of a-z, 0-9 and _ (it names a schema and a NATS subject)");
    sc.venues = s.strings("venues");
    for (const std::string& v : sc.venues)
      if (!feeds::parse_venue(v)) s.fail_key("venues", "unknown venue '" + v + "'");
    for (const std::string& m : s.strings("markets")) {
      const auto id = Uuid::parse(m);
      if (!id) s.fail_key("markets", "'" + m + "' is not a UUID");
      sc.markets.push_back(*id);
    }
    s.integer("hash_count", sc.hash_count, 0, 4096);
    s.integer("hash_index", sc.hash_index, 0, 4095);
    if (sc.hash_count > 0 && sc.hash_index >= sc.hash_count)
      s.fail_key("hash_index", "must be below hash_count");
    s.boolean("orphans", sc.orphans);
    s.finish();
    if (sc.venues.empty() && sc.markets.empty() && sc.hash_count == 0)
      s.fail(t->source(), "shard: set venues, markets or hash_count (it owns no market)");
    c.shard = std::move(sc);
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

}  // namespace

Config parse_config(const std::string& text, const std::string& name) {
  try {
    const toml::table root = toml::parse(text, name);
    return build(root, name);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << name << ':' << e.source().begin.line << ": " << e.description();
    throw ConfigError(s.str());
  }
}

Config load_config(const std::string& path) {
  try {
    const toml::table root = toml::parse_file(path);
    return build(root, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream s;
    s << path << ':' << e.source().begin.line << ": " << e.description();
    throw ConfigError(s.str());
  }
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

std::string redacted_summary(const Config& c) {
  std::ostringstream s;
  if (c.is_gateway) {
    // `laminator gateway`: no database, no feeds, no matcher.
    s << "gateway config " << c.path << ": stream " << c.stream.address << ':' << c.stream.port
      << " with " << c.stream.tokens.size() << " token(s); JetStream stream "
      << (c.nats ? c.nats->stream : std::string("(no [nats]: required)")) << " on "
      << (!c.nats               ? std::string("-")
          : c.nats->url.empty() ? "$" + c.nats->url_env
                                : redact_nats_url(c.nats->url))
      << "; consumer " << c.gateway.durable << ", fetch_batch " << c.gateway.fetch_batch
      << ", shards ";
    if (c.gateway.shards.empty()) s << "any";
    for (std::size_t i = 0; i < c.gateway.shards.size(); ++i)
      s << (i > 0 ? "," : "") << c.gateway.shards[i];
    return s.str();
  }
  std::string url = "(from $" + c.database.url_env + ")";
  if (!c.database.url.empty()) url = db::redact_database_url(c.database.url);
  s << "config " << c.path << ": database " << url << ", migrate "
    << (c.database.migrate == MigratePolicy::apply ? "apply" : "check") << "; stream "
    << c.stream.address << ':' << c.stream.port << " with " << c.stream.tokens.size()
    << " token(s); writer flush " << c.writer.flush_interval.count() << " ms; venues:";
  for (feeds::Venue v : feeds::kAllVenues)
    if (c.feeds.venues[static_cast<std::size_t>(v)].enabled) s << ' ' << feeds::venue_name(v);
  if (c.shard) {
    s << "; shard " << c.shard->id << " (venues:";
    for (const std::string& v : c.shard->venues) s << ' ' << v;
    s << "; " << c.shard->markets.size() << " listed market(s)";
    if (c.shard->hash_count > 0)
      s << "; hash " << c.shard->hash_index << '/' << c.shard->hash_count;
    s << (c.shard->orphans ? "; orphans" : "") << ')';
  }
  if (c.nats) {
    s << "; JetStream stream " << c.nats->stream << " on "
      << (c.nats->url.empty() ? "$" + c.nats->url_env : redact_nats_url(c.nats->url));
  }
  return s.str();
}

}  // namespace lam::daemon
