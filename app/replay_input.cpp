#include "app/replay_input.h"

#include <simdjson.h>

#include <charconv>
#include <deque>
#include <stdexcept>

#include "engine/fixed.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam::app {
namespace od = simdjson::ondemand;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

/// A scalar field as text: strings unescaped, numbers as their literal token, null as absent.
struct Scalar {
  bool present = false;
  bool is_string = false;
  std::string_view text;
};

bool read_scalar(od::value v, Scalar& out) {
  od::json_type t;
  if (v.type().get(t)) return false;
  switch (t) {
    case od::json_type::null:
      out = {};
      return true;
    case od::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s)) return false;
      out = {true, true, s};
      return true;
    }
    case od::json_type::number:
    case od::json_type::boolean: {
      out = {true, false, trim(v.raw_json_token())};
      return true;
    }
    default:
      return false;
  }
}

// Field-by-field readers for one object of the state document; each failure appends an error.
class RowReader {
 public:
  RowReader(std::string where, std::vector<std::string>& errors)
      : where_(std::move(where)), errors_(errors) {}

  bool fail(std::string_view field, std::string_view what, std::string_view text = {}) {
    std::string e = where_ + ": " + std::string(field) + ": " + std::string(what);
    if (!text.empty()) e += " '" + std::string(text.substr(0, 64)) + "'";
    errors_.push_back(std::move(e));
    ok_ = false;
    return false;
  }
  [[nodiscard]] bool ok() const { return ok_; }

  void uuid(const Scalar& s, std::string_view field, Uuid& out) {
    if (!s.present) {
      fail(field, "missing");
      return;
    }
    auto u = Uuid::parse(s.text);
    if (!u) {
      fail(field, "not a uuid", s.text);
      return;
    }
    out = *u;
  }
  void opt_uuid(const Scalar& s, std::string_view field, std::optional<Uuid>& out) {
    if (!s.present) return;
    Uuid u;
    uuid(s, field, u);
    if (ok_) out = u;
  }
  void opt_decimal(const Scalar& s, std::string_view field, std::optional<Decimal>& out) {
    if (!s.present || (s.is_string && s.text.empty())) return;
    const DecimalParse p = parse_decimal(s.text);
    if (!p.ok()) {
      fail(field, "bad decimal", s.text);
      return;
    }
    out = p.value;
  }
  void opt_raw(const Scalar& s, std::string_view field, std::optional<std::int64_t>& out) {
    std::optional<Decimal> d;
    opt_decimal(s, field, d);
    if (!d) return;
    auto r = to_raw(d->nearest());
    if (!r) {
      fail(field, "out of range", s.text);
      return;
    }
    out = r;
  }
  void raw(const Scalar& s, std::string_view field, std::int64_t& out) {
    std::optional<std::int64_t> r;
    opt_raw(s, field, r);
    if (r) {
      out = *r;
    } else if (ok_) {
      fail(field, "missing");
    }
  }
  void wide(const Scalar& s, std::string_view field, Wide& out) {
    std::optional<Decimal> d;
    opt_decimal(s, field, d);
    if (d) out = d->nearest();
  }
  void opt_time(const Scalar& s, std::string_view field, std::optional<TimeNs>& out) {
    if (!s.present || s.text.empty()) return;
    auto t = parse_iso8601(s.text);
    if (!t) {
      fail(field, "bad timestamp", s.text);
      return;
    }
    out = t;
  }

 private:
  std::string where_;
  std::vector<std::string>& errors_;
  bool ok_ = true;
};

// Collects the scalar fields of one object; nested objects are handed to `on_object`.
template <class OnScalar, class OnObject>
bool for_each_field(od::object obj, OnScalar&& on_scalar, OnObject&& on_object) {
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v;
    if (field.value().get(v)) return false;
    od::json_type t;
    if (v.type().get(t)) return false;
    if (t == od::json_type::object) {
      if (!on_object(key, v)) return false;
      continue;
    }
    if (t == od::json_type::array) continue;  // no array columns are used
    Scalar s;
    if (!read_scalar(v, s)) return false;
    on_scalar(key, s);
  }
  return true;
}

