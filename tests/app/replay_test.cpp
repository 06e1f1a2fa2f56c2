// laminator replay end to end: the library entry point and the real binary.
#include "replay/replay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "engine/matcher.h"
#include "feeds/capture.h"

namespace lam::app {
namespace {

namespace fs = std::filesystem;

/// Whether `text` is one valid JSON document (a state-out file must load anywhere).
bool valid_json(const std::string& text, std::string* error = nullptr) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto err = parser.parse(text).get(doc);
  if (err && error != nullptr) *error = simdjson::error_message(err);
  return !err;
}

const fs::path kSource = LAMINATOR_SOURCE_DIR;
const fs::path kData = kSource / "tests" / "data" / "replay";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs a replay with its diagnostics captured; returns the summary and, in `diag_text`, what it
/// reported.
ReplaySummary replay_captured(const ReplayOptions& opt, std::string* diag_text = nullptr) {
  std::FILE* diag = std::tmpfile();
  const ReplaySummary s = run_replay(opt, diag);
  if (diag_text != nullptr) {
    diag_text->clear();
    std::rewind(diag);
    for (int c = std::fgetc(diag); c != EOF; c = std::fgetc(diag))
      diag_text->push_back(static_cast<char>(c));
  }
  std::fclose(diag);
  return s;
}

class Replay : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lam_replay_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Runs the binary; returns its exit status and fills stdout/stderr.
  int run(const std::string& args, std::string& out, std::string& err) {
    const fs::path o = dir_ / "stdout", e = dir_ / "stderr";
    const std::string cmd =
        std::string(LAMINATOR_BINARY) + " " + args + " >" + o.string() + " 2>" + e.string();
    const int status = std::system(cmd.c_str());
    out = slurp(o);
    err = slurp(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  /// A replay of `state` and the test's ticks.ndjson, writing its state to out.json.
  std::string session_args(const fs::path& state) const {
    return "replay --state " + state.string() + " --ticks " + (dir_ / "ticks.ndjson").string() +
           " --state-out " + (dir_ / "out.json").string();
  }
  fs::path dir_;
};

TEST_F(Replay, GoldenScenarioEventsAndState) {
  ReplayOptions opt;
  opt.state_path = (kData / "state.json").string();
  opt.ticks_path = (kData / "ticks.ndjson").string();
  opt.events_out = (dir_ / "events.ndjson").string();
  opt.state_out = (dir_ / "state-out.json").string();
  opt.progress = false;
  std::FILE* diag = std::tmpfile();
  const ReplaySummary s = run_replay(opt, diag);
  std::fclose(diag);
  EXPECT_EQ(slurp(dir_ / "events.ndjson"), slurp(kData / "expected-events.ndjson"));
  EXPECT_EQ(slurp(dir_ / "state-out.json"), slurp(kData / "expected-state.json"));
  EXPECT_EQ(s.lines, 14u);
  EXPECT_EQ(s.ticks, 10u);
  EXPECT_EQ(s.bad_lines, 3u);
  EXPECT_EQ(s.events, 7u);
}

TEST_F(Replay, BadLinesAreNamedCountedAndOnlyFatalWithStrict) {
  std::string out, err;
  const std::string args = "replay --state " + (kData / "state.json").string() + " --ticks " +
                           (kData / "ticks.ndjson").string();
  ASSERT_EQ(run(args, out, err), 0) << err;
  EXPECT_EQ(out, slurp(kData / "expected-events.ndjson"));
  EXPECT_NE(err.find("ticks.ndjson:5: not"), std::string::npos) << err;
  EXPECT_NE(err.find("ticks.ndjson:6: unknown market binance/ETHUSDT"), std::string::npos) << err;
  EXPECT_NE(err.find("ticks.ndjson:11: bad decimal in price: 'abc'"), std::string::npos) << err;
  EXPECT_NE(err.find("3 bad lines"), std::string::npos) << err;
  EXPECT_EQ(run(args + " --strict", out, err), 3);
}

TEST_F(Replay, MissingInputIsAnErrorNotACrash) {
  std::string out, err;
  // a missing file is a usage error: exit 2 as documented (CLI11's own code was 105)
  EXPECT_EQ(run("replay --state /nonexistent.json --ticks /nonexistent.ndjson", out, err), 2);
  EXPECT_NE(err.find("/nonexistent.json"), std::string::npos) << err;
  EXPECT_EQ(run("replay --help", out, err), 0);
  const fs::path bad = dir_ / "bad.json";
  std::ofstream(bad) << "{\"markets\": 5}";
  EXPECT_EQ(run("replay --state " + bad.string() + " --ticks " + (kData / "ticks.ndjson").string(),
                out, err),
            2);
  EXPECT_NE(err.find("must be an array"), std::string::npos) << err;
}

TEST_F(Replay, DuplicateIdsAreReportedAndFailStrict) {
  std::string out, err;
  const fs::path state = dir_ / "dup.json";
  std::ofstream(state) << R"({"markets":[
    {"id":"00000000-0000-0000-0000-0000000000a1","symbol":"BTCUSDT","dex_name":"binance"},
    {"id":"00000000-0000-0000-0000-0000000000a1","symbol":"ETHUSDT","dex_name":"binance"}]})";
  const std::string args =
      "replay --state " + state.string() + " --ticks " + (kData / "ticks.ndjson").string();
  ASSERT_EQ(run(args, out, err), 0) << err;
  EXPECT_NE(err.find("markets[1]: id: duplicate"), std::string::npos) << err;
  EXPECT_EQ(run(args + " --strict", out, err), 3);
}

