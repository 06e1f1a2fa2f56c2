// `laminator bench --html FILE`: one self-contained page (inline SVG and CSS; no script, no font,
// no image, no link to fetch) that any browser renders offline: the same-run comparison as bars
// with their min-max range, latency percentiles on a log scale, throughput over time, the figures
// and the configuration. Each chart's plot area has its own tint (kBarsTint, kLatencyTint,
// kThroughputTint) so a screenshot test can find it (scripts/check-bench-report.mjs).
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <thread>

#include "app/bench_command.h"
#include "app/bench_scenarios.h"

namespace lam::app {
namespace {

constexpr const char* kPalette[] = {"#2563eb", "#dc2626", "#16a34a", "#9333ea",
                                    "#ea580c", "#0891b2", "#ca8a04", "#db2777"};
constexpr const char* kBaseline = "#9ca3af";
constexpr const char* kBarsTint = "#f0f6ff";
constexpr const char* kLatencyTint = "#fff4f4";
constexpr const char* kThroughputTint = "#f1fbf3";

constexpr double kWidth = 900, kLeft = 80, kRight = 24, kTop = 16, kBottom = 44;
constexpr double kLegend = 250;  ///< right of line charts
constexpr std::size_t kLegendChars = 38;

std::string esc(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string f1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

/// 12.3, 74.6k, 1.23M: axis labels and values.
std::string human(double v) {
  return human_figure(v, true);
}

const char* color(std::size_t i) {
  return kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
}

/// A value axis: linear from 0, or log10 when the values span more than 50x.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  [[nodiscard]] double frac(double v) const {
    if (log) {
      v = std::max(v, lo);
      return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    }
    return (v - lo) / (hi - lo);
  }
  [[nodiscard]] std::vector<double> ticks() const;
};

/// 1, 2 or 5 times a power of ten, at least `raw`.
double nice_step(double raw) {
  if (raw <= 0) return 1;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * mag >= raw * 0.999) return m * mag;
  }
  return 10 * mag;
}

std::vector<double> Axis::ticks() const {
  std::vector<double> t;
  if (log) {
    for (double d = lo; d <= hi * 1.0001; d *= 10) t.push_back(d);
  } else {
    const double step = nice_step((hi - lo) / 5);
    for (double v = lo; v <= hi * 1.0001; v += step) t.push_back(v);
  }
  return t;
}

Axis value_axis(double min_v, double max_v, bool allow_log) {
  Axis a;
  if (max_v <= 0) return a;
  if (allow_log && min_v > 0 && max_v / min_v > 50) {
    a.log = true;
    a.lo = std::pow(10, std::floor(std::log10(min_v)));
    a.hi = std::pow(10, std::ceil(std::log10(max_v)));
    if (a.hi <= a.lo) a.hi = a.lo * 10;
    return a;
  }
  a.lo = 0;
  const double step = nice_step(max_v / 5);
  a.hi = std::ceil(max_v * 1.02 / step) * step;
  return a;
}

void svg_open(std::string& h, const char* id, double height, const char* tint,
              const std::string& caption) {
  h.append("<figure><svg id=\"").append(id).append("\" width=\"").append(f1(kWidth));
  h.append("\" height=\"").append(f1(height)).append("\" viewBox=\"0 0 ").append(f1(kWidth));
  h.append(" ").append(f1(height)).append("\" role=\"img\"><title>").append(esc(caption));
  h.append("</title><rect x=\"").append(f1(kLeft)).append("\" y=\"").append(f1(kTop));
  h.append("\" width=\"").append(f1(kWidth - kLeft - kRight)).append("\" height=\"");
  h.append(f1(height - kTop - kBottom)).append("\" fill=\"").append(tint).append("\"/>");
}

void svg_close(std::string& h, const std::string& caption) {
  h.append("</svg><figcaption>").append(esc(caption)).append("</figcaption></figure>\n");
}

void text(std::string& h, double x, double y, const std::string& s, const char* anchor = "middle",
          const char* cls = "ax") {
  h.append("<text class=\"").append(cls).append("\" x=\"").append(f1(x)).append("\" y=\"");
  h.append(f1(y)).append("\" text-anchor=\"").append(anchor).append("\">").append(esc(s));
  h.append("</text>");
}

void line(std::string& h, double x1, double y1, double x2, double y2, const char* stroke,
          double width = 1) {
  h.append("<line x1=\"").append(f1(x1)).append("\" y1=\"").append(f1(y1)).append("\" x2=\"");
  h.append(f1(x2)).append("\" y2=\"").append(f1(y2)).append("\" stroke=\"").append(stroke);
  h.append("\" stroke-width=\"").append(f1(width)).append("\"/>");
}

