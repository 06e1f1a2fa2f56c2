#include "workloads/pipeline_workload.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "daemon/config.h"
#include "persistence/local_cluster.h"
#include "persistence/migrator.h"
#include "stream/stream_client.h"
#include "tools/mockex/frames.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kMarkets = 50;
constexpr long long kRows = 100'000;
constexpr const char* kToken = "bench-token";
constexpr const char* kUrlEnv = "LAMINATOR_BENCH_DB";

void say(const PipelineOptions& opt, const std::string& what) {
  if (opt.progress) opt.progress(what);
}

std::string symbol(int m) {
  if (m == 0) return "BTCUSDT";
  char b[16];
  std::snprintf(b, sizeof b, "S%03dUSDT", m);
  return b;
}

/// `n` generated frames for a Binance route, round-robin over its topics and the 50 symbols, with
/// increasing times and trade ids (no loop: nothing repeats, so no frame is dropped as out of
/// order).
std::vector<std::string> pregenerate(const std::string& route, std::uint64_t n) {
  mockex::FrameGenerator gen(feeds::Venue::binance, 7);
  std::vector<mockex::Topic> topics;
  for (int m = 0; m < kMarkets; ++m) {
    if (route == "market") {
      topics.push_back({mockex::Stream::mark, symbol(m)});
      topics.push_back({mockex::Stream::trade, symbol(m)});
    } else {
      topics.push_back({mockex::Stream::book, symbol(m)});
    }
  }
  std::vector<std::string> out;
  out.reserve(n);
  const std::int64_t t0 = wall_ns() / 1'000'000;
  for (std::uint64_t i = 0; i < n; ++i)
    out.push_back(gen.next(topics[i % topics.size()], t0 + static_cast<std::int64_t>(i / 1000)));
  return out;
}

daemon::Config daemon_config(const mockex::MockExchange& ex, const PipelineOptions& opt) {
  std::ostringstream t;
  t << "log_level = \"warn\"\n[database]\nurl_env = \"" << kUrlEnv << "\"\n"
    << "[engine]\nidle = \"" << opt.idle
    << "\"\nposition_refresh_interval_ms = " << (opt.position_refresh ? 5'000 : 86'400'000)
    << "\nmarket_mark_interval_ms = " << (opt.market_marks ? 10 : 60'000)
    << "\npin_cpu = " << opt.pin_matcher << "\ncrash_ring = \"\"\n"
    << "[stream]\nport = 0\n[[stream.tokens]]\nname = \"bench\"\nsha256 = \"";
  for (std::uint8_t b : daemon::token_hash(kToken)) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    t << h;
  }
  t << "\"\n[feeds.binance]\nmax_msgs_per_s = 50\ntopics_per_msg = 200\n[feeds.binance.urls]\n"
    << "market = \"" << ex.url(feeds::Venue::binance, "market") << "\"\n"
    << "public = \"" << ex.url(feeds::Venue::binance, "public")
    << "\"\n"
    // The books are checked by laminator reconcile's own tests: not here, on a dataset of positions
    // seeded as found (no balances) and inside the measured window.
    << "[maintenance]\nreconcile_interval_ms = 0\n";
  if (!opt.maintenance) t << "health_interval_ms = 3600000\npartition_interval_ms = 86400000\n";
  return daemon::parse_config(t.str(), "bench.toml");
}

/// "80001.50" for probe k.
std::string probe_price(int k) {
  return std::to_string(80000 + k) + ".50";
}

}  // namespace

double sorted_quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  if (q >= 1) return v.back();
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

