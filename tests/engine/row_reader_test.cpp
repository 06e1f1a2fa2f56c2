// The shared row reader: hostile database values are read, saturated or refused with a reason,
// never thrown at the loader or the listener.
#include "engine/row_reader.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "builders.h"
#include "engine/matcher.h"
#include "engine/naive_matcher.h"
#include "engine/thresholds.h"

namespace lam {
namespace {
using namespace lam::test;

/// Cells by column name; a column not given is NULL.
template <class Col>
class Cells final : public rows::CellSource {
 public:
  explicit Cells(std::map<std::string, std::string> v) : v_(std::move(v)) {}
  [[nodiscard]] rows::Cell cell(std::size_t c) const override {
    const auto it = v_.find(std::string(rows::column_name(static_cast<Col>(c))));
    if (it == v_.end()) return {};
    return {true, it->second};
  }
  std::map<std::string, std::string> v_;
};

using AlertCells = Cells<rows::AlertCol>;
using PositionCells = Cells<rows::PositionCol>;
using MarketCells = Cells<rows::MarketCol>;

const std::string kA = "00000000-0000-0000-0000-0000000000d1";
const std::string kU = "00000000-0000-0000-0000-0000000000c1";
const std::string kM = id(1, kMarketKind).str();  // market(1)

std::map<std::string, std::string> price_alert(std::string target) {
  return {{"id", kA},
          {"user_id", kU},
          {"market_id", kM},
          {"alert_type", "price_above"},
          {"condition_type", "greater_than"},
          {"target_price", std::move(target)},
          {"status", "active"}};
}

std::map<std::string, std::string> open_position(std::string size, std::string entry) {
  return {{"id", kA},        {"user_id", kU},           {"market_id", kM},
          {"side", "short"}, {"size", std::move(size)}, {"entry_price", std::move(entry)},
          {"margin", "10"},  {"status", "open"}};
}

TEST(RowReader, TimeCellsSaturateAndReadInfinityAsNever) {
  auto t = rows::parse_time_cell("Infinity");
  EXPECT_TRUE(t.ok && t.never);
  t = rows::parse_time_cell("-infinity");
  EXPECT_TRUE(t.ok && !t.never);
  EXPECT_EQ(t.value, kTimeMin);
  // extract(epoch FROM '9999-12-31') and its ISO form: far beyond int64 ns, saturated
  t = rows::parse_time_cell("253402300799.000000");
  EXPECT_TRUE(t.ok);
  EXPECT_EQ(t.value, kTimeMax);
  t = rows::parse_time_cell("9999-12-31 23:59:59+00");
  EXPECT_TRUE(t.ok);
  EXPECT_EQ(t.value, kTimeMax);
  t = rows::parse_time_cell("1767225600.5");
  EXPECT_TRUE(t.ok);
  EXPECT_EQ(t.value, 1767225600LL * kNsPerSec + kNsPerSec / 2);
  EXPECT_FALSE(rows::parse_time_cell("tomorrow").ok);
}

TEST(RowReader, InfinityInExpiresAtMeansNeverAndMinusInfinityExpiresAtOnce) {
  auto cells = price_alert("100");
  cells["expires_at"] = "Infinity";
  AlertSpec a;
  EXPECT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  EXPECT_FALSE(a.expires_at.has_value());
  cells["expires_at"] = "-Infinity";
  EXPECT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  EXPECT_EQ(a.expires_at, kTimeMin);

  // through the matcher: the -infinity alert expires on the first tick, the never one stays armed
  Matcher m;
  std::vector<Event> ev;
  m.upsert_market(market(1));
  m.upsert_alert(a, ev);
  cells["expires_at"] = "Infinity";
  cells["id"] = "00000000-0000-0000-0000-0000000000d2";
  AlertSpec never;
  ASSERT_TRUE(rows::read_alert(AlertCells(cells), never).ok());
  m.upsert_alert(never, ev);
  EXPECT_TRUE(ev.empty());
  m.on_tick(mark(1, "50", 4'000'000'000'000LL), ev);  // year 2096
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_expired);
  EXPECT_EQ(ev[0].subject, a.id);
}

TEST(RowReader, AnExpiryAfter2262NeverFiresEarly) {
  auto cells = price_alert("100");
  cells["expires_at"] = "253402300799";  // 9999-12-31, as bots write "never"
  AlertSpec a;
  ASSERT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  Matcher m;
  std::vector<Event> ev;
  m.upsert_market(market(1));
  m.upsert_alert(a, ev);
  m.on_tick(mark(1, "50", 4'000'000'000'000LL), ev);
  EXPECT_TRUE(ev.empty());  // before the fix: wrapped to a negative time, expired at once
  m.on_tick(mark(1, "101", 4'000'000'000'001LL), ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_triggered);
}

TEST(RowReader, NanTargetsAreRejectedWithTheirIdAndReason) {
  AlertSpec a;
  const auto rep = rows::read_alert(AlertCells(price_alert("NaN")), a);
  EXPECT_EQ(rep.verdict, rows::Verdict::rejected);
  EXPECT_EQ(rep.reason, RejectReason::not_a_number);
  EXPECT_EQ(rep.detail, "target_price: not a number 'NaN'");
  Matcher m;
  NaiveMatcher naive;
  std::vector<Event> ev, en;
  m.upsert_market(market(1));
  naive.upsert_market(market(1));
  m.upsert_alert(a, ev);
  naive.upsert_alert(a, en);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::alert_rejected);
  EXPECT_EQ(ev[0].subject, a.id);
  EXPECT_EQ(ev[0].reason, RejectReason::not_a_number);
  ASSERT_EQ(en.size(), 1u);
  EXPECT_EQ(en[0].reason, RejectReason::not_a_number);
}