TEST_F(Replay, APaperTradingSessionReplaysOrdersPositionsTradesAndBalances) {
  // A wallet with 1,000 USDC, a market long placed before any price and a short limit that rests;
  // the first BBO fills the long at its ask, a trade through 105 fills the short at its limit.
  const fs::path state = dir_ / "paper.json";
  std::ofstream(state) << R"({
  "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"BTCUSDT","dex_name":"binance",
              "quote_asset":"USDC","maker_fee_rate":"0.0002","taker_fee_rate":"0.0005",
              "tick_size":"0.1","step_size":"0.001","max_leverage":"50"}],
  "wallet_balances":[{"wallet_id":"00000000-0000-0000-0000-0000000000e1","token_symbol":"USDC",
                      "balance":"1000","locked_balance":"0"}],
  "orders":[
    {"id":"00000000-0000-0000-0000-000000000f01","user_id":"00000000-0000-0000-0000-0000000000c1",
     "wallet_id":"00000000-0000-0000-0000-0000000000e1","market_id":"00000000-0000-0000-0000-0000000000a1",
     "order_type":"market","side":"long","size":"1","leverage":"10"},
    {"id":"00000000-0000-0000-0000-000000000f02","user_id":"00000000-0000-0000-0000-0000000000c1",
     "wallet_id":"00000000-0000-0000-0000-0000000000e1","market_id":"00000000-0000-0000-0000-0000000000a1",
     "order_type":"limit","side":"short","size":"0.5","price":"105","leverage":"5"}]})";
  std::ofstream(dir_ / "ticks.ndjson")
      << R"({"ts":1767225600000,"venue":"binance","symbol":"BTCUSDT","kind":"bbo","bid":"99.9","ask":"100"}
{"ts":1767225601000,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":"100"}
{"ts":1767225602000,"venue":"binance","symbol":"BTCUSDT","kind":"bbo","bid":"104","ask":"104.1"}
{"ts":1767225603000,"venue":"binance","symbol":"BTCUSDT","kind":"trade","price":"105.5","size":"2"}
)";
  std::string out, err;
  ASSERT_EQ(run(session_args(state), out, err), 0) << err;
  const std::string st = slurp(dir_ / "out.json");
  // the market order waited for the first BBO and bought at its ask; the short limit rested and
  // filled at its price (maker) on the trade through it
  EXPECT_NE(out.find("\"type\":\"order.filled\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"type\":\"position.opened\""), std::string::npos) << out;
  EXPECT_NE(st.find(R"("id":"00000000-0000-0000-0000-000000000f01","status":"filled")"),
            std::string::npos)
      << st;
  EXPECT_NE(st.find(R"("id":"00000000-0000-0000-0000-000000000f02","status":"filled")"),
            std::string::npos)
      << st;
  EXPECT_NE(st.find(R"("price":"105","fee":"0.0105","liquidity":"maker")"), std::string::npos)
      << st;
  EXPECT_NE(st.find(R"("price":"100","fee":"0.05","liquidity":"taker")"), std::string::npos) << st;
  // 1000 - 0.05 - 0.0105 in fees; margins 10 (long) + 10.5 (short) locked
  EXPECT_NE(st.find(R"("balance":"999.9395","locked_balance":"20.5")"), std::string::npos) << st;
  // Issue 28: the state-out file was not JSON whenever a trade existed ("trades":[, ...).
  std::string why;
  EXPECT_TRUE(valid_json(st, &why)) << why << "\n" << st;
}