struct Fields {
  std::vector<std::pair<std::string, Scalar>> items;
  std::deque<std::string>
      storage;  // stable addresses: unescaped strings outlive the parser's buffer
  const Scalar& get(std::string_view k) const {
    static const Scalar kAbsent{};
    for (const auto& [name, s] : items) {
      if (name == k) return s;
    }
    return kAbsent;
  }
};

bool collect(od::object obj, Fields& f, std::optional<std::int64_t>* window_seconds,
             bool& window_bad) {
  return for_each_field(
      obj,
      [&](std::string_view key, const Scalar& s) {
        Scalar copy = s;
        if (s.present) {
          f.storage.emplace_back(s.text);
          copy.text = f.storage.back();
        }
        f.items.emplace_back(std::string(key), copy);
      },
      [&](std::string_view key, od::value v) {
        if (key != "metadata" || window_seconds == nullptr) return true;
        od::object meta;
        if (v.get_object().get(meta)) return false;
        return for_each_field(
            meta,
            [&](std::string_view mk, const Scalar& s) {
              if (mk != "window_seconds" || !s.present) return;
              std::int64_t w = 0;
              auto [p, ec] = std::from_chars(s.text.data(), s.text.data() + s.text.size(), w);
              if (ec != std::errc() || p != s.text.data() + s.text.size()) {
                window_bad = true;
              } else {
                *window_seconds = w;
              }
            },
            [](std::string_view, od::value) { return true; });
      });
}

void parse_market(const Fields& f, RowReader& r, StateInput& st) {
  MarketRow m;
  r.uuid(f.get("id"), "id", m.spec.id);
  const Scalar& sym = f.get("symbol");
  const Scalar& dex = f.get("dex_name");
  if (!sym.present || sym.text.empty()) r.fail("symbol", "missing");
  if (!dex.present || dex.text.empty()) r.fail("dex_name", "missing");
  m.symbol = std::string(sym.text);
  m.dex_name = std::string(dex.text);
  if (const Scalar& t = f.get("market_type"); t.present) {
    auto mt = parse_market_type(t.text);
    if (!mt)
      r.fail("market_type", "unknown", t.text);
    else
      m.spec.type = *mt;
  }
  m.spec.source = default_price_source(m.spec.type);
  if (const Scalar& s = f.get("price_source"); s.present) {
    auto ps = parse_price_source(s.text);
    if (!ps)
      r.fail("price_source", "unknown", s.text);
    else
      m.spec.source = *ps;
  }
  std::optional<std::int64_t> mmr;
  r.opt_raw(f.get("maintenance_margin_rate"), "maintenance_margin_rate", mmr);
  if (mmr) {
    if (*mmr < 0 || *mmr >= kScale) r.fail("maintenance_margin_rate", "must be in [0, 1)");
    m.spec.mmr = *mmr;
  }
  if (r.ok()) st.markets.push_back(std::move(m));
}