/// Horizontal bars, one per measurement of `unit`: median, with the min-max range as a whisker.
void bars_chart(std::string& h, const BenchResult& r, const std::string& unit,
                const std::string& id) {
  std::vector<const BenchMeasurement*> ms;
  double lo = 1e300, hi = 0;
  for (const BenchMeasurement& m : r.measurements) {
    if (m.unit != unit || m.samples.empty()) continue;
    ms.push_back(&m);
    lo = std::min(lo, m.min());
    hi = std::max(hi, m.max());
  }
  if (ms.empty()) return;
  const double row = 34;
  const double height = kTop + kBottom + row * static_cast<double>(ms.size());
  const Axis ax = value_axis(lo, hi, true);
  const double x0 = 380, x1 = kWidth - kRight - 50;  // labels left of x0, values right of x1
  const std::string caption = std::string("Median ").append(unit).append(
      ms.front()->higher_is_better ? " (higher is better)" : " (lower is better)");
  svg_open(h, id.c_str(), height, kBarsTint,
           caption + (ax.log ? ", log scale" : "") + "; the whisker spans min to max");
  for (const double t : ax.ticks()) {
    const double x = x0 + ax.frac(t) * (x1 - x0);
    line(h, x, kTop, x, height - kBottom, "#d1d5db");
    text(h, x, height - kBottom + 16, human(t));
  }
  text(h, (x0 + x1) / 2, height - 8, unit);
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const BenchMeasurement& m = *ms[i];
    const double y = kTop + row * static_cast<double>(i) + 6;
    const double w = std::max(1.0, ax.frac(m.median()) * (x1 - x0));
    text(h, x0 - 8, y + 16, m.label, "end", "lb");
    h.append("<rect class=\"bar\" x=\"").append(f1(x0)).append("\" y=\"").append(f1(y));
    h.append("\" width=\"").append(f1(w)).append("\" height=\"22\" fill=\"");
    h.append(m.baseline ? kBaseline : color(i)).append("\"/>");
    const double wl = x0 + ax.frac(m.min()) * (x1 - x0), wh = x0 + ax.frac(m.max()) * (x1 - x0);
    line(h, wl, y + 11, wh, y + 11, "#111827", 1.5);
    line(h, wl, y + 5, wl, y + 17, "#111827", 1.5);
    line(h, wh, y + 5, wh, y + 17, "#111827", 1.5);
    text(h, std::max(x0 + w, wh) + 6, y + 16, human(m.median()), "start", "val");
  }
  svg_close(h, caption);
}

/// Percentiles: x = -log10(1 - q) (p50, p90, p99, p99.9 equally spaced), the maximum one step past
/// the finest; y on a log scale.
void latency_chart(std::string& h, const std::vector<BenchCurve>& curves) {
  double lo = 1e300, hi = 0, finest = 1;
  for (const BenchCurve& c : curves) {
    for (const auto& [q, v] : c.points) {
      if (v > 0) lo = std::min(lo, v);
      hi = std::max(hi, v);
      if (q < 1) finest = std::max(finest, -std::log10(1 - q));
    }
  }
  if (hi <= 0) return;
  const double max_x = std::ceil(finest) + 1;
  const std::string unit = curves.front().unit;
  Axis ay;
  ay.log = true;
  ay.lo = std::pow(10, std::floor(std::log10(lo)));
  ay.hi = std::pow(10, std::ceil(std::log10(hi)));
  if (ay.hi <= ay.lo) ay.hi = ay.lo * 10;
  const double height = 360, x0 = kLeft, x1 = kWidth - kRight - kLegend;
  const double y0 = height - kBottom, y1 = kTop;
  const auto px = [&](double q) {
    const double x = q >= 1 ? max_x : -std::log10(1 - q);
    return x0 + (x - std::log10(2.0)) / (max_x - std::log10(2.0)) * (x1 - x0);
  };
  const auto py = [&](double v) { return y0 - ay.frac(v) * (y0 - y1); };
  svg_open(h, "latency", height, kLatencyTint, "latency percentiles");
  for (const double t : ay.ticks()) {
    line(h, x0, py(t), x1, py(t), "#d1d5db");
    text(h, x0 - 6, py(t) + 4, human(t), "end");
  }
  for (const auto& [q, name] : std::vector<std::pair<double, const char*>>{{0.5, "p50"},
                                                                           {0.9, "p90"},
                                                                           {0.99, "p99"},
                                                                           {0.999, "p99.9"},
                                                                           {0.9999, "p99.99"},
                                                                           {1.0, "max"}}) {
    if (q < 1 && -std::log10(1 - q) > finest + 1e-9) continue;
    line(h, px(q), y0, px(q), y1, "#e5e7eb");
    text(h, px(q), y0 + 16, name);
  }
  text(h, (x0 + x1) / 2, height - 8, "percentile");
  text(h, 16, (y0 + y1) / 2, unit, "middle");
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const BenchCurve& c = curves[i];
    std::string pts;
    for (const auto& [q, v] : c.points)
      pts.append(f1(px(q))).append(",").append(f1(py(v))).append(" ");
    h.append("<polyline class=\"curve\" fill=\"none\" stroke-width=\"2.5\" stroke=\"");
    h.append(color(i)).append("\" points=\"").append(pts).append("\"/>");
    for (const auto& [q, v] : c.points) {
      h.append("<circle cx=\"").append(f1(px(q))).append("\" cy=\"").append(f1(py(v)));
      h.append("\" r=\"3.5\" fill=\"").append(color(i)).append("\"><title>");
      h.append(esc(c.label)).append(": ").append(human(v)).append(" ").append(esc(c.unit));
      h.append("</title></circle>");
    }
    const double ly = kTop + 14 + 18 * static_cast<double>(i);
    line(h, x1 + 14, ly - 4, x1 + 34, ly - 4, color(i), 3);
    text(h, x1 + 40, ly, c.label.substr(0, kLegendChars), "start", "lg");
  }
  svg_close(h, std::string("Latency percentiles (").append(unit).append(", log scale)"));
}