// Issue 33 §2: trailing stops replay from STATE.json: one that trails already follows the best
// price its row holds (as a restarted daemon does), a new one trails from its first price, and
// --state-out writes what a restart would read back.
TEST_F(Replay, TrailingStopsFollowTheBestPriceTheirStateHoldsAndWriteItBack) {
  const fs::path state = dir_ / "trail.json";
  const std::string order_head =
      R"({"user_id":"00000000-0000-0000-0000-0000000000c1","wallet_id":"00000000-0000-0000-0000-0000000000e1",)"
      R"("market_id":"00000000-0000-0000-0000-0000000000a1","order_type":"trailing_stop","size":"1",)"
      R"("leverage":"10",)";
  std::ofstream(state)
      << R"({
  "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"BTCUSDT","dex_name":"binance",
              "quote_asset":"USDC","taker_fee_rate":"0.0005","tick_size":"0.1","step_size":"0.001"}],
  "wallet_balances":[{"wallet_id":"00000000-0000-0000-0000-0000000000e1","token_symbol":"USDC",
                      "balance":"1000","locked_balance":"0"}],
  "orders":[)"
      << order_head
      << R"("id":"00000000-0000-0000-0000-000000000f01","side":"short","trail_distance":"5",)"
      << R"("activated_at":"2026-01-01T00:00:00Z","trail_group_id":"00000000-0000-0000-0000-000000000f01",)"
      << R"("trail_extreme":"120"},)" << order_head
      << R"("id":"00000000-0000-0000-0000-000000000f02","side":"short","trail_rate":"0.1"}]})";
  std::ofstream(dir_ / "ticks.ndjson")
      << R"({"ts":1767225600000,"venue":"binance","symbol":"BTCUSDT","kind":"bbo","bid":"117.9","ask":"118"}
{"ts":1767225601000,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":"118"}
{"ts":1767225602000,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":"119"}
{"ts":1767225603000,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":"114.9"}
)";
  std::string out, err;
  ASSERT_EQ(run(session_args(state), out, err), 0) << err;
  // f01 followed 120 from its row: 118 and 119 are no new best, 114.9 is past 120 - 5. Re-trailed
  // from 118 instead, 119 would have been its best and 114 its trigger.
  EXPECT_NE(
      out.find(
          R"("type":"order.triggered","ts":1767225603000,"order_id":"00000000-0000-0000-0000-000000000f01")"),
      std::string::npos)
      << out;
  EXPECT_EQ(out.find(R"("order_id":"00000000-0000-0000-0000-000000000f02")"), std::string::npos)
      << "f02 trails from 118 (its first price), its best 119: trigger 107.1" << out;
  const std::string st = slurp(dir_ / "out.json");
  EXPECT_NE(st.find(R"("id":"00000000-0000-0000-0000-000000000f01","status":"filled")"),
            std::string::npos)
      << st;
  EXPECT_NE(
      st.find(
          R"("activated_at":"2026-01-01T00:00:01.000Z","trail_group_id":"00000000-0000-0000-0000-000000000f02","trail_extreme":"119"})"),
      std::string::npos)
      << st;
  std::string why;
  EXPECT_TRUE(valid_json(st, &why)) << why << "\n" << st;
}

// Issue 33 §3: the users' own settings replay from STATE.json's `user_settings`, as the daemon
// reads them: a maximum leverage, a slippage, and a row with a hostile value named and not
// followed.
TEST_F(Replay, TheUsersOwnSettingsReplayAsTheDaemonFollowsThem) {
  const fs::path state = dir_ / "settings.json";
  const std::string head =
      R"({"user_id":"00000000-0000-0000-0000-0000000000c1","wallet_id":"00000000-0000-0000-0000-0000000000e1",)"
      R"("market_id":"00000000-0000-0000-0000-0000000000a1","order_type":"market","side":"long","size":"1",)";
  std::ofstream(state) << R"({
  "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"BTCUSDT","dex_name":"binance",
              "quote_asset":"USDC","tick_size":"0.01","step_size":"0.001"}],
  "wallet_balances":[{"wallet_id":"00000000-0000-0000-0000-0000000000e1","token_symbol":"USDC",
                      "balance":"1000","locked_balance":"0"}],
  "user_settings":[
    {"id":"00000000-0000-0000-0000-000000000501","user_id":"00000000-0000-0000-0000-0000000000c1",
     "setting_key":"risk_management","setting_value":{"max_leverage":5,"stop_loss_percentage":5}},
    {"id":"00000000-0000-0000-0000-000000000502","user_id":"00000000-0000-0000-0000-0000000000c1",
     "setting_key":"trading","setting_value":{"default_slippage":"0.5"}},
    {"id":"00000000-0000-0000-0000-000000000503","user_id":"00000000-0000-0000-0000-0000000000c2",
     "setting_key":"risk_management","setting_value":{"max_leverage":"NaN"}}],
  "orders":[)" << head << R"("id":"00000000-0000-0000-0000-000000000f01","leverage":"10"},)"
                       << head
                       << R"("id":"00000000-0000-0000-0000-000000000f02","leverage":"5"}]})";
  std::ofstream(dir_ / "ticks.ndjson")
      << R"({"ts":1767225600000,"venue":"binance","symbol":"BTCUSDT","kind":"bbo","bid":"99.9","ask":"100"}
)";
  std::string out, err;
  ASSERT_EQ(run(session_args(state), out, err), 0) << err;
  EXPECT_NE(out.find(R"("type":"settings.rejected")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("setting_id":"00000000-0000-0000-0000-000000000503")"), std::string::npos)
      << out;
  EXPECT_NE(
      out.find(
          R"("order_id":"00000000-0000-0000-0000-000000000f01","user_id":"00000000-0000-0000-0000-0000000000c1","market_id":"00000000-0000-0000-0000-0000000000a1","reason":"above_user_leverage")"),
      std::string::npos)
      << out;
  const std::string st = slurp(dir_ / "out.json");
  EXPECT_NE(st.find(R"("id":"00000000-0000-0000-0000-000000000f02","status":"filled")"),
            std::string::npos)
      << st;
  EXPECT_NE(st.find(R"("avg_fill_price":"100.5")"), std::string::npos)
      << "the ask slipped by the user's 0.5 %: " << st;
  // stop_loss_percentage 5: the protective stop at 100.5 x 0.95 = 95.475, up to 95.48, placed
  // on the stream and written whole to the state (a restart or a chained replay reads it back).
  const std::string stop =
      Matcher::protective_id_for(*Uuid::parse("00000000-0000-0000-0000-000000000f02")).str();
  EXPECT_NE(out.find(R"("type":"order.placed")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("order_id":")" + stop), std::string::npos) << out;
  EXPECT_NE(st.find(R"("id":")" + stop + R"(","status":"pending")"), std::string::npos) << st;
  EXPECT_NE(
      st.find(
          R"("order_type":"stop","side":"sell","execution":"paper","size":"1","trigger_price":"95.48","leverage":"5","opened_by":"00000000-0000-0000-0000-000000000f02")"),
      std::string::npos)
      << st;
  std::string why;
  EXPECT_TRUE(valid_json(st, &why)) << why << "\n" << st;
}

