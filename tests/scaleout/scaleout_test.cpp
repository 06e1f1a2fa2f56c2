// Scale-out end to end: three real `laminator run` shards (binance, bybit, hyperliquid markets of
// the mock exchange), a real `nats-server -js`, a real `laminator gateway`, subscribers through the
// gateway's WebSocket; every event checked against each shard's own journal (schema
// laminator_shard_<id>): delivered exactly once, in each shard's order, with one seq across shards
// - through a shard's SIGKILL, a NATS outage and a gateway restart, each mid-burst.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <map>
#include <regex>
#include <set>

#include "scaleout/nats_authorization.h"
#include "tests/daemon/e2e_harness.h"
#include "tests/support/nats_server.h"
#include "tests/support/process.h"

namespace lam::test {
namespace {

struct ShardSpec {
  std::string id;
  feeds::Venue venue;
  std::string symbol;
  std::string market;
  std::int64_t base_cents;
};

const std::vector<ShardSpec>& shard_specs() {
  static const std::vector<ShardSpec> s{
      {"a", feeds::Venue::binance, "BTCUSDT", "0000000a-0000-4000-8000-0000000000a1", 8'000'000},
      {"b", feeds::Venue::bybit, "ETHUSDT", "0000000a-0000-4000-8000-0000000000b1", 300'000},
      {"c", feeds::Venue::hyperliquid, "SOL", "0000000a-0000-4000-8000-0000000000c1", 15'000}};
  return s;
}

/// One deployment: a database, the mock exchange, NATS, three shards and a gateway.
class Deployment {
 public:
  struct Knobs {
    std::size_t gateway_ring = 1 << 16;
    std::size_t max_pending = 4096;  ///< async publishes in flight per shard
    std::size_t fetch_batch = 256;   ///< the gateway's burst fetch
    /// nats-server with `laminator nats-authorization`'s users: each shard publishes only on its
    /// subject, the gateway only consumes. Off for tests that play a stranger on the bus.
    bool authorization = true;
    /// JetStream's Nats-Msg-Id de-duplication window (0: the default, 2 minutes).
    int duplicate_window_ms = 0;
  };

  Deployment(const std::string& name, Knobs k) : knobs_(k) {
    dir_ = "/tmp/laminator-scaleout-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ = shared_cluster().create_database(name);
    db::Migrator(url_).migrate({});
    exec(
        "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
        "lpad(to_hex(g), 12, '0'))::uuid, 900000 + g FROM generate_series(1, 5) g");
    mockex::Options mo;
    mo.rate = 400;
    mock_.emplace(mo);
    for (const ShardSpec& s : shard_specs()) {
      exec(
          "INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name, market_type, "
          "price_source) VALUES ('" +
          s.market + "', '" + s.symbol + "', 'X', 'USD', '" +
          std::string(feeds::venue_name(s.venue)) + "', 'perpetual', 'mark')");
      mock_->pin_price(s.symbol, s.base_cents);
    }
    mock_->start();
    if (knobs_.authorization) {
      daemon::NatsAuthorization a;
      for (const ShardSpec& s : shard_specs()) a.shards.push_back(s.id);
      for (std::size_t i = 0; i <= a.shards.size(); ++i)
        a.passwords.push_back("pw-" + std::to_string(i) + "-" + std::to_string(::getpid()));
      auth_ = a;
      nats_.emplace(dir_ + "/nats", "", daemon::nats_authorization_block(a));
    } else {
      nats_.emplace(dir_ + "/nats");
    }
    gateway_port_ = free_port();
    for (std::size_t i = 0; i < shard_specs().size(); ++i) shard_ports_.push_back(free_port());
    shards_.resize(shard_specs().size());
    for (auto& s : shards_) s = std::make_unique<Child>();
  }
  ~Deployment() {
    gateway_.kill();
    for (auto& s : shards_) s->kill();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }

  void exec(const std::string& sql) const {
    pqxx::connection c(url_);
    pqxx::work w(c);
    w.exec(sql);
    w.commit();
  }
  const std::string& url() const { return url_; }
  NatsServer& nats() { return *nats_; }
  mockex::MockExchange& mock() { return *mock_; }
  Child& shard(std::size_t i) { return *shards_[i]; }
  Child& gateway() { return gateway_; }
  int gateway_port() const { return gateway_port_; }
  const std::string& dir() const { return dir_; }
  int shard_port(std::size_t i) const { return shard_ports_[i]; }
  std::string gateway_url(const std::string& query = "") const {
    return "ws://127.0.0.1:" + std::to_string(gateway_port_) + "/v1/stream" + query;
  }

  /// `n` alerts on shard i's market, user (g % 5) + 1, crossing between base and base + n/1000.
  void bulk_alerts(std::size_t i, int n, int first) const {
    const ShardSpec& s = shard_specs()[i];
    exec(
        "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
        "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
        "('0000000c-0000-4000-8000-' || lpad(to_hex(g % 5 + 1), 12, '0'))::uuid, '" +
        s.market + "', 'price_above', 'greater_than', " + std::to_string(s.base_cents / 100) +
        " + (g - " + std::to_string(first) + " + 1) * 0.001 FROM generate_series(" +
        std::to_string(first) + ", " + std::to_string(first + n - 1) + ") g");
  }
  /// Moves shard i's price above every target so far: a burst.
  void fire(std::size_t i, std::int64_t above_cents) {
    mock_->pin_price(shard_specs()[i].symbol, shard_specs()[i].base_cents + above_cents);
  }

  void start_shard(std::size_t i) {
    const ShardSpec& s = shard_specs()[i];
    const std::string cfg = dir_ + "/shard-" + s.id + ".toml";
    std::ofstream f(cfg);
    f << "log_level = \"info\"\n"
      << "[database]\nurl_env = \"LAMINATOR_DATABASE_URL\"\n"
      << "[engine]\nposition_refresh_interval_ms = 200\ncrash_ring = \"" << dir_ << "/ring-" << s.id
      << "\"\n"
      << "[writer]\nflush_interval_ms = 20\n[listener]\nbatch_window_ms = 1\n"
      << "[stream]\naddress = \"127.0.0.1\"\nport = " << shard_ports_[i] << "\n"
      << "[[stream.tokens]]\nname = \"all\"\ntoken_env = \"E2E_TOKEN\"\n"
      << "[shard]\nid = \"" << s.id << "\"\nvenues = [\"" << feeds::venue_name(s.venue) << "\"]\n"
      << "orphans = " << (i == 0 ? "true" : "false") << "\n"
      << "[nats]\nurl_env = \"LAMINATOR_NATS_URL\"\nstorage = \"file\"\n"
      << "max_pending = " << knobs_.max_pending << "\nack_wait_ms = 2000\n"
      << "reconnect_wait_ms = 100\n"
      << dup_window()
      << "[feeds]\nhousekeeping_ms = 20\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n";
    for (feeds::Venue v : feeds::kAllVenues) {
      f << "[feeds." << feeds::venue_name(v) << ".urls]\n";
      for (const feeds::Route& r : feeds::venue_routes(v))
        f << r.name << " = \"" << mock_->url(v, r.name) << "\"\n";
    }
    f.close();
    shards_[i]->spawn({LAMINATOR_BINARY, "run", "--config", cfg, "--status-every", "0"},
                      env(nats_url_as("shard_" + s.id)), dir_ + "/shard-" + s.id + ".log");
  }

  [[nodiscard]] std::string dup_window() const {
    return knobs_.duplicate_window_ms == 0
               ? std::string()
               : "duplicate_window_ms = " + std::to_string(knobs_.duplicate_window_ms) + "\n";
  }

  void start_gateway() {
    const std::string cfg = dir_ + "/gateway.toml";
    std::ofstream f(cfg);
    f << "log_level = \"info\"\n"
      << "[stream]\naddress = \"127.0.0.1\"\nport = " << gateway_port_ << "\n"
      << "ring_events = " << knobs_.gateway_ring << "\n"
      << "[[stream.tokens]]\nname = \"all\"\ntoken_env = \"E2E_TOKEN\"\n"
      << "[[stream.tokens]]\nname = \"user1\"\ntoken_env = \"E2E_SCOPED_TOKEN\"\n"
      << "users = [\"" << user(1) << "\"]\n"
      << "[nats]\nurl_env = \"LAMINATOR_NATS_URL\"\nreconnect_wait_ms = 100\n"
      << dup_window() << "[gateway]\ndurable = \"gw-test\"\nfetch_batch = " << knobs_.fetch_batch
      << "\n"
      << "shards = [\"a\", \"b\", \"c\"]\n";
    f.close();
    // The gateway's own binary (laminator-gateway); `laminator gateway` is the same code
    // (TheGatewaysConsumerIsResetByTheProjectsOwnCommand runs that).
    gateway_.spawn({LAMINATOR_GATEWAY_BINARY, "--config", cfg, "--status-every", "0"},
                   env(nats_url_as("gateway")), dir_ + "/gateway.log");
  }

  void start_all() {
    for (std::size_t i = 0; i < shards_.size(); ++i) start_shard(i);
    start_gateway();
    for (std::size_t i = 0; i < shards_.size(); ++i)
      ASSERT_TRUE(wait_healthy(shard_ports_[i])) << shards_[i]->log_tail();
    ASSERT_TRUE(wait_healthy(gateway_port_)) << gateway_.log_tail();
  }

  static bool wait_healthy(int port, std::chrono::milliseconds limit = 30s) {
    return wait_for(
        [&] {
          try {
            return daemon::http_get("127.0.0.1", std::to_string(port), "/healthz").first == 200;
          } catch (const std::exception&) {
            return false;
          }
        },
        limit);
  }
  static double metric(int port, const std::string& name) {
    std::string body;
    try {
      body = daemon::http_get("127.0.0.1", std::to_string(port), "/metrics").second;
    } catch (const std::exception&) {
      return -1;
    }
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
    return -1;
  }

  /// Shard i's journal: shard seq -> alert id, from its own schema.
  std::map<std::uint64_t, std::string> journal(std::size_t i) const {
    std::map<std::uint64_t, std::string> out;
    pqxx::connection c(url_);
    pqxx::read_transaction t(c);
    for (const auto& row : t.exec("SELECT seq, body FROM laminator_shard_" + shard_specs()[i].id +
                                  ".alert_events ORDER BY seq"))
      out[row[0].as<std::uint64_t>()] = sfield(row[1].c_str(), "alert_id");
    return out;
  }

  std::string logs() const {
    std::string s = "--- gateway:\n" + gateway_.log_tail();
    for (std::size_t i = 0; i < shards_.size(); ++i)
      s += "--- shard " + shard_specs()[i].id + ":\n" + shards_[i]->log_tail();
    return s + "--- nats:\n" + nats_->log_tail();
  }

 private:
 public:
  /// NATS as `user` (a shard_<id> or the gateway) sees it: with its credentials under
  /// authorization, else the bare URL.
  std::string nats_url_as(const std::string& user) const {
    if (!auth_) return nats_->url();
    std::size_t i = 0;
    while (i < auth_->shards.size() && "shard_" + auth_->shards[i] != user) ++i;
    return nats_->url_as(user, auth_->passwords[i]);  // i == shards.size(): the gateway's
  }

 private:
  std::vector<std::string> env(const std::string& nats_url) const {
    return {"LAMINATOR_DATABASE_URL=" + url_, "LAMINATOR_NATS_URL=" + nats_url,
            std::string("E2E_TOKEN=") + kToken, std::string("E2E_SCOPED_TOKEN=") + kScopedToken};
  }

  Knobs knobs_;
  std::optional<daemon::NatsAuthorization> auth_;
  std::string dir_, url_;
  std::optional<mockex::MockExchange> mock_;
  std::optional<NatsServer> nats_;
  std::vector<std::unique_ptr<Child>> shards_;
  Child gateway_;
  int gateway_port_ = 0;
  std::vector<int> shard_ports_;
};

/// A subscriber of the gateway as a real client runs one: on a close, a refused or dropped
/// connection (the gateway restarting), it reconnects with since = the last seq it got.
class Reader {
 public:
  Reader(const Deployment& d, std::string query = "", std::uint64_t since = 0)
      : d_(d), query_(std::move(query)), since_(since) {}

  /// Reads until `pred` holds over everything read (or `limit`).
  bool read_until(const std::function<bool(const std::vector<std::string>&)>& pred,
                  std::chrono::milliseconds limit = 60s) {
    const auto end = Clock::now() + limit;
    while (!pred(events) && Clock::now() < end) {
      if (!c_) {
        try {
          const std::string sep = query_.empty() ? "?" : query_ + "&";
          c_ = std::make_unique<StreamClient>(
              d_.gateway_url(sep + "since=" + std::to_string(since_)), kToken);
        } catch (const std::exception&) {
          std::this_thread::sleep_for(50ms);  // restarting
          continue;
        }
      }
      auto m = c_->next(50ms);
      if (m) {
        since_ = seq_of(*m);
        events.push_back(*m);
        continue;
      }
      if (c_->closed()) {
        ++reconnects;
        last_close = std::to_string(c_->close_code()) + " " + c_->close_reason();
        c_.reset();
      }
    }
    return pred(events);
  }
  bool read_count(std::size_t n, std::chrono::milliseconds limit = 60s) {
    return read_until([n](const auto& e) { return e.size() >= n; }, limit);
  }
  std::size_t count_of(const std::string& shard) const {
    std::size_t n = 0;
    for (const auto& e : events) n += sfield(e, "shard") == shard ? 1 : 0;
    return n;
  }

  std::vector<std::string> events;
  std::size_t reconnects = 0;
  std::string last_close;

 private:
  const Deployment& d_;
  std::string query_;
  std::uint64_t since_;
  std::unique_ptr<StreamClient> c_;
};

std::pair<int, std::string> run_shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// The shard's and the gateway's /metrics pass `promtool check metrics`; the scale-out alerting
/// rules pass `promtool check rules` and their unit tests and name only metrics one of them
/// exports.
void expect_scaleout_metrics_and_rules(const Deployment& d, const std::string& dir) {
  std::set<std::string> families;
  for (const int port : {d.shard_port(0), d.gateway_port()}) {
    const std::string body = daemon::http_get("127.0.0.1", std::to_string(port), "/metrics").second;
    const std::string file = dir + "/metrics-" + std::to_string(port) + ".txt";
    std::ofstream(file) << body;
    const auto [rc, out] = run_shell("promtool check metrics < " + file);
    EXPECT_EQ(rc, 0) << out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("# TYPE ", 0) == 0) families.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  const std::string rules = std::string(LAMINATOR_SOURCE_DIR) + "/configs/prometheus";
  auto [rc, out] = run_shell("promtool check rules " + rules + "/laminator-scaleout-rules.yml");
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) =
      run_shell("cd " + rules + " && promtool test rules laminator-scaleout-rules.test.yml");
  EXPECT_EQ(rc, 0) << out;
  std::ifstream in(rules + "/laminator-scaleout-rules.yml");
  std::stringstream text;
  text << in.rdbuf();
  const std::string t = text.str();
  const std::regex name("laminator_[a-z0-9_]+");
  int named = 0;
  for (auto it = std::sregex_iterator(t.begin(), t.end(), name); it != std::sregex_iterator();
       ++it, ++named)
    EXPECT_EQ(families.count(it->str()), 1u) << "the rules use " << it->str() << ", not exported";
  EXPECT_GT(named, 5);
  // docs/operations.md names every scale-out family the shard and the gateway export
  // (laminator_nats_*, laminator_gateway_*), and nothing they do not.
  std::ifstream ops_in(std::string(LAMINATOR_SOURCE_DIR) + "/docs/operations.md");
  std::stringstream ops_text;
  ops_text << ops_in.rdbuf();
  const std::string ops = ops_text.str();
  const std::regex scaleout_name("laminator_(nats|gateway)_[a-z0-9_]+");
  std::set<std::string> documented;
  for (auto it = std::sregex_iterator(ops.begin(), ops.end(), scaleout_name);
       it != std::sregex_iterator(); ++it)
    documented.insert(it->str());
  for (const std::string& f : families) {
    if (std::regex_match(f, scaleout_name)) {
      EXPECT_EQ(documented.count(f), 1u) << f << " is exported but not in docs/operations.md";
    }
  }
  for (const std::string& f : documented)
    EXPECT_EQ(families.count(f), 1u) << f << " is in docs/operations.md but not exported";
}

std::uint64_t num(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + key.size() + 3));
}

/// Every event once, seq contiguous from `first_seq`, each shard's events in its order 1..n with
/// the alert its journal has under that seq, and nothing the journals lack.
void expect_exactly_the_journals(const Deployment& d, const std::vector<std::string>& events,
                                 std::uint64_t first_seq = 1) {
  std::map<std::string, std::uint64_t> last;
  std::map<std::string, std::map<std::uint64_t, std::string>> journals;
  std::size_t journaled = 0;
  for (std::size_t i = 0; i < shard_specs().size(); ++i) {
    // The gateway can be ahead of a shard's writer: wait for its journal to hold what was served.
    std::size_t served = 0;
    for (const auto& e : events) served += sfield(e, "shard") == shard_specs()[i].id ? 1 : 0;
    wait_for([&] { return d.journal(i).size() >= served; }, 30s);
    journals[shard_specs()[i].id] = d.journal(i);
    journaled += journals[shard_specs()[i].id].size();
  }
  EXPECT_EQ(events.size(), journaled) << "the gateway delivered a different number of events "
                                         "than the shards journaled";
  std::set<std::string> alerts;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string& e = events[i];
    ASSERT_EQ(seq_of(e), first_seq + i) << e;
    const std::string shard = sfield(e, "shard");
    const std::uint64_t ss = num(e, "shard_seq");
    ASSERT_EQ(ss, last[shard] + 1) << "shard " << shard << " out of order or repeated: " << e;
    last[shard] = ss;
    const auto& j = journals[shard];
    const auto it = j.find(ss);
    ASSERT_NE(it, j.end()) << "not in shard " << shard << "'s journal: " << e;
    EXPECT_EQ(sfield(e, "alert_id"), it->second) << e;
    EXPECT_TRUE(alerts.insert(sfield(e, "alert_id")).second) << "fired twice: " << e;
  }
}

TEST(ScaleOut, ThreeShardsThroughTheGatewayEveryEventOnceInShardOrderAndResumeAcrossShards) {
  constexpr int kN = 1'500;  // alerts per shard
  Deployment d("scaleout_basic", Deployment::Knobs{.gateway_ring = 1'024});
  for (std::size_t i = 0; i < 3; ++i) d.bulk_alerts(i, kN, 1 + static_cast<int>(i) * kN);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader all(d);
  Reader one(d, "?user_id=" + user(2));
  for (std::size_t i = 0; i < 3; ++i) d.fire(i, 1'000);
  ASSERT_TRUE(all.read_count(3 * kN)) << all.events.size() << " " << all.last_close << "\n"
                                      << d.logs();
  // Every shard's events, each once, in its order, one seq across the three.
  expect_exactly_the_journals(d, all.events);
  for (const auto& s : shard_specs()) EXPECT_EQ(all.count_of(s.id), std::size_t{kN});
  EXPECT_EQ(all.reconnects, 0u) << all.last_close;
  // A filter through the gateway sees the same events as the full stream, filtered.
  std::vector<std::string> want;
  for (const auto& e : all.events)
    if (sfield(e, "user_id") == user(2)) want.push_back(e);
  ASSERT_TRUE(one.read_count(want.size())) << d.logs();
  EXPECT_EQ(one.events, want);

  // Resume across all three shards with one number: from deep in JetStream (the gateway's ring
  // holds the last 1,024), from the ring, and from the head.
  for (const std::uint64_t since :
       {std::uint64_t{0}, std::uint64_t{1'000}, std::uint64_t{4'000}, std::uint64_t{3 * kN}}) {
    Reader r(d, "", since);
    const std::size_t expect = 3 * kN - since;
    if (expect > 0) {
      ASSERT_TRUE(r.read_count(expect, 30s)) << since << " " << r.last_close;
    }
    EXPECT_FALSE(r.read_count(expect + 1, 300ms)) << "more than asked for after since=" << since;
    ASSERT_EQ(r.events.size(), expect);
    for (std::size_t i = 0; i < r.events.size(); ++i)
      ASSERT_EQ(r.events[i], all.events[since + i]) << "since=" << since;
  }
  EXPECT_GT(Deployment::metric(d.gateway_port(), "laminator_stream_journal_reads_total"), 0);
  // Nothing was repeated or skipped on the way, and every shard dropped the others' rows.
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_repeats_total"), 0);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_gaps_total"), 0);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Deployment::metric(d.shard_port(i), "laminator_nats_lost_total"), 0);
    EXPECT_EQ(Deployment::metric(d.shard_port(i), "laminator_nats_acked_seq"), kN);
  }
  expect_scaleout_metrics_and_rules(d, d.dir());
  // The bot adds alerts on shard c's market while everything runs: c fires them, a and b drop the
  // changes from the notification alone (never reading the rows) and fire nothing.
  std::vector<double> foreign_before;
  for (std::size_t i = 0; i < 3; ++i)
    foreign_before.push_back(
        Deployment::metric(d.shard_port(i), "laminator_listener_foreign_total"));
  d.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, '" +
      user(3) + "', '" + shard_specs()[2].market +
      "', 'price_above', 'greater_than', 1 FROM generate_series(900001, 900010) g");
  ASSERT_TRUE(all.read_count(3 * kN + 10)) << d.logs();
  for (std::size_t i = 3 * kN; i < all.events.size(); ++i)
    EXPECT_EQ(sfield(all.events[i], "shard"), "c") << all.events[i];
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(wait_for([&] {
      return Deployment::metric(d.shard_port(i), "laminator_listener_foreign_total") >=
             foreign_before[i] + 10;
    })) << "shard "
        << shard_specs()[i].id << " read other shards' rows";
  }
  EXPECT_EQ(Deployment::metric(d.shard_port(2), "laminator_listener_foreign_total"),
            foreign_before[2]);
  // A shard's own stream still serves its own seqs.
  auto direct = std::make_unique<StreamClient>(
      "ws://127.0.0.1:" + std::to_string(d.shard_port(1)) + "/v1/stream?since=0", kToken);
  const auto b = read_n(*direct, kN, 30s);
  ASSERT_EQ(b.size(), std::size_t{kN});
  EXPECT_EQ(seq_of(b.back()), std::uint64_t{kN});
  EXPECT_EQ(sfield(b.front(), "market_id"), shard_specs()[1].market);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(d.shard(i).signal_and_wait(SIGTERM), 0);
  EXPECT_EQ(d.gateway().signal_and_wait(SIGTERM), 0) << d.gateway().log_tail();
}

