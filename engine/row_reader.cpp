#include "engine/row_reader.h"

#include <array>
#include <charconv>
#include <limits>

#include "engine/fixed.h"
#include "engine/timefmt.h"

namespace lam::rows {
namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(MarketCol::count)> kMarketNames = {
    "id",
    "symbol",
    "dex_name",
    "market_type",
    "price_source",
    "maintenance_margin_rate",
    "maker_fee_rate",
    "taker_fee_rate",
    "min_order_size",
    "max_order_size",
    "tick_size",
    "step_size",
    "max_leverage",
    "quote_asset",
    "oracle_feed_id"};
constexpr std::array<std::string_view, static_cast<std::size_t>(OrderCol::count)> kOrderNames = {
    "id",
    "user_id",
    "wallet_id",
    "market_id",
    "order_type",
    "side",
    "execution",
    "size",
    "price",
    "trigger_price",
    "trigger_source",
    "leverage",
    "status",
    "triggered_at",
    "expires_at",
    "filled_size",
    "filled_at",
    "wallet_owner",
    "trail_rate",
    "trail_distance",
    "activation_price",
    "activated_at",
    "trail_group_id",
    "trail_extreme"};
constexpr std::array<std::string_view, static_cast<std::size_t>(SettingCol::count)> kSettingNames =
    {"id", "user_id", "setting_key", "max_leverage", "stop_loss_percentage", "default_slippage"};
constexpr std::array<std::string_view, static_cast<std::size_t>(BalanceCol::count)> kBalanceNames =
    {"wallet_id", "token_symbol", "balance", "locked_balance", "id"};
constexpr std::array<std::string_view, static_cast<std::size_t>(PositionCol::count)>
    kPositionNames = {"id",        "user_id",       "market_id",      "side",
                      "size",      "entry_price",   "margin",         "realized_pnl",
                      "status",    "current_price", "unrealized_pnl", "closed_at",
                      "wallet_id", "leverage",      "wallet_owner"};
constexpr std::array<std::string_view, static_cast<std::size_t>(AlertCol::count)> kAlertNames = {
    "id",
    "user_id",
    "market_id",
    "alert_type",
    "condition_type",
    "target_price",
    "target_percentage",
    "target_value",
    "anchor_price",
    "expires_at",
    "window_seconds",
    "status",
    "triggered_at"};

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool is_nan(std::string_view s) noexcept {
  return iequals(s, "nan");
}
bool is_infinity(std::string_view s) noexcept {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return iequals(s, "infinity") || iequals(s, "inf");
}

/// Reads the cells of one row, keeping the first problem.
template <class Col>
class Reader {
 public:
  Reader(const CellSource& src, RowReport& rep) : src_(src), rep_(rep) {}

  Cell cell(Col c) const { return src_.cell(static_cast<std::size_t>(c)); }

  void fail(Verdict v, RejectReason r, Col c, std::string_view what, std::string_view text = {}) {
    if (rep_.verdict == Verdict::unreadable) return;
    if (rep_.verdict == Verdict::rejected && v != Verdict::unreadable) return;
    rep_.verdict = v;
    rep_.reason = r;
    rep_.detail.assign(column_name(c)).append(": ").append(what);
    if (!text.empty()) rep_.detail.append(" '").append(text.substr(0, 64)).append("'");
  }
  void reject(RejectReason r, Col c, std::string_view what, std::string_view text = {}) {
    fail(Verdict::rejected, r, c, what, text);
  }
  void unreadable(Col c, std::string_view what, std::string_view text = {}) {
    fail(Verdict::unreadable, RejectReason::invalid_value, c, what, text);
  }

  /// An enum column: absent keeps `out` (or is rejected when `required`); an unknown value is
  /// rejected, never guessed.
  template <class T, class Parse>
  void enum_cell(Col c, Parse parse, T& out, bool required) {
    const Cell v = cell(c);
    if (!v.present) {
      if (required) reject(RejectReason::invalid_value, c, "missing");
      return;
    }
    if (auto x = parse(v.text)) {
      out = *x;
    } else {
      reject(RejectReason::invalid_value, c, "unknown", v.text);
    }
  }