// Issue 28: an order on another user's wallet (STATE.json's `wallets` name the owners, as the
// daemon's loader reads wallets.user_id with each row) is rejected, never filled, and moves
// nothing; the owner's own order fills.
TEST_F(Replay, AnOrderOnAnotherUsersWalletIsRejectedAndMovesNothing) {
  const fs::path state = dir_ / "foreign.json";
  std::ofstream(state) << R"({
  "markets":[{"id":"00000000-0000-0000-0000-0000000000a1","symbol":"BTCUSDT","dex_name":"binance",
              "quote_asset":"USDC","taker_fee_rate":"0.0005","tick_size":"0.1","step_size":"0.001",
              "max_leverage":"50"}],
  "orders":[
    {"id":"00000000-0000-0000-0000-000000000f01","user_id":"00000000-0000-0000-0000-0000000000c1",
     "wallet_id":"00000000-0000-0000-0000-0000000000e2","market_id":"00000000-0000-0000-0000-0000000000a1",
     "order_type":"market","side":"long","size":"1","leverage":"10"},
    {"id":"00000000-0000-0000-0000-000000000f02","user_id":"00000000-0000-0000-0000-0000000000c2",
     "wallet_id":"00000000-0000-0000-0000-0000000000e2","market_id":"00000000-0000-0000-0000-0000000000a1",
     "order_type":"market","side":"long","size":"1","leverage":"10"}],
  "wallet_balances":[{"wallet_id":"00000000-0000-0000-0000-0000000000e2","token_symbol":"USDC",
                      "balance":"1000","locked_balance":"0"}],
  "wallets":[{"id":"00000000-0000-0000-0000-0000000000e1","user_id":"00000000-0000-0000-0000-0000000000c1"},
             {"id":"00000000-0000-0000-0000-0000000000e2","user_id":"00000000-0000-0000-0000-0000000000c2"}]})";
  std::ofstream(dir_ / "ticks.ndjson")
      << R"({"ts":1767225600000,"venue":"binance","symbol":"BTCUSDT","kind":"bbo","bid":"99.9","ask":"100"}
)";
  std::string out, err;
  ASSERT_EQ(
      run("replay --state " + state.string() + " --ticks " + (dir_ / "ticks.ndjson").string() +
              " --state-out " + (dir_ / "out.json").string(),
          out, err),
      0)
      << err;
  EXPECT_NE(err.find("wallet_owner"), std::string::npos) << err;
  std::istringstream lines(out);
  std::string line, rejected;
  while (std::getline(lines, line)) {
    if (line.find(R"("type":"order.rejected")") != std::string::npos) rejected += line;
  }
  EXPECT_NE(rejected.find(R"("order_id":"00000000-0000-0000-0000-000000000f01")"),
            std::string::npos)
      << out;
  EXPECT_NE(rejected.find(R"("reason":"foreign_wallet")"), std::string::npos) << out;
  EXPECT_EQ(rejected.find("000000000f02"), std::string::npos) << out;
  const std::string st = slurp(dir_ / "out.json");
  EXPECT_TRUE(valid_json(st)) << st;
  EXPECT_NE(
      st.find(
          R"("id":"00000000-0000-0000-0000-000000000f01","status":"failed","status_reason":"foreign_wallet")"),
      std::string::npos)
      << st;
  // Only the owner's own fill moved the wallet: one fee (0.05) and one margin (10).
  EXPECT_NE(st.find(R"("balance":"999.95","locked_balance":"10")"), std::string::npos) << st;
  // --strict counts it as bad input
  EXPECT_EQ(run("replay --strict --state " + state.string() + " --ticks " +
                    (dir_ / "ticks.ndjson").string(),
                out, err),
            3);
}