std::string make_pipeline_db(db::LocalCluster& cluster, const std::string& name, int probes) {
  if (probes < 1 || probes >= kRows) throw std::invalid_argument("probes must be in [1, 100000)");
  const std::string url = cluster.create_database(name);
  db::Migrator(url).migrate({});
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec("SET LOCAL app.origin = 'engine'");
  w.exec("CREATE TEMP TABLE m (g int, sym text) ON COMMIT DROP");
  for (int m = 0; m < kMarkets; ++m) w.exec_params("INSERT INTO m VALUES ($1, $2)", m, symbol(m));
  const std::string mid = "('0000000a-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
  w.exec(std::string("INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) SELECT ")
             .append(mid)
             .append(", sym, 'B', 'USDT', 'binance' FROM m"));
  const std::string uid = "('0000000c-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid";
  w.exec(
      "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
      "lpad(to_hex(g), 12, '0'))::uuid, g + 1 FROM generate_series(0, 999) g");
  w.exec(
      "INSERT INTO wallets (id, user_id, wallet_address) SELECT ('0000000e-0000-4000-8000-' || "
      "lpad(to_hex(g), 12, '0'))::uuid, ('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, "
      "'0'))::uuid, 'W' || lpad(g::text, 40, 'z') FROM generate_series(0, 999) g");
  // (user, market, side) is unique: 1000 users x 50 markets x 2 sides = 100k positions.
  std::string q =
      "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, "
      "margin) SELECT ('0000000b-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, ";
  q.append(uid)
      .append(
          ", ('0000000e-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, "
          "('0000000a-0000-4000-8000-' || lpad(to_hex((g / 1000) % ")
      .append(std::to_string(kMarkets))
      .append(
          "), 12, '0'))::uuid, CASE WHEN g / 50000 = 0 THEN 'long' ELSE 'short' "
          "END::position_side, 0.01, 100, 1000000 FROM generate_series(0, ")
      .append(std::to_string(kRows - 1))
      .append(") g");
  w.exec(q);
  q = "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, ";
  q.append(uid)
      .append(", ('0000000a-0000-4000-8000-' || lpad(to_hex(1 + g % ")
      .append(std::to_string(kMarkets - 1))
      .append(
          "), 12, '0'))::uuid, CASE WHEN g % 2 = 0 THEN 'price_above' ELSE 'price_below' "
          "END::alert_type, CASE WHEN g % 2 = 0 THEN 'greater_than' ELSE 'less_than' "
          "END::condition_type, CASE WHEN g % 2 = 0 THEN 1000000 ELSE 1 END "
          "FROM generate_series(1, ")
      .append(std::to_string(kRows - probes))
      .append(") g");
  w.exec(q);
  w.exec_params(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(1000000 + g), 12, '0'))::uuid, "
      "'0000000c-0000-4000-8000-000000000001', '0000000a-0000-4000-8000-000000000000', "
      "'price_above', 'greater_than', 80000 + g FROM generate_series(1, $1::int) g",
      probes);
  w.commit();
  pqxx::nontransaction(c).exec("VACUUM ANALYZE");
  return url;
}

LatencyRun run_wire_latency(const std::string& url, const PipelineOptions& opt) {
  ::setenv(kUrlEnv, url.c_str(), 1);
  std::atomic<int> probe{0};
  std::atomic<std::int64_t> sent_ns{0};
  // What probe k's crossing frame carries, made before the mock starts and never written after:
  // the mock's thread reads it while this one moves on to the next probe.
  std::vector<std::string> expect(static_cast<std::size_t>(opt.probes) + 1);
  for (int k = 1; k <= opt.probes; ++k)
    expect[static_cast<std::size_t>(k)] = "\"p\":\"" + probe_price(k);
  mockex::Options mo;
  mo.rate = opt.rate / 2;  // per connection: market (mark + trade) and public (book)
  mo.binance_max_msgs_per_s = 1000;
  mo.frames_per_write = opt.wire_frames_per_write;
  mo.nice = opt.load_nice;
  mo.on_data_frame = [&](const std::string& f) {
    const int k = probe.load(std::memory_order_acquire);
    if (k == 0 || sent_ns.load(std::memory_order_relaxed) != 0) return;
    if (f.find("markPrice") != std::string::npos &&
        f.find("\"s\":\"BTCUSDT\"") != std::string::npos &&
        f.find(expect[static_cast<std::size_t>(k)]) != std::string::npos)
      sent_ns.store(wall_ns(), std::memory_order_release);
  };
  mockex::MockExchange ex(mo);
  ex.pin_price("BTCUSDT", 8'000'000);
  ex.start();
  say(opt, "starting the daemon (loads 200k rows)");
  daemon::Daemon d(daemon_config(ex, opt));
  d.start();
  daemon::StreamClient sub("ws://127.0.0.1:" + std::to_string(d.stream_port()) + "/v1/stream",
                           kToken);
  daemon::StreamClient committed(
      "ws://127.0.0.1:" + std::to_string(d.stream_port()) + "/v1/stream?committed=1", kToken);
  std::this_thread::sleep_for(2s);  // connect, subscribe, go live, warm up
  LatencyRun r;
  r.before = d.status();
  for (int k = 1; k <= opt.probes; ++k) {
    if (k % 100 == 1)
      say(opt, "latency probe " + std::to_string(k) + "/" + std::to_string(opt.probes));
    sent_ns.store(0, std::memory_order_relaxed);
    probe.store(k, std::memory_order_release);
    ex.pin_price("BTCUSDT", (80000LL + k) * 100 + 50);
    char id_suffix[16];
    std::snprintf(id_suffix, sizeof id_suffix, "%012x\"", 1000000 + k);
    bool got = false;
    const auto until = Clock::now() + 2s;
    while (!got && Clock::now() < until) {
      auto m = sub.next(100ms);
      if (!m) continue;
      if (m->find(id_suffix) != std::string::npos) {
        const std::int64_t now = wall_ns();
        got = true;
        const std::int64_t t0 = sent_ns.load(std::memory_order_acquire);
        if (t0 > 0) r.wire_us.push_back(static_cast<double>(now - t0) / 1e3);
      }
    }
    if (!got) ++r.lost;
    // The read-committed subscriber gets the same event once the writer has journaled it.
    for (const auto cuntil = Clock::now() + 2s; got && Clock::now() < cuntil;) {
      auto m = committed.next(100ms);
      if (!m || m->find(id_suffix) == std::string::npos) continue;
      const std::int64_t t0 = sent_ns.load(std::memory_order_acquire);
      if (t0 > 0) r.committed_us.push_back(static_cast<double>(wall_ns() - t0) / 1e3);
      break;
    }
    probe.store(0, std::memory_order_release);
    std::this_thread::sleep_for(3ms);
  }
  r.after = d.status();
  // The mock first: with frames batched per write (raw writes) it must not be pumping when the
  // feeds send their close (mockex::Options::frames_per_write). The feeds' close handshakes then
  // time out (1 s) instead.
  ex.stop();
  d.stop();
  return r;
}

