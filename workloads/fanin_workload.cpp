#include "workloads/fanin_workload.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/gateway.h"
#include "feeds/protocol.h"
#include "feeds/venue.h"
#include "persistence/local_cluster.h"
#include "persistence/migrator.h"
#include "stream/stream_client.h"
#include "tools/mockex/loopback.h"
#include "tools/mockex/mock_exchange.h"
#include "tools/testbed/nats_server.h"

namespace lam::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kToken = "bench-fanin-token";
constexpr const char* kUrlEnv = "LAMINATOR_BENCH_FANIN_DB";
/// One shard of the run: its id, venue, market and base price (cents). One shard: "bench" on
/// Binance; more: s0..s2 on Binance, Bybit and Hyperliquid (the mock exchange serves them all).
struct BenchShard {
  const char* id;
  feeds::Venue venue;
  const char* symbol;
  const char* market;
  std::int64_t base;  ///< cents
};
constexpr BenchShard kOneShard{"bench", feeds::Venue::binance, "BTCUSDT",
                               "0000000a-0000-4000-8000-0000000000f1", 8'000'000};
constexpr BenchShard kShards[] = {
    {"s0", feeds::Venue::binance, "BTCUSDT", "0000000a-0000-4000-8000-0000000000f1", 8'000'000},
    {"s1", feeds::Venue::bybit, "ETHUSDT", "0000000a-0000-4000-8000-0000000000f2", 300'000},
    {"s2", feeds::Venue::hyperliquid, "SOL", "0000000a-0000-4000-8000-0000000000f3", 15'000}};

std::string price_text(std::int64_t cents) {
  return std::to_string(cents / 100) + "." + (cents % 100 < 10 ? "0" : "") +
         std::to_string(cents % 100);
}

void say(const FaninOptions& o, const std::string& what) {
  if (o.progress) o.progress(what);
}

std::string token_sha() {
  std::string out;
  for (std::uint8_t b : daemon::token_hash(kToken)) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    out += h;
  }
  return out;
}

daemon::Config shard_config(const mockex::MockExchange& ex, const std::string& nats,
                            const BenchShard& shard, bool orphans) {
  std::ostringstream t;
  const std::string venue(feeds::venue_name(shard.venue));
  t << "log_level = \"warn\"\n[database]\nurl_env = \"" << kUrlEnv << "\"\n"
    << "[engine]\ncrash_ring = \"\"\nposition_refresh_interval_ms = 5000\n"
    << "[writer]\nflush_interval_ms = 20\n[listener]\nbatch_window_ms = 1\n"
    << "[stream]\nport = 0\nclient_queue = 1048576\n[[stream.tokens]]\nname = \"bench\"\n"
    << "sha256 = \"" << token_sha() << "\"\n"
    << "[shard]\nid = \"" << shard.id << "\"\nvenues = [\"" << venue
    << "\"]\norphans = " << (orphans ? "true" : "false") << "\n"
    << "[nats]\nurl = \"" << nats << "\"\nstream = \"LAMINATOR_BENCH\"\n"
    << "[feeds." << venue << ".urls]\n";
  for (const feeds::Route& r : feeds::venue_routes(shard.venue))
    t << r.name << " = \"" << ex.url(shard.venue, r.name) << "\"\n";
  return daemon::parse_config(t.str(), std::string("bench-shard-") + shard.id + ".toml");
}

daemon::Config gateway_config(const std::string& nats) {
  std::ostringstream t;
  t << "log_level = \"warn\"\n[stream]\nport = 0\nclient_queue = 1048576\n"
    << "[[stream.tokens]]\nname = \"bench\"\nsha256 = \"" << token_sha() << "\"\n"
    << "[nats]\nurl = \"" << nats << "\"\nstream = \"LAMINATOR_BENCH\"\n"
    << "[gateway]\ndurable = \"bench-gateway\"\n";
  return daemon::parse_config(t.str(), "bench-gateway.toml");
}

/// A subscriber on its own thread: for each event, its alert id and when it arrived.
class Recorder {
 public:
  Recorder(const std::string& url) : client_(url, kToken) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        auto m = client_.next(20ms);
        if (!m) {
          if (client_.closed()) break;
          continue;
        }
        const auto now = Clock::now();
        const auto at = m->find("\"alert_id\":\"");
        if (at == std::string::npos) continue;
        std::lock_guard lock(mu_);
        seen_.emplace(m->substr(at + 12, 36), now);
        count_.store(seen_.size());
      }
    });
  }
  ~Recorder() {
    stop_.store(true);
    thread_.join();
  }
  [[nodiscard]] std::size_t count() const { return count_.load(); }
  [[nodiscard]] std::optional<Clock::time_point> at(const std::string& alert) const {
    std::lock_guard lock(mu_);
    const auto it = seen_.find(alert);
    if (it == seen_.end()) return std::nullopt;
    return it->second;
  }
  [[nodiscard]] Clock::time_point last() const {
    std::lock_guard lock(mu_);
    Clock::time_point t{};
    for (const auto& [k, v] : seen_) t = std::max(t, v);
    return t;
  }
  [[nodiscard]] std::vector<std::string> ids() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [k, v] : seen_) out.push_back(k);
    return out;
  }

 private:
  daemon::StreamClient client_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> seen_;
  std::atomic<std::size_t> count_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string alert_id(long long n) {
  char b[40];
  std::snprintf(b, sizeof b, "0000000d-0000-4000-8000-%012llx", n);
  return b;
}