TEST_F(Replay, DemoScenarioShowsEveryEventTypeWithContiguousSeq) {
  std::string out, err;
  const fs::path demo = kSource / "data" / "demo";
  ASSERT_EQ(run("replay --state " + (demo / "state.json").string() + " --ticks " +
                    (demo / "ticks.ndjson").string() + " --strict --state-out " +
                    (dir_ / "s.json").string(),
                out, err),
            0)
      << err;
  std::map<std::string, int> by_type;
  std::istringstream lines(out);
  std::string line;
  std::uint64_t expected_seq = 1;
  while (std::getline(lines, line)) {
    const std::string seq = "{\"seq\":" + std::to_string(expected_seq++) + ",";
    ASSERT_EQ(line.rfind(seq, 0), 0u) << line;
    const auto t = line.find("\"type\":\"");
    ASSERT_NE(t, std::string::npos);
    ++by_type[line.substr(t + 8, line.find('"', t + 8) - t - 8)];
  }
  for (const char* type :
       {"alert.triggered", "position.liquidated", "alert.expired", "alert.rejected",
        "alert.anchored", "order.triggered", "order.filled", "order.cancelled", "order.expired",
        "order.rejected", "position.opened", "position.increased", "position.reduced"}) {
    EXPECT_GT(by_type[type], 0) << type;
  }
  // The paper trading session's rows: one trade per fill.
  const std::string st = slurp(dir_ / "s.json");
  std::size_t trades = 0;
  for (auto at = st.find("\"liquidity\""); at != std::string::npos;
       at = st.find("\"liquidity\"", at + 1))
    ++trades;
  EXPECT_EQ(trades, static_cast<std::size_t>(by_type["order.filled"])) << st;
  std::string why;
  EXPECT_TRUE(valid_json(st, &why)) << why;
  // Same input, same output.
  std::string again;
  ASSERT_EQ(run("replay --state " + (demo / "state.json").string() + " --ticks " +
                    (demo / "ticks.ndjson").string(),
                again, err),
            0);
  EXPECT_EQ(out, again);
}

TEST_F(Replay, LinesLongerThanAReadChunkAndNoFinalNewline) {
  // 3 MiB of ticks with no trailing newline: exercises chunk boundaries and the last partial line.
  const fs::path ticks = dir_ / "ticks.ndjson";
  {
    std::ofstream f(ticks, std::ios::binary);
    for (int i = 0; i < 40000; ++i) {
      f << R"({"ts":)" << 1767225600000 + i
        << R"(,"venue":"binance","symbol":"BTCUSDT","kind":"mark","price":")" << 100 + (i % 7)
        << "." << (i % 1000) << "\"}";
      if (i + 1 < 40000) f << "\n";
    }
  }
  ReplayOptions opt;
  opt.state_path = (kData / "state.json").string();
  opt.ticks_path = ticks.string();
  opt.write_events = false;
  opt.progress = false;
  std::FILE* diag = std::tmpfile();
  const ReplaySummary s = run_replay(opt, diag);
  std::fclose(diag);
  EXPECT_EQ(s.lines, 40000u);
  EXPECT_EQ(s.ticks, 40000u);
  EXPECT_EQ(s.bad_lines, 0u);
}

}  // namespace
}  // namespace lam::app

