#pragma once
// End-to-end harness: a real PostgreSQL database (the test cluster), the mock exchange in-process
// on loopback, and the real `laminator run` binary as a child process with a generated config.
// Tests talk to it only through its sockets (the alert stream, /metrics, /healthz) and the
// database.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "feeds/protocol.h"
#include "persistence/migrator.h"
#include "stream/stream_client.h"
#include "tests/support/net.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/process.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::test {

using namespace std::chrono_literals;

inline constexpr const char* kToken = "e2e-token-all-users";
inline constexpr const char* kScopedToken = "e2e-token-user-1";
inline constexpr const char* kMarket = "0000000a-0000-4000-8000-000000000001";
inline std::string user(int n) {
  char b[40];
  std::snprintf(b, sizeof b, "0000000c-0000-4000-8000-%012x", n);
  return b;
}

/// What varies between tests' configs.
struct DaemonKnobs {
  int flush_interval_ms = 20;
  int client_queue = 4096;
  int stale_budget_ms = 2000;
  int idle_budget_ms = 5000;
  int oracle_max_age_ms = 0;  ///< [feeds.pyth] max_age_ms; 0: the default
  bool crash_ring = true;
  int crash_ring_slots = 0;      ///< 0: the config's default
  int ring_events = 0;           ///< 0: the config's default
  int health_interval_ms = 0;    ///< [maintenance] health_interval_ms; 0: the config's default
  std::string record_dir{};      ///< [feeds] record_dir: every frame captured (replay --raw)
  PgCluster* cluster = nullptr;  ///< nullptr: the shared test cluster
};

class E2E {
 public:
  explicit E2E(const std::string& name, DaemonKnobs knobs = {}) : knobs_(knobs) {
    url_ = (knobs.cluster != nullptr ? *knobs.cluster : shared_cluster()).create_database(name);
    db::Migrator(url_).migrate({});
    seed();
    mockex::Options mo;
    mo.rate = 400;
    mock_.emplace(mo);
    mock_->pin_price("BTCUSDT", 8'000'000);  // 80000.00
    mock_->start();
    dir_ = "/tmp/laminator-e2e-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    port_ = free_port();
    write_config();
  }
  ~E2E() {
    child_.kill();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }

  const std::string& url() const { return url_; }
  /// The database the next start() uses (a restored copy, say); the config and the crash ring stay.
  void set_url(std::string url) { url_ = std::move(url); }
  /// Rewrites the config for the next start().
  void reconfigure(const DaemonKnobs& k) {
    knobs_ = k;
    write_config();
  }
  [[nodiscard]] std::string dir() const { return dir_; }
  mockex::MockExchange& mock() { return *mock_; }
  std::string stream_url(const std::string& query = "") const {
    return "ws://127.0.0.1:" + std::to_string(port_) + "/v1/stream" + query;
  }
  int port() const { return port_; }
  const std::string& log_path() const { return log_; }

  void start() {
    log_ = dir_ + "/daemon.log";
    const std::string bin = LAMINATOR_BINARY;
    const std::string cfg = dir_ + "/laminator.toml";
    child_.spawn({bin, "run", "--config", cfg, "--status-every", "0"},
                 {"LAMINATOR_DATABASE_URL=" + url_, std::string("E2E_TOKEN=") + kToken,
                  std::string("E2E_SCOPED_TOKEN=") + kScopedToken},
                 log_);
  }

