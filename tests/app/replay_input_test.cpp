#include "replay/replay_input.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/fixed.h"

namespace lam::app {
namespace {

/// Parses `line` placed in the middle of a larger buffer, as replay does.
struct Harness {
  TickLineParser parser;
  TickLine out;
  std::string error;
  bool parse(const std::string& line) {
    std::string buf = line + "\n{\"next\":\"line, still readable\"}";
    buf.append(TickLineParser::padding(), '\0');
    return parser.parse(buf.data(), line.size(), buf.size(), out, error);
  }
};

TEST(TickLineParser, MarkTradeAndBbo) {
  Harness h;
  ASSERT_TRUE(h.parse(
      R"({"ts":1767225600000,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":"65000.1"})"))
      << h.error;
  EXPECT_EQ(h.out.ts, 1767225600000LL * kNsPerMs);
  EXPECT_EQ(h.out.venue, "binance");
  EXPECT_EQ(h.out.symbol, "BTCUSDT");
  EXPECT_EQ(h.out.kind, TickKind::mark);
  EXPECT_EQ(h.out.price, 65000'100000000);
  ASSERT_TRUE(
      h.parse(R"({"kind":"trade","price":"1.5","size":"0.001","symbol":"X","venue":"v","ts":1})"))
      << h.error;
  EXPECT_EQ(h.out.size, 1'000'000);
  ASSERT_TRUE(
      h.parse(R"({"ts":1,"venue":"v","symbol":"X","kind":"bbo","bid":"99.5","ask":"100.5"})"))
      << h.error;
  EXPECT_EQ(h.out.price, 99'500000000);
  EXPECT_EQ(h.out.ask, 100'500000000);
}

TEST(TickLineParser, FundingLinesCarryTheRateTheSettlementTimeAndAnOptionalPrice) {
  Harness h;
  ASSERT_TRUE(h.parse(
      R"({"ts":1,"venue":"okx","symbol":"BTC-USDT-SWAP","kind":"funding","rate":"0.0001875391284828","funding_time":1788681600000})"))
      << h.error;
  EXPECT_EQ(h.out.kind, TickKind::funding);
  EXPECT_EQ(h.out.price, 187'539'128'482'800);
  EXPECT_EQ(h.out.size, 1788681600000LL * kNsPerMs);
  EXPECT_EQ(h.out.ask, 0);
  ASSERT_TRUE(h.parse(
      R"({"ts":1,"venue":"hyperliquid","symbol":"BTC","kind":"funding","rate":-0.0000125,"funding_time":3600000,"price":"79922"})"))
      << h.error;
  EXPECT_EQ(h.out.price, -12'500'000'000'000);
  EXPECT_EQ(h.out.ask, 79922 * kScale);
  for (
      const char* bad :
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"funding","funding_time":1})",
       R"({"ts":1,"venue":"v","symbol":"X","kind":"funding","rate":"2","funding_time":1})",
       R"({"ts":1,"venue":"v","symbol":"X","kind":"funding","rate":"0.1"})",
       R"({"ts":1,"venue":"v","symbol":"X","kind":"funding","rate":"0.1","funding_time":0})",
       R"({"ts":1,"venue":"v","symbol":"X","kind":"funding","rate":"0.1","funding_time":1,"price":"-3"})"}) {
    EXPECT_FALSE(h.parse(bad)) << bad;
    EXPECT_FALSE(h.error.empty()) << bad;
  }
}

TEST(TickLineParser, NumbersMayBeJsonNumbersWithExponentsButNeverGoThroughDouble) {
  Harness h;
  // 0.1 + 0.2 style values and 17 significant digits survive exactly
  ASSERT_TRUE(h.parse(
      R"({"ts":1,"venue":"v","symbol":"X","kind":"trade","price":12345678.123456789,"size":3e-9})"))
      << h.error;
  EXPECT_EQ(h.out.price, 12345678'123456789);
  EXPECT_EQ(h.out.size, 3);
  ASSERT_TRUE(h.parse(R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":6.5E4})"))
      << h.error;
  EXPECT_EQ(h.out.price, 65000 * kScale);
}

TEST(TickLineParser, UnknownFieldsAreIgnoredAndEscapesDecoded) {
  Harness h;
  ASSERT_TRUE(h.parse(
      R"({"ts":1,"venue":"bin\u0061nce","symbol":"BTC","kind":"mark","price":"1","extra":{"a":[1,2]}})"))
      << h.error;
  EXPECT_EQ(h.out.venue, "binance");
}

TEST(TickLineParser, BadLinesSayWhy) {
  Harness h;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage", "not"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"abc"})", "bad decimal in price"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":""})", "missing price"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"-1"})", "bad decimal"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"trade","price":"1"})", "missing size"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"bbo","bid":"2","ask":"1"})", "crossed"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"quote","price":"1"})", "unknown kind"},
      {R"({"ts":"soon","venue":"v","symbol":"X","kind":"mark","price":"1"})", "ts must be"},
      {R"({"ts":1.5,"venue":"v","symbol":"X","kind":"mark","price":"1"})", "ts must be"},
      {R"({"venue":"v","symbol":"X","kind":"mark","price":"1"})", "missing field"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"1e400"})", "bad decimal"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"1"})"
       "x",
       "not"},
      {R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"1")", "not"},
      {R"([1,2,3])", "not a JSON object"},
  };
  for (const auto& [line, why] : cases) {
    EXPECT_FALSE(h.parse(line)) << line;
    EXPECT_NE(h.error.find(why), std::string::npos) << line << " -> " << h.error;
  }
}