namespace lam::app {
namespace {

// `replay --raw`: the bundled per-venue captures (made with the mock exchange) go through the
// same venue parsers as live frames, merged by receive time; two runs give identical output.
TEST(ReplayRaw, BundledCapturesReplayDeterministicallyThroughTheParsers) {
  const fs::path captures = kSource / "data" / "captures";
  ReplayOptions opt;
  opt.state_path = (kSource / "data" / "demo" / "state.json").string();
  for (const char* v : {"binance", "bybit", "okx", "hyperliquid", "coinbase", "pyth"}) {
    opt.raw_paths.push_back((captures / (std::string(v) + ".lcap")).string());
  }
  opt.progress = false;
  std::string outputs[2];
  for (int run = 0; run < 2; ++run) {
    opt.events_out = (fs::temp_directory_path() /
                      ("lam_raw_" + std::to_string(::getpid()) + "_" + std::to_string(run)))
                         .string();
    std::FILE* diag = std::tmpfile();
    const ReplaySummary s = run_replay(opt, diag);
    std::fclose(diag);
    EXPECT_EQ(s.bad_lines, 0u);
    EXPECT_GT(s.lines, 2000u);  // frames
    EXPECT_GT(s.ticks, 2000u);
    EXPECT_GT(s.events_by_type[0], 0u);  // alerts fired on captured prices
    outputs[run] = slurp(opt.events_out);
    fs::remove(opt.events_out);
  }
  EXPECT_FALSE(outputs[0].empty());
  EXPECT_EQ(outputs[0], outputs[1]);
}

// Issue 16: a raw replay counts and names the symbols no market trades on, and reports the venue's
// sequence gaps, instead of dropping both silently.
TEST(ReplayRaw, UnknownSymbolsAndSequenceGapsAreCountedAndReported) {
  const fs::path dir = fs::temp_directory_path() / ("lam_raw_gaps_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::vector<std::string> files;
  {
    feeds::CaptureWriter w(dir.string(), 1 << 20);
    const TimeNs t0 = 1'767'225'600'000'000'000;
    const auto trade = [](const std::string& symbol, int id) {
      return R"({"e":"aggTrade","E":1767225600000,"a":)" + std::to_string(id) + R"(,"s":")" +
             symbol + R"(","p":"100","q":"1","T":1767225600000,"m":false})";
    };
    w.opened(t0, "binance", "market");
    w.frame(t0 + 1, "binance", "market", trade("BTCUSDT", 1));
    w.frame(t0 + 2, "binance", "market", trade("BTCUSDT", 2));
    w.frame(t0 + 3, "binance", "market", trade("BTCUSDT", 6));  // 3..5 missed
    w.frame(t0 + 4, "binance", "market", trade("DOGEUSDT", 1));
    w.frame(t0 + 5, "binance", "market", trade("DOGEUSDT", 2));
    w.flush();
    files = w.files();
  }
  ReplayOptions opt;
  opt.state_path = (kData / "state.json").string();
  opt.raw_paths = files;
  opt.write_events = false;
  opt.progress = false;
  std::string text;
  const ReplaySummary s = replay_captured(opt, &text);
  fs::remove_all(dir);
  EXPECT_EQ(s.ticks, 3u);
  EXPECT_EQ(s.bad_lines, 0u);
  EXPECT_EQ(s.gaps, 1u);
  EXPECT_EQ(s.gap_ids, 3u);
  EXPECT_EQ(s.unknown_symbol_ticks, 2u);
  EXPECT_EQ(s.unknown_symbols, 1u);
  EXPECT_NE(text.find("sequence gap: 3 id(s) missed on BTCUSDT"), std::string::npos) << text;
  EXPECT_NE(text.find("no market trades binance/DOGEUSDT"), std::string::npos) << text;
  EXPECT_NE(format_summary(s).find("captures: 2 ticks of 1 symbol(s) no market trades, 1 "
                                   "sequence gap(s) missing 3 id(s)"),
            std::string::npos)
      << format_summary(s);
}

// Issue 16: OKX SWAP sizes are in contracts. The capture carries the contract size live had (`S`
// records), so replay sizes trades as live did; a capture without them replays trades without a
// size (counted, named, with the fix in the message) unless --contract-size gives it.
TEST(ReplayRaw, ContractSizesTravelWithTheCaptureOrTheCommandLine) {
  const fs::path dir = fs::temp_directory_path() / ("lam_raw_cs_" + std::to_string(::getpid()));
  const TimeNs t0 = 1'767'225'600'000'000'000;
  const auto trade = [](int id, const char* sz) {
    return R"({"arg":{"channel":"trades","instId":"SOL-USDT-SWAP"},"data":[{"instId":"SOL-USDT-SWAP","tradeId":")" +
           std::to_string(id) + R"(","px":"180","sz":")" + sz +
           R"(","side":"buy","ts":"1767225600000","count":"1"}]})";
  };
  auto capture = [&](bool with_sizes) {
    fs::remove_all(dir);
    feeds::CaptureWriter w(dir.string(), 1 << 20);
    w.opened(t0, "okx", "public");
    if (with_sizes) w.symbol(t0, "okx", "public", "SOL-USDT-SWAP", *parse_raw("0.1"));
    w.frame(t0, "okx", "public", trade(1, "1"));  // the subscribe's push: the baseline
    w.frame(t0 + 1, "okx", "public", trade(2, "30"));
    w.frame(t0 + 2, "okx", "public", trade(3, "5"));
    w.flush();
    return w.files();
  };
  auto run = [&](const std::vector<std::string>& files, std::map<std::string, std::int64_t> cs,
                 std::string& text) {
    ReplayOptions opt;
    opt.state_path = (kSource / "data" / "demo" / "state.json").string();
    opt.raw_paths = files;
    opt.events_out = (dir / "events.ndjson").string();
    opt.state_out = (dir / "state-out.json").string();
    opt.progress = false;
    opt.contract_sizes = std::move(cs);
    return replay_captured(opt, &text);
  };
  std::string text;
  const ReplaySummary sized = run(capture(true), {}, text);
  EXPECT_EQ(sized.ticks, 2u);
  EXPECT_EQ(sized.unsized_trades, 0u) << text;

  const ReplaySummary unsized = run(capture(false), {}, text);
  EXPECT_EQ(unsized.ticks, 2u);
  EXPECT_EQ(unsized.unsized_trades, 2u);
  EXPECT_NE(text.find("--contract-size okx:SOL-USDT-SWAP=SIZE"), std::string::npos) << text;
  EXPECT_NE(format_summary(unsized).find("2 trade(s) without a size"), std::string::npos);

  const auto cs = parse_contract_size("okx:SOL-USDT-SWAP=0.1");
  ASSERT_TRUE(cs.has_value());
  EXPECT_EQ(cs->first, "okx:SOL-USDT-SWAP");
  const ReplaySummary given = run(capture(false), {*cs}, text);
  EXPECT_EQ(given.unsized_trades, 0u) << text;
  // The command line wins over the capture (it corrects a capture recorded with a wrong size).
  const ReplaySummary corrected = run(capture(true), {{"okx:SOL-USDT-SWAP", kScale}}, text);
  EXPECT_EQ(corrected.unsized_trades, 0u);
  fs::remove_all(dir);

  EXPECT_FALSE(parse_contract_size("okx:SOL-USDT-SWAP=0").has_value());
  EXPECT_FALSE(parse_contract_size("okx:SOL-USDT-SWAP=-1").has_value());
  EXPECT_FALSE(parse_contract_size("nowhere:X=1").has_value());
  EXPECT_FALSE(parse_contract_size("okx=1").has_value());
  EXPECT_FALSE(parse_contract_size("okx:=1").has_value());
}

