#pragma once
/// Appends Prometheus text-format families and samples to a string (the server and the daemon's
/// component metrics share it).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace lam::daemon {

/// One row of a component's metric table: name, type, help and how to read it from the
/// component's stats (`count`, rendered as an integer; or `value`, e.g. seconds). A component's
/// metrics are one such table, rendered by PromWriter::table; docs/operations.md lists the same
/// names (a test holds the two together both ways).
template <class S>
struct MetricDesc {
  const char* name;
  const char* type;  ///< "counter" or "gauge"
  const char* help;
  std::uint64_t (*count)(const S&) = nullptr;
  double (*value)(const S&) = nullptr;
};

class PromWriter {
 public:
  explicit PromWriter(std::string& out) : out_(out) {}
  /// `# HELP` and `# TYPE` lines of a family.
  void family(const char* name, const char* type, const char* help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out_.append(name).append(" ").append(type).append("\n");
  }
  /// One sample; `labels` without braces (`venue="okx",route="public"`), or empty.
  void sample(const char* name, std::uint64_t v, const std::string& labels = "") {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(std::to_string(v)).append("\n");
  }
  /// One sample of a value that is not a count (seconds, ratios, sizes read as numbers).
  void sample_double(const char* name, double v, const std::string& labels = "") {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(buf).append("\n");
  }
  /// A gauge family with one unlabelled sample in seconds (Prometheus's base unit).
  void seconds(const char* name, const char* help, double v) {
    family(name, "gauge", help);
    sample_double(name, v);
  }
  /// A family with one unlabelled sample.
  void one(const char* name, const char* type, const char* help, std::uint64_t v) {
    family(name, type, help);
    sample(name, v);
  }

  /// Renders a component's descriptor table (below) against its stats, in the table's order.
  template <class S, std::size_t N>
  void table(const MetricDesc<S> (&rows)[N], const S& s) {
    for (const MetricDesc<S>& d : rows) {
      family(d.name, d.type, d.help);
      if (d.count != nullptr) {
        sample(d.name, d.count(s));
      } else {
        sample_double(d.name, d.value(s));
      }
    }
  }

 private:
  std::string& out_;
};

/// When this process started, in seconds since the Unix epoch, as Prometheus's client libraries
/// export it (`process_start_time_seconds`): from /proc (the kernel's boot time plus the process's
/// start in clock ticks), read once. 0 when /proc cannot say.
inline double process_start_time_seconds() {
  static const double at = [] {
    std::ifstream stat("/proc/self/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = all.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) return 0.0;
    std::istringstream fields(all.substr(close + 2));
    std::string f;
    unsigned long long ticks = 0;
    for (int i = 3; i <= 22 && fields >> f; ++i)  // field 3 is the state; 22 is starttime
      if (i == 22) ticks = std::stoull(f);
    std::ifstream proc("/proc/stat");
    unsigned long long btime = 0;
    for (std::string line; std::getline(proc, line);)
      if (line.rfind("btime ", 0) == 0) btime = std::stoull(line.substr(6));
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (btime == 0 || hz <= 0) return 0.0;
    return static_cast<double>(btime) + static_cast<double>(ticks) / static_cast<double>(hz);
  }();
  return at;
}

}  // namespace lam::daemon
