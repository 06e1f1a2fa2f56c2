#include "replay/replay_input.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <deque>
#include <map>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "engine/fixed.h"
#include "engine/row_reader.h"
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

/// One object's fields; for alerts, `metadata.window_seconds`; for user_settings, the engine's keys
/// of `setting_value` (a value that is not an object has none, as SQL's ->> reads it).
bool collect(od::object obj, Fields& f, std::string_view table) {
  auto keep = [&f](std::string_view key, const Scalar& s) {
    Scalar copy = s;
    if (s.present) {
      f.storage.emplace_back(s.text);
      copy.text = f.storage.back();
    }
    f.items.emplace_back(std::string(key), copy);
  };
  return for_each_field(obj, keep, [&](std::string_view key, od::value v) {
    const bool window = table == "alerts" && key == "metadata";
    const bool setting = table == "user_settings" && key == "setting_value";
    if (!window && !setting) return true;
    od::object meta;
    if (v.get_object().get(meta)) return setting;  // a setting that is not an object: no values
    return for_each_field(
        meta,
        [&](std::string_view mk, const Scalar& s) {
          if (window && mk == "window_seconds") keep("window_seconds", s);
          if (setting &&
              (mk == "max_leverage" || mk == "stop_loss_percentage" || mk == "default_slippage"))
            keep(mk, s);
        },
        [](std::string_view, od::value) { return true; });
  });
}

/// The shared row reader's view of one JSON object: columns looked up by name.
template <class Col>
class JsonCells final : public rows::CellSource {
 public:
  explicit JsonCells(const Fields& f) : f_(f) {}
  [[nodiscard]] rows::Cell cell(std::size_t column) const override {
    const Scalar& s = f_.get(rows::column_name(static_cast<Col>(column)));
    if (s.is_string && s.text.empty()) return {};  // "" as in a CSV-ish export: no value
    return {s.present, s.text};
  }

 private:
  const Fields& f_;
};

/// Reads one row with the shared reader; an unreadable row is an error and left out, a rejected
/// one is an error too but kept, so that the matcher emits its rejection as the daemon would.
template <class Col, class Row, class Read>
void read_row(const Fields& f, const std::string& where, Read read, std::vector<Row>& out,
              std::vector<std::string>& errors, std::set<Uuid>& seen) {
  Row row;
  const rows::RowReport rep = read(JsonCells<Col>(f), row);
  if (!rep.ok()) errors.push_back(where + ": " + rep.detail);
  if (rep.verdict == rows::Verdict::unreadable) return;
  const Uuid& id = [&]() -> const Uuid& {
    if constexpr (std::is_same_v<Row, MarketRow>) {
      return row.spec.id;
    } else {
      return row.id;
    }
  }();
  if (!seen.insert(id).second) {
    errors.push_back(where + ": id: duplicate of an earlier row, skipped");
    return;
  }
  out.push_back(std::move(row));
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
  std::array<std::set<Uuid>, 5> seen;  // ids per table, for duplicates
  std::map<Uuid, Uuid> wallet_owner;   // `wallets`: id -> user_id
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) throw std::runtime_error(path + ": malformed JSON");
    std::string table(key);
    if (table != "markets" && table != "positions" && table != "alerts" && table != "orders" &&
        table != "wallet_balances" && table != "wallets" && table != "user_settings") {
      continue;  // other tables are ignored
    }
    od::array arr;
    if (field.value().get_array().get(arr))
      throw std::runtime_error(path + ": '" + table + "' must be an array");
    std::size_t index = 0;
    for (auto elem : arr) {
      const std::string where = path + ": " + table + "[" + std::to_string(index++) + "]";
      od::object obj;
      if (elem.get_object().get(obj)) {
        st.errors.push_back(where + ": not a JSON object");
        continue;
      }
      Fields f;
      if (!collect(obj, f, table)) {
        throw std::runtime_error(path + ": malformed JSON in " + table);
      }
      if (table == "wallets") {
        const Scalar& id = f.get("id");
        const Scalar& user = f.get("user_id");
        const auto w = id.present ? Uuid::parse(id.text) : std::nullopt;
        const auto u = user.present ? Uuid::parse(user.text) : std::nullopt;
        if (!w || !u) {
          st.errors.push_back(where + ": id and user_id must be uuids");
        } else if (!wallet_owner.emplace(*w, *u).second) {
          st.errors.push_back(where + ": id: duplicate of an earlier row, skipped");
        }
      } else if (table == "markets") {
        read_row<rows::MarketCol>(f, where, rows::read_market, st.markets, st.errors, seen[0]);
      } else if (table == "positions") {
        read_row<rows::PositionCol>(f, where, rows::read_position, st.positions, st.errors,
                                    seen[1]);
      } else if (table == "alerts") {
        read_row<rows::AlertCol>(f, where, rows::read_alert, st.alerts, st.errors, seen[2]);
      } else if (table == "orders") {
        read_row<rows::OrderCol>(f, where, rows::read_order, st.orders, st.errors, seen[3]);
      } else if (table == "user_settings") {
        read_row<rows::SettingCol>(f, where, rows::read_setting, st.settings, st.errors, seen[4]);
      } else {
        BalanceSpec b;
        const rows::RowReport rep = rows::read_balance(JsonCells<rows::BalanceCol>(f), b);
        if (!rep.ok()) {
          st.errors.push_back(where + ": " + rep.detail);
        } else {
          st.balances.push_back(b);
        }
      }
    }
  }
  // A position or order on another user's wallet is rejected as the daemon's loader rejects it
  // (the loader reads the owner with the row; here `wallets` may come after the rows).
  auto check_owner = [&](auto& rows, const char* table) {
    for (auto& r : rows) {
      const auto w = wallet_owner.find(r.wallet_id);
      if (w == wallet_owner.end() || w->second == r.user_id || r.invalid != RejectReason::none)
        continue;
      r.invalid = RejectReason::foreign_wallet;
      st.errors.push_back(path + ": " + table + " " + r.id.str() +
                          ": wallet_owner: not the row's user '" + w->second.str() + "'");
    }
  };
  check_owner(st.positions, "positions");
  check_owner(st.orders, "orders");
  return st;
}

