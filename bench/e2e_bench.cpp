// End to end on loopback: mock exchange -> daemon (feeds, matcher, writer, stream server) ->
// subscriber, against the test PostgreSQL cluster, with 100k alerts and 100k positions loaded.
//
//  * BM_E2E_WireToSubscriber: background ticks at --rate ticks/s (two Binance connections, 50
//    symbols); every 3 ms a probe moves BTCUSDT's mark across exactly one alert. Latency = the
//    subscriber's receive time - the time the mock handed the crossing frame to its socket.
//    Reports p50/p99/p99.9 (us) and, as the in-run baseline, the daemon's own receive -> publish
//    histogram (so the ratio shows what the sockets on both sides cost). --wire-frames-per-write=N:
//    the mock sends the frames due each millisecond N per socket write (default 1: one write per
//    frame, which costs the load generator far more CPU than the daemon's feed).
//  * BM_E2E_MaxRate: both connections blast --frames frames each as fast as they go (frames
//    generated before the run unless --generate; --frames-per-write pre-encoded WebSocket frames
//    per socket write); reports the ticks/s the matcher evaluated and whether anything was lost
//    (ticks != frames sent).
//
//   build/release/bench/e2e_bench [--rate=100000] [--probes=2000] [--frames=500000]
//                                 [--warmup-ms=3000] [--frames-per-write=64] [--generate]
//                                 [--wire-frames-per-write=1] [--idle=sleep|spin]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "bench/ratio_report.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/stream_client.h"
#include "persistence/migrator.h"
#include "tests/support/pg_cluster.h"
#include "tools/mockex/frames.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double g_rate = 100'000;
int g_probes = 2'000;
std::uint64_t g_frames = 500'000;
std::chrono::milliseconds g_warmup{3'000};
std::uint32_t g_frames_per_write = 64;      ///< MaxRate: the mock's blaster batch
std::uint32_t g_wire_frames_per_write = 1;  ///< Wire: frames per socket write of the paced mock
std::string g_idle = "sleep";               ///< the daemon's engine.idle
bool g_pregen = true;  ///< MaxRate: frames generated before the run (the mock only copies them)

constexpr int kMarkets = 50;
constexpr long long kRows = 100'000;
constexpr const char* kToken = "bench-token";

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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

/// A database with kMarkets Binance markets, 1000 users, 100k positions that never liquidate,
/// 100k - probes alerts that never fire, and `probes` BTCUSDT alerts at 80001, 80002, ...
std::string make_db(const std::string& name, int probes) {
  const std::string url = test::shared_cluster().create_database(name);
  db::Migrator(url).migrate({});
  pqxx::connection c(url);
  pqxx::work w(c);
  w.exec("SET LOCAL app.origin = 'engine'");
  w.exec("CREATE TEMP TABLE m (g int, sym text) ON COMMIT DROP");
  for (int m = 0; m < kMarkets; ++m) w.exec_params("INSERT INTO m VALUES ($1, $2)", m, symbol(m));
  const std::string mid = "('0000000a-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
  w.exec("INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) SELECT " + mid +
         ", sym, 'B', 'USDT', 'binance' FROM m");
  const std::string uid = "('0000000c-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid";
  w.exec(
      "INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' || "
      "lpad(to_hex(g), 12, '0'))::uuid, g + 1 FROM generate_series(0, 999) g");
  w.exec(
      "INSERT INTO wallets (id, user_id, wallet_address) SELECT ('0000000e-0000-4000-8000-' || "
      "lpad(to_hex(g), 12, '0'))::uuid, ('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, "
      "'0'))::uuid, 'W' || lpad(g::text, 40, 'z') FROM generate_series(0, 999) g");
  // (user, market, side) is unique: 1000 users x 50 markets x 2 sides = 100k positions.
  w.exec(
      "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, "
      "margin) SELECT ('0000000b-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, " +
      uid +
      ", ('0000000e-0000-4000-8000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, "
      "('0000000a-0000-4000-8000-' || lpad(to_hex((g / 1000) % " +
      std::to_string(kMarkets) +
      "), 12, '0'))::uuid, CASE WHEN g / 50000 = 0 THEN 'long' ELSE 'short' END::position_side, "
      "0.01, 100, 1000000 FROM generate_series(0, " +
      std::to_string(kRows - 1) + ") g");
  w.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, " +
      uid + ", ('0000000a-0000-4000-8000-' || lpad(to_hex(1 + g % " + std::to_string(kMarkets - 1) +
      "), 12, '0'))::uuid, CASE WHEN g % 2 = 0 THEN 'price_above' ELSE 'price_below' "
      "END::alert_type, CASE WHEN g % 2 = 0 THEN 'greater_than' ELSE 'less_than' "
      "END::condition_type, CASE WHEN g % 2 = 0 THEN 1000000 ELSE 1 END "
      "FROM generate_series(1, " +
      std::to_string(kRows - probes) + ") g");
  w.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(1000000 + g), 12, '0'))::uuid, "
      "'0000000c-0000-4000-8000-000000000001', '0000000a-0000-4000-8000-000000000000', "
      "'price_above', 'greater_than', 80000 + g FROM generate_series(1, " +
      std::to_string(probes) + ") g");
  w.commit();
  pqxx::nontransaction(c).exec("VACUUM ANALYZE");
  return url;
}