/// Throughput over time: one line per curve, x in seconds, y linear from 0.
void throughput_chart(std::string& h, const std::vector<BenchCurve>& curves) {
  double t_max = 0, v_max = 0;
  for (const BenchCurve& c : curves) {
    for (const auto& [t, v] : c.points) {
      t_max = std::max(t_max, t);
      v_max = std::max(v_max, v);
    }
  }
  if (v_max <= 0) return;
  if (t_max <= 0) t_max = 1;
  const std::string unit = curves.front().unit;
  // Rates that differ by more than 50x share one chart on a log scale (the matcher's scan).
  double v_min = v_max;
  for (const BenchCurve& c : curves)
    for (const auto& p : c.points)
      if (p.second > 0) v_min = std::min(v_min, p.second);
  const Axis ay = value_axis(v_min, v_max, true);
  Axis ax = value_axis(0, t_max, false);
  const double height = 340, x0 = kLeft, x1 = kWidth - kRight - kLegend;
  const double y0 = height - kBottom, y1 = kTop;
  svg_open(h, "throughput", height, kThroughputTint, "throughput over time");
  for (const double t : ay.ticks()) {
    const double y = y0 - ay.frac(t) * (y0 - y1);
    line(h, x0, y, x1, y, "#d1d5db");
    text(h, x0 - 6, y + 4, human(t), "end");
  }
  for (const double t : ax.ticks()) {
    const double x = x0 + ax.frac(t) * (x1 - x0);
    text(h, x, y0 + 16, human(t));
  }
  text(h, (x0 + x1) / 2, height - 8, "seconds");
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const BenchCurve& c = curves[i];
    // A curve measured in stretches (interleaved repetitions) is drawn as one line per stretch:
    // a gap over 5x the usual spacing between points ends the line.
    std::vector<double> gaps;
    for (std::size_t k = 1; k < c.points.size(); ++k)
      gaps.push_back(c.points[k].first - c.points[k - 1].first);
    std::sort(gaps.begin(), gaps.end());
    const double usual = gaps.empty() ? 0 : gaps[gaps.size() / 2];
    std::string pts;
    const auto flush = [&] {
      if (pts.empty()) return;
      h.append("<polyline class=\"curve\" fill=\"none\" stroke-width=\"2\" stroke=\"");
      h.append(color(i)).append("\" points=\"").append(pts).append("\"/>");
      pts.clear();
    };
    for (std::size_t k = 0; k < c.points.size(); ++k) {
      const auto& [t, v] = c.points[k];
      if (k > 0 && usual > 0 && t - c.points[k - 1].first > 5 * usual) flush();
      pts.append(f1(x0 + ax.frac(t) * (x1 - x0))).append(",");
      pts.append(f1(y0 - ay.frac(v) * (y0 - y1))).append(" ");
    }
    flush();
    if (c.points.size() <= 40) {
      for (const auto& [t, v] : c.points) {
        h.append("<circle cx=\"").append(f1(x0 + ax.frac(t) * (x1 - x0))).append("\" cy=\"");
        h.append(f1(y0 - ay.frac(v) * (y0 - y1))).append("\" r=\"3\" fill=\"");
        h.append(color(i)).append("\"/>");
      }
    }
    if (i < 16) {
      const double ly = kTop + 14 + 18 * static_cast<double>(i);
      line(h, x1 + 14, ly - 4, x1 + 34, ly - 4, color(i), 3);
      text(h, x1 + 40, ly, c.label.substr(0, kLegendChars), "start", "lg");
    }
  }
  svg_close(h, std::string("Throughput over time (")
                   .append(unit)
                   .append(ay.log ? ", log scale" : "")
                   .append(")"));
}