TEST(TickLineParser, ReadsOnlyItsLineFromASharedBuffer) {
  // The padding trick: lines are parsed in place inside one big read buffer. A line is not
  // NUL-terminated and the bytes after it are the next line; the parser must stop at `len`.
  std::string buf = R"({"ts":1,"venue":"v","symbol":"X","kind":"mark","price":"1"})";
  const std::size_t first = buf.size();
  buf += R"({"ts":2,"venue":"v","symbol":"Y","kind":"mark","price":"2"})";
  buf.append(TickLineParser::padding(),
             'x');  // garbage padding is fine: it must not be read as input
  TickLineParser p;
  TickLine out;
  std::string err;
  ASSERT_TRUE(p.parse(buf.data(), first, buf.size(), out, err)) << err;
  EXPECT_EQ(out.symbol, "X");
  ASSERT_TRUE(p.parse(buf.data() + first, buf.size() - first - TickLineParser::padding(),
                      buf.size() - first, out, err))
      << err;
  EXPECT_EQ(out.symbol, "Y");
  // A truncated line is an error, even though the buffer continues.
  EXPECT_FALSE(p.parse(buf.data(), first - 10, buf.size(), out, err));
}

class StateFile : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = std::filesystem::temp_directory_path() /
            ("lam_state_" + std::to_string(::getpid()) + ".json");
    std::ofstream(path_) << text;
    return path_.string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::filesystem::path path_;
};