daemon::Config daemon_config(const mockex::MockExchange& ex) {
  std::ostringstream t;
  t << "log_level = \"warn\"\n[database]\nurl_env = \"LAMINATOR_BENCH_DB\"\n"
    << "[engine]\nidle = \"" << g_idle
    << "\"\nposition_refresh_interval_ms = 5000\ncrash_ring = \"\"\n"
    << "[stream]\nport = 0\n[[stream.tokens]]\nname = \"bench\"\nsha256 = \"";
  for (std::uint8_t b : daemon::token_hash(kToken)) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    t << h;
  }
  t << "\"\n[feeds.binance]\nmax_msgs_per_s = 50\ntopics_per_msg = 200\n[feeds.binance.urls]\n"
    << "market = \"" << ex.url(feeds::Venue::binance, "market") << "\"\n"
    << "public = \"" << ex.url(feeds::Venue::binance, "public") << "\"\n";
  return daemon::parse_config(t.str(), "bench.toml");
}

/// "80001.50" for probe k.
std::string probe_price(int k) {
  return std::to_string(80000 + k) + ".50";
}

void BM_E2E_WireToSubscriber(benchmark::State& state) {
  const std::string url = make_db("bench_e2e_latency", g_probes);
  ::setenv("LAMINATOR_BENCH_DB", url.c_str(), 1);
  std::atomic<int> probe{0};
  std::atomic<std::int64_t> sent_ns{0};
  std::string expect;  // guarded by `probe` (written before the probe number is published)
  mockex::Options mo;
  mo.rate = g_rate / 2;  // per connection: market (mark + trade) and public (book)
  mo.binance_max_msgs_per_s = 1000;
  mo.frames_per_write = g_wire_frames_per_write;
  mo.on_data_frame = [&](const std::string& f) {
    if (probe.load(std::memory_order_acquire) == 0 || sent_ns.load(std::memory_order_relaxed) != 0)
      return;
    if (f.find("markPrice") != std::string::npos &&
        f.find("\"s\":\"BTCUSDT\"") != std::string::npos && f.find(expect) != std::string::npos)
      sent_ns.store(wall_ns(), std::memory_order_release);
  };
  mockex::MockExchange ex(mo);
  ex.pin_price("BTCUSDT", 8'000'000);
  ex.start();
  daemon::Daemon d(daemon_config(ex));
  d.start();
  daemon::StreamClient sub("ws://127.0.0.1:" + std::to_string(d.stream_port()) + "/v1/stream",
                           kToken);
  std::this_thread::sleep_for(2s);  // connect, subscribe, go live, warm up
  std::vector<double> lat_us;
  std::uint64_t lost = 0;
  const daemon::StatusLine s0 = d.status();
  for (auto _ : state) {
    for (int k = 1; k <= g_probes; ++k) {
      expect = "\"p\":\"" + probe_price(k);
      sent_ns.store(0, std::memory_order_relaxed);
      probe.store(k, std::memory_order_release);
      ex.pin_price("BTCUSDT", (80000LL + k) * 100 + 50);
      const std::string id_suffix = [&] {
        char b[16];
        std::snprintf(b, sizeof b, "%012x\"", 1000000 + k);
        return std::string(b);
      }();
      bool got = false;
      const auto until = Clock::now() + 2s;
      while (!got && Clock::now() < until) {
        auto m = sub.next(100ms);
        if (!m) continue;
        if (m->find(id_suffix) != std::string::npos) {
          const std::int64_t now = wall_ns();
          got = true;
          const std::int64_t t0 = sent_ns.load(std::memory_order_acquire);
          if (t0 > 0) lat_us.push_back(static_cast<double>(now - t0) / 1e3);
        }
      }
      if (!got) ++lost;
      probe.store(0, std::memory_order_release);
      std::this_thread::sleep_for(3ms);
    }
  }
  const daemon::StatusLine s1 = d.status();
  d.stop();
  ex.stop();
  if (lat_us.empty()) {
    state.SkipWithError("no probe came back");
    return;
  }
  std::sort(lat_us.begin(), lat_us.end());
  auto q = [&](double p) {
    return lat_us[std::min(lat_us.size() - 1, static_cast<std::size_t>(p * lat_us.size()))];
  };
  state.counters["p50_us"] = q(0.50);
  state.counters["p99_us"] = q(0.99);
  state.counters["p999_us"] = q(0.999);
  state.counters["probes"] = static_cast<double>(lat_us.size());
  state.counters["lost"] = static_cast<double>(lost);
  state.counters["daemon_p50_us"] = s1.p50_us;
  state.counters["daemon_p99_us"] = s1.p99_us;
  state.counters["ticks"] = static_cast<double>(s1.ticks - s0.ticks);
  // Same-run baseline: the daemon's own receive -> publish p99 (its histogram's bucket bound).
  state.counters["p99_ratio_vs_daemon"] = q(0.99) / std::max(1.0, s1.p99_us);
}