  /// Waits until /healthz says 200 (feeds live, database reachable).
  bool wait_healthy(std::chrono::milliseconds limit = 20s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (health().first == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::pair<int, std::string> health() const { return get("/healthz"); }
  std::pair<int, std::string> get(const std::string& target) const {
    try {
      return daemon::http_get("127.0.0.1", std::to_string(port_), target);
    } catch (const std::exception&) {
      return {0, ""};
    }
  }
  /// A metric's value from /metrics (first sample), or -1.
  double metric(const std::string& name) const {
    const std::string body = get("/metrics").second;
    std::istringstream in(body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0)
        return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return -1;
  }

  /// The sum of a metric over all its label sets (0 if absent).
  double metric_sum(const std::string& name) const {
    const std::string body = get("/metrics").second;
    std::istringstream in(body);
    std::string line;
    double sum = 0;
    while (std::getline(in, line)) {
      if (line.rfind(name + " ", 0) == 0 || line.rfind(name + "{", 0) == 0)
        sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

  /// Sends `sig`; returns the exit status if the process ends within `limit` (else -1).
  int signal_and_wait(int sig, std::chrono::milliseconds limit = 5s) {
    return child_.signal_and_wait(sig, limit);
  }

  void exec(const std::string& sql) const {
    pqxx::connection c(url_);
    pqxx::work w(c);
    w.exec(sql);
    w.commit();
  }
  /// `sql` outside a transaction on database `db` of the same server (ALTER DATABASE, say).
  void exec_on(const std::string& db, const std::string& sql) const {
    pqxx::connection c(url_.substr(0, url_.rfind("dbname=")) + "dbname=" + db);
    pqxx::nontransaction(c).exec(sql);
  }
  pqxx::result query(const std::string& sql) const {
    pqxx::connection c(url_);
    pqxx::read_transaction t(c);
    return t.exec(sql);
  }
  std::string log_text() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  /// The daemon log's last lines: what a failed stop or check prints (the whole log buries it).
  std::string log_tail(std::size_t lines = 60) const { return last_lines(log_text(), lines); }

 private:
  void seed() {
    exec(
        "INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name, market_type, "
        "price_source) VALUES ('" +
        std::string(kMarket) + "', 'BTCUSDT', 'BTC', 'USDT', 'binance', 'perpetual', 'mark')");
    exec(
        "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
        "lpad(to_hex(g), 12, '0'))::uuid, 900000 + g FROM generate_series(1, 5) g");
    exec(
        "INSERT INTO wallets (id, user_id, wallet_address) SELECT ('0000000e-0000-4000-8000-' || "
        "lpad(to_hex(g), 12, '0'))::uuid, ('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, "
        "'0'))::uuid, 'W' || lpad(g::text, 40, '1') FROM generate_series(1, 5) g");
  }

  void write_config() {
    std::ofstream f(dir_ + "/laminator.toml");
    f << "log_level = \"info\"\n"
      << "[database]\nurl_env = \"LAMINATOR_DATABASE_URL\"\n"
      << "[engine]\nposition_refresh_interval_ms = 200\n"
      << "crash_ring = \"" << (knobs_.crash_ring ? dir_ + "/events.ring" : "") << "\"\n"
      << (knobs_.crash_ring_slots > 0
              ? "crash_ring_slots = " + std::to_string(knobs_.crash_ring_slots) + "\n"
              : std::string())
      << "[writer]\nflush_interval_ms = " << knobs_.flush_interval_ms << "\n"
      << "[listener]\nbatch_window_ms = 1\n"
      << (knobs_.health_interval_ms > 0 ? "[maintenance]\nhealth_interval_ms = " +
                                              std::to_string(knobs_.health_interval_ms) + "\n"
                                        : std::string())
      << "[stream]\naddress = \"127.0.0.1\"\nport = " << port_ << "\n"
      << "client_queue = " << knobs_.client_queue << "\n"
      << (knobs_.ring_events > 0 ? "ring_events = " + std::to_string(knobs_.ring_events) + "\n"
                                 : std::string())
      << "[[stream.tokens]]\nname = \"all\"\ntoken_env = \"E2E_TOKEN\"\n"
      << "[[stream.tokens]]\nname = \"user1\"\ntoken_env = \"E2E_SCOPED_TOKEN\"\n"
      << "users = [\"" << user(1) << "\"]\n"
      << "[feeds]\nhousekeeping_ms = 20\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n"
      << (knobs_.record_dir.empty() ? std::string()
                                    : "record_dir = \"" + knobs_.record_dir + "\"\n");
    for (feeds::Venue v : feeds::kAllVenues) {
      const std::string n(feeds::venue_name(v));
      f << "[feeds." << n << "]\n";
      if (v == feeds::Venue::binance) {
        f << "stale_budget_ms = " << knobs_.stale_budget_ms << "\n"
          << "idle_budget_ms = " << knobs_.idle_budget_ms << "\n";
      }
      if (v == feeds::Venue::pyth && knobs_.oracle_max_age_ms > 0)
        f << "max_age_ms = " << knobs_.oracle_max_age_ms << "\n";
      f << "[feeds." << n << ".urls]\n";
      for (const feeds::Route& r : feeds::venue_routes(v))
        f << r.name << " = \"" << mock_->url(v, r.name) << "\"\n";
    }
  }

  DaemonKnobs knobs_;
  std::string url_;
  std::optional<mockex::MockExchange> mock_;
  std::string dir_;
  std::string log_;
  int port_ = 0;
  Child child_;
};

// ---- helpers shared by the end-to-end and fault tests ----

using Clock = std::chrono::steady_clock;
using daemon::StreamClient;

inline std::string sfield(const std::string& json, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto at = json.find(k);
  if (at == std::string::npos) return "";
  const auto end = json.find('"', at + k.size());
  return json.substr(at + k.size(), end - at - k.size());
}
inline std::uint64_t seq_of(const std::string& json) {
  const auto at = json.find("\"seq\":");
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + 6));
}

inline std::string alert_id(int n) {
  char b[40];
  std::snprintf(b, sizeof b, "0000000d-0000-4000-8000-%012x", n);
  return b;
}

/// INSERTs an alert the way the bot does (the listener picks it up).
inline void add_alert(const E2E& e, int n, int user_n, const char* type, const char* cond,
                      const char* target) {
  e.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "VALUES ('" +
      alert_id(n) + "', '" + user(user_n) + "', '" + kMarket + "', '" + type + "', '" + cond +
      "', " + target + ")");
}

/// Reads events until `pred` holds for one of them (or `limit` passes). Returns what it read.
inline std::vector<std::string> read_until(StreamClient& c,
                                           const std::function<bool(const std::string&)>& pred,
                                           std::chrono::milliseconds limit = 10s) {
  std::vector<std::string> got;
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    auto m = c.next(50ms);
    if (c.closed()) break;
    if (!m) continue;
    got.push_back(*m);
    if (pred(*m)) break;
  }
  return got;
}

