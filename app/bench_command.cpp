#include "app/bench_command.h"

#include <simdjson.h>
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "app/bench_scenarios.h"

namespace lam::app {
namespace {

using Clock = std::chrono::steady_clock;

/// The median; of an even count, the mean of the middle two.
double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

std::string human(double v) {
  return human_figure(v, false);
}

void append_curves(std::string& j, const char* key, const std::vector<BenchCurve>& curves) {
  j.append(",\"").append(key).append("\":[");
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const BenchCurve& c = curves[i];
    if (i > 0) j.push_back(',');
    j.append("{\"name\":").append(json_string(c.name));
    j.append(",\"label\":").append(json_string(c.label));
    j.append(",\"unit\":").append(json_string(c.unit)).append(",\"points\":[");
    for (std::size_t k = 0; k < c.points.size(); ++k) {
      if (k > 0) j.push_back(',');
      j.append("[").append(json_number(c.points[k].first)).append(",");
      j.append(json_number(c.points[k].second)).append("]");
    }
    j.append("]}");
  }
  j.append("]");
}

}  // namespace

double BenchMeasurement::median() const {
  return median_of(samples);
}
double BenchMeasurement::min() const {
  return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end());
}
double BenchMeasurement::max() const {
  return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end());
}

const BenchMeasurement* BenchResult::find(const std::string& name) const {
  for (const BenchMeasurement& m : measurements)
    if (m.name == name) return &m;
  return nullptr;
}