  /// A uuid that names the row: unreadable when missing or malformed.
  Uuid key(Col c) {
    const Cell v = cell(c);
    auto u = v.present ? Uuid::parse(v.text) : std::nullopt;
    if (!u) unreadable(c, v.present ? "not a uuid" : "missing", v.text);
    return u.value_or(Uuid{});
  }
  std::optional<Uuid> opt_uuid(Col c) {
    const Cell v = cell(c);
    if (!v.present) return std::nullopt;
    auto u = Uuid::parse(v.text);
    if (!u) reject(RejectReason::invalid_value, c, "not a uuid", v.text);
    return u;
  }
  /// A decimal; NaN, infinities and malformed text are rejected with `range` for magnitudes the
  /// engine cannot hold.
  std::optional<Decimal> opt_decimal(Col c, RejectReason range) {
    const Cell v = cell(c);
    if (!v.present) return std::nullopt;
    if (is_nan(v.text)) {
      reject(RejectReason::not_a_number, c, "not a number", v.text);
      return std::nullopt;
    }
    if (is_infinity(v.text)) {
      reject(range, c, "infinite", v.text);
      return std::nullopt;
    }
    const DecimalParse p = parse_decimal(v.text);
    if (p.error == DecimalError::out_of_range) {
      reject(range, c, "out of the engine's range", v.text);
      return std::nullopt;
    }
    if (!p.ok()) {
      reject(RejectReason::invalid_value, c, "not a decimal", v.text);
      return std::nullopt;
    }
    return p.value;
  }
  /// A raw fixed-point value within +-9e9.
  std::optional<std::int64_t> opt_raw(Col c, RejectReason range) {
    auto d = opt_decimal(c, range);
    if (!d) return std::nullopt;
    auto r = to_raw(d->nearest());
    if (!r) reject(range, c, "out of the engine's range (+-9e9)", cell(c).text);
    return r;
  }
  std::int64_t raw(Col c, RejectReason range) {
    if (!cell(c).present) {
      reject(RejectReason::invalid_value, c, "missing");
      return 0;
    }
    return opt_raw(c, range).value_or(0);
  }
  /// A timestamp: +infinity is "never" (nullopt), -infinity the earliest time, years past 2262
  /// saturate.
  std::optional<TimeNs> opt_time(Col c) {
    const Cell v = cell(c);
    if (!v.present || v.text.empty()) return std::nullopt;
    const TimeCell t = parse_time_cell(v.text);
    if (!t.ok) {
      reject(RejectReason::invalid_value, c, "not a timestamp", v.text);
      return std::nullopt;
    }
    if (t.never) return std::nullopt;
    return t.value;
  }

 private:
  const CellSource& src_;
  RowReport& rep_;
};

/// A row whose wallet belongs to another user is rejected (foreign_wallet): it must never lock,
/// charge or liquidate that user's balance. No owner known (the column absent): not checked.
template <class Col>
void check_wallet_owner(Reader<Col>& r, Col c, const Uuid& user) {
  const Cell v = r.cell(c);
  if (!v.present || v.text.empty()) return;
  const auto owner = Uuid::parse(v.text);
  if (!owner || *owner != user)
    r.reject(RejectReason::foreign_wallet, c, "not the row's user", v.text);
}

}  // namespace

std::string_view column_name(OrderCol c) noexcept {
  return c < OrderCol::count ? kOrderNames[static_cast<std::size_t>(c)] : "?";
}
std::string_view column_name(BalanceCol c) noexcept {
  return c < BalanceCol::count ? kBalanceNames[static_cast<std::size_t>(c)] : "?";
}
std::string_view column_name(SettingCol c) noexcept {
  return c < SettingCol::count ? kSettingNames[static_cast<std::size_t>(c)] : "?";
}
std::string_view column_name(MarketCol c) noexcept {
  return c < MarketCol::count ? kMarketNames[static_cast<std::size_t>(c)] : "?";
}
std::string_view column_name(PositionCol c) noexcept {
  return c < PositionCol::count ? kPositionNames[static_cast<std::size_t>(c)] : "?";
}
std::string_view column_name(AlertCol c) noexcept {
  return c < AlertCol::count ? kAlertNames[static_cast<std::size_t>(c)] : "?";
}