void BM_E2E_MaxRate(benchmark::State& state) {
  const std::string url = make_db("bench_e2e_rate", 10);
  ::setenv("LAMINATOR_BENCH_DB", url.c_str(), 1);
  for (auto _ : state) {
    mockex::Options mo;
    mo.rate = 0;
    mo.max_frames = g_frames;
    mo.binance_max_msgs_per_s = 1000;
    mo.frames_per_write = g_frames_per_write;
    if (g_pregen) {  // outside the measured window (manual time starts at the warm-up mark)
      mo.replay["binance/market"] = pregenerate("market", g_frames);
      mo.replay["binance/public"] = pregenerate("public", g_frames);
    }
    mockex::MockExchange ex(mo);
    ex.start();
    daemon::Daemon d(daemon_config(ex));
    d.start();
    // The first seconds include the listener's initial resync of the 200k rows: the rate is taken
    // from --warmup-ms (3 s) after start to the last tick.
    const auto t0 = Clock::now();
    std::uint64_t ticks = 0, ticks_at_warm = 0;
    bool warm = false;
    auto warm_at = t0;
    auto last_change = Clock::now();
    while (Clock::now() - last_change < 1s && Clock::now() - t0 < 120s) {
      std::this_thread::sleep_for(10ms);
      const auto s = d.status();
      if (!warm && Clock::now() - t0 >= g_warmup) {
        warm = true;
        warm_at = Clock::now();
        ticks_at_warm = s.ticks + s.held;
      }
      if (s.ticks + s.held != ticks) {
        ticks = s.ticks + s.held;
        last_change = Clock::now();
      }
    }
    if (!warm || last_change <= warm_at) {
      state.SkipWithError("the run ended within the warm-up: raise --frames");
      return;
    }
    const double secs = std::chrono::duration<double>(last_change - warm_at).count();
    const std::uint64_t sent = ex.counters(feeds::Venue::binance).frames.load();
    d.stop();
    ex.stop();
    state.SetIterationTime(secs);
    state.counters["ticks_per_s"] = static_cast<double>(ticks - ticks_at_warm) / secs;
    state.counters["frames_sent"] = static_cast<double>(sent);
    state.counters["ticks"] = static_cast<double>(ticks);
    state.counters["lost"] = static_cast<double>(sent > ticks ? sent - ticks : 0);
  }
}

BENCHMARK(BM_E2E_WireToSubscriber)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_E2E_MaxRate)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--rate=", 0) == 0) {
      lam::bench::g_rate = std::stod(a.substr(7));
    } else if (a.rfind("--probes=", 0) == 0) {
      lam::bench::g_probes = std::stoi(a.substr(9));
    } else if (a.rfind("--frames-per-write=", 0) == 0) {
      lam::bench::g_frames_per_write = static_cast<std::uint32_t>(std::stoul(a.substr(19)));
    } else if (a.rfind("--wire-frames-per-write=", 0) == 0) {
      lam::bench::g_wire_frames_per_write = static_cast<std::uint32_t>(std::stoul(a.substr(24)));
    } else if (a.rfind("--idle=", 0) == 0) {
      lam::bench::g_idle = a.substr(7);
    } else if (a == "--generate") {
      lam::bench::g_pregen = false;
    } else if (a.rfind("--warmup-ms=", 0) == 0) {
      lam::bench::g_warmup = std::chrono::milliseconds(std::stoll(a.substr(12)));
    } else if (a.rfind("--frames=", 0) == 0) {
      lam::bench::g_frames = std::stoull(a.substr(9));
    } else {
      rest.push_back(argv[i]);
    }
  }
  return lam::bench::run_with_ratios(static_cast<int>(rest.size()), rest.data(), {});
}
