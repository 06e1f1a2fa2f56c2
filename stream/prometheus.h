#pragma once
/// Appends Prometheus text-format families and samples to a string (the server and the daemon's
/// component metrics share it).

#include <cstdint>
#include <cstdio>
#include <string>

namespace lam::daemon {

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

 private:
  std::string& out_;
};

}  // namespace lam::daemon
