#include "app/bench_command.h"

#include <simdjson.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bench/matcher_workload.h"
#include "engine/matcher.h"

namespace lam::app {
namespace {

using Clock = std::chrono::steady_clock;

double sorted_at(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

/// `bench matcher: quiet tick (ladder) 3/5`, redrawn in place on a terminal only.
class Progress {
 public:
  Progress(std::FILE* out, bool wanted)
      : out_(out), on_(wanted && out != nullptr && ::isatty(::fileno(out)) == 1) {}
  void show(const std::string& what, int rep, int reps) {
    if (!on_) return;
    std::fprintf(out_, "\rbench matcher: %s %d/%d\x1b[K", what.c_str(), rep, reps);
    std::fflush(out_);
  }
  void done() {
    if (!on_) return;
    std::fprintf(out_, "\r\x1b[K");
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  bool on_;
};

/// ns per quiet tick over `seconds`, in chunks of the ring; throws if a quiet tick fired.
template <class M>
double time_quiet(bench::World<M>& w, double seconds, std::size_t& cursor) {
  std::vector<Event> events;
  // Chunks grow while they take under 1 ms: a clock read per 4,096 ladder ticks, but a scan at 1M
  // (~0.2 ms a tick) is not overshot by seconds.
  std::size_t chunk = 1;
  std::size_t ticks = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  auto now = start;
  do {
    const auto before = now;
    bench::run_quiet(w, cursor, chunk, events);
    cursor += chunk;
    ticks += chunk;
    now = Clock::now();
    if (chunk < 4096 && now - before < std::chrono::milliseconds(1)) chunk *= 2;
  } while (now < end);
  if (!events.empty()) throw std::runtime_error("bench matcher: a quiet tick fired events");
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(ticks);
}

/// ns per firing tick over `seconds` of timed batches (arming between batches is not timed).
double time_firing(bench::World<Matcher>& w, bench::FiringBatch& firing, double seconds) {
  std::vector<Event> events;
  double timed = 0;
  std::size_t ticks = 0;
  while (timed < seconds || ticks == 0) {
    const double s = firing.run(w, events);
    if (s < 0) throw std::runtime_error("bench matcher: a firing tick did not fire exactly once");
    timed += s;
    ticks += firing.batch.size();
  }
  return timed * 1e9 / static_cast<double>(ticks);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string json_string(const std::string& s) {
  std::string out(1, '"');
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out.push_back('"');
  return out;
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string group(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

}  // namespace

double BenchMeasurement::median() const {
  return sorted_at(ns_per_tick, 0.5);
}
double BenchMeasurement::min() const {
  return ns_per_tick.empty() ? 0 : *std::min_element(ns_per_tick.begin(), ns_per_tick.end());
}
double BenchMeasurement::max() const {
  return ns_per_tick.empty() ? 0 : *std::max_element(ns_per_tick.begin(), ns_per_tick.end());
}

BenchResult run_bench(const BenchOptions& opt, std::FILE* progress_out) {
  if (opt.scenario != "matcher")
    throw std::invalid_argument("unknown scenario '" + opt.scenario + "' (matcher)");
  if (opt.objects < 1'000 || opt.objects > 10'000'000)
    throw std::invalid_argument("--objects must be in [1000, 10000000]");
  if (opt.repetitions < 1 || opt.repetitions > 100)
    throw std::invalid_argument("--repetitions must be in [1, 100]");
  if (opt.seconds <= 0 || opt.seconds > 3600)
    throw std::invalid_argument("--seconds must be in (0, 3600]");
  map_large_tables();  // as `laminator run` does
  const auto t0 = Clock::now();
  BenchResult r;
  r.options = opt;
  Progress progress(progress_out, opt.progress);
  const double each = opt.seconds / (3.0 * opt.repetitions);
  BenchMeasurement quiet{"quiet_tick", "quiet tick (ladders)", {}};
  BenchMeasurement flat{"quiet_tick_flat_scan", "quiet tick (flat scan baseline)", {}};
  BenchMeasurement firing{"firing_tick", "firing tick (one alert each)", {}};
  {
    progress.show(std::string("arming ").append(group(opt.objects)).append(" of each"), 0,
                  opt.repetitions);
    auto ladder = std::make_unique<bench::World<Matcher>>(opt.objects, opt.orders);
    auto scan = std::make_unique<bench::World<bench::FlatScan>>(opt.objects, opt.orders);
    bench::FiringBatch batch;
    std::size_t cursor = 0, scan_cursor = 0;
    // Interleaved repetitions: a noisy neighbour slows all three alike, not one of them.
    for (int rep = 1; rep <= opt.repetitions; ++rep) {
      progress.show(quiet.label, rep, opt.repetitions);
      quiet.ns_per_tick.push_back(time_quiet(*ladder, each, cursor));
      progress.show(flat.label, rep, opt.repetitions);
      flat.ns_per_tick.push_back(time_quiet(*scan, each, scan_cursor));
      progress.show(firing.label, rep, opt.repetitions);
      firing.ns_per_tick.push_back(time_firing(*ladder, batch, each));
    }
  }
  progress.done();
  r.measurements = {quiet, flat, firing};
  r.ratio = quiet.median() > 0 ? flat.median() / quiet.median() : 0;
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

std::string format_bench_table(const BenchResult& r) {
  std::string out;
  const std::string orders =
      r.options.orders
          ? std::string(" + ").append(group(r.options.objects)).append(" resting orders")
          : std::string();
  char line[256];
  std::snprintf(line, sizeof line,
                "laminator bench matcher: %s alerts + %s positions%s over %s markets, %d "
                "repetitions, %.1f s\n\n",
                group(r.options.objects).c_str(), group(r.options.objects).c_str(), orders.c_str(),
                group(bench::kMarkets).c_str(), r.options.repetitions, r.wall_seconds);
  out += line;
  std::snprintf(line, sizeof line, "%-34s %12s %12s %10s %10s\n", "measurement", "median ns",
                "ticks/s", "min ns", "max ns");
  out += line;
  for (const BenchMeasurement& m : r.measurements) {
    const double med = m.median();
    std::snprintf(line, sizeof line, "%-34s %12.1f %11.2fM %10.1f %10.1f\n", m.label.c_str(), med,
                  med > 0 ? 1e3 / med : 0.0, m.min(), m.max());
    out += line;
  }
  std::snprintf(line, sizeof line, "\nflat scan / ladders, quiet tick (same run): %.0fx\n",
                r.ratio);
  out += line;
  return out;
}

std::string bench_json(const BenchResult& r) {
  utsname u{};
  ::uname(&u);
#ifdef NDEBUG
  const char* build_type = "release";
#else
  const char* build_type = "debug";
#endif
  // Appended piece by piece (GCC 12's -Wrestrict misfires on literal + std::string chains).
  std::string j;
  j.append("{\"schema\":\"laminator-bench/1\",\"scenario\":")
      .append(json_string(r.options.scenario));
  j.append(",\"machine\":{\"cpu\":").append(json_string(cpu_model()));
  j.append(",\"cores\":").append(std::to_string(std::thread::hardware_concurrency()));
  j.append(",\"kernel\":")
      .append(json_string(std::string(u.sysname).append(" ").append(u.release)));
  j.append("},\"build\":{\"version\":\"0.1.0\",\"compiler\":").append(json_string(__VERSION__));
  j.append(",\"type\":\"").append(build_type).append("\"}");
  j.append(",\"config\":{\"objects\":").append(std::to_string(r.options.objects));
  j.append(",\"orders\":").append(r.options.orders ? "true" : "false");
  j.append(",\"markets\":").append(std::to_string(bench::kMarkets));
  j.append(",\"repetitions\":").append(std::to_string(r.options.repetitions));
  j.append(",\"seconds\":").append(num(r.options.seconds)).append("}");
  j.append(",\"results\":[");
  for (std::size_t i = 0; i < r.measurements.size(); ++i) {
    const BenchMeasurement& m = r.measurements[i];
    if (i > 0) j.push_back(',');
    j.append("{\"name\":").append(json_string(m.name));
    j.append(",\"unit\":\"ns/tick\",\"median\":").append(num(m.median()));
    j.append(",\"min\":").append(num(m.min())).append(",\"max\":").append(num(m.max()));
    j.append(",\"samples\":[");
    for (std::size_t k = 0; k < m.ns_per_tick.size(); ++k) {
      if (k > 0) j.push_back(',');
      j.append(num(m.ns_per_tick[k]));
    }
    j.append("]}");
  }
  j.append("],\"ratios\":[{\"name\":\"quiet_tick_flat_scan/quiet_tick\",\"value\":");
  j.append(num(r.ratio)).append("}],\"wall_seconds\":").append(num(r.wall_seconds)).append("}\n");
  return j;
}

bool BenchComparison::regressed() const {
  return !problems.empty() || std::any_of(changes.begin(), changes.end(),
                                          [](const BenchChange& c) { return c.regression; });
}

BenchComparison compare_bench(const BenchResult& now, const std::string& old_json) {
  BenchComparison c;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view schema, scenario;
  if (parser.parse(old_json).get(doc) || doc["schema"].get(schema) ||
      schema != "laminator-bench/1") {
    c.problems.emplace_back("not a laminator-bench/1 document");
    return c;
  }
  if (doc["scenario"].get(scenario) || scenario != now.options.scenario) {
    c.problems.emplace_back(std::string("another scenario: ").append(scenario));
    return c;
  }
  simdjson::dom::array results;
  if (doc["results"].get(results)) {
    c.problems.emplace_back("no results");
    return c;
  }
  for (const BenchMeasurement& m : now.measurements) {
    bool found = false;
    for (simdjson::dom::element o : results) {
      std::string_view name;
      double med = 0, lo = 0, hi = 0;
      if (o["name"].get(name) || name != m.name || o["median"].get(med) || o["min"].get(lo) ||
          o["max"].get(hi) || med <= 0) {
        continue;
      }
      found = true;
      BenchChange ch;
      ch.name = m.name;
      ch.old_median = med;
      ch.new_median = m.median();
      ch.change = ch.new_median / med - 1;
      const double spread_old = (hi - lo) / med;
      const double spread_new = ch.new_median > 0 ? (m.max() - m.min()) / ch.new_median : 0;
      ch.noise = std::max({spread_old, spread_new, 0.02});
      ch.regression = ch.change > ch.noise;
      ch.improvement = ch.change < -ch.noise;
      c.changes.push_back(ch);
    }
    if (!found) c.problems.push_back(std::string("no '").append(m.name).append("' in the old run"));
  }
  return c;
}

std::string format_comparison(const BenchComparison& c) {
  std::string out = "\ncompared with the earlier run:\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %12s %12s %9s %9s  %s\n", "measurement", "old ns",
                "new ns", "change", "noise", "verdict");
  out += line;
  for (const BenchChange& ch : c.changes) {
    std::snprintf(line, sizeof line, "%-22s %12.1f %12.1f %+8.1f%% %8.1f%%  %s\n", ch.name.c_str(),
                  ch.old_median, ch.new_median, 100 * ch.change, 100 * ch.noise,
                  ch.regression    ? "REGRESSION"
                  : ch.improvement ? "faster"
                                   : "within noise");
    out += line;
  }
  for (const std::string& p : c.problems) out.append("cannot compare: ").append(p).append("\n");
  return out;
}

int run_bench_command(const BenchOptions& opt) {
  std::string old_json;
  if (!opt.compare_path.empty()) {
    std::ifstream in(opt.compare_path);
    if (!in) {
      std::fprintf(stderr, "bench: cannot read %s\n", opt.compare_path.c_str());
      return 2;
    }
    std::ostringstream text;
    text << in.rdbuf();
    old_json = text.str();
  }
  const BenchResult r = run_bench(opt, stderr);
  std::fputs(format_bench_table(r).c_str(), stdout);
  if (!opt.json_path.empty()) {
    std::ofstream f(opt.json_path);
    f << bench_json(r);
    if (!f) {
      std::fprintf(stderr, "bench: cannot write %s\n", opt.json_path.c_str());
      return 2;
    }
  }
  if (!opt.compare_path.empty()) {
    const BenchComparison c = compare_bench(r, old_json);
    std::fputs(format_comparison(c).c_str(), stdout);
    if (c.regressed()) return 3;
  }
  return 0;
}

}  // namespace lam::app
