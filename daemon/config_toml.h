#pragma once
/// Private to daemon/config.cpp and daemon/config_daemon.cpp, the two files that include toml++:
/// the section reader and the build of a Config, with the daemon's own sections ([feeds], [shard],
/// which need the venue table) passed in so that the gateway's loader does not link them.

#include <toml++/toml.h>

#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"

namespace lam::daemon::config_detail {

inline constexpr std::int64_t kMaxMillis = 24LL * 3600 * 1000;

/// Reads one TOML table, remembering which keys were used so that the rest are reported unknown.
class Section {
 public:
  Section(const toml::table& t, std::string name, const std::string& file)
      : t_(t), name_(std::move(name)), file_(file) {}

  [[noreturn]] void fail(const toml::source_region& at, const std::string& what) const {
    std::ostringstream s;
    s << file_ << ':' << at.begin.line << ": " << what;
    throw ConfigError(s.str());
  }
  [[noreturn]] void fail_key(std::string_view key, const std::string& what) const {
    const toml::node* n = t_.get(key);
    fail(n != nullptr ? n->source() : t_.source(), qualified(key) + ": " + what);
  }
  std::string qualified(std::string_view key) const {
    return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  }

  const toml::node* node(std::string_view key) {
    used_.insert(std::string(key));
    return t_.get(key);
  }

  void str(std::string_view key, std::string& out) {
    if (const toml::node* n = node(key)) {
      if (!n->is_string()) fail_key(key, "expected a string");
      out = n->value<std::string>().value_or("");
    }
  }
  void boolean(std::string_view key, bool& out) {
    if (const toml::node* n = node(key)) {
      if (!n->is_boolean()) fail_key(key, "expected true or false");
      out = n->value<bool>().value_or(false);
    }
  }
  template <class T>
  void integer(std::string_view key, T& out, std::int64_t lo, std::int64_t hi) {
    if (const toml::node* n = node(key)) {
      if (!n->is_integer()) fail_key(key, "expected an integer");
      const std::int64_t v = n->value<std::int64_t>().value_or(0);
      if (v < lo || v > hi)
        fail_key(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                          std::to_string(v));
      out = static_cast<T>(v);
    }
  }
  void millis(std::string_view key, Millis& out, std::int64_t lo, std::int64_t hi = kMaxMillis) {
    std::int64_t v = out.count();
    integer(key, v, lo, hi);
    out = Millis(v);
  }
  void number(std::string_view key, double& out, double lo, double hi) {
    if (const toml::node* n = node(key)) {
      if (!n->is_number()) fail_key(key, "expected a number");
      const double v = n->is_integer() ? static_cast<double>(n->value<std::int64_t>().value_or(0))
                                       : n->value<double>().value_or(0);
      if (!(v >= lo && v <= hi))
        fail_key(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      out = v;
    }
  }
  const toml::table* table(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail_key(key, "expected a table");
    return n->as_table();
  }
  const toml::array* array(std::string_view key) {
    const toml::node* n = node(key);
    if (n == nullptr) return nullptr;
    if (!n->is_array()) fail_key(key, "expected an array");
    return n->as_array();
  }
  std::vector<std::string> strings(std::string_view key) {
    std::vector<std::string> out;
    if (const toml::array* a = array(key)) {
      for (const toml::node& e : *a) {
        if (!e.is_string()) fail(e.source(), qualified(key) + ": expected an array of strings");
        out.push_back(e.value<std::string>().value_or(""));
      }
    }
    return out;
  }
  /// Every key of the table must have been read.
  void finish() const {
    for (auto&& [k, v] : t_) {
      if (!used_.count(std::string(k.str())))
        fail(k.source(), "unknown key '" + qualified(k.str()) + "'");
    }
  }
  const std::string& file() const { return file_; }

 private:
  const toml::table& t_;
  std::string name_;
  const std::string& file_;
  std::set<std::string> used_;
};

/// Reads the daemon's own sections ([feeds], [shard]) of `top` into `c`.
using DaemonSections = void (*)(Section& top, Config& c);

/// The file `name` (or `*text`, named `name`) as a Config; `daemon` null: a gateway's, refusing
/// [feeds] and [shard]. Throws ConfigError with `file:line: what`.
Config parse(const std::string& name, const std::string* text, DaemonSections daemon);

}  // namespace lam::daemon::config_detail