TEST(RowReader, AVolumeWindowThatOverflowsNanosecondsIsRejected) {
  auto cells = price_alert("1");
  cells.erase("target_price");
  cells["alert_type"] = "volume";
  cells["target_value"] = "5";
  cells["window_seconds"] = "9223372037";  // * 1e9 wraps int64
  AlertSpec a;
  ASSERT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  EXPECT_EQ(validate_alert(a), RejectReason::invalid_window);
  cells["window_seconds"] = "99999999999999999999";  // beyond int64 itself
  ASSERT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  EXPECT_EQ(validate_alert(a), RejectReason::invalid_window);
  cells["window_seconds"] = std::to_string(kMaxWindowSec);
  ASSERT_TRUE(rows::read_alert(AlertCells(cells), a).ok());
  EXPECT_EQ(validate_alert(a), RejectReason::none);
}

TEST(RowReader, APositionWhosePnlCannotFitItsColumnIsRejectedWhenArmed) {
  PositionSpec p;
  // each inside the engine's range, their product beyond DECIMAL(36,18)
  auto rep = rows::read_position(PositionCells(open_position("8999999999", "8999999999")), p);
  EXPECT_EQ(rep.verdict, rows::Verdict::rejected);
  EXPECT_EQ(rep.reason, RejectReason::out_of_range);
  EXPECT_NE(rep.detail.find("size x entry_price"), std::string::npos) << rep.detail;
  Matcher m;
  std::vector<Event> ev;
  m.upsert_market(market(1));
  m.upsert_position(p, ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, EventType::position_rejected);
  EXPECT_EQ(ev[0].subject, p.id);
  EXPECT_EQ(ev[0].reason, RejectReason::out_of_range);
  EXPECT_FALSE(m.position(p.id).has_value());  // not marked, not liquidated
  ev.clear();
  m.on_tick(mark(1, "9000000000"), ev);
  EXPECT_TRUE(ev.empty());

  // the largest notional that fits is armed
  rep = rows::read_position(PositionCells(open_position("111111111", "8999999999")), p);
  EXPECT_TRUE(rep.ok()) << rep.detail;
  rep = rows::read_position(PositionCells(open_position("1000000000", "1000000000")), p);
  EXPECT_EQ(rep.reason, RejectReason::out_of_range);  // exactly 1e18 does not fit
}