// Issue 31, section 1: ~20,000 already-crossed alerts fire on each of the three shards at the same
// moment, twice. The gateway used to abort on the first round (double free, malloc_consolidate, a
// segfault in its source thread): libnats 3.4.1's `_fetch` wrote past its array when an earlier
// pull request's late messages were queued (nats.c PR #749; scaleout/fetch_plan.h). Run under
// ASan the overflow is reported at once. Every event must arrive once, in each shard's order, and
// the gateway must still be the process that started.
TEST(ScaleOut, ThreeShardsBurstingTogetherTwiceNeverCrashTheGateway) {
  constexpr int kN = 20'000;  // alerts per shard and round
  Deployment d("scaleout_burst",
               Deployment::Knobs{.gateway_ring = 1 << 17, .max_pending = 4096, .fetch_batch = 512});
  for (std::size_t i = 0; i < 3; ++i) d.bulk_alerts(i, kN, 1 + static_cast<int>(i) * kN);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  for (std::size_t i = 0; i < 3; ++i) d.fire(i, 2'100);  // above all 20,000 targets at once
  ASSERT_TRUE(r.read_count(3 * kN, 180s)) << r.events.size() << " " << r.last_close << "\n"
                                          << d.logs();
  EXPECT_TRUE(d.gateway().running()) << d.logs();
  // The second round: new alerts, all crossed by the prices where they are.
  for (std::size_t i = 0; i < 3; ++i) {
    const ShardSpec& s = shard_specs()[i];
    d.exec(
        "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
        "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, "
        "('0000000c-0000-4000-8000-' || lpad(to_hex(g % 5 + 1), 12, '0'))::uuid, '" +
        s.market + "', 'price_above', 'greater_than', 1 FROM generate_series(" +
        std::to_string(100'001 + static_cast<int>(i) * kN) + ", " +
        std::to_string(100'000 + static_cast<int>(i + 1) * kN) + ") g");
  }
  ASSERT_TRUE(r.read_count(6 * kN, 180s)) << r.events.size() << " " << r.last_close << "\n"
                                          << d.logs();
  EXPECT_TRUE(d.gateway().running()) << d.logs();
  // This reader (a test thread keeping every event) may fall behind 120,000 events and be cut as
  // a slow consumer: 1008, or, when its socket is too backed up for the close frame to go out in
  // time, the connection ended (0); it resumes with its since. Any other close is a fault.
  if (r.reconnects > 0) {
    EXPECT_TRUE(r.last_close.rfind("1008 ", 0) == 0 || r.last_close.rfind("0 ", 0) == 0)
        << r.last_close;
  }
  expect_exactly_the_journals(d, r.events);
  for (const auto& s : shard_specs()) EXPECT_EQ(r.count_of(s.id), std::size_t{2 * kN});
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_repeats_total"), 0);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_gaps_total"), 0);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_reconnects_total"), 0);
  std::printf("three shards x 2 rounds x %d events through the gateway; fetch hazards: %.0f\n", kN,
              Deployment::metric(d.gateway_port(), "laminator_gateway_fetch_hazards_total"));
}

/// A stranger on the bus: a plain NATS client (no Laminator code) publishing on `subject`.
void stranger_publish(const std::string& url, const std::string& subject, const std::string& body,
                      const char* msg_id) {
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, url.c_str()), NATS_OK);
  natsMsg* m = nullptr;
  ASSERT_EQ(
      natsMsg_Create(&m, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size())),
      NATS_OK);
  if (msg_id != nullptr) natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
  EXPECT_EQ(natsConnection_PublishMsg(nc, m), NATS_OK);
  natsConnection_Flush(nc);
  natsMsg_Destroy(m);
  natsConnection_Destroy(nc);
}