std::string machine_line() {
  utsname u{};
  ::uname(&u);
  return cpu_model()
      .append(", ")
      .append(std::to_string(std::thread::hardware_concurrency()))
      .append(" cores, ")
      .append(u.sysname)
      .append(" ")
      .append(u.release);
}

}  // namespace

std::string bench_html(const BenchResult& r) {
  std::string h;
  h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
  h.append("<meta name=\"viewport\" content=\"width=device-width\">");
  h.append("<title>laminator bench ").append(esc(r.options.scenario)).append("</title><style>");
  h.append(
      "body{font:14px/1.45 sans-serif;color:#111827;margin:24px auto;max-width:940px;"
      "padding:0 12px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}"
      ".meta{color:#4b5563;margin:2px 0}figure{margin:0 0 8px}figcaption{color:#4b5563;"
      "font-size:12px}svg{max-width:100%;height:auto;display:block}"
      "svg text{font:12px sans-serif;fill:#374151}svg text.lb{font-size:13px;fill:#111827}"
      "svg text.val{font-weight:bold;fill:#111827}svg text.lg{font-size:11px;fill:#111827}"
      "table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px "
      "solid #e5e7eb;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".note{background:#fef3c7;padding:6px 10px;border-radius:4px}"
      ".lossy{background:#fee2e2}");
  h.append("</style></head><body>\n<h1>laminator bench ").append(esc(r.options.scenario));
  h.append("</h1>\n<p class=\"meta\">").append(esc(r.title)).append("</p>\n");
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
  h.append("<p class=\"meta\">").append(esc(machine_line())).append(" &middot; ").append(when);
  h.append(" &middot; ").append(f1(r.wall_seconds)).append(" s</p>\n");
  for (const std::string& n : r.notes) {
    h.append("<p class=\"note").append(r.lossy ? " lossy" : "").append("\">").append(esc(n));
    h.append("</p>\n");
  }

  h.append("<h2>Same-run comparison</h2>\n");
  std::vector<std::string> units;
  for (const BenchMeasurement& m : r.measurements)
    if (std::find(units.begin(), units.end(), m.unit) == units.end()) units.push_back(m.unit);
  for (std::size_t i = 0; i < units.size(); ++i)
    bars_chart(h, r, units[i], i == 0 ? "bars" : "bars" + std::to_string(i + 1));
  if (!r.ratios.empty()) {
    h.append("<ul>");
    for (const BenchRatio& q : r.ratios) {
      char v[32];
      std::snprintf(v, sizeof v, q.value >= 100 ? "%.0fx" : "%.2fx", q.value);
      h.append("<li>").append(esc(q.label)).append(": <b>").append(v).append("</b></li>");
    }
    h.append("</ul>\n");
  }
  if (!r.latency.empty()) {
    h.append("<h2>Latency distribution</h2>\n");
    latency_chart(h, r.latency);
  }
  if (!r.throughput.empty()) {
    h.append("<h2>Throughput over time</h2>\n");
    throughput_chart(h, r.throughput);
  }
  h.append("<h2>Figures</h2>\n<table><tr><th>measurement</th><th>median</th><th>min</th>");
  h.append("<th>max</th><th>unit</th><th>samples</th></tr>");
  for (const BenchMeasurement& m : r.measurements) {
    const bool said = m.label.find("baseline") != std::string::npos;
    h.append("<tr><td>")
        .append(esc(m.label))
        .append(m.baseline && !said ? " <i>(baseline)</i>" : "");
    h.append("</td><td>").append(human(m.median())).append("</td><td>").append(human(m.min()));
    h.append("</td><td>").append(human(m.max())).append("</td><td>").append(esc(m.unit));
    h.append("</td><td>").append(std::to_string(m.samples.size())).append("</td></tr>");
  }
  h.append("</table>\n<h2>Configuration</h2>\n<table>");
  for (const auto& [k, v] : r.config) {
    std::string shown = v;
    if (shown.size() >= 2 && shown.front() == '"') shown = shown.substr(1, shown.size() - 2);
    h.append("<tr><td>").append(esc(k)).append("</td><td>").append(esc(shown)).append("</td></tr>");
  }
  h.append("</table>\n<p class=\"meta\">laminator 0.1.0, ").append(esc(__VERSION__));
  h.append("; the same numbers as <code>--json</code> (schema laminator-bench/1).</p>\n");
  h.append("</body></html>\n");
  return h;
}

}  // namespace lam::app