RateRun run_max_rate(const std::string& url, const PipelineOptions& opt) {
  ::setenv(kUrlEnv, url.c_str(), 1);
  mockex::Options mo;
  mo.rate = 0;
  mo.max_frames = opt.frames;
  mo.binance_max_msgs_per_s = 1000;
  mo.frames_per_write = opt.frames_per_write;
  if (opt.pregenerate) {  // outside the measured window
    say(opt, "generating frames");
    mo.replay["binance/market"] = pregenerate("market", opt.frames);
    mo.replay["binance/public"] = pregenerate("public", opt.frames);
  }
  mockex::MockExchange ex(mo);
  ex.start();
  say(opt, "flat out: starting the daemon");
  daemon::Daemon d(daemon_config(ex, opt));
  d.start();
  // The first seconds include the listener's initial resync of the 200k rows: the rate is taken
  // from the warm-up mark after start to the last tick.
  RateRun r;
  const auto t0 = Clock::now();
  std::uint64_t ticks = 0, ticks_at_warm = 0, ticks_at_window = 0;
  bool warm = false;
  auto warm_at = t0;
  auto last_change = Clock::now();
  auto window = t0;
  // The run ends a second after the last tick; not before the first one (a busy machine may take
  // over a second to connect the feeds, which is not the end of the run).
  while ((ticks == 0 || Clock::now() - last_change < 1s) && Clock::now() - t0 < 120s) {
    std::this_thread::sleep_for(10ms);
    const auto s = d.status();
    const auto now = Clock::now();
    const std::uint64_t seen = s.ticks + s.held;
    if (!warm && now - t0 >= opt.warmup) {
      warm = true;
      warm_at = now;
      ticks_at_warm = seen;
      r.warm_at_s = std::chrono::duration<double>(now - t0).count();
    }
    if (seen != ticks) {
      ticks = seen;
      last_change = now;
    }
    if (now - window >= 100ms) {
      const double dt = std::chrono::duration<double>(now - window).count();
      r.series.emplace_back(std::chrono::duration<double>(now - t0).count(),
                            static_cast<double>(seen - ticks_at_window) / dt);
      ticks_at_window = seen;
      window = now;
      say(opt, "flat out: " + std::to_string(seen) + " ticks");
    }
  }
  // Trailing idle windows (the second of silence that ends the run) are not throughput.
  while (!r.series.empty() && r.series.back().second == 0) r.series.pop_back();
  r.frames_sent = ex.counters(feeds::Venue::binance).frames.load();
  d.stop();
  ex.stop();
  if (!warm || last_change <= warm_at)
    throw std::runtime_error("the run ended within the warm-up: raise --frames");
  r.seconds = std::chrono::duration<double>(last_change - warm_at).count();
  r.ticks = ticks;
  r.ticks_per_s = static_cast<double>(ticks - ticks_at_warm) / r.seconds;
  r.lost = r.frames_sent > ticks ? r.frames_sent - ticks : 0;
  return r;
}

}  // namespace lam::bench