inline std::vector<std::string> read_n(StreamClient& c, std::size_t n,
                                       std::chrono::milliseconds limit = 10s) {
  std::size_t k = 0;
  return read_until(
      c, [&](const std::string&) { return ++k >= n; }, limit);
}

inline bool has(const std::vector<std::string>& evs, const std::string& type,
                const std::string& id) {
  for (const auto& e : evs)
    if (sfield(e, "type") == type &&
        (sfield(e, "alert_id") == id || sfield(e, "position_id") == id ||
         sfield(e, "order_id") == id))
      return true;
  return false;
}

inline void expect_contiguous(const std::vector<std::string>& evs) {
  for (std::size_t i = 1; i < evs.size(); ++i)
    EXPECT_EQ(seq_of(evs[i]), seq_of(evs[i - 1]) + 1) << evs[i - 1] << "\n" << evs[i];
}

inline bool wait_for(const std::function<bool()>& f, std::chrono::milliseconds limit = 10s) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// Waits until the engine has applied at least `n` change-capture commands more than `before`.
inline void wait_commands(const E2E& e, double before, double n = 1) {
  ASSERT_TRUE(wait_for([&] { return e.metric("laminator_engine_commands_total") >= before + n; }))
      << "listener never delivered the change";
}

/// A count(*) query's result; retried while the database restarts (the fault tests kill it).
inline int count(const E2E& e, const std::string& sql) {
  for (int attempt = 0;; ++attempt) {
    try {
      return e.query(sql)[0][0].as<int>();
    } catch (const std::exception&) {
      if (attempt > 100) throw;
      std::this_thread::sleep_for(50ms);  // the server is restarting
    }
  }
}

/// Reads until `n` events arrived (or `limit`), as a real client does: a close that names a resume
/// point ("slow consumer; resume with since=N") is followed by a reconnect from there. Checks every
/// seq once, in order, across reconnects. Returns the events; `resumes` counts the reconnects.
inline std::vector<std::string> read_exactly(const E2E& e, std::unique_ptr<StreamClient>& sub,
                                             std::size_t n, std::uint64_t first_seq,
                                             std::size_t* resumes = nullptr,
                                             std::chrono::milliseconds limit = 60s) {
  std::vector<std::string> got;
  const auto end = Clock::now() + limit;
  while (got.size() < n && Clock::now() < end) {
    auto m = sub->next(50ms);
    if (m) {
      got.push_back(*m);
      continue;
    }
    if (!sub->closed()) continue;
    const std::string why = sub->close_reason();
    const auto at = why.find("since=");
    if (at == std::string::npos) break;  // a close without a resume point is a failure
    if (resumes != nullptr) ++*resumes;
    sub = std::make_unique<StreamClient>(e.stream_url("?since=" + why.substr(at + 6)), kToken);
  }
  EXPECT_EQ(got.size(), n) << "closed " << sub->close_code() << " " << sub->close_reason();
  std::set<std::string> ids;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(seq_of(got[i]), first_seq + i) << got[i];
    if (sfield(got[i], "type") == "alert.triggered") {
      EXPECT_TRUE(ids.insert(sfield(got[i], "alert_id")).second) << "fired twice: " << got[i];
    }
  }
  return got;
}

}  // namespace lam::test