void parse_position(const Fields& f, RowReader& r, StateInput& st) {
  PositionSpec p;
  r.uuid(f.get("id"), "id", p.id);
  r.uuid(f.get("user_id"), "user_id", p.user_id);
  r.uuid(f.get("market_id"), "market_id", p.market_id);
  const Scalar& side = f.get("side");
  if (auto s = parse_side(side.text); side.present && s)
    p.side = *s;
  else
    r.fail("side", "must be 'long' or 'short'", side.text);
  r.raw(f.get("size"), "size", p.size);
  r.raw(f.get("entry_price"), "entry_price", p.entry_price);
  r.raw(f.get("margin"), "margin", p.margin);
  r.wide(f.get("realized_pnl"), "realized_pnl", p.realized_pnl);
  r.wide(f.get("unrealized_pnl"), "unrealized_pnl", p.unrealized_pnl);
  r.opt_raw(f.get("current_price"), "current_price", p.current_price);
  r.opt_time(f.get("closed_at"), "closed_at", p.closed_at);
  if (const Scalar& s = f.get("status"); s.present) {
    auto ps = parse_position_status(s.text);
    if (!ps)
      r.fail("status", "unknown", s.text);
    else
      p.status = *ps;
  }
  if (r.ok() && p.status == PositionStatus::open) {
    if (p.size <= 0) r.fail("size", "must be > 0");
    if (p.entry_price <= 0) r.fail("entry_price", "must be > 0");
    if (p.margin < 0) r.fail("margin", "must be >= 0");
  }
  if (r.ok()) st.positions.push_back(p);
}

void parse_alert(const Fields& f, std::optional<std::int64_t> window, bool window_bad, RowReader& r,
                 StateInput& st) {
  AlertSpec a;
  r.uuid(f.get("id"), "id", a.id);
  r.uuid(f.get("user_id"), "user_id", a.user_id);
  r.opt_uuid(f.get("market_id"), "market_id", a.market_id);
  // Unknown types and conditions are not input errors: the matcher rejects them with an event.
  a.type = parse_alert_type(f.get("alert_type").text);
  a.condition = parse_condition_type(f.get("condition_type").text);
  r.opt_decimal(f.get("target_price"), "target_price", a.target_price);
  r.opt_decimal(f.get("target_percentage"), "target_percentage", a.target_percentage);
  r.opt_decimal(f.get("target_value"), "target_value", a.target_value);
  r.opt_raw(f.get("anchor_price"), "anchor_price", a.anchor_price);
  r.opt_time(f.get("expires_at"), "expires_at", a.expires_at);
  r.opt_time(f.get("triggered_at"), "triggered_at", a.triggered_at);
  a.window_seconds = window_bad ? 0 : window.value_or(kDefaultVolumeWindowSec);
  if (const Scalar& s = f.get("status"); s.present) {
    auto as = parse_alert_status(s.text);
    if (!as)
      r.fail("status", "unknown", s.text);
    else
      a.status = *as;
  }
  if (r.ok()) st.alerts.push_back(a);
}

}  // namespace

StateInput load_state(const std::string& path) {
  simdjson::padded_string json;
  if (auto err = simdjson::padded_string::load(path).get(json)) {
    throw std::runtime_error(path + ": cannot read: " + simdjson::error_message(err));
  }
  od::parser parser;
  od::document doc;
  if (auto err = parser.iterate(json).get(doc)) {
    throw std::runtime_error(path + ": " + simdjson::error_message(err));
  }
  od::object root;
  if (doc.get_object().get(root))
    throw std::runtime_error(path + ": top level must be a JSON object");
  StateInput st;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) throw std::runtime_error(path + ": malformed JSON");
    std::string table(key);
    if (table != "markets" && table != "positions" && table != "alerts") {
      continue;  // other tables are ignored
    }
    od::array arr;
    if (field.value().get_array().get(arr))
      throw std::runtime_error(path + ": '" + table + "' must be an array");
    std::size_t index = 0;
    for (auto elem : arr) {
      RowReader r(path + ": " + table + "[" + std::to_string(index++) + "]", st.errors);
      od::object obj;
      if (elem.get_object().get(obj)) {
        r.fail("(row)", "not a JSON object");
        continue;
      }
      Fields f;
      std::optional<std::int64_t> window;
      bool window_bad = false;
      if (!collect(obj, f, table == "alerts" ? &window : nullptr, window_bad)) {
        throw std::runtime_error(r.ok() ? path + ": malformed JSON in " + table : path);
      }
      if (table == "markets")
        parse_market(f, r, st);
      else if (table == "positions")
        parse_position(f, r, st);
      else
        parse_alert(f, window, window_bad, r, st);
    }
  }
  return st;
}

