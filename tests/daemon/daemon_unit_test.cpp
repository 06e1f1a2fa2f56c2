// The daemon's pure parts: config validation, the crash ring, recovery plans, redaction.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <pqxx/pqxx>

#include "daemon/config.h"
#include "daemon/crash_ring.h"
#include "daemon/feed_plan.h"
#include "engine/fixed.h"
#include "feeds/symbol_map.h"
#include "persistence/database_url.h"

namespace lam::daemon {
namespace {

std::string error_of(const std::string& toml) {
  try {
    (void)parse_config(toml, "t.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsAndShippedFilesAreValid) {
  const Config c = parse_config("", "empty.toml");
  EXPECT_EQ(c.stream.port, 8700);
  EXPECT_EQ(c.writer.flush_interval.count(), 50);
  EXPECT_EQ(c.paper.slippage_bps, 0U);
  EXPECT_EQ(parse_config("[paper]\nslippage_bps = 25\n", "t.toml").paper.slippage_bps, 25U);
  EXPECT_EQ(c.engine.marks.market_interval.count(), 10);
  EXPECT_EQ(c.engine.marks.refresh_interval.count(), 10'000);
  EXPECT_EQ(c.engine.marks.refresh_rows_per_s, 500U);
  const Config m = parse_config(
      "[engine]\nmarket_mark_interval_ms = 25\nposition_refresh_interval_ms = 60000\n"
      "position_refresh_rows_per_s = 0\n",
      "t.toml");
  EXPECT_EQ(m.engine.marks.market_interval.count(), 25);
  EXPECT_EQ(m.engine.marks.refresh_interval.count(), 60'000);
  EXPECT_EQ(m.engine.marks.refresh_rows_per_s, 0U);
  EXPECT_EQ(c.feeds.venues[0].rules.stale_budget.count(),
            feeds::default_rules(feeds::Venue::binance).stale_budget.count());
  ::setenv("LAMINATOR_DEMO_TOKEN", "x", 1);
  ::setenv("LAMINATOR_BOT_TOKEN", "y", 1);
  ::setenv("PYTH_API_KEY", "pyth-secret-key", 1);
  for (const char* f : {"laminator.toml", "demo.toml", "live.toml"})
    EXPECT_NO_THROW((void)load_config(std::string(LAMINATOR_SOURCE_DIR) + "/configs/" + f)) << f;
}

// Issue 16: the Pyth API key comes from the environment, is required once named, and never appears
// in the config summary; the oracle limits are validated.
TEST(Config, PythApiKeyFromTheEnvironmentAndOracleLimits) {
  ::unsetenv("LAM_TEST_PYTH_KEY");
  EXPECT_EQ(error_of("[feeds.pyth]\napi_key_env = \"LAM_TEST_PYTH_KEY\"\n"),
            "t.toml:2: feeds.pyth.api_key_env: environment variable LAM_TEST_PYTH_KEY is not set");
  ::setenv("LAM_TEST_PYTH_KEY", "hermes-key-123", 1);
  const Config c = parse_config(
      "[feeds.pyth]\napi_key_env = \"LAM_TEST_PYTH_KEY\"\nmax_age_ms = 3000\nmax_conf_bps = 25\n",
      "t.toml");
  const VenueSection& p = c.feeds.venues[static_cast<std::size_t>(feeds::Venue::pyth)];
  EXPECT_EQ(p.api_key, "hermes-key-123");
  EXPECT_EQ(p.oracle.max_age.count(), 3000);
  EXPECT_EQ(p.oracle.max_conf_bps, 25u);
  EXPECT_EQ(redacted_summary(c).find("hermes-key-123"), std::string::npos);
  EXPECT_EQ(error_of("[feeds.pyth]\nmax_conf_bps = 0\n"),
            "t.toml:2: feeds.pyth.max_conf_bps: must be in [1, 10000], got 0");
  EXPECT_EQ(error_of("[feeds.binance]\nmax_age_ms = 5\n"),
            "t.toml:2: unknown key 'feeds.binance.max_age_ms'");
  ::unsetenv("LAM_TEST_PYTH_KEY");
}

TEST(Config, ErrorsNameFileAndLine) {
  EXPECT_EQ(error_of("log_level = \"info\"\nbogus = 1\n"), "t.toml:2: unknown key 'bogus'");
  EXPECT_EQ(error_of("[engine]\n\npin_cpu = \"x\"\n"),
            "t.toml:3: engine.pin_cpu: expected an integer");
  EXPECT_EQ(error_of("[stream]\nport = 70000\n"),
            "t.toml:2: stream.port: must be in [0, 65535], got 70000");
  EXPECT_EQ(error_of("[writer]\nflush_interval_ms = 0\n"),
            "t.toml:2: writer.flush_interval_ms: must be in [1, 60000], got 0");
  EXPECT_EQ(error_of("[feeds.binance]\nstale_budgt_ms = 5\n"),
            "t.toml:2: unknown key 'feeds.binance.stale_budgt_ms'");
  EXPECT_EQ(error_of("[feeds.binance.urls]\nmarket = \"http://x\"\n"),
            "t.toml:2: feeds.binance.urls.market: not a ws:// or wss:// URL");
  EXPECT_EQ(error_of("[paper]\nslippage_bps = 5000\n"),
            "t.toml:2: paper.slippage_bps: must be in [0, 1000], got 5000");
  EXPECT_NE(error_of("[engine]\nmark_interval_ms = 1000\n")
                .find("t.toml:2: engine.mark_interval_ms: replaced: marks are per market"),
            std::string::npos)
      << "a config of the per-position sweep says what replaced it";
  EXPECT_EQ(error_of("[database]\nmigrate = \"maybe\"\n"),
            "t.toml:2: database.migrate: \"check\" or \"apply\", got \"maybe\"");
  EXPECT_NE(error_of("[x\n").find("t.toml:1:"), std::string::npos);
  EXPECT_NE(error_of("[[stream.tokens]]\nname = \"a\"\nsha256 = \"zz\"\n").find("t.toml:3:"),
            std::string::npos);
  EXPECT_NE(error_of("[[stream.tokens]]\nname = \"a\"\ntoken_env = \"LAM_UNSET_VAR_X\"\n")
                .find("LAM_UNSET_VAR_X is not set"),
            std::string::npos);
  EXPECT_NE(error_of("[[stream.tokens]]\nname = \"a\"\nsha256 = \"" + std::string(64, 'a') +
                     "\"\nusers = [\"nope\"]\n")
                .find("'nope' is not a UUID"),
            std::string::npos);
  // Issue 32: `users = []` was unscoped (every user's events). Refused.
  EXPECT_EQ(error_of("[[stream.tokens]]\nname = \"a\"\nsha256 = \"" + std::string(64, 'a') +
                     "\"\nusers = []\n"),
            "t.toml:4: stream.tokens.users: empty: this token would be scoped to nobody; omit "
            "`users` for a token that sees every user, or list the user ids it may see");
}

TEST(Config, SecretsAreRedacted) {
  Config c = parse_config("[database]\nurl = \"postgresql://u:hunter2@h/db\"\n", "t.toml");
  const std::string s = redacted_summary(c);
  EXPECT_EQ(s.find("hunter2"), std::string::npos) << s;
  EXPECT_EQ(database_url(c), "postgresql://u:hunter2@h/db");
}

/// An alert's trigger at `seq`, with its transition.
RingRecord record(std::uint64_t seq) {
  RingRecord r;
  r.event.seq = seq;
  r.event.type = EventType::alert_triggered;
  r.op.kind = db::WriteKind::alert_triggered;
  r.op.ts = static_cast<TimeNs>(seq) * 1000;
  r.has_op = true;
  return r;
}

class CrashRingTest : public ::testing::Test {
 protected:
  std::string path = "/tmp/laminator-ring-test-" + std::to_string(::getpid());
  void TearDown() override { std::filesystem::remove(path); }
};

TEST_F(CrashRingTest, SurvivesTheProcessAndKeepsTheNewestSlots) {
  {
    CrashRing ring(path, 1024);
    EXPECT_TRUE(ring.adopt(7));
    for (std::uint64_t s = 1; s <= 3000; ++s) ring.append(record(s));
  }
  CrashRing again(path, 1024);
  EXPECT_TRUE(again.adopt(7));
  EXPECT_EQ(again.max_seq(), 3000u);
  const auto recs = again.recover(2900);
  ASSERT_EQ(recs.size(), 100u);
  EXPECT_EQ(recs.front().event.seq, 2901u);
  EXPECT_EQ(recs.back().op.ts, 3000 * 1000);
  EXPECT_EQ(again.recover(0).size(), 1024u);  // older ones were overwritten
}

TEST_F(CrashRingTest, AnotherDatabasesRingIsWiped) {
  {
    CrashRing ring(path, 1024);
    ring.adopt(7);
    ring.append(record(5));
  }
  CrashRing other(path, 1024);
  EXPECT_FALSE(other.adopt(8));
  EXPECT_EQ(other.max_seq(), 0u);
}

TEST_F(CrashRingTest, ARingOfAnotherSlotCountIsReadNotDiscarded) {
  // Regression: restarting after a SIGKILL with another crash_ring_slots wiped the ring, so the
  // next run reissued its seqs to other events and its alerts fired twice.
  {
    CrashRing ring(path, 4096);
    ring.adopt(7);
    for (std::uint64_t s = 1; s <= 3000; ++s) ring.append(record(s));
  }
  {
    CrashRing smaller(path, 1024);  // shrunk: 3000 records do not fit, none may be lost
    EXPECT_TRUE(smaller.adopt(7));
    EXPECT_EQ(smaller.max_seq(), 3000u);
    const auto recs = smaller.recover(0);
    ASSERT_EQ(recs.size(), 3000u);
    EXPECT_EQ(recs.front().event.seq, 1u);
    EXPECT_EQ(recs.back().op.ts, 3000 * 1000);
  }
  CrashRing larger(path, 2048);  // grown again: the newest 1024 survived the shrink
  EXPECT_TRUE(larger.adopt(7));
  EXPECT_EQ(larger.max_seq(), 3000u);
  EXPECT_EQ(larger.recover(0).size(), 1024u);
}

TEST_F(CrashRingTest, AnUnknownLayoutWithDataIsRefusedWithAClearMessage) {
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const std::string junk(100'000, 'x');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  try {
    CrashRing ring(path, 1024);
    FAIL() << "an unreadable ring must not be thrown away";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("may hold events not yet journaled"), std::string::npos);
  }
  EXPECT_EQ(std::filesystem::file_size(path), 100'000u);  // untouched
}

/// Runs `body` in a child process: its exit status, or 128 + the signal that killed it.
int in_child(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// Issue 32: on a full file system the daemon died of SIGBUS (rc 135) with nothing in the log, and
// the leftover (sparse) ring file made every restart crash the same way. The ring's space is now
// reserved at creation (posix_fallocate) and a failure is a clear refusal. A tmpfs 128 KiB larger
// than a ring of 4,096 slots, 192 KiB of it used, holds the ring as neither a new file nor a
// leftover; emptied, it does.
TEST(CrashRingFull, AFullFileSystemIsARefusalNotASigbusAndALeftoverToo) {
  const std::string mnt = "/tmp/laminator-ring-full-" + std::to_string(::getpid());
  std::filesystem::create_directories(mnt);
  const std::size_t ring_kib = CrashRing::file_bytes(4096) / 1024 + 1;
  if (std::system(("mount -t tmpfs -o size=" + std::to_string(ring_kib + 128) + "k tmpfs " + mnt +
                   " 2>/dev/null")
                      .c_str()) != 0) {
    std::filesystem::remove(mnt);
    GTEST_SKIP() << "cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)";
  }
  const std::string ring = mnt + "/events.ring";
  {
    std::ofstream fill(mnt + "/fill", std::ios::binary);
    const std::string block(64 * 1024, 'x');
    for (int i = 0; i < 3; ++i) fill << block;  // 192 KiB: 64 KiB short of the ring
  }
  std::string message;
  const auto open_ring = [&] {
    try {
      CrashRing r(ring, 4096);
      r.adopt(1);
      r.append(record(1));
      return 0;
    } catch (const std::runtime_error& e) {
      message = e.what();
      return 3;
    }
  };
  EXPECT_EQ(in_child(open_ring), 3) << "135 is the SIGBUS of a sparse ring";
  EXPECT_EQ(open_ring(), 3);
  EXPECT_NE(message.find("cannot reserve"), std::string::npos) << message;
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(ring)) << "a new ring that could not be reserved is removed";
  // The leftover of the old way: a sparse file of the ring's exact size.
  {
    const int fd = ::open(ring.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const off_t size = static_cast<off_t>(CrashRing::file_bytes(4096));
    ASSERT_EQ(::ftruncate(fd, size), 0);
    ::close(fd);
  }
  EXPECT_EQ(in_child(open_ring), 3) << "the leftover crashed every restart";
  EXPECT_TRUE(std::filesystem::exists(ring)) << "an existing file is never removed";
  // Room again: the same leftover becomes a working ring.
  std::filesystem::remove(mnt + "/fill");
  EXPECT_EQ(in_child(open_ring), 0);
  EXPECT_EQ(std::system(("umount " + mnt).c_str()), 0);
  std::filesystem::remove_all(mnt);
}

TEST_F(CrashRingTest, ARingOfAnotherBuildsLayoutIsReplacedOnlyWhenAllItsEventsAreJournaled) {
  // An upgrade changes the record layout. Its ring's seqs (and checks) are still readable: when
  // every event in it is journaled it is replaced; otherwise the start is refused.
  constexpr std::uint64_t kMagic = 0x4c414d52494e4731ULL;
  constexpr std::uint64_t kSlots = 1024, kRecord = 96;  // a layout this build does not have
  auto write_foreign = [&](std::uint64_t seq) {
    std::vector<std::uint64_t> file((64 + kSlots * kRecord) / 8, 0);
    file[0] = kMagic;
    file[1] = kSlots;
    file[2] = kRecord;
    file[3] = 7;  // owner
    const std::size_t slot = 64 / 8 + (seq % kSlots) * (kRecord / 8);
    file[slot] = seq;                             // the record's first field: the event's seq
    file[slot + kRecord / 8 - 1] = seq ^ kMagic;  // the check, last
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(file.data(), 8, file.size(), f);
    std::fclose(f);
  };
  write_foreign(5);
  try {
    CrashRing ring(path, 1024, 3);
    FAIL() << "seq 5 is not journaled (the journal ends at 3): the ring must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("holds events up to seq 5, beyond the journal's 3"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(std::filesystem::file_size(path), 64 + kSlots * kRecord);  // untouched
  CrashRing upgraded(path, 1024, 5);  // everything journaled: replaced by this build's layout
  EXPECT_TRUE(upgraded.adopt(7));
  EXPECT_EQ(upgraded.max_seq(), 0u);
  upgraded.append(record(6));
  EXPECT_EQ(upgraded.max_seq(), 6u);
}

TEST_F(CrashRingTest, ALegacyBindingIsRebound) {
  {
    CrashRing ring(path, 1024);
    ring.adopt(7);
    ring.append(record(5));
  }
  CrashRing again(path, 1024);
  EXPECT_TRUE(again.adopt(9, 7));
  EXPECT_EQ(again.max_seq(), 5u);
}

// daemon/feed_plan.h: which connections the daemon opens, decided without opening any.
TEST(FeedPlan, OneConnectionPerRouteOfEachEnabledVenueWithMarkets) {
  const Config c = parse_config("", "empty.toml");
  const FeedPlan plan = plan_feeds(
      c.feeds, {{feeds::Venue::binance, {"BTCUSDT", "ETHUSDT"}}, {feeds::Venue::bybit, {}}});
  ASSERT_EQ(plan.connections.size(), 2u);  // binance's two routes; bybit has no market
  EXPECT_EQ(plan.connections[0].config.route, "market");
  EXPECT_EQ(plan.connections[1].config.route, "public");
  for (const PlannedConnection& pc : plan.connections) {
    EXPECT_EQ(pc.config.venue, feeds::Venue::binance);
    EXPECT_EQ(pc.config.url.rfind("wss://fstream.binance.com/", 0), 0u) << pc.config.url;
    ASSERT_EQ(pc.symbols.size(), 2u);
    EXPECT_EQ(pc.symbols[0].symbol, "BTCUSDT");
    EXPECT_EQ(pc.symbols[0].contract_size, kScale);
  }
  EXPECT_TRUE(plan.disabled_venues.empty());
  EXPECT_TRUE(plan.notes.empty());
}

TEST(FeedPlan, DisabledVenuesUrlOverridesAndKeys) {
  const Config c = parse_config(R"(
[feeds.bybit]
enabled = false
[feeds.okx.urls]
public = "wss://127.0.0.1:9/ws/v5/public"
)",
                                "t.toml");
  const FeedPlan plan = plan_feeds(c.feeds, {{feeds::Venue::bybit, {"BTCUSDT"}},
                                             {feeds::Venue::okx, {"BTC-USDT"}},
                                             {feeds::Venue::pyth, {"Crypto.SOL/USD"}}});
  EXPECT_EQ(plan.disabled_venues, std::vector<std::string>{"bybit"});
  ASSERT_EQ(plan.connections.size(), 2u);  // okx public, pyth hermes
  EXPECT_EQ(plan.connections[0].config.url, "wss://127.0.0.1:9/ws/v5/public");
  EXPECT_EQ(plan.connections[1].config.venue, feeds::Venue::pyth);
  EXPECT_TRUE(plan.connections[1].config.client.authorization.empty());
  ASSERT_EQ(plan.notes.size(), 1u);  // public Hermes without a key
  EXPECT_EQ(plan.notes[0].level, PlanNote::Level::warn);
  EXPECT_NE(plan.notes[0].text.find("api_key_env"), std::string::npos) << plan.notes[0].text;
}

TEST(FeedPlan, InverseContractsRefusedAndUnsizedContractsSaidOnce) {
  const Config c = parse_config(R"(
[feeds.okx.contract_sizes]
"ETH-USDT-SWAP" = "0.1"
)",
                                "t.toml");
  const FeedPlan plan = plan_feeds(
      c.feeds, {{feeds::Venue::okx, {"BTC-USD-SWAP", "BTC-USDT-SWAP", "ETH-USDT-SWAP"}}});
  ASSERT_EQ(plan.connections.size(), 1u);
  const auto& syms = plan.connections[0].symbols;
  ASSERT_EQ(syms.size(), 2u);  // the inverse one refused
  EXPECT_EQ(syms[0].symbol, "BTC-USDT-SWAP");
  EXPECT_EQ(syms[0].contract_size, feeds::kUnknownContractSize);
  EXPECT_EQ(syms[1].symbol, "ETH-USDT-SWAP");
  EXPECT_EQ(syms[1].contract_size, kScale / 10);
  ASSERT_EQ(plan.notes.size(), 2u);
  EXPECT_EQ(plan.notes[0].level, PlanNote::Level::error);
  EXPECT_NE(plan.notes[0].text.find("okx/BTC-USD-SWAP"), std::string::npos);
  EXPECT_EQ(plan.notes[1].level, PlanNote::Level::warn);
  EXPECT_NE(plan.notes[1].text.find("okx/BTC-USDT-SWAP"), std::string::npos);
  // A venue whose every market is refused opens no connection.
  EXPECT_TRUE(plan_feeds(c.feeds, {{feeds::Venue::okx, {"BTC-USD-SWAP"}}}).connections.empty());
}

TEST(FeedPlan, OneMarketPerPriceFeed) {
  FeedSubscriptions subs;
  const Uuid a = *Uuid::parse("0000000a-0000-4000-8000-000000000001");
  const Uuid b = *Uuid::parse("0000000a-0000-4000-8000-000000000002");
  EXPECT_TRUE(subs.add(a, "binance", "BTCUSDT").fresh);
  const auto again = subs.add(b, "binance", "BTCUSDT");  // a pair listed twice
  EXPECT_FALSE(again.fresh);
  EXPECT_EQ(again.first, a);
  EXPECT_EQ(again.feed, "binance/BTCUSDT");
  EXPECT_TRUE(subs.add(b, "okx", "BTC-USDT-SWAP").fresh);
  EXPECT_TRUE(subs.add(b, "nosuchvenue", "X").fresh);  // no feed to subscribe: left out
  ASSERT_EQ(subs.symbols().size(), 2u);
  EXPECT_EQ(subs.symbols().at(feeds::Venue::binance), std::vector<std::string>{"BTCUSDT"});
  EXPECT_EQ(subs.symbols().at(feeds::Venue::okx), std::vector<std::string>{"BTC-USDT-SWAP"});
}

TEST(RecoveryPlan, RecordsAboveTheHeadAndThoseFillingHolesAreJournaled) {
  std::vector<RingRecord> ring;
  for (std::uint64_t s : {3, 4, 5, 6, 7, 8, 10, 11, 14}) {
    RingRecord r;
    r.event.seq = s;
    ring.push_back(r);
  }
  // journal head 10; 4..5 and 7 were lost below it (5 is in the ring, so all of 4..5 and 7 are)
  const auto plan = plan_recovery(ring, 10, {{4, 5}, {7, 7}, {9, 9}});
  std::vector<std::uint64_t> seqs;
  for (const RingRecord& r : plan.records) seqs.push_back(r.event.seq);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{4, 5, 7, 11, 14}));
  EXPECT_EQ(plan.hole_seqs, 4u);        // 4, 5, 7, 9
  EXPECT_EQ(plan.holes_filled, 3u);     // 9 is not in the ring
  EXPECT_EQ(plan.lost_above_head, 2u);  // 12, 13 were overwritten
  EXPECT_EQ(plan.last_seq, 14u);
  // nothing in the ring: the head continues, every hole stays unfilled
  const auto empty = plan_recovery({}, 10, {{2, 3}});
  EXPECT_TRUE(empty.records.empty());
  EXPECT_EQ(empty.hole_seqs - empty.holes_filled, 2u);
  EXPECT_EQ(empty.last_seq, 10u);
}

}  // namespace
}  // namespace lam::daemon

namespace lam::daemon {
namespace {

/// libpq's own error for `url` (it quotes parts of a malformed URL), or "" when it connected.
std::string libpq_error(const std::string& url) {
  try {
    pqxx::connection c(url);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Redaction, LibpqErrorsForMalformedUrlsNeverCarryThePassword) {
  // Regression: libpq quotes the offending part of a malformed URL, password included.
  const std::vector<std::string> urls = {
      "postgresql://laminator:s3cr%ZZet-pw@/laminator",      // bad % escape
      "postgresql://laminator:s3cr%25et-pw@[::1/laminator",  // unclosed [
      "postgresql://laminator:s3cr%2Aet-pw@/laminator?sslpassword=sslS3cret&bogus=1",
      "host=/nonexistent-dir user=laminator password=s3cr%et-pw sslpassword='sslS3cret' bogus=1",
  };
  for (const std::string& url : urls) {
    const std::string raw = libpq_error(url);
    ASSERT_FALSE(raw.empty()) << url;
    const std::string safe = db::redact_secrets(raw, url);
    for (const char* secret : {"s3cr", "et-pw", "sslS3cret", "s3cr*et", "s3cr%et"})
      EXPECT_EQ(safe.find(secret), std::string::npos) << "raw: " << raw << "\nsafe: " << safe;
  }
  EXPECT_EQ(db::redact_database_url("postgresql://u@h/db?sslpassword=abc&x=1"),
            "postgresql://u@h/db?sslpassword=***&x=1");
}

/// The password libpq reads from `conninfo` (PQconninfoParse, its own parser); nullopt when it
/// refuses the string.
std::optional<std::string> libpq_password(const std::string& conninfo, const char* key) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err != nullptr) PQfreemem(err);
  if (opts == nullptr) return std::nullopt;
  std::optional<std::string> out = std::string();
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o)
    if (std::string_view(o->keyword) == key && o->val != nullptr) out = o->val;
  PQconninfoFree(opts);
  return out;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out.push_back(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out;
}

// Issue 32: a key=value password containing '&' had its tail printed by `migrate` and `config
// check` (the redaction stopped at '&', a URI separator only). Redaction now follows each syntax
// libpq accepts; libpq's own parser is the judge: for every special character, in quoted and
// unquoted key=value values and in a URI's userinfo and query, libpq reads the password we
// redact, and reads "***" from what we print.
TEST(Redaction, EverySpecialCharacterInEverySyntaxLibpqAccepts) {
  const std::string specials = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  int cases = 0;
  for (const char c : specials) {
    const std::string pw = std::string("Pw") + c + "Zq7tail";
    std::vector<std::pair<std::string, const char*>> forms;
    std::string quoted;
    for (const char ch : pw) {
      if (ch == '\'' || ch == '\\') quoted.push_back('\\');
      quoted.push_back(ch);
    }
    forms.emplace_back("host=/tmp user=u password='" + quoted + "' dbname=d", "password");
    forms.emplace_back("host=/tmp sslpassword = '" + quoted + "' dbname=d", "sslpassword");
    if (c != ' ' && c != '\'' && c != '\\')
      forms.emplace_back("host=/tmp password=" + pw + " dbname=d", "password");
    forms.emplace_back("postgresql://u:" + percent_encode(pw) + "@localhost/d", "password");
    forms.emplace_back(
        "postgresql://u@localhost/d?password=" + percent_encode(pw) + "&application_name=t",
        "password");
    forms.emplace_back(
        "postgres://u@localhost/d?connect_timeout=5&sslpassword=" + percent_encode(pw),
        "sslpassword");
    for (const auto& [conninfo, key] : forms) {
      ++cases;
      ASSERT_EQ(libpq_password(conninfo, key), pw) << "libpq reads another password: " << conninfo;
      const std::string shown = db::redact_database_url(conninfo);
      EXPECT_EQ(shown.find("Zq7tail"), std::string::npos) << conninfo << " -> " << shown;
      EXPECT_EQ(shown.find(percent_encode(pw)), std::string::npos) << shown;
      EXPECT_EQ(libpq_password(shown, key), "***") << conninfo << " -> " << shown;
      // The rest of the string survives: what an operator needs to see.
      EXPECT_TRUE(shown.find("dbname=d") != std::string::npos ||
                  shown.find("@localhost/d") != std::string::npos)
          << shown;
      const std::string err =
          db::redact_secrets("error near \"" + pw + "\" in " + conninfo, conninfo);
      EXPECT_EQ(err.find("Zq7tail"), std::string::npos) << err;
    }
  }
  EXPECT_EQ(cases, 33 * 5 + 30);  // 33 characters; unquoted where libpq allows it
  // The case the issue found.
  EXPECT_EQ(db::redact_database_url("host=h password=ab&cd dbname=x"),
            "host=h password=*** dbname=x");
}

TEST(Config, AnEmptyTokenVariableIsReportedAsEmptyNotUnset) {
  ::setenv("LAM_TEST_EMPTY_TOKEN", "", 1);
  ::unsetenv("LAM_TEST_UNSET_TOKEN");
  const auto error_of = [](const std::string& var) {
    try {
      (void)parse_config("[[stream.tokens]]\nname = \"t\"\ntoken_env = \"" + var + "\"\n",
                         "t.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("LAM_TEST_EMPTY_TOKEN").find("set but empty"), std::string::npos);
  EXPECT_NE(error_of("LAM_TEST_UNSET_TOKEN").find("is not set"), std::string::npos);
}

}  // namespace
}  // namespace lam::daemon