TimeCell parse_time_cell(std::string_view s) noexcept {
  TimeCell t;
  if (is_infinity(s)) {
    t.ok = true;
    if (s[0] == '-') {
      t.value = kTimeMin;
    } else {
      t.never = true;
      t.value = kTimeMax;
    }
    return t;
  }
  // Epoch seconds (extract(epoch FROM ts)): a decimal; its 1e-9 grid is nanoseconds.
  const DecimalParse d = parse_decimal(s);
  if (d.ok() || d.error == DecimalError::out_of_range) {
    t.ok = true;
    if (d.error == DecimalError::out_of_range) {
      t.value = !s.empty() && s[0] == '-' ? kTimeMin : kTimeMax;
    } else if (d.value.floor > static_cast<Wide>(kTimeMax)) {
      t.value = kTimeMax;
    } else if (d.value.floor < static_cast<Wide>(kTimeMin)) {
      t.value = kTimeMin;
    } else {
      t.value = static_cast<TimeNs>(d.value.floor);
    }
    return t;
  }
  if (auto iso = parse_iso8601(s, /*saturate=*/true)) {
    t.ok = true;
    t.value = *iso;
  }
  return t;
}

RowReport read_market(const CellSource& src, MarketRow& m) {
  RowReport rep;
  Reader<MarketCol> r(src, rep);
  using C = MarketCol;
  m.spec.id = r.key(C::id);
  const Cell sym = r.cell(C::symbol), dex = r.cell(C::dex_name);
  if (!sym.present || sym.text.empty()) r.unreadable(C::symbol, "missing");
  if (!dex.present || dex.text.empty()) r.unreadable(C::dex_name, "missing");
  m.symbol = std::string(sym.text);
  m.dex_name = std::string(dex.text);
  m.spec.type = MarketType::perpetual;
  if (const Cell t = r.cell(C::market_type); t.present) {
    if (auto mt = parse_market_type(t.text)) {
      m.spec.type = *mt;
    } else {
      r.unreadable(C::market_type, "unknown", t.text);
    }
  }
  m.spec.source = default_price_source(m.spec.type);
  m.oracle_feed_id.clear();
  if (const Cell s = r.cell(C::price_source); s.present) {
    if (s.text == "oracle") {
      // Priced by a Pyth feed: its updates are the market's mark (feeds/, instrument "pyth/<id>").
      m.spec.source = PriceSource::mark;
      const Cell f = r.cell(C::oracle_feed_id);
      std::string_view id = f.present ? f.text : std::string_view{};
      if (id.starts_with("0x") || id.starts_with("0X")) id.remove_prefix(2);
      bool hex = id.size() == 64;
      for (std::size_t i = 0; hex && i < id.size(); ++i) {
        const char c = id[i];
        hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      }
      if (!hex) {
        r.unreadable(C::oracle_feed_id, "must be a Pyth feed id (64 hex digits)", f.text);
      } else {
        m.oracle_feed_id.assign(id);
        for (char& c : m.oracle_feed_id)
          if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
      }
    } else if (auto ps = parse_price_source(s.text)) {
      m.spec.source = *ps;
    } else {
      r.unreadable(C::price_source, "unknown", s.text);
    }
  }
  m.spec.mmr = kDefaultMmrRaw;
  if (auto mmr = r.opt_raw(C::maintenance_margin_rate, RejectReason::out_of_range)) {
    if (*mmr < 0 || *mmr >= kScale) {
      r.unreadable(C::maintenance_margin_rate, "must be in [0, 1)",
                   r.cell(C::maintenance_margin_rate).text);
    }
    m.spec.mmr = *mmr;
  }
  // Trading rules (orders): absent = no rule; the fee columns are NOT NULL in the schema.
  TradingRules& tr = m.spec.rules;
  tr = TradingRules{};
  tr.maker_fee = r.opt_raw(C::maker_fee_rate, RejectReason::out_of_range).value_or(0);
  tr.taker_fee = r.opt_raw(C::taker_fee_rate, RejectReason::out_of_range).value_or(0);
  tr.min_size = r.opt_raw(C::min_order_size, RejectReason::out_of_range);
  tr.max_size = r.opt_raw(C::max_order_size, RejectReason::out_of_range);
  tr.tick_size = r.opt_raw(C::tick_size, RejectReason::out_of_range);
  tr.step_size = r.opt_raw(C::step_size, RejectReason::out_of_range);
  tr.max_leverage = r.opt_raw(C::max_leverage, RejectReason::out_of_range);
  if (const Cell q = r.cell(C::quote_asset); q.present) tr.quote = Asset::of(q.text);
  // A market has no rejection event: any problem makes it unreadable.
  if (rep.verdict == Verdict::rejected) rep.verdict = Verdict::unreadable;
  return rep;
}

