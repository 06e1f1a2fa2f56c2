// Query-string and JSON filter parsing (simdjson DOM: a control message, not the hot path).
#include "stream/stream_filter.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>

namespace lam::daemon {
namespace {

static_assert(kEventTypeCount <= 32, "StreamFilter::types holds one bit per event type");
constexpr std::uint32_t bit(EventType t) noexcept {
  return 1u << static_cast<unsigned>(t);
}

bool contains(const std::vector<Uuid>& v, const Uuid& u) {
  return std::find(v.begin(), v.end(), u) != v.end();
}

/// Percent-decoding of a query value; false on a bad escape.
bool url_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      unsigned v = 0;
      const auto r = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
      if (r.ec != std::errc() || r.ptr != in.data() + i + 3) return false;
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(in[i] == '+' ? ' ' : in[i]);
    }
  }
  return true;
}

bool add_values(std::string_view key, std::string_view list, StreamFilter& f, bool& types_set,
                std::string& error) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view v = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (v.empty()) continue;
    if (key == "user_id" || key == "market_id") {
      const auto id = Uuid::parse(v);
      if (!id) {
        error = std::string(key) + ": not a UUID";
        return false;
      }
      (key == "user_id" ? f.users : f.markets).push_back(*id);
    } else {
      const auto t = parse_event_type(v);
      if (!t) {
        error = "type: unknown event type '" + std::string(v) + "'";
        return false;
      }
      if (!types_set) f.types = 0;
      types_set = true;
      f.types |= bit(*t);
    }
  }
  return true;
}

}  // namespace

std::optional<EventType> parse_event_type(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    const auto t = static_cast<EventType>(i);
    if (to_string(t) == name) return t;
  }
  return std::nullopt;
}

bool StreamFilter::matches(const EventMeta& m) const noexcept {
  if (m.hole) return false;
  if ((types & bit(m.type)) == 0) return false;
  if (!users.empty() && !contains(users, m.user_id)) return false;
  if (!markets.empty() && (!m.has_market || !contains(markets, m.market_id))) return false;
  return true;
}

std::optional<StreamQuery> parse_stream_query(std::string_view query, std::string& error) {
  StreamQuery q;
  bool types_set = false;
  std::string value;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (!url_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), value)) {
      error = std::string(key) + ": bad percent escape";
      return std::nullopt;
    }
    if (key == "since") {
      std::uint64_t s = 0;
      const auto r = std::from_chars(value.data(), value.data() + value.size(), s);
      if (r.ec != std::errc() || r.ptr != value.data() + value.size()) {
        error = "since: not a non-negative integer";
        return std::nullopt;
      }
      q.since = s;
    } else if (key == "committed") {
      if (value == "1" || value == "true") {
        q.committed = true;
      } else if (value == "0" || value == "false") {
        q.committed = false;
      } else {
        error = "committed: expected 1 or 0";
        return std::nullopt;
      }
    } else if (key == "user_id" || key == "market_id" || key == "type") {
      if (!add_values(key, value, q.filter, types_set, error)) return std::nullopt;
    } else {
      error = "unknown parameter '" + std::string(key) + "'";
      return std::nullopt;
    }
  }
  return q;
}

std::optional<StreamFilter> parse_filter_json(std::string_view json, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    error = "expected a JSON object";
    return std::nullopt;
  }
  StreamFilter f;
  bool types_set = false;
  for (auto [key, value] : doc.get_object()) {
    if (key != "user_id" && key != "market_id" && key != "type") {
      error = "unknown field '" + std::string(key) + "'";
      return std::nullopt;
    }
    auto add = [&](simdjson::dom::element e) {
      std::string_view s;
      if (e.get_string().get(s) != simdjson::SUCCESS) {
        error = std::string(key) + ": expected strings";
        return false;
      }
      return add_values(key, s, f, types_set, error);
    };
    if (value.is_array()) {
      for (simdjson::dom::element e : value.get_array())
        if (!add(e)) return std::nullopt;
    } else if (!add(value)) {
      return std::nullopt;
    }
  }
  return f;
}

}  // namespace lam::daemon