/// `n` price_above alerts from id `first`, targets `from` + g * `step` (g = 1..n), users
/// round-robin.
void add_alerts(const std::string& url, const char* market, long long first, long long n,
                const std::string& from, const std::string& step) {
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec_params(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex($1 + g - 1), 12, '0'))::uuid, "
      "('0000000c-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, $2::uuid, "
      "'price_above', 'greater_than', $3::numeric + g * $5::numeric FROM generate_series(1, $4) g",
      first, market, from, n, step);
  w.commit();
}

double metric(std::uint16_t port, const std::string& name) {
  const std::string body = daemon::http_get("127.0.0.1", std::to_string(port), "/metrics").second;
  const std::string key = name + " ";
  const auto at = body.find("\n" + key);
  return at == std::string::npos ? 0 : std::stod(body.substr(at + 1 + key.size()));
}

double engine_commands(std::uint16_t port) {
  return metric(port, "laminator_engine_commands_total");
}

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return f();
}

}  // namespace

std::string make_fanin_db(db::LocalCluster& cluster, const std::string& name) {
  const std::string url = cluster.create_database(name);
  db::Migrator(url).migrate({});
  pqxx::connection c(url);
  pqxx::work w(c);
  for (const BenchShard& m : kShards)  // one market per venue (a single shard owns Binance's)
    w.exec_params(
        "INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) VALUES "
        "($1::uuid, $2, 'X', 'USDT', $3)",
        m.market, m.symbol, std::string(feeds::venue_name(m.venue)));
  w.exec(
      "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
      "lpad(to_hex(g), 12, '0'))::uuid, g + 1 FROM generate_series(0, 999) g");
  w.commit();
  return url;
}

