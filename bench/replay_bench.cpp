// laminator replay end to end over a generated tick file (default 10M ticks), against a
// parse-only pass over the same file in the same run.
//
//   build/release/bench/replay_bench [--ticks=N] [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "app/replay.h"
#include "bench/ratio_report.h"

namespace lam::bench {
namespace {

namespace fs = std::filesystem;
std::size_t g_ticks = 10'000'000;
constexpr int kMarkets = 1000;
constexpr int kAlerts = 100'000;
constexpr int kPositions = 10'000;

std::string id(unsigned kind, unsigned n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x", kind, n);
  return buf;
}

struct Files {
  fs::path dir;
  fs::path state;
  fs::path ticks;
  Files() {
    dir = fs::temp_directory_path() / ("lam_replay_bench_" + std::to_string(g_ticks));
    state = dir / "state.json";
    ticks = dir / "ticks.ndjson";
    if (fs::exists(dir / "complete")) return;
    fs::create_directories(dir);
    std::mt19937_64 rng(1);
    std::FILE* f = std::fopen(state.c_str(), "w");
    std::fprintf(f, "{\"markets\":[");
    for (int m = 0; m < kMarkets; ++m) {
      std::fprintf(f, "%s{\"id\":\"%s\",\"symbol\":\"S%d\",\"dex_name\":\"binance\"}", m ? "," : "",
                   id(0xA, static_cast<unsigned>(m)).c_str(), m);
    }
    std::fprintf(f, "],\"positions\":[");
    for (int p = 0; p < kPositions; ++p) {
      std::fprintf(
          f,
          "%s{\"id\":\"%s\",\"user_id\":\"%s\",\"market_id\":\"%s\",\"side\":\"%s\",\"size\":\"1\","
          "\"entry_price\":\"1000\",\"margin\":\"%d\"}",
          p ? "," : "", id(0xB, static_cast<unsigned>(p)).c_str(),
          id(0xC, static_cast<unsigned>(p % 5000)).c_str(),
          id(0xA, static_cast<unsigned>(p % kMarkets)).c_str(), p % 2 ? "long" : "short",
          20 + static_cast<int>(rng() % 200));
    }
    std::fprintf(f, "],\"alerts\":[");
    for (int a = 0; a < kAlerts; ++a) {
      const bool above = a % 2 == 0;
      std::fprintf(
          f,
          "%s{\"id\":\"%s\",\"user_id\":\"%s\",\"market_id\":\"%s\",\"alert_type\":\"%s\","
          "\"condition_type\":\"%s\",\"target_price\":\"%d.%02d\"}",
          a ? "," : "", id(0xD, static_cast<unsigned>(a)).c_str(),
          id(0xC, static_cast<unsigned>(a % 5000)).c_str(),
          id(0xA, static_cast<unsigned>(a % kMarkets)).c_str(),
          above ? "price_above" : "price_below", above ? "greater_than" : "less_than",
          above ? 1010 + static_cast<int>(rng() % 300) : 690 + static_cast<int>(rng() % 300),
          static_cast<int>(rng() % 100));
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
    // Random walks per market: most ticks cross nothing, some fire or liquidate.
    std::vector<double> px(kMarkets, 1000.0);
    f = std::fopen(ticks.c_str(), "w");
    std::vector<char> buf(1 << 20);
    std::setvbuf(f, buf.data(), _IOFBF, buf.size());
    for (std::size_t i = 0; i < g_ticks; ++i) {
      const int m = static_cast<int>(rng() % kMarkets);
      px[static_cast<std::size_t>(m)] *= 1.0 + (static_cast<double>(rng() % 2001) - 1000.0) * 2e-6;
      const long long ts = 1767225600000LL + static_cast<long long>(i / 100);
      const auto cents = static_cast<long long>(px[static_cast<std::size_t>(m)] * 100);
      if (i % 10 == 9) {
        std::fprintf(f,
                     "{\"ts\":%lld,\"venue\":\"binance\",\"symbol\":\"S%d\",\"kind\":\"trade\","
                     "\"price\":\"%lld.%02lld\",\"size\":\"0.%03d\"}\n",
                     ts, m, cents / 100, cents % 100, static_cast<int>(rng() % 1000));
      } else {
        std::fprintf(f,
                     "{\"ts\":%lld,\"venue\":\"binance\",\"symbol\":\"S%d\",\"kind\":\"mark\","
                     "\"price\":\"%lld.%02lld\"}\n",
                     ts, m, cents / 100, cents % 100);
      }
    }
    std::fclose(f);
    std::fclose(std::fopen((dir / "complete").c_str(), "w"));
  }
};

Files& files() {
  static Files f;
  return f;
}

void run(benchmark::State& state, bool validate_only) {
  Files& f = files();
  app::ReplayOptions opt;
  opt.state_path = f.state.string();
  opt.ticks_path = f.ticks.string();
  opt.events_out = "/dev/null";
  opt.progress = false;
  opt.validate_only = validate_only;
  app::ReplaySummary last;
  for (auto _ : state) {
    std::FILE* diag = std::fopen("/dev/null", "w");
    last = app::run_replay(opt, diag);
    std::fclose(diag);
  }
  if (last.ticks != g_ticks || last.bad_lines != 0 || last.bad_state_rows != 0) {
    state.SkipWithError("replay did not accept every line");
    return;
  }
  if (!validate_only && last.events == 0) {
    state.SkipWithError("the workload fired nothing");
    return;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(last.ticks));
  state.counters["events"] = static_cast<double>(last.events);
  state.counters["ticks"] = static_cast<double>(last.ticks);
}

void BM_Replay_Full(benchmark::State& state) {
  run(state, false);
}
void BM_Replay_ParseOnly(benchmark::State& state) {
  run(state, true);
}
BENCHMARK(BM_Replay_ParseOnly)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_Replay_Full)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  // Our own flag first: --ticks=N
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--ticks=", 8) == 0) {
      lam::bench::g_ticks = std::stoull(argv[i] + 8);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return lam::bench::run_with_ratios(argc, argv,
                                     {{"full replay / parse-only", "BM_Replay_Full/iterations:1",
                                       "BM_Replay_ParseOnly/iterations:1", "-"}});
}