// ---- ticks -----------------------------------------------------------------------------------

namespace {

/// A funding line: "rate" (decimal, 1e-18 grid), "funding_time" (ms of the settlement), and
/// optionally "price" (what the venue pays at when it is not the mark: Hyperliquid's oracle).
bool funding_fields(std::string_view rate, std::string_view at, std::string_view price,
                    TickLine& out, std::string& error) {
  const auto r = parse_rate(rate);
  if (!r) {
    error = rate.empty() ? "missing rate"
                         : "bad rate '" + std::string(rate.substr(0, 40)) + "' (|rate| <= 1)";
    return false;
  }
  std::int64_t ms = 0;
  auto [p, ec] = std::from_chars(at.data(), at.data() + at.size(), ms);
  if (at.empty() || ec != std::errc() || p != at.data() + at.size() || ms <= 0 ||
      ms > INT64_MAX / kNsPerMs) {
    error = "funding_time must be integer milliseconds";
    return false;
  }
  out.price = *r;
  out.size = ms * kNsPerMs;
  out.ask = 0;
  if (!price.empty()) {
    const auto px = parse_raw(price);
    if (!px || *px <= 0) {
      error = "bad decimal in price: '" + std::string(price.substr(0, 40)) + "'";
      return false;
    }
    out.ask = *px;
  }
  return true;
}

}  // namespace

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
  std::string_view price, size, bid, ask, rate, funding_time;
  for (auto field : obj) {
    std::string_view key;
    od::value v;
    if (field.unescaped_key().get(key) || field.value().get(v)) {
      error = "malformed JSON";
      return false;
    }
    const bool known = key == "ts" || key == "venue" || key == "symbol" || key == "kind" ||
                       key == "price" || key == "size" || key == "bid" || key == "ask" ||
                       key == "rate" || key == "funding_time";
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
      else if (s.text == "funding")
        out.kind = TickKind::funding;
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
    } else if (key == "rate") {
      rate = s.text;
    } else if (key == "funding_time") {
      funding_time = s.text;
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
    case TickKind::funding:
      return funding_fields(rate, funding_time, price, out, error);
  }
  return true;
}

}  // namespace lam::app
