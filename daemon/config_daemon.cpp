// The daemon's own config sections, [feeds] and [shard] (they read the venue table), its loader and
// its summary (daemon/config_toml.h). A gateway's config is read by config.cpp alone.
#include <toml++/toml.h>

#include <cstdlib>
#include <sstream>

#include "daemon/config.h"
#include "daemon/config_toml.h"
#include "engine/fixed.h"
#include "engine/uuid.h"
#include "feeds/ws_client.h"
#include "persistence/database_url.h"
#include "scaleout/scaleout_config.h"

namespace lam::daemon {
namespace config_detail {
namespace {

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

void daemon_sections(Section& top, Config& c) {
  const std::string& file = top.file();
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
}

}  // namespace
}  // namespace config_detail

Config parse_config(const std::string& text, const std::string& name) {
  return config_detail::parse(name, &text, &config_detail::daemon_sections);
}

Config load_config(const std::string& path) {
  return config_detail::parse(path, nullptr, &config_detail::daemon_sections);
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
