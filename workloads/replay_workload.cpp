#include "workloads/replay_workload.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lam::bench {
namespace {

namespace fs = std::filesystem;
constexpr int kMarkets = 1000;
constexpr int kAlerts = 100'000;
constexpr int kPositions = 10'000;

std::string id(unsigned kind, unsigned n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012x", kind, n);
  return buf;
}

struct File {
  std::FILE* f;
  explicit File(const fs::path& p) : f(std::fopen(p.c_str(), "w")) {
    if (f == nullptr) throw std::runtime_error("cannot write " + p.string());
  }
  ~File() {
    if (f != nullptr) std::fclose(f);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  void close() {
    std::FILE* g = std::exchange(f, nullptr);
    const bool ok = std::ferror(g) == 0;
    if (std::fclose(g) != 0 || !ok) throw std::runtime_error("write failed (disk full?)");
  }
};

void write_state(const fs::path& path, std::mt19937_64& rng) {
  File file(path);
  std::FILE* f = file.f;
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
    std::fprintf(f,
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
  file.close();
}

/// Random walks per market: most ticks cross nothing, some fire or liquidate.
void write_ticks(const fs::path& path, std::size_t ticks, std::mt19937_64& rng) {
  File file(path);
  std::FILE* f = file.f;
  std::vector<double> px(kMarkets, 1000.0);
  std::vector<char> buf(1 << 20);
  std::setvbuf(f, buf.data(), _IOFBF, buf.size());
  for (std::size_t i = 0; i < ticks; ++i) {
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
  file.close();
}

}  // namespace

ReplayFiles make_replay_files(std::size_t ticks, std::uint64_t seed, const fs::path& root) {
  ReplayFiles r;
  r.dir = (root.empty() ? fs::temp_directory_path() : root) /
          ("lam_replay_bench_" + std::to_string(ticks) + "_" + std::to_string(seed));
  r.state = r.dir / "state.json";
  r.ticks = r.dir / "ticks.ndjson";
  if (!fs::exists(r.dir / "complete")) {
    fs::create_directories(r.dir);
    std::mt19937_64 rng(seed);
    write_state(r.state, rng);
    write_ticks(r.ticks, ticks, rng);
    std::ofstream(r.dir / "complete") << "ok\n";
  }
  r.tick_bytes = fs::file_size(r.ticks);
  return r;
}

app::ReplaySummary run_replay_once(const ReplayFiles& f, std::size_t ticks, bool validate_only) {
  app::ReplayOptions opt;
  opt.state_path = f.state.string();
  opt.ticks_path = f.ticks.string();
  opt.events_out = "/dev/null";
  opt.progress = false;
  opt.validate_only = validate_only;
  std::FILE* diag = std::fopen("/dev/null", "w");
  if (diag == nullptr) throw std::runtime_error("cannot open /dev/null");
  app::ReplaySummary s;
  try {
    s = app::run_replay(opt, diag);
  } catch (...) {
    std::fclose(diag);
    throw;
  }
  std::fclose(diag);
  if (s.ticks != ticks || s.bad_lines != 0 || s.bad_state_rows != 0)
    throw std::runtime_error("replay did not accept every line of the generated workload");
  if (!validate_only && s.events == 0)
    throw std::runtime_error("the replay workload fired nothing");
  return s;
}

}  // namespace lam::bench