// Issue 31, section 2: messages on the shards' subjects that no shard wrote: one without headers, a
// well-formed event of a made-up shard for user 1, and one whose id names shard b on a's subject.
// Before, the first cut every gateway subscriber (a seq skipped in the ring) and the second was
// delivered to user 1's scoped subscriber. Now each is passed over as a hole, counted, and every
// subscriber keeps its connection and gets exactly the shards' events.
TEST(ScaleOut, StrangersMessagesOnTheBusArePassedOverAndCutNobody) {
  constexpr int kN = 200;
  Deployment d("scaleout_strangers", Deployment::Knobs{.authorization = false});
  for (std::size_t i = 0; i < 3; ++i) d.bulk_alerts(i, kN, 1 + static_cast<int>(i) * kN);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader all(d);
  Reader one(d, "?user_id=" + user(1));
  d.fire(0, 1'000);
  ASSERT_TRUE(all.read_count(kN)) << d.logs();
  // A real event of shard a for user 1, as a template for the forgery.
  std::string body;
  for (const auto& e : all.events)
    if (sfield(e, "user_id") == user(1)) body = e;
  ASSERT_FALSE(body.empty());
  stranger_publish(d.nats().url(), "laminator.events.a", "{\"hello\":1}", nullptr);
  stranger_publish(d.nats().url(), "laminator.events.z", body, "z:1");
  stranger_publish(d.nats().url(), "laminator.events.a", body, "b:999");
  d.fire(1, 1'000);
  d.fire(2, 1'000);
  ASSERT_TRUE(all.read_count(3 * kN)) << all.last_close << "\n" << d.logs();
  EXPECT_FALSE(all.read_count(3 * kN + 1, 500ms)) << "a stranger's message was delivered";
  EXPECT_EQ(all.reconnects, 0u) << all.last_close;
  std::size_t want_one = 0;
  for (const auto& e : all.events) want_one += sfield(e, "user_id") == user(1) ? 1 : 0;
  ASSERT_TRUE(one.read_count(want_one)) << one.last_close;
  EXPECT_FALSE(one.read_count(want_one + 1, 500ms)) << "the made-up shard's event reached user 1";
  EXPECT_EQ(one.reconnects, 0u) << one.last_close;
  for (const auto& e : all.events) EXPECT_NE(sfield(e, "shard"), "z") << e;
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_malformed_total"), 2);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_unknown_shards_total"), 1);
  // The seqs the gateway gave are contiguous but for the three holes, and a resume from before
  // them gets the same events (the journal read passes over them too).
  Reader again(d, "", 0);
  ASSERT_TRUE(again.read_count(3 * kN)) << again.last_close;
  EXPECT_FALSE(again.read_count(3 * kN + 1, 500ms));
  EXPECT_EQ(again.events, all.events);
}

/// Removes the last message on `subject` from the stream (what an operator does with
/// `nats stream rmm`); returns its stream seq (0: none).
std::uint64_t remove_last(const std::string& url, const std::string& subject) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return 0;
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  natsConnection_JetStream(&js, nc, &jo);
  natsMsg* m = nullptr;
  jsErrCode e{};
  std::uint64_t seq = 0;
  if (js_GetLastMsg(&m, js, "LAMINATOR", subject.c_str(), nullptr, &e) == NATS_OK) {
    seq = natsMsg_GetSequence(m);
    natsMsg_Destroy(m);
    if (js_DeleteMsg(js, "LAMINATOR", seq, nullptr, &e) != NATS_OK) seq = 0;
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return seq;
}

// Issue 31, section 2: a stranger publishes `Nats-Msg-Id a:99999999` on shard a's subject. Shard a,
// restarted, used to resume publishing at 100,000,000: its next events were journaled but never
// published, /healthz stayed 200 and nothing counted them. Now it refuses the tail (health,
// metric, log), publishes nothing, and once the message is removed resumes by itself from its real
// tail: every journaled event reaches the gateway, none skipped.
TEST(ScaleOut, AForgedTailStopsTheShardLoudlyAndNothingJournaledIsSkipped) {
  constexpr int kN = 300;
  // A 1 s de-duplication window lets the second forgery reuse a seq the shard published.
  Deployment d("scaleout_forged",
               Deployment::Knobs{.authorization = false, .duplicate_window_ms = 1'000});
  d.bulk_alerts(0, kN, 1);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  d.fire(0, 1'000);
  ASSERT_TRUE(r.read_count(kN)) << d.logs();
  const std::string body = r.events.back();
  stranger_publish(d.nats().url(), "laminator.events.a", body, "a:99999999");
  ASSERT_EQ(d.shard(0).signal_and_wait(SIGTERM), 0) << d.logs();
  d.start_shard(0);
  const int port = d.shard_port(0);
  ASSERT_TRUE(wait_for([&] {
    return Deployment::metric(port, "laminator_nats_untrusted_tail_seq") == 99'999'999;
  })) << d.logs();
  const auto health = daemon::http_get("127.0.0.1", std::to_string(port), "/healthz");
  EXPECT_EQ(health.first, 503) << health.second;
  EXPECT_NE(health.second.find("seq 99999999, beyond its head"), std::string::npos)
      << health.second;
  // New events: journaled, not published while the tail is untrusted.
  d.bulk_alerts(0, kN, 1 + kN);
  d.fire(0, 2'000);
  ASSERT_TRUE(wait_for([&] { return d.journal(0).size() == std::size_t{2 * kN}; })) << d.logs();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_published_total"), 0);
  // The operator removes the stranger's message: the shard resumes from its own tail.
  ASSERT_GT(remove_last(d.nats().url(), "laminator.events.a"), 0u);
  ASSERT_TRUE(wait_for([&] {
    return Deployment::metric(port, "laminator_nats_acked_seq") == 2 * kN;
  })) << d.logs();
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_untrusted_tail_seq"), 0);
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_lost_total"), 0);
  EXPECT_TRUE(Deployment::wait_healthy(port, 10s));
  // Through the gateway: the forged event went by live (the gateway cannot tell it: NATS
  // authorization keeps strangers off the bus), then every one of a's journaled events, once.
  ASSERT_TRUE(r.read_count(2 * kN + 1)) << r.events.size() << "\n" << d.logs();
  std::set<std::uint64_t> shard_seqs;
  for (const auto& e : r.events)
    if (sfield(e, "shard") == "a") shard_seqs.insert(num(e, "shard_seq"));
  for (std::uint64_t s = 1; s <= 2 * kN; ++s) EXPECT_EQ(shard_seqs.count(s), 1u) << s;
  // Once: removing the stranger's message left nats-server 2.9.10 without a last message for the
  // subject (find_tail); resuming from seq 1 republished 1..2kN (past the 1 s window: stored).
  // (The gateway counts a's events after the forged 99999999 as repeats of it: it cannot tell a
  // forged seq from a real one, which is why strangers are kept off the bus.)
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_published_total"), kN) << "only kN+1..2kN";
  EXPECT_FALSE(r.read_count(2 * kN + 2, 500ms)) << "an event twice: " << r.events.back();

  // A forgery below the head: seq kN is plausible, but the message is not the event a journaled
  // under it (here: a's event 2kN's body). Resuming after it would publish kN+1..2kN twice.
  std::this_thread::sleep_for(1'200ms);  // past the de-duplication window
  stranger_publish(d.nats().url(), "laminator.events.a", body, "a:300");
  static_assert(kN == 300);
  ASSERT_EQ(d.shard(0).signal_and_wait(SIGTERM), 0) << d.logs();
  d.start_shard(0);
  ASSERT_TRUE(wait_for([&] {
    return Deployment::metric(port, "laminator_nats_untrusted_tail_seq") == kN;
  })) << d.logs();
  const auto health2 = daemon::http_get("127.0.0.1", std::to_string(port), "/healthz");
  EXPECT_EQ(health2.first, 503) << health2.second;
  EXPECT_NE(health2.second.find("claims seq 300 but is not the event this shard journaled"),
            std::string::npos)
      << health2.second;
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_published_total"), 0);
  ASSERT_GT(remove_last(d.nats().url(), "laminator.events.a"), 0u);
  ASSERT_TRUE(wait_for([&] {
    return Deployment::metric(port, "laminator_nats_untrusted_tail_seq") == 0;
  })) << d.logs();
  EXPECT_TRUE(Deployment::wait_healthy(port, 10s));
  // Its own tail (2kN) again: nothing published twice, nothing skipped.
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_acked_seq"), 2 * kN);
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_published_total"), 0);
  EXPECT_EQ(Deployment::metric(port, "laminator_nats_lost_total"), 0);
}

/// The Nats-Msg-Id of the last message the stream holds on `subject`, read as `url`'s user.
std::string last_msg_id(const std::string& url, const std::string& subject) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return "(no connection)";
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  natsConnection_JetStream(&js, nc, &jo);
  natsMsg* m = nullptr;
  jsErrCode e{};
  std::string id = "(none)";
  if (js_GetLastMsg(&m, js, "LAMINATOR", subject.c_str(), nullptr, &e) == NATS_OK) {
    const char* v = nullptr;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK) id = v;
    natsMsg_Destroy(m);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return id;
}

// Issue 31, section 2: with `laminator nats-authorization`'s users, every shard publishes and the
// gateway consumes (this deployment, like every scale-out test's but two, runs with it), and nobody
// else writes a shard's subject: no credentials is no connection, and shard b's or the gateway's
// publish on a's subject is refused by the server (the stream's last message there stays a's).
TEST(ScaleOut, NatsAuthorizationLetsOnlyEachShardWriteItsSubject) {
  constexpr int kN = 100;
  Deployment d("scaleout_auth", Deployment::Knobs{});
  for (std::size_t i = 0; i < 3; ++i) d.bulk_alerts(i, kN, 1 + static_cast<int>(i) * kN);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  for (std::size_t i = 0; i < 3; ++i) d.fire(i, 1'000);
  ASSERT_TRUE(r.read_count(3 * kN)) << d.logs();
  expect_exactly_the_journals(d, r.events);
  const std::string a_url = d.nats_url_as("shard_a");
  const std::string before = last_msg_id(a_url, "laminator.events.a");
  EXPECT_EQ(before, "a:" + std::to_string(kN));
  natsConnection* anon = nullptr;
  EXPECT_NE(natsConnection_ConnectTo(&anon, d.nats().url().c_str()), NATS_OK)
      << "connected without credentials";
  if (anon != nullptr) natsConnection_Destroy(anon);
  stranger_publish(d.nats_url_as("shard_b"), "laminator.events.a", r.events.back(), "a:99999999");
  stranger_publish(d.nats_url_as("gateway"), "laminator.events.a", r.events.back(), "a:99999998");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(last_msg_id(a_url, "laminator.events.a"), before) << "a stranger's publish was stored";
  EXPECT_FALSE(r.read_count(3 * kN + 1, 500ms)) << "a stranger's message reached subscribers";
  const std::string log = d.nats().log_tail(200);
  EXPECT_NE(log.find("Publish Violation - User \"shard_b\", Subject \"laminator.events.a\""),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("Publish Violation - User \"gateway\", Subject \"laminator.events.a\""),
            std::string::npos)
      << log;
}

// Issue 31, section 4: a shard restored to a point in time declares the seqs its lost history may
// have used (engine_mark_restored, as scripts/restore does) and continues above them. The gateway
// counted that jump as a fault (LaminatorGatewayShardOrder fired for 10 minutes); the shard now
// names the gap on its next event and the gateway counts it as declared.
TEST(ScaleOut, ARestoredShardsDeclaredGapIsNoJump) {
  constexpr int kN = 50;
  Deployment d("scaleout_restored", Deployment::Knobs{});
  d.bulk_alerts(0, kN, 1);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  d.fire(0, 1'000);
  ASSERT_TRUE(r.read_count(kN)) << d.logs();
  // Issue 32: a shard took 1.5-2 s to exit while its log said "stopped in 57 ms". Its last line is
  // now the whole time, and a shard whose events are all acknowledged exits at once.
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(d.shard(0).signal_and_wait(SIGTERM), 0) << d.logs();
  const auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  const std::string tail = d.shard(0).log_tail(5);
  std::printf("shard a: SIGTERM to exit %lld ms; %s\n", static_cast<long long>(stop_ms),
              tail.c_str());
  EXPECT_NE(tail.find("exit: "), std::string::npos) << tail;
  EXPECT_LT(stop_ms, 1'000) << tail;
  d.exec("SET search_path = laminator_shard_a, public; SELECT engine_mark_restored(1000, 'test')");
  d.start_shard(0);
  ASSERT_TRUE(Deployment::wait_healthy(d.shard_port(0))) << d.logs();
  d.bulk_alerts(0, kN, 1 + kN);
  d.fire(0, 2'000);
  ASSERT_TRUE(r.read_count(2 * kN)) << r.events.size() << "\n" << d.logs();
  EXPECT_EQ(num(r.events[kN], "shard_seq"), std::uint64_t{kN + 1'000 + 1}) << r.events[kN];
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_declared_gaps_total"), 1);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_gaps_total"), 0);
  EXPECT_EQ(Deployment::metric(d.shard_port(0), "laminator_nats_lost_total"), 0);
}

// Issue 31, section 4: the restore runbook needed the `nats` CLI to reset the gateway's consumer.
// `laminator gateway --reset-consumer` does it with the gateway's own config and NATS user; the
// next start serves the stream from its first event again, and a subscriber resuming with its
// since gets nothing twice. Purging the stream is an admin's: the gateway's user is refused.
TEST(ScaleOut, TheGatewaysConsumerIsResetByTheProjectsOwnCommand) {
  constexpr int kN = 40;
  Deployment d("scaleout_reset", Deployment::Knobs{});
  d.bulk_alerts(0, kN, 1);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  d.fire(0, 1'000);
  ASSERT_TRUE(r.read_count(kN)) << d.logs();
  EXPECT_EQ(d.gateway().signal_and_wait(SIGTERM), 0) << d.logs();
  // With the gateway's environment (its config names its token variables and NATS URL).
  const std::string cmd = "LAMINATOR_NATS_URL='" + d.nats_url_as("gateway") +
                          "' E2E_TOKEN=x E2E_SCOPED_TOKEN=y " + LAMINATOR_BINARY +
                          " gateway --config " + d.dir() + "/gateway.toml";
  auto [rc, out] = run_shell(cmd + " --reset-consumer --purge-stream");
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("cannot purge stream LAMINATOR"), std::string::npos) << out;
  EXPECT_EQ(out.find("pw-"), std::string::npos) << "a password in the output: " << out;
  std::tie(rc, out) = run_shell(cmd + " --reset-consumer");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("deleted consumer gw-test"), std::string::npos) << out;
  std::tie(rc, out) = run_shell(cmd + " --reset-consumer");
  EXPECT_NE(out.find("consumer gw-test did not exist"), std::string::npos) << out;
  d.start_gateway();
  ASSERT_TRUE(Deployment::wait_healthy(d.gateway_port())) << d.logs();
  Reader all(d, "", 0);
  ASSERT_TRUE(all.read_count(kN)) << all.last_close << "\n" << d.logs();
  EXPECT_EQ(all.events, r.events) << "the stream from its first event, under the same seqs";
  EXPECT_FALSE(r.read_count(kN + 1, 800ms)) << "the resumed subscriber got an event twice";
}

TEST(ScaleOut, ShardKillNatsOutageAndGatewayRestartMidBurstLoseAndRepeatNothing) {
  constexpr int kN = 3'000;
  // A narrow publishing window (8 in flight) keeps each burst in flight long enough to be hit.
  Deployment d("scaleout_faults", Deployment::Knobs{.gateway_ring = 4'096, .max_pending = 8});
  for (std::size_t i = 0; i < 3; ++i) d.bulk_alerts(i, kN, 1 + static_cast<int>(i) * kN);
  d.start_all();
  if (::testing::Test::HasFatalFailure()) return;
  Reader r(d);
  std::size_t total = 0;

  // 1. SIGKILL of shard a while its burst is being published; it restarts and publishes the rest
  //    (from its journal and crash ring): JetStream drops what it already had.
  d.fire(0, 1'000);
  ASSERT_TRUE(r.read_until([&](const auto&) { return r.count_of("a") >= 1; })) << d.logs();
  EXPECT_EQ(d.shard(0).signal_and_wait(SIGKILL), 128 + SIGKILL);
  const std::size_t a_at_kill = r.count_of("a");
  d.start_shard(0);
  total += kN;
  ASSERT_TRUE(r.read_count(total)) << r.events.size() << " " << r.last_close << "\n" << d.logs();
  EXPECT_LT(a_at_kill, std::size_t{kN}) << "the kill missed the burst";
  // Either the kill hit after the matcher had fired the burst (the restarted shard publishes the
  // rest from its journal and crash ring; JetStream drops what it had), or before it had fired all
  // of it (seen once: 15 of 3,000): the restarted shard fires the rest live. Both are mid-burst:
  // the restarted shard had something left to publish.
  EXPECT_GT(Deployment::metric(d.shard_port(0), "laminator_nats_published_total"), 0)
      << "the stream held the whole burst before the kill: the kill missed it";

  // 2. nats-server killed while shard b's burst is in flight, started again on the same store:
  //    shards and gateway reconnect; b resumes after the last seq the stream holds.
  d.fire(1, 1'000);
  ASSERT_TRUE(r.read_until([&](const auto&) { return r.count_of("b") >= 1; })) << d.logs();
  d.nats().kill();
  const std::size_t b_at_kill = r.count_of("b");
  std::this_thread::sleep_for(500ms);
  d.nats().start();
  total += kN;
  ASSERT_TRUE(r.read_count(total)) << r.events.size() << " " << r.last_close << "\n" << d.logs();
  EXPECT_LT(b_at_kill, std::size_t{kN});
  EXPECT_GE(Deployment::metric(d.shard_port(1), "laminator_nats_rewinds_total"), 1);
  EXPECT_GE(Deployment::metric(d.gateway_port(), "laminator_gateway_reconnects_total"), 1);

  // 3. The gateway killed during shard c's burst and restarted: the subscriber resumes with its
  //    last seq and gets the rest once.
  d.fire(2, 1'000);
  ASSERT_TRUE(r.read_until([&](const auto&) { return r.count_of("c") >= 1; })) << d.logs();
  EXPECT_EQ(d.gateway().signal_and_wait(SIGKILL), 128 + SIGKILL);
  const std::size_t c_at_kill = r.count_of("c");
  d.start_gateway();
  total += kN;
  ASSERT_TRUE(r.read_count(total)) << r.events.size() << " " << r.last_close << "\n" << d.logs();
  EXPECT_LT(c_at_kill, std::size_t{kN});
  EXPECT_GE(r.reconnects, 1u);

  std::printf(
      "faults hit mid-burst: shard a killed after %zu of %d, NATS killed after %zu of b's, gateway "
      "killed after %zu of c's; a republished %.0f from its journal (%.0f de-duplicated), b "
      "rewound %.0f time(s); the reader reconnected %zu time(s)\n",
      a_at_kill, kN, b_at_kill, c_at_kill,
      Deployment::metric(d.shard_port(0), "laminator_nats_journal_events_total"),
      Deployment::metric(d.shard_port(0), "laminator_nats_duplicates_total"),
      Deployment::metric(d.shard_port(1), "laminator_nats_rewinds_total"), r.reconnects);
  EXPECT_FALSE(r.read_count(total + 1, 500ms)) << "an event more than the shards made";
  expect_exactly_the_journals(d, r.events);
  // And the whole history again from a fresh subscriber: the same events, the same seqs.
  Reader again(d);
  ASSERT_TRUE(again.read_count(total, 60s)) << again.last_close;
  EXPECT_EQ(again.events, r.events);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(Deployment::metric(d.shard_port(i), "laminator_nats_lost_total"), 0);
  EXPECT_EQ(Deployment::metric(d.gateway_port(), "laminator_gateway_shard_repeats_total"), 0);
}

}  // namespace
}  // namespace lam::test