// ---- ticks -----------------------------------------------------------------------------------

struct TickLineParser::Impl {
  od::parser parser;
};

std::size_t TickLineParser::padding() noexcept {
  return simdjson::SIMDJSON_PADDING;
}

TickLineParser::TickLineParser() : impl_(std::make_unique<Impl>()) {}
TickLineParser::~TickLineParser() = default;

bool TickLineParser::parse(const char* line, std::size_t len, std::size_t capacity, TickLine& out,
                           std::string& error) {
  od::document doc;
  if (auto err = impl_->parser.iterate(line, len, capacity).get(doc)) {
    error = std::string("not JSON: ") + simdjson::error_message(err);
    return false;
  }
  od::object obj;
  if (doc.get_object().get(obj)) {
    error = "not a JSON object";
    return false;
  }
  bool have_ts = false, have_venue = false, have_symbol = false, have_kind = false;
  std::string_view price, size, bid, ask;
  for (auto field : obj) {
    std::string_view key;
    od::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) {
      error = "malformed JSON";
      return false;
    }
    const bool known = key == "ts" || key == "venue" || key == "symbol" || key == "kind" ||
                       key == "price" || key == "size" || key == "bid" || key == "ask";
    if (!known) continue;  // unknown fields, nested or not, are skipped unread
    Scalar s;
    if (!read_scalar(v, s)) {
      error = "field '" + std::string(key) + "' is not a scalar";
      return false;
    }
    if (key == "ts") {
      std::int64_t ms = 0;
      auto [p, ec] = std::from_chars(s.text.data(), s.text.data() + s.text.size(), ms);
      if (!s.present || ec != std::errc() || p != s.text.data() + s.text.size() || ms < 0 ||
          ms > INT64_MAX / kNsPerMs) {
        error = "ts must be integer milliseconds";
        return false;
      }
      out.ts = ms * kNsPerMs;
      have_ts = true;
    } else if (key == "venue") {
      out.venue = s.text;
      have_venue = s.present && s.is_string;
    } else if (key == "symbol") {
      out.symbol = s.text;
      have_symbol = s.present && s.is_string;
    } else if (key == "kind") {
      have_kind = true;
      if (s.text == "mark")
        out.kind = TickKind::mark;
      else if (s.text == "trade")
        out.kind = TickKind::trade;
      else if (s.text == "bbo")
        out.kind = TickKind::bbo;
      else {
        error = "unknown kind '" + std::string(s.text.substr(0, 32)) + "'";
        return false;
      }
    } else if (key == "price") {
      price = s.text;
    } else if (key == "size") {
      size = s.text;
    } else if (key == "bid") {
      bid = s.text;
    } else if (key == "ask") {
      ask = s.text;
    }
  }
  if (!have_ts || !have_venue || !have_symbol || !have_kind) {
    error = "missing field (ts, venue, symbol and kind are required)";
    return false;
  }
  auto decimal = [&](std::string_view name, std::string_view text, std::int64_t& dst,
                     bool positive) {
    auto r = parse_raw(text);
    if (!r || (positive ? *r <= 0 : *r < 0)) {
      error = text.empty() ? "missing " + std::string(name)
                           : "bad decimal in " + std::string(name) + ": '" +
                                 std::string(text.substr(0, 40)) + "'";
      return false;
    }
    dst = *r;
    return true;
  };
  switch (out.kind) {
    case TickKind::mark:
      return decimal("price", price, out.price, true);
    case TickKind::trade:
      return decimal("price", price, out.price, true) && decimal("size", size, out.size, false);
    case TickKind::bbo:
      if (!decimal("bid", bid, out.price, true) || !decimal("ask", ask, out.ask, true))
        return false;
      if (out.ask < out.price) {
        error = "crossed book: ask < bid";
        return false;
      }
      return true;
  }
  return true;
}

}  // namespace lam::app