RowReport read_position(const CellSource& src, PositionSpec& p) {
  RowReport rep;
  Reader<PositionCol> r(src, rep);
  using C = PositionCol;
  p = PositionSpec{};
  p.id = r.key(C::id);
  p.user_id = r.key(C::user_id);
  const Cell mid = r.cell(C::market_id);
  if (auto u = mid.present ? Uuid::parse(mid.text) : std::nullopt) {
    p.market_id = *u;
  } else {
    r.reject(RejectReason::invalid_value, C::market_id, mid.present ? "not a uuid" : "missing",
             mid.text);
  }
  r.enum_cell(C::status, parse_position_status, p.status, false);
  const Cell side = r.cell(C::side);
  if (auto sd = side.present ? parse_side(side.text) : std::nullopt) {
    p.side = *sd;
  } else {
    r.reject(RejectReason::invalid_value, C::side, "must be 'long' or 'short'", side.text);
  }
  p.size = r.raw(C::size, RejectReason::out_of_range);
  p.entry_price = r.raw(C::entry_price, RejectReason::out_of_range);
  p.margin = r.raw(C::margin, RejectReason::out_of_range);
  if (auto d = r.opt_decimal(C::realized_pnl, RejectReason::out_of_range)) {
    p.realized_pnl = d->nearest();
  }
  p.closed_at = r.opt_time(C::closed_at);
  if (const Cell w = r.cell(C::wallet_id); w.present) {
    if (auto u = Uuid::parse(w.text)) {
      p.wallet_id = *u;
    } else {
      r.reject(RejectReason::invalid_value, C::wallet_id, "not a uuid", w.text);
    }
  }
  if (auto lev = r.opt_raw(C::leverage, RejectReason::out_of_range)) p.leverage = *lev;
  check_wallet_owner(r, C::wallet_owner, p.user_id);
  {
    // current_price and unrealized_pnl are the engine's own cache of a mark: a value it cannot
    // read is recomputed at the next tick instead of refusing the position.
    RowReport ignored;
    Reader<PositionCol> cache(src, ignored);
    p.current_price = cache.opt_raw(C::current_price, RejectReason::out_of_range);
    if (auto d = cache.opt_decimal(C::unrealized_pnl, RejectReason::out_of_range);
        d && ignored.ok()) {
      p.unrealized_pnl = d->nearest();
    }
    if (!ignored.ok()) p.current_price.reset();
  }
  if (rep.ok() && p.status == PositionStatus::open) {
    if (p.size <= 0) r.reject(RejectReason::invalid_value, C::size, "must be > 0");
    if (p.entry_price <= 0) r.reject(RejectReason::invalid_value, C::entry_price, "must be > 0");
    if (p.margin < 0) r.reject(RejectReason::invalid_value, C::margin, "must be >= 0");
    // positions.unrealized_pnl is DECIMAL(36,18): its magnitude must stay below 1e18 at any price
    // the position can see while open (down to zero for a long, its whole notional for a short).
    if (rep.ok() && !notional_fits(p.size, p.entry_price)) {
      r.reject(RejectReason::out_of_range, C::size,
               "size x entry_price reaches 1e18, beyond what positions.unrealized_pnl holds");
    }
  }
  p.invalid = rep.verdict == Verdict::rejected ? rep.reason : RejectReason::none;
  return rep;
}