FaninRun run_fanin(const std::string& url, const FaninOptions& opt) {
  // Long: the fan-in workload's steps in order (nats-server, shards, gateway, subscribers, the
  // timed bursts, the probes, the report), sharing their processes' lifetimes.
  if (opt.burst < 100 || opt.probes < 10 || opt.repetitions < 1 || opt.shards < 1 || opt.shards > 3)
    throw std::invalid_argument(
        "fan-in: burst >= 100, probes >= 10, repetitions >= 1, shards 1 to 3");
  ::setenv(kUrlEnv, url.c_str(), 1);
  say(opt, "starting nats-server");
  testbed::NatsServer nats({}, opt.nats_server);  // a temporary store
  std::vector<BenchShard> shards;
  if (opt.shards == 1) {
    shards.push_back(kOneShard);
  } else {
    shards.assign(std::begin(kShards), std::begin(kShards) + opt.shards);
  }
  mockex::Options mo;
  mo.rate = 200;
  mockex::MockExchange ex(mo);
  for (const BenchShard& s : shards) ex.pin_price(s.symbol, s.base);
  ex.start();
  say(opt, "starting " + std::to_string(shards.size()) + " shard(s) and the gateway");
  std::vector<std::unique_ptr<daemon::Daemon>> daemons;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    daemons.push_back(
        std::make_unique<daemon::Daemon>(shard_config(ex, nats.url(), shards[i], i == 0)));
    daemons.back()->start();
  }
  daemon::Gateway g(gateway_config(nats.url()));
  g.start();
  const auto ws = [](std::uint16_t port) {
    return "ws://127.0.0.1:" + std::to_string(port) + "/v1/stream";
  };
  std::vector<std::unique_ptr<Recorder>> direct;  // each shard's own stream
  for (const auto& d : daemons) direct.push_back(std::make_unique<Recorder>(ws(d->stream_port())));
  Recorder via(ws(g.port()));
  FaninRun run;
  long long next_id = 1;
  // Burst targets are base + g/1000 (g <= burst): a move to this price crosses them all.
  const auto burst_pin = [&](const BenchShard& s) { return s.base + opt.burst / 10 + 100; };
  // Every shard has `n` more of the bot's changes than `before`.
  const auto loaded = [&](const std::vector<double>& before, long long n) {
    return wait_until(
        [&] {
          for (std::size_t i = 0; i < daemons.size(); ++i)
            if (engine_commands(daemons[i]->stream_port()) < before[i] + static_cast<double>(n))
              return false;
          return true;
        },
        60s);
  };
  const auto commands = [&] {
    std::vector<double> v;
    for (const auto& d : daemons) v.push_back(engine_commands(d->stream_port()));
    return v;
  };
  const auto want = static_cast<std::size_t>(opt.burst);
  for (int rep = 1; rep <= opt.repetitions; ++rep) {
    say(opt, "burst " + std::to_string(rep) + "/" + std::to_string(opt.repetitions));
    for (const BenchShard& s : shards) ex.pin_price(s.symbol, s.base);
    const std::vector<double> before = commands();
    for (const BenchShard& s : shards) {
      add_alerts(url, s.market, next_id, opt.burst, price_text(s.base), "0.001");
      next_id += opt.burst;
    }
    if (!loaded(before, opt.burst)) throw std::runtime_error("fan-in: the alerts never loaded");
    std::vector<std::size_t> d0;
    for (const auto& r : direct) d0.push_back(r->count());
    const std::size_t g0 = via.count();
    std::this_thread::sleep_for(100ms);  // the writer's lag from loading settles
    // When JetStream has stored every shard's burst (each shard's acknowledged seq reaches its
    // head): the publishing stage's rate, apart from the gateway's. Polled every 5 ms.
    std::vector<double> head_after;
    for (const auto& d : daemons)
      head_after.push_back(metric(d->stream_port(), "laminator_nats_acked_seq") +
                           static_cast<double>(want));
    std::optional<Clock::time_point> stored_at;
    Clock::time_point polled{};
    const auto check = [&] {
      if (!stored_at && Clock::now() - polled >= 5ms) {
        polled = Clock::now();
        bool all = true;
        for (std::size_t i = 0; i < daemons.size(); ++i)
          all =
              all && metric(daemons[i]->stream_port(), "laminator_nats_acked_seq") >= head_after[i];
        if (all) stored_at = polled;
      }
      for (std::size_t i = 0; i < direct.size(); ++i)
        if (direct[i]->count() < d0[i] + want) return false;
      return via.count() >= g0 + want * shards.size();
    };
    const auto t0 = Clock::now();
    for (const BenchShard& s : shards) ex.pin_price(s.symbol, burst_pin(s));  // all at once
    if (!wait_until(check, 120s))
      throw std::runtime_error("fan-in: a burst did not complete (gateway " +
                               std::to_string(via.count() - g0) + " of " +
                               std::to_string(want * shards.size()) + ")");
    for (const auto& r : direct)
      run.direct_eps.push_back(static_cast<double>(want) /
                               std::chrono::duration<double>(r->last() - t0).count());
    run.gateway_eps.push_back(static_cast<double>(want * shards.size()) /
                              std::chrono::duration<double>(via.last() - t0).count());
    if (!wait_until(
            [&] {
              check();
              return stored_at.has_value();
            },
            30s))
      throw std::runtime_error("fan-in: JetStream never acknowledged the burst");
    run.stored_eps.push_back(static_cast<double>(want * shards.size()) /
                             std::chrono::duration<double>(*stored_at - t0).count());
  }
  // Probes, on the first shard (the others idle, connected): targets P + 0.005, P + 0.015, ... (a
  // cent apart) above the bursts' price P; moving the price to P + k cents crosses exactly probe k.
  say(opt, "probes");
  const BenchShard& first = shards.front();
  daemon::Daemon& d = *daemons.front();
  Recorder& own = *direct.front();
  const std::int64_t probe_base = burst_pin(first) + 10'000;
  ex.pin_price(first.symbol, probe_base);
  const double before = engine_commands(d.stream_port());
  const long long first_probe = next_id;
  char from[32];  // P - 0.005, in thousandths: probe k's target is P + k cents - 0.005
  const long long thousandths = probe_base * 10 - 5;
  std::snprintf(from, sizeof from, "%lld.%03lld", thousandths / 1000, thousandths % 1000);
  add_alerts(url, first.market, first_probe, opt.probes, from, "0.01");
  if (!wait_until([&] { return engine_commands(d.stream_port()) >= before + opt.probes; }, 60s))
    throw std::runtime_error("fan-in: the probes never loaded");
  for (int k = 1; k <= opt.probes; ++k) {
    const std::string id = alert_id(first_probe + k - 1);
    const auto t0 = Clock::now();
    ex.pin_price(first.symbol, probe_base + k);
    if (!wait_until([&] { return own.at(id) && via.at(id); }, 5s)) continue;
    run.direct_us.push_back(std::chrono::duration<double, std::micro>(*own.at(id) - t0).count());
    run.added_us.push_back(
        std::chrono::duration<double, std::micro>(*via.at(id) - *own.at(id)).count());
  }
  std::this_thread::sleep_for(200ms);
  std::vector<std::string> a, b = via.ids();
  for (const auto& r : direct) {
    const auto ids = r->ids();
    a.insert(a.end(), ids.begin(), ids.end());
  }
  run.events = a.size();
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<std::string> diff;
  std::set_symmetric_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(diff));
  run.missing = diff.size();
  g.stop();
  for (auto& dd : daemons) dd->stop();
  ex.stop();
  return run;
}

}  // namespace lam::bench