TEST_F(StateFile, ParsesEveryColumnTheEngineUses) {
  const auto st = load_state(write(R"({
    "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"SOL","dex_name":"coinbase","market_type":"spot",
                "maintenance_margin_rate":"0.01"}],
    "positions":[{"id":"00000000-0000-0000-0000-0000000000b1","user_id":"00000000-0000-0000-0000-0000000000c1",
                  "market_id":"00000000-0000-0000-0000-0000000000a1","side":"short","size":"2","entry_price":"150.5",
                  "leverage":"5","margin":"60.2","realized_pnl":"-1.25","status":"open","current_price":null}],
    "alerts":[{"id":"00000000-0000-0000-0000-0000000000d1","user_id":"00000000-0000-0000-0000-0000000000c1",
               "market_id":"00000000-0000-0000-0000-0000000000a1","alert_type":"volume","condition_type":"greater_than",
               "target_value":"1000","metadata":{"window_seconds":3600,"note":"x"},"expires_at":"2026-02-01T00:00:00Z",
               "anchor_price":null,"status":"active"}],
    "users":[{"ignored":true}]})"));
  ASSERT_TRUE(st.errors.empty()) << st.errors.front();
  ASSERT_EQ(st.markets.size(), 1u);
  EXPECT_EQ(st.markets[0].spec.source, PriceSource::last) << "spot defaults to last";
  EXPECT_EQ(st.markets[0].spec.mmr, 10'000'000);
  EXPECT_EQ(st.markets[0].dex_name, "coinbase");
  ASSERT_EQ(st.positions.size(), 1u);
  EXPECT_EQ(st.positions[0].side, Side::short_side);
  EXPECT_EQ(st.positions[0].margin, 60'200000000);
  EXPECT_EQ(st.positions[0].realized_pnl, -1'250000000);
  ASSERT_EQ(st.alerts.size(), 1u);
  EXPECT_EQ(st.alerts[0].type, AlertType::volume);
  EXPECT_EQ(st.alerts[0].window_seconds, 3600);
  EXPECT_TRUE(st.alerts[0].expires_at.has_value());
}

TEST_F(StateFile, BadRowsAreNamedAndSkipped) {
  const auto st = load_state(write(R"({
    "markets":[{"id":"nope","symbol":"S","dex_name":"d"},{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"S","dex_name":"d","price_source":"vwap"}],
    "positions":[{"id":"00000000-0000-0000-0000-0000000000b1","user_id":"00000000-0000-0000-0000-0000000000c1",
                  "market_id":"00000000-0000-0000-0000-0000000000a1","side":"long","size":"x","entry_price":"1","margin":"1"}],
    "alerts":[{"id":"00000000-0000-0000-0000-0000000000d1","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"equals","target_price":"1","expires_at":"tomorrow"},
              {"id":"00000000-0000-0000-0000-0000000000d2","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"volume","condition_type":"greater_than","target_value":"1","metadata":{"window_seconds":"1h"}}]})"));
  ASSERT_EQ(st.errors.size(), 4u);
  EXPECT_NE(st.errors[0].find("markets[0]: id: not a uuid 'nope'"), std::string::npos)
      << st.errors[0];
  EXPECT_NE(st.errors[1].find("markets[1]: price_source: unknown 'vwap'"), std::string::npos)
      << st.errors[1];
  EXPECT_NE(st.errors[2].find("positions[0]: size: not a decimal 'x'"), std::string::npos)
      << st.errors[2];
  EXPECT_NE(st.errors[3].find("alerts[0]: expires_at: not a timestamp 'tomorrow'"),
            std::string::npos)
      << st.errors[3];
  // Unreadable markets are left out; rows that can be named are kept, marked, so that the matcher
  // rejects them with an event as the daemon does. A bad window is the matcher's invalid_window.
  EXPECT_TRUE(st.markets.empty());
  ASSERT_EQ(st.positions.size(), 1u);
  EXPECT_EQ(st.positions[0].invalid, RejectReason::invalid_value);
  ASSERT_EQ(st.alerts.size(), 2u);
  EXPECT_EQ(st.alerts[0].invalid, RejectReason::invalid_value);
  EXPECT_EQ(st.alerts[1].invalid, RejectReason::none);
  EXPECT_EQ(st.alerts[1].window_seconds, 0);
}

TEST_F(StateFile, DuplicateIdsAreReportedAndTheLaterRowSkipped) {
  const auto st = load_state(write(R"({
    "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"S","dex_name":"d"},
               {"id":"00000000-0000-0000-0000-0000000000a1","symbol":"T","dex_name":"d"}],
    "alerts":[{"id":"00000000-0000-0000-0000-0000000000d1","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"greater_than","target_price":"1"},
              {"id":"00000000-0000-0000-0000-0000000000d1","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"greater_than","target_price":"2"}]})"));
  ASSERT_EQ(st.errors.size(), 2u);
  EXPECT_NE(st.errors[0].find("markets[1]: id: duplicate"), std::string::npos) << st.errors[0];
  EXPECT_NE(st.errors[1].find("alerts[1]: id: duplicate"), std::string::npos) << st.errors[1];
  ASSERT_EQ(st.markets.size(), 1u);
  EXPECT_EQ(st.markets[0].symbol, "S");
  ASSERT_EQ(st.alerts.size(), 1u);
}

TEST_F(StateFile, HostileValuesAreReadAsTheDaemonReadsThem) {
  const auto st = load_state(write(R"({
    "alerts":[{"id":"00000000-0000-0000-0000-0000000000d1","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"greater_than","target_price":"NaN"},
              {"id":"00000000-0000-0000-0000-0000000000d2","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"greater_than","target_price":"1",
               "expires_at":"9999-12-31T23:59:59Z"},
              {"id":"00000000-0000-0000-0000-0000000000d3","user_id":"00000000-0000-0000-0000-0000000000c1",
               "alert_type":"price_above","condition_type":"greater_than","target_price":"1",
               "expires_at":"infinity"}]})"));
  ASSERT_EQ(st.alerts.size(), 3u);
  EXPECT_EQ(st.alerts[0].invalid, RejectReason::not_a_number);
  ASSERT_EQ(st.errors.size(), 1u);
  EXPECT_NE(st.errors[0].find("target_price: not a number 'NaN'"), std::string::npos);
  EXPECT_EQ(st.alerts[1].expires_at, kTimeMax);       // saturated, not wrapped into the past
  EXPECT_FALSE(st.alerts[2].expires_at.has_value());  // never
}

TEST_F(StateFile, UnreadableOrMalformedFilesThrow) {
  EXPECT_THROW((void)load_state("/nonexistent/state.json"), std::runtime_error);
  EXPECT_THROW((void)load_state(write("[1,2]")), std::runtime_error);
  EXPECT_THROW((void)load_state(write(R"({"markets":{}})")), std::runtime_error);
}

}  // namespace
}  // namespace lam::app
