#pragma once
/// Internal to the venue parsers (the only files that include simdjson): reading scalar tokens
/// straight from the frame, strings or numbers alike, without `double` and without copies.

#include <simdjson.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

#include "engine/fixed.h"
#include "engine/timefmt.h"

namespace lam::feeds::json {

namespace od = simdjson::ondemand;

static_assert(simdjson::SIMDJSON_PADDING <= 64, "kFramePadding must cover simdjson's padding");

/// A scalar as its text: a string's contents (never unescaped: numbers and symbols carry no
/// escapes, and one that does is rejected) or a number/true/false literal.
struct Tok {
  std::string_view text;
  bool present = false;  ///< false for null and for a missing field
  bool bad = false;      ///< an object/array where a scalar was expected, or an escaped string

  /// Present and not "" (the venues send "" for "no value").
  [[nodiscard]] bool has_value() const noexcept { return present && !bad && !text.empty(); }
  /// The text when has_value(), else "".
  [[nodiscard]] std::string_view value() const noexcept {
    return has_value() ? text : std::string_view{};
  }
};

/// Reads `v` as a scalar token without consuming structure (the field loop skips it).
inline Tok token(od::value v) noexcept {
  Tok t;
  std::string_view raw = v.raw_json_token();
  if (raw.empty()) {
    t.bad = true;
    return t;
  }
  const char c = raw.front();
  if (c == '"') {
    const std::size_t end = raw.find('"', 1);
    if (end == std::string_view::npos) {
      t.bad = true;
      return t;
    }
    t.text = raw.substr(1, end - 1);
    if (t.text.find('\\') != std::string_view::npos) t.bad = true;
    t.present = true;
    return t;
  }
  if (c == '{' || c == '[') {
    t.bad = true;
    return t;
  }
  if (c == 'n') return t;  // null: absent
  while (!raw.empty() &&
         (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  t.text = raw;
  t.present = true;
  return t;
}

/// A price: positive fixed-point, nullopt when absent, empty, malformed or out of range.
inline std::optional<std::int64_t> price(const Tok& t) noexcept {
  if (!t.has_value()) return std::nullopt;
  auto r = parse_raw(t.text);
  if (!r || *r <= 0) return std::nullopt;
  return r;
}

/// A size: non-negative fixed-point.
inline std::optional<std::int64_t> size(const Tok& t) noexcept {
  if (!t.has_value()) return std::nullopt;
  auto r = parse_raw(t.text);
  if (!r || *r < 0) return std::nullopt;
  return r;
}

/// A funding rate on the 1e-18 grid (signed); nullopt when absent, "" (no funding: dated futures),
/// malformed or beyond +-100 %.
inline std::optional<std::int64_t> rate(const Tok& t) noexcept {
  if (!t.has_value()) return std::nullopt;
  return parse_rate(t.text);
}

/// An unsigned integer sent as a number or a string of digits.
inline std::optional<std::uint64_t> u64(const Tok& t) noexcept {
  if (!t.has_value()) return std::nullopt;
  std::uint64_t v = 0;
  const char* end = t.text.data() + t.text.size();
  auto [p, ec] = std::from_chars(t.text.data(), end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

/// A signed integer sent as a number or a string of digits (Pyth's prices).
inline std::optional<std::int64_t> i64(const Tok& t) noexcept {
  if (!t.has_value()) return std::nullopt;
  std::int64_t v = 0;
  const char* end = t.text.data() + t.text.size();
  auto [p, ec] = std::from_chars(t.text.data(), end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

/// Milliseconds since the epoch (number or string) to ns.
inline std::optional<TimeNs> ms_time(const Tok& t) noexcept {
  auto v = u64(t);
  constexpr std::uint64_t kMaxMs = 9'000'000'000'000;  // year 2255
  if (!v || *v > kMaxMs) return std::nullopt;
  return static_cast<TimeNs>(*v) * 1'000'000;
}

/// `size * contract_size`, both raw; nullopt on overflow.
inline std::optional<std::int64_t> scale_size(std::int64_t size, std::int64_t contract) noexcept {
  if (contract == kScale) return size;
  const Wide v = static_cast<Wide>(size) * contract / kScale;
  return to_raw(v);
}

/// True when the whole document has been consumed (no trailing content after the root).
inline bool at_end(od::document& doc) noexcept {
  const char* p = nullptr;
  return doc.current_location().get(p) != simdjson::SUCCESS;
}

/// Calls `f(key, value)` for each field; false when the object is malformed or `f` says stop.
/// Keys are read in place (no copy) unless they contain an escape.
template <class F>
inline bool for_each_field(od::object obj, F&& f) noexcept {
  for (auto field : obj) {
    od::field fld;
    if (std::move(field).get(fld)) return false;
    // Stage 1 has validated the string, so its closing quote exists within the padded input.
    const char* k = fld.key().raw();
    std::size_t n = 0;
    while (k[n] != '"' && k[n] != '\\') ++n;
    std::string_view key(k, n);
    if (k[n] == '\\' && fld.unescaped_key().get(key)) return false;
    if (!f(key, fld.value())) return false;
  }
  return true;
}

}  // namespace lam::feeds::json