BenchResult run_bench(const BenchOptions& opt, std::FILE* progress_out) {
  if (opt.repetitions < 0 || opt.repetitions > 100)
    throw std::invalid_argument("--repetitions must be in [1, 100]");
  if (opt.seconds < 0 || opt.seconds > 3600)
    throw std::invalid_argument("--seconds must be in (0, 3600]");
  const auto t0 = Clock::now();
  BenchProgress progress(progress_out, opt.progress, opt.scenario);
  BenchResult r;
  if (opt.scenario == "matcher") {
    r = bench_matcher(opt, progress);
  } else if (opt.scenario == "replay") {
    r = bench_replay(opt, progress);
  } else if (opt.scenario == "pipeline") {
    r = bench_pipeline(opt, progress);
  } else if (opt.scenario == "writer") {
    r = bench_writer(opt, progress);
  } else if (opt.scenario == "fanin") {
    r = bench_fanin(opt, progress);
  } else {
    throw std::invalid_argument("unknown scenario '" + opt.scenario +
                                "' (matcher, replay, pipeline, writer, fanin)");
  }
  progress.done();
  r.options = opt;
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

std::string format_bench_table(const BenchResult& r) {
  std::string out = r.title;
  char line[320];
  std::snprintf(line, sizeof line, " (%.1f s)\n\n%-52s %12s %12s %12s  %s\n", r.wall_seconds,
                "measurement (median of repetitions)", "median", "min", "max", "unit");
  out += line;
  for (const BenchMeasurement& m : r.measurements) {
    std::snprintf(line, sizeof line, "%-52s %12s %12s %12s  %s\n", m.label.c_str(),
                  human(m.median()).c_str(), human(m.min()).c_str(), human(m.max()).c_str(),
                  m.unit.c_str());
    out += line;
  }
  if (!r.latency.empty()) {
    std::snprintf(line, sizeof line, "\n%-52s %9s %9s %9s %9s %9s\n", "latency", "p50", "p90",
                  "p99", "p99.9", "max");
    out += line;
    for (const BenchCurve& c : r.latency) {
      auto at = [&](double q) -> std::string {
        for (const auto& [x, y] : c.points)
          if (std::fabs(x - q) < 1e-9) return human(y);
        return "-";
      };
      std::string label = c.label.substr(0, 44);
      label.append(" (").append(c.unit).append(")");
      std::snprintf(line, sizeof line, "%-52s %9s %9s %9s %9s %9s\n", label.c_str(),
                    at(0.5).c_str(), at(0.9).c_str(), at(0.99).c_str(), at(0.999).c_str(),
                    at(1.0).c_str());
      out += line;
    }
  }
  out += "\n";
  for (const BenchRatio& q : r.ratios) {
    std::snprintf(line, sizeof line,
                  q.value >= 100 ? "%s (same run): %.0fx\n" : "%s (same run): %.2fx\n",
                  q.label.c_str(), q.value);
    out += line;
  }
  for (const std::string& n : r.notes) out.append("note: ").append(n).append("\n");
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
  j.append(",\"title\":").append(json_string(r.title));
  j.append(",\"machine\":{\"cpu\":").append(json_string(cpu_model()));
  j.append(",\"cores\":").append(std::to_string(std::thread::hardware_concurrency()));
  j.append(",\"kernel\":")
      .append(json_string(std::string(u.sysname).append(" ").append(u.release)));
  j.append("},\"build\":{\"version\":\"0.1.0\",\"compiler\":").append(json_string(__VERSION__));
  j.append(",\"type\":\"").append(build_type).append("\"}");
  j.append(",\"config\":{");
  for (std::size_t i = 0; i < r.config.size(); ++i) {
    if (i > 0) j.push_back(',');
    j.append(json_string(r.config[i].first)).append(":").append(r.config[i].second);
  }
  j.append("},\"results\":[");
  for (std::size_t i = 0; i < r.measurements.size(); ++i) {
    const BenchMeasurement& m = r.measurements[i];
    if (i > 0) j.push_back(',');
    j.append("{\"name\":").append(json_string(m.name));
    j.append(",\"label\":").append(json_string(m.label));
    j.append(",\"unit\":").append(json_string(m.unit));
    j.append(",\"better\":\"").append(m.higher_is_better ? "higher" : "lower").append("\"");
    j.append(",\"baseline\":").append(m.baseline ? "true" : "false");
    j.append(",\"median\":").append(json_number(m.median()));
    j.append(",\"min\":").append(json_number(m.min()));
    j.append(",\"max\":").append(json_number(m.max()));
    j.append(",\"samples\":[");
    for (std::size_t k = 0; k < m.samples.size(); ++k) {
      if (k > 0) j.push_back(',');
      j.append(json_number(m.samples[k]));
    }
    j.append("]}");
  }
  j.append("],\"ratios\":[");
  for (std::size_t i = 0; i < r.ratios.size(); ++i) {
    if (i > 0) j.push_back(',');
    j.append("{\"name\":").append(json_string(r.ratios[i].name));
    j.append(",\"label\":").append(json_string(r.ratios[i].label));
    j.append(",\"value\":").append(json_number(r.ratios[i].value)).append("}");
  }
  j.append("]");
  append_curves(j, "latency", r.latency);
  append_curves(j, "throughput", r.throughput);
  j.append(",\"notes\":[");
  for (std::size_t i = 0; i < r.notes.size(); ++i) {
    if (i > 0) j.push_back(',');
    j.append(json_string(r.notes[i]));
  }
  j.append("],\"lossy\":").append(r.lossy ? "true" : "false");
  j.append(",\"wall_seconds\":").append(json_number(r.wall_seconds)).append("}\n");
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
    if (m.samples.empty()) continue;
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
      // Positive is worse: a longer time, or a lower rate.
      ch.worse =
          m.higher_is_better ? (ch.new_median > 0 ? med / ch.new_median - 1 : 1e9) : ch.change;
      const double spread_old = (hi - lo) / med;
      const double spread_new = ch.new_median > 0 ? (m.max() - m.min()) / ch.new_median : 0;
      ch.noise = std::max({spread_old, spread_new, 0.02});
      ch.regression = ch.worse > ch.noise;
      ch.improvement = ch.worse < -ch.noise;
      c.changes.push_back(ch);
    }
    if (!found) c.problems.push_back(std::string("no '").append(m.name).append("' in the old run"));
  }
  return c;
}

std::string format_comparison(const BenchComparison& c) {
  std::string out = "\ncompared with the earlier run:\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-24s %12s %12s %9s %9s  %s\n", "measurement", "old", "new",
                "change", "noise", "verdict");
  out += line;
  for (const BenchChange& ch : c.changes) {
    std::snprintf(line, sizeof line, "%-24s %12s %12s %+8.1f%% %8.1f%%  %s\n", ch.name.c_str(),
                  human(ch.old_median).c_str(), human(ch.new_median).c_str(), 100 * ch.change,
                  100 * ch.noise,
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
  for (const auto& [path, text] :
       {std::pair{opt.json_path, &bench_json}, std::pair{opt.html_path, &bench_html}}) {
    if (path.empty()) continue;
    std::ofstream f(path);
    f << text(r);
    f.close();
    if (!f) {
      std::fprintf(stderr, "bench: cannot write %s\n", path.c_str());
      return 2;
    }
  }
  if (!opt.compare_path.empty()) {
    const BenchComparison c = compare_bench(r, old_json);
    std::fputs(format_comparison(c).c_str(), stdout);
    if (c.regressed()) return 3;
  }
  return r.lossy ? 4 : 0;
}

}  // namespace lam::app