/// Writes dir/state.json: the oracle-priced market SOL-PERP (its Pyth feed id), with an alert
/// above 100 when `with_alert`; returns the path.
std::string oracle_state(const fs::path& dir, bool with_alert) {
  const std::string state = (dir / "state.json").string();
  std::ofstream f(state);
  f << R"({"markets":[{"id":"0000000a-0000-4000-8000-0000000000d1","symbol":"SOL-PERP",)"
    << R"("dex_name":"drift","market_type":"perpetual","price_source":"oracle",)"
    << R"("oracle_feed_id":"0xEF0D8B6FDA2CEBA41DA15D4095D1DA392A0D2F8ED0C6C7BC0F4CFAC8C280B56D"}])";
  if (with_alert) {
    f << R"(,"alerts":[{"id":"0000000d-0000-4000-8000-0000000000d1","user_id":)"
      << R"("00c0ffee-0000-4000-8000-000000000001","market_id":"0000000a-0000-4000-8000-0000000000d1",)"
      << R"("alert_type":"price_above","condition_type":"greater_than","target_price":"100",)"
      << R"("status":"active"}])";
  }
  f << "}";
  return state;
}

// Issue 16: a market priced by an oracle (price_source "oracle", its Pyth feed id) replays on the
// feed's updates from a capture, through the same row reader and decoder as the daemon.
TEST(ReplayRaw, AnOraclePricedMarketReplaysOnItsPythFeed) {
  const fs::path dir = fs::temp_directory_path() / ("lam_raw_oracle_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string state = oracle_state(dir, /*with_alert=*/true);
  ReplayOptions opt;
  opt.state_path = state;
  opt.raw_paths = {(kSource / "data" / "captures" / "pyth.lcap").string()};
  opt.events_out = (dir / "events.ndjson").string();
  opt.progress = false;
  const ReplaySummary s = replay_captured(opt);
  EXPECT_EQ(s.bad_state_rows, 0u);
  EXPECT_EQ(s.bad_lines, 0u);
  EXPECT_GT(s.ticks, 300u);
  EXPECT_EQ(s.unknown_symbol_ticks, 0u) << "the feed id was bound to the market";
  EXPECT_EQ(s.events_by_type[0], 1u);  // the alert, on the oracle's price
  const std::string events = slurp(opt.events_out);
  EXPECT_NE(events.find(R"("price":"183.4)"), std::string::npos) << events;
  fs::remove_all(dir);
}

// Issue 33: the daemon never serves an inverse contract (OKX BTC-USD-...); replay priced it. Now
// replay does not either (its ticks are counted and named), and a contract size for one is refused
// with why, as `laminator run` refuses the market.
TEST(ReplayRaw, AnInverseContractIsNotServedAsLiveAndItsSizeIsRefused) {
  const fs::path dir =
      fs::temp_directory_path() / ("lam_raw_inverse_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string state = (dir / "state.json").string();
  {
    std::ofstream f(state);
    f << R"({"markets":[{"id":"0000000a-0000-4000-8000-0000000000e1","symbol":"BTC-USD-220527",)"
      << R"("dex_name":"okx","market_type":"perpetual"}],)"
      << R"("alerts":[{"id":"0000000d-0000-4000-8000-0000000000e1","user_id":)"
      << R"("00c0ffee-0000-4000-8000-000000000001","market_id":"0000000a-0000-4000-8000-0000000000e1",)"
      << R"("alert_type":"price_above","condition_type":"greater_than","target_price":"100",)"
      << R"("status":"active"}]})";
  }
  const TimeNs t0 = 1'767'225'600'000'000'000;
  feeds::CaptureWriter w((dir / "cap").string(), 1 << 20);
  w.opened(t0, "okx", "public");
  w.frame(
      t0 + 1, "okx", "public",
      R"({"arg":{"channel":"mark-price","instId":"BTC-USD-220527"},"data":[{"instId":"BTC-USD-220527","instType":"FUTURES","markPx":"30000","ts":"1767225600000"}]})");
  for (int id : {7, 8}) {  // the subscribe's push (the baseline), then a trade
    w.frame(
        t0 + 1 + id, "okx", "public",
        R"({"arg":{"channel":"trades","instId":"BTC-USD-220527"},"data":[{"instId":"BTC-USD-220527","tradeId":")" +
            std::to_string(id) +
            R"(","px":"30000","sz":"1","side":"buy","ts":"1767225600000","count":"1"}]})");
  }
  w.flush();
  ReplayOptions opt;
  opt.state_path = state;
  opt.raw_paths = w.files();
  opt.events_out = (dir / "events.ndjson").string();
  opt.progress = false;
  std::string text;
  const ReplaySummary s = replay_captured(opt, &text);
  EXPECT_EQ(s.bad_state_rows, 0u);
  EXPECT_EQ(s.ticks, 0u) << text;
  EXPECT_EQ(s.inverse_ticks, 2u) << text;
  EXPECT_EQ(s.events, 0u) << "the alert fired on a market the daemon does not serve";
  EXPECT_NE(text.find("okx/BTC-USD-220527 is an inverse contract"), std::string::npos) << text;
  EXPECT_NE(format_summary(s).find("2 tick(s) of inverse contracts not served"), std::string::npos);
  std::string why;
  EXPECT_FALSE(parse_contract_size("okx:BTC-USD-220527=100", &why).has_value());
  EXPECT_NE(why.find("inverse contract"), std::string::npos) << why;
  EXPECT_FALSE(parse_contract_size("okx:BTC-USD-SWAP=100").has_value());
  EXPECT_TRUE(parse_contract_size("okx:BTC-USDT-SWAP=0.01").has_value());
  fs::remove_all(dir);
}