TEST(RowReader, UnknownSidesAndStatusesAreRejectedNotGuessed) {
  PositionSpec p;
  auto cells = open_position("1", "100");
  cells["side"] = "flat";
  auto rep = rows::read_position(PositionCells(cells), p);
  EXPECT_EQ(rep.verdict, rows::Verdict::rejected);
  EXPECT_EQ(p.invalid, RejectReason::invalid_value);
  EXPECT_EQ(rep.detail, "side: must be 'long' or 'short' 'flat'");
  cells["side"] = "long";
  cells["size"] = "NaN";
  rep = rows::read_position(PositionCells(cells), p);
  EXPECT_EQ(p.invalid, RejectReason::not_a_number);
  // the engine's own cached mark is recomputed, not a reason to refuse the position
  cells["size"] = "1";
  cells["current_price"] = "NaN";
  cells["unrealized_pnl"] = "Infinity";
  rep = rows::read_position(PositionCells(cells), p);
  EXPECT_TRUE(rep.ok()) << rep.detail;
  EXPECT_FALSE(p.current_price.has_value());
}

TEST(RowReader, MarketsThatCannotBeReadAreUnreadableAndTheirIdsNamed) {
  MarketRow m;
  auto rep = rows::read_market(
      MarketCells(
          {{"id", kM}, {"symbol", "BTCUSDT"}, {"dex_name", "binance"}, {"market_type", "swap"}}),
      m);
  EXPECT_EQ(rep.verdict, rows::Verdict::unreadable);
  EXPECT_EQ(rep.detail, "market_type: unknown 'swap'");
  rep = rows::read_market(MarketCells({{"id", kM},
                                       {"symbol", "BTCUSDT"},
                                       {"dex_name", "binance"},
                                       {"maintenance_margin_rate", "NaN"}}),
                          m);
  EXPECT_EQ(rep.verdict, rows::Verdict::unreadable);
  rep = rows::read_market(MarketCells({{"id", kM}, {"symbol", "BTCUSDT"}, {"dex_name", "binance"}}),
                          m);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(m.spec.type, MarketType::perpetual);
  EXPECT_EQ(m.spec.mmr, kDefaultMmrRaw);
}

// Integrity (issue 28): the loader reads each row's wallet owner (wallets.user_id) and an order's
// fill columns with it; a row on another user's wallet, or a finished order set back to pending /
// open, is rejected with its reason whatever the database let through before migration 0012.
TEST(RowReader, AnotherUsersWalletAndARevivedOrderAreRejected) {
  const std::string other = "00000000-0000-0000-0000-0000000000c2";
  auto pos = open_position("1", "100");
  pos["wallet_id"] = "00000000-0000-0000-0000-0000000000e1";
  PositionSpec p;
  pos["wallet_owner"] = kU;
  EXPECT_TRUE(rows::read_position(PositionCells(pos), p).ok());
  pos["wallet_owner"] = other;
  auto rep = rows::read_position(PositionCells(pos), p);
  EXPECT_EQ(rep.verdict, rows::Verdict::rejected);
  EXPECT_EQ(p.invalid, RejectReason::foreign_wallet);
  EXPECT_NE(rep.detail.find("wallet_owner"), std::string::npos) << rep.detail;

  std::map<std::string, std::string> order = {{"id", kA},
                                              {"user_id", kU},
                                              {"wallet_id", "00000000-0000-0000-0000-0000000000e1"},
                                              {"market_id", kM},
                                              {"order_type", "market"},
                                              {"side", "long"},
                                              {"size", "1"},
                                              {"status", "pending"},
                                              {"filled_size", "0.000000000000000000"},
                                              {"wallet_owner", kU}};
  OrderSpec o;
  EXPECT_TRUE(rows::read_order(Cells<rows::OrderCol>(order), o).ok());
  order["wallet_owner"] = other;
  rows::read_order(Cells<rows::OrderCol>(order), o);
  EXPECT_EQ(o.invalid, RejectReason::foreign_wallet);
  order["wallet_owner"] = kU;
  for (const char* f : {"1", "0.5", "NaN", "-1"}) {
    order["filled_size"] = f;
    rows::read_order(Cells<rows::OrderCol>(order), o);
    EXPECT_EQ(o.invalid, RejectReason::finished_order) << f;
  }
  order["filled_size"] = "0";
  order["filled_at"] = "1767225600.5";
  rows::read_order(Cells<rows::OrderCol>(order), o);
  EXPECT_EQ(o.invalid, RejectReason::finished_order);
  order["status"] = "filled";  // a finished row as it should be: not armed, nothing to refuse
  rep = rows::read_order(Cells<rows::OrderCol>(order), o);
  EXPECT_TRUE(rep.ok()) << rep.detail;
}