RowReport read_alert(const CellSource& src, AlertSpec& a) {
  RowReport rep;
  Reader<AlertCol> r(src, rep);
  using C = AlertCol;
  a = AlertSpec{};
  a.id = r.key(C::id);
  a.user_id = r.key(C::user_id);
  a.market_id = r.opt_uuid(C::market_id);
  // Unknown types and conditions are not read errors: the matcher rejects them.
  a.type = parse_alert_type(r.cell(C::alert_type).text);
  a.condition = parse_condition_type(r.cell(C::condition_type).text);
  r.enum_cell(C::status, parse_alert_status, a.status, false);
  a.target_price = r.opt_decimal(C::target_price, RejectReason::invalid_target);
  a.target_percentage = r.opt_decimal(C::target_percentage, RejectReason::invalid_target);
  a.target_value = r.opt_decimal(C::target_value, RejectReason::invalid_target);
  a.anchor_price = r.opt_raw(C::anchor_price, RejectReason::invalid_target);
  a.expires_at = r.opt_time(C::expires_at);
  a.triggered_at = r.opt_time(C::triggered_at);
  if (const Cell w = r.cell(C::window_seconds); w.present) {
    // Not a positive integer, or too large for nanoseconds: the matcher rejects invalid_window.
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(w.text.data(), w.text.data() + w.text.size(), v);
    a.window_seconds = ec == std::errc() && end == w.text.data() + w.text.size() ? v : 0;
  }
  a.invalid = rep.verdict == Verdict::rejected ? rep.reason : RejectReason::none;
  return rep;
}

RowReport read_order(const CellSource& src, OrderSpec& o) {
  RowReport rep;
  Reader<OrderCol> r(src, rep);
  using C = OrderCol;
  o = OrderSpec{};
  o.id = r.key(C::id);
  o.user_id = r.key(C::user_id);
  o.wallet_id = r.key(C::wallet_id);
  o.market_id = r.key(C::market_id);
  r.enum_cell(C::order_type, parse_order_type, o.type, true);
  r.enum_cell(C::side, parse_order_side, o.side, true);
  r.enum_cell(C::execution, parse_execution, o.execution, false);
  r.enum_cell(C::trigger_source, parse_trigger_source, o.trigger_source, false);
  r.enum_cell(C::status, parse_order_status, o.status, false);
  o.size = r.raw(C::size, RejectReason::invalid_size);
  o.price = r.opt_raw(C::price, RejectReason::invalid_price);
  o.trigger_price = r.opt_raw(C::trigger_price, RejectReason::invalid_trigger);
  if (auto lev = r.opt_raw(C::leverage, RejectReason::invalid_leverage)) o.leverage = *lev;
  o.triggered_at = r.opt_time(C::triggered_at);
  o.expires_at = r.opt_time(C::expires_at);
  o.trail_rate = r.opt_raw(C::trail_rate, RejectReason::invalid_trail);
  o.trail_distance = r.opt_raw(C::trail_distance, RejectReason::invalid_trail);
  o.activation_price = r.opt_raw(C::activation_price, RejectReason::invalid_trail);
  o.activated_at = r.opt_time(C::activated_at);
  o.trail_group = r.opt_uuid(C::trail_group_id);
  o.trail_extreme = r.opt_raw(C::trail_extreme, RejectReason::out_of_range);
  if (o.trail_extreme && *o.trail_extreme <= 0)
    r.reject(RejectReason::out_of_range, C::trail_extreme, "not positive",
             r.cell(C::trail_extreme).text);
  if (o.status == OrderStatus::pending || o.status == OrderStatus::open) {
    // A finished order set back to pending / open (before migration 0012 refused that): its fill
    // is still on the row. Refused, never re-armed: it would fill (and charge) a second time.
    // Anything but zero counts (NaN and infinities too: no untouched order shows them).
    const Cell fs = r.cell(C::filled_size);
    const DecimalParse fsd = parse_decimal(fs.text);
    const bool filled = fs.present && !fs.text.empty() && !(fsd.ok() && fsd.value == Decimal{});
    const Cell fa = r.cell(C::filled_at);
    if (filled || (fa.present && !fa.text.empty()))
      r.reject(RejectReason::finished_order, filled ? C::filled_size : C::filled_at,
               "set on a pending / open order: it already filled");
  }
  check_wallet_owner(r, C::wallet_owner, o.user_id);
  o.invalid = rep.verdict == Verdict::rejected ? rep.reason : RejectReason::none;
  return rep;
}