// Issue 33: replay's summary names the oracle updates it held as too old, as live holds them.
TEST(ReplayRaw, OracleUpdatesHeldAsTooOldAreInTheSummary) {
  const fs::path dir = fs::temp_directory_path() / ("lam_raw_stale_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string state = oracle_state(dir, /*with_alert=*/false);
  const std::int64_t publish = 1'796'078'905;  // seconds
  const auto update = [&](std::int64_t price, std::int64_t published) {
    return R"({"type":"price_update","price_feed":{"id":"ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d","price":{"price":")" +
           std::to_string(price) + R"(","conf":"9170000","expo":-8,"publish_time":)" +
           std::to_string(published) + R"(}}})";
  };
  const TimeNs at = publish * 1'000'000'000;
  feeds::CaptureWriter w((dir / "cap").string(), 1 << 20);
  w.opened(at, "pyth", "hermes");
  // 1 s old: priced; then one published a second later but received an hour after: held.
  w.frame(at + 1'000'000'000, "pyth", "hermes", update(18340000000, publish));
  w.frame(at + 3'600'000'000'000, "pyth", "hermes", update(18350000000, publish + 1));
  w.flush();
  ReplayOptions opt;
  opt.state_path = state;
  opt.raw_paths = w.files();
  opt.write_events = false;
  opt.progress = false;
  std::string text;
  const ReplaySummary s = replay_captured(opt, &text);
  EXPECT_EQ(s.ticks, 1u) << text;
  EXPECT_EQ(s.oracle_stale, 1u) << text;
  EXPECT_NE(format_summary(s).find("1 oracle update(s) held as too old"), std::string::npos)
      << format_summary(s);
  fs::remove_all(dir);
}

// Issue 12: on a terminal, replay shows a progress line (bytes, ticks/s, ETA) redrawn in place; to
// a file or a pipe it writes none.
TEST(ReplayProgress, ALineOnATerminalNothingElsewhere) {
  ReplayOptions opt;
  opt.state_path = (kData / "state.json").string();
  opt.ticks_path = (kData / "ticks.ndjson").string();
  opt.write_events = false;
  opt.progress = true;
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  std::FILE* tty = ::fdopen(slave, "w");
  ASSERT_NE(tty, nullptr);
  (void)run_replay(opt, tty);
  std::fflush(tty);
  std::string shown;
  char buf[4096];
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;)
    shown.append(buf, static_cast<std::size_t>(n));
  std::fclose(tty);
  ::close(master);
  EXPECT_NE(shown.find("\rreplay: 100.0%"), std::string::npos) << shown;
  EXPECT_NE(shown.find("ticks/s"), std::string::npos) << shown;
  EXPECT_NE(shown.find("done in"), std::string::npos) << shown;

  std::FILE* file = std::tmpfile();
  (void)run_replay(opt, file);
  std::rewind(file);
  std::string logged;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file))
    logged.push_back(static_cast<char>(c));
  std::fclose(file);
  EXPECT_EQ(logged.find('\r'), std::string::npos) << logged;
  EXPECT_EQ(logged.find("ticks/s"), std::string::npos) << "a file got a progress line: " << logged;
}

}  // namespace
}  // namespace lam::app