// Issue 33 §3: user_settings rows, their JSON values as SQL's ->> gives them (any JSON type as
// text).
TEST(RowReader, UserSettingsAreFollowedOnlyWithinTheirRanges) {
  using SettingCells = Cells<rows::SettingCol>;
  std::map<std::string, std::string> risk = {{"id", kA},
                                             {"user_id", kU},
                                             {"setting_key", "risk_management"},
                                             {"max_leverage", "10"},
                                             {"stop_loss_percentage", "5"}};
  UserSettingRow row;
  ASSERT_TRUE(rows::read_setting(SettingCells(risk), row).ok());
  EXPECT_EQ(row.key, UserSettingRow::Key::risk_management);
  EXPECT_EQ(row.values.max_leverage, raw("10"));
  EXPECT_EQ(row.values.stop_loss_fraction, raw("0.05"));
  EXPECT_FALSE(row.values.slippage_bps.has_value());
  // Hostile values: the row is rejected whole, named, never a crash.
  for (const auto& [col, bad] :
       std::vector<std::pair<std::string, std::string>>{{"max_leverage", "NaN"},
                                                        {"max_leverage", "0"},
                                                        {"max_leverage", "-3"},
                                                        {"max_leverage", "1e400"},
                                                        {"max_leverage", "Infinity"},
                                                        {"max_leverage", "ten"},
                                                        {"max_leverage", "{\"a\": 1}"},
                                                        {"max_leverage", "true"},
                                                        {"stop_loss_percentage", "100"},
                                                        {"stop_loss_percentage", "0.000000001"}}) {
    auto r = risk;
    r[col] = bad;
    const rows::RowReport rep = rows::read_setting(SettingCells(r), row);
    EXPECT_EQ(rep.verdict, rows::Verdict::rejected) << col << " = " << bad;
    EXPECT_TRUE(row.invalid == RejectReason::invalid_setting ||
                row.invalid == RejectReason::not_a_number ||
                row.invalid == RejectReason::invalid_value)
        << col << " = " << bad;
    EXPECT_EQ(row.values, UserSettings{}) << "nothing of a rejected row is followed";
    EXPECT_NE(rep.detail.find(col), std::string::npos) << rep.detail;
  }
  std::map<std::string, std::string> trading = {
      {"id", kA}, {"user_id", kU}, {"setting_key", "trading"}, {"default_slippage", "0.5"}};
  ASSERT_TRUE(rows::read_setting(SettingCells(trading), row).ok());
  EXPECT_EQ(row.values.slippage_bps, 50U) << "percent: 0.5 % is 50 basis points";
  for (const char* bad : {"0.125", "10.01", "-0.5"}) {
    trading["default_slippage"] = bad;
    EXPECT_EQ(rows::read_setting(SettingCells(trading), row).verdict, rows::Verdict::rejected)
        << bad;
  }
  trading.erase("default_slippage");  // null or missing: not set
  ASSERT_TRUE(rows::read_setting(SettingCells(trading), row).ok());
  EXPECT_EQ(row.values, UserSettings{});
  std::map<std::string, std::string> other = {
      {"id", kA}, {"user_id", kU}, {"setting_key", "notifications"}, {"max_leverage", "NaN"}};
  ASSERT_TRUE(rows::read_setting(SettingCells(other), row).ok()) << "not the engine's key";
  EXPECT_EQ(row.key, UserSettingRow::Key::other);
  other.erase("user_id");
  EXPECT_EQ(rows::read_setting(SettingCells(other), row).verdict, rows::Verdict::unreadable);
}

}  // namespace
}  // namespace lam