RowReport read_balance(const CellSource& src, BalanceSpec& b) {
  RowReport rep;
  Reader<BalanceCol> r(src, rep);
  using C = BalanceCol;
  b = BalanceSpec{};
  b.wallet_id = r.key(C::wallet_id);
  if (const Cell id = r.cell(C::id); id.present) b.row_id = r.key(C::id);
  const Cell t = r.cell(C::token_symbol);
  if (!t.present || t.text.empty()) r.unreadable(C::token_symbol, "missing");
  b.token = Asset::of(t.text);
  if (auto d = r.opt_decimal(C::balance, RejectReason::out_of_range)) b.balance = d->nearest();
  if (auto d = r.opt_decimal(C::locked_balance, RejectReason::out_of_range))
    b.locked = d->nearest();
  // A balance has no rejection event: a value it cannot read makes the row unreadable.
  if (rep.verdict == Verdict::rejected) rep.verdict = Verdict::unreadable;
  return rep;
}

RowReport read_setting(const CellSource& src, UserSettingRow& out) {
  RowReport rep;
  Reader<SettingCol> r(src, rep);
  using C = SettingCol;
  out = UserSettingRow{};
  out.id = r.key(C::id);
  out.user_id = r.key(C::user_id);
  const Cell key = r.cell(C::setting_key);
  if (key.present && key.text == "risk_management") out.key = UserSettingRow::Key::risk_management;
  if (key.present && key.text == "trading") out.key = UserSettingRow::Key::trading;
  UserSettings& v = out.values;
  auto in = [&](C c, std::int64_t raw, std::int64_t lo, std::int64_t hi, bool lo_open, bool hi_open,
                std::int64_t step, const char* range) {
    const bool ok =
        (lo_open ? raw > lo : raw >= lo) && (hi_open ? raw < hi : raw <= hi) && raw % step == 0;
    if (!ok) r.reject(RejectReason::invalid_setting, c, range, r.cell(c).text);
    return ok;
  };
  if (out.key == UserSettingRow::Key::risk_management) {
    if (auto x = r.opt_raw(C::max_leverage, RejectReason::invalid_setting);
        x && in(C::max_leverage, *x, 0, 1000 * kScale, true, false, 1, "not in (0, 1000]"))
      v.max_leverage = *x;
    if (auto x = r.opt_raw(C::stop_loss_percentage, RejectReason::invalid_setting);
        x && in(C::stop_loss_percentage, *x, 0, 100 * kScale, true, true, 100,
                "not in (0, 100) with at most 7 decimals"))
      v.stop_loss_fraction = *x / 100;
  } else if (out.key == UserSettingRow::Key::trading) {
    if (auto x = r.opt_raw(C::default_slippage, RejectReason::invalid_setting);
        x && in(C::default_slippage, *x, 0, 10 * kScale, false, false, kScale / 100,
                "not a percentage in [0, 10] with at most 2 decimals"))
      v.slippage_bps = static_cast<std::uint32_t>(*x / (kScale / 100));
  }
  if (rep.verdict == Verdict::rejected) {
    out.invalid = rep.reason;
    out.values = UserSettings{};  // a row with one bad value is not followed at all
  }
  return rep;
}

}  // namespace lam::rows
