// Operations (issue 13): the daemon's maintenance thread keeps the monthly partitions and reports
// PostgreSQL's health on /metrics; the exposition passes `promtool check metrics`; the shipped
// alerting rules pass `promtool check rules` and their unit tests; every metric the rules and the
// Grafana dashboard use is one the daemon exports.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "daemon/config.h"
#include "persistence/local_cluster.h"
#include "tests/daemon/e2e_harness.h"
#include "tests/support/pgbouncer.h"

namespace lam::test {

std::string migrated_seeded_db(const std::string& name, int markets, long long n);  // seed.h

namespace {

/// Runs a shell command; returns its exit status and its output (stdout and stderr).
std::pair<int, std::string> shell(const std::string& cmd) {
  std::string out;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kSource = LAMINATOR_SOURCE_DIR;

TEST(Operations, MetricsCarryDatabaseHealthAndPartitionsAndPassPromtool) {
  E2E e("ops_metrics");
  {
    // Rows no partition holds: a past month (moved out at start-up) and `infinity` (stays).
    pqxx::connection c(e.url());
    pqxx::work w(c);
    for (const char* at : {"2023-05-17 10:00:00+00", "infinity"}) {
      w.exec_params(
          "INSERT INTO transactions (user_id, wallet_id, tx_type, created_at) VALUES "
          "('0000000c-0000-4000-8000-000000000001', '0000000e-0000-4000-8000-000000000001', "
          "'deposit', $1::timestamptz)",
          std::string(at));
    }
    w.commit();
  }
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
  // The first health collection and partition run happen at start-up; the writer flushes marks.
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until &&
         (e.metric("laminator_db_up") != 1 || e.metric("laminator_db_partition_months_ahead") < 0 ||
          e.metric("laminator_writer_flush_seconds_count") <= 0)) {
    std::this_thread::sleep_for(100ms);
  }
  const std::string body = e.get("/metrics").second;
  EXPECT_EQ(e.metric("laminator_db_up"), 1) << body;
  EXPECT_EQ(e.metric("laminator_db_partition_months_ahead"), 3);  // transactions: the first
  EXPECT_EQ(e.metric("laminator_db_partition_default_rows"), 1);  // infinity
  EXPECT_NE(body.find("laminator_db_partition_default_rows{table=\"alert_events\"} 0"),
            std::string::npos);
  EXPECT_GE(e.metric("laminator_db_journal_seqs_ahead"), 500'000);  // half a range at least
  EXPECT_GT(e.metric("laminator_db_max_connections"), 0);
  EXPECT_GE(e.metric("laminator_db_connections"), 3);  // writer, listener, maintenance at least
  EXPECT_GE(e.metric("laminator_db_xid_age"), 0);
  EXPECT_GT(e.metric("laminator_db_table_bytes"), 0);  // positions: the first
  EXPECT_GT(e.metric("laminator_writer_flush_seconds_count"), 0);
  EXPECT_NE(body.find("laminator_db_table_bytes{table=\"alert_events\"}"), std::string::npos);
  EXPECT_EQ(e.metric("laminator_maintenance_errors_total"), 0) << e.log_tail();
  {
    pqxx::connection c(e.url());
    pqxx::work w(c);
    EXPECT_EQ(w.exec("SELECT count(*) FROM transactions_y2023m05")[0][0].as<int>(), 1);
  }
  EXPECT_NE(slurp(e.log_path()).find("partition transactions_y2023m05 created"), std::string::npos);

  // The exposition as Prometheus's own linter reads it.
  const std::string file = e.dir() + "/metrics.txt";
  std::ofstream(file) << body;
  const auto [rc, out] = shell("promtool check metrics < " + file);
  EXPECT_EQ(rc, 0) << out;

  // Every metric the alerting rules and the dashboard use is exported (histograms by family).
  std::set<std::string> families;
  {
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("# TYPE ", 0) == 0) families.insert(line.substr(7, line.find(' ', 7) - 7));
    }
  }
  const std::regex name("(?:laminator|process)_[a-z0-9_]+");
  for (const std::string& path : {kSource + "/configs/prometheus/laminator-rules.yml",
                                  kSource + "/configs/grafana/laminator-dashboard.json"}) {
    const std::string text = slurp(path);
    ASSERT_FALSE(text.empty()) << path;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name);
         it != std::sregex_iterator(); ++it) {
      std::string m = it->str();
      for (const char* suffix : {"_bucket", "_count", "_sum"}) {
        const std::string s(suffix);
        if (m.size() > s.size() && m.compare(m.size() - s.size(), s.size(), s) == 0 &&
            families.count(m.substr(0, m.size() - s.size())) != 0)
          m = m.substr(0, m.size() - s.size());
      }
      EXPECT_EQ(families.count(m), 1u) << path << " uses " << m << ", which /metrics lacks";
    }
  }

  // docs/operations.md, "Health and metrics", names every family /metrics exports, and nothing it
  // does not. A row abbreviates the names after its first: `laminator_feed_frames_total`,
  // `_ticks_total` is laminator_feed_ticks_total (the suffix replaces a tail of the full name).
  const std::string ops = slurp(kSource + "/docs/operations.md");
  const std::size_t from = ops.find("## Health and metrics");
  ASSERT_NE(from, std::string::npos);
  const std::string section = ops.substr(from, ops.find("\n## ", from + 1) - from);
  std::set<std::string> documented;
  std::vector<std::string> unresolved;
  {
    std::istringstream in(section);
    const std::regex token("`((?:laminator|process)_[a-z0-9_]+|_[a-z0-9_]+)`");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("| `", 0) != 0) continue;
      std::string full;
      for (auto it = std::sregex_iterator(line.begin(), line.end(), token);
           it != std::sregex_iterator(); ++it) {
        const std::string t = (*it)[1].str();
        if (t.rfind("laminator_", 0) == 0 || t.rfind("process_", 0) == 0) {
          full = t;
          documented.insert(t);
          if (families.count(t) == 0) unresolved.push_back(t);
          continue;
        }
        if (full.empty()) continue;  // `_ms` and the like in prose before any name
        bool found = false;
        for (std::size_t cut = full.find('_'); cut != std::string::npos && !found;
             cut = full.find('_', cut + 1)) {
          const std::string expanded = full.substr(0, cut) + t;
          if (families.count(expanded) != 0) {
            documented.insert(expanded);
            found = true;
          }
        }
        if (!found) unresolved.push_back(full + " ~ " + t);
      }
    }
  }
  EXPECT_TRUE(unresolved.empty()) << "documented in docs/operations.md but not exported: "
                                  << ::testing::PrintToString(unresolved);
  std::vector<std::string> undocumented;
  for (const std::string& f : families)
    if (documented.count(f) == 0) undocumented.push_back(f);
  EXPECT_TRUE(undocumented.empty())
      << "exported but not in docs/operations.md: " << ::testing::PrintToString(undocumented);
}

TEST(Operations, AlertingRulesPassPromtoolAndTheirUnitTests) {
  const std::string dir = kSource + "/configs/prometheus";
  auto [rc, out] = shell("promtool check rules " + dir + "/laminator-rules.yml");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  std::tie(rc, out) = shell("cd " + dir + " && promtool test rules laminator-rules.test.yml");
  EXPECT_EQ(rc, 0) << out;
  // The test file can fail: a wrong expectation is reported as a failure, not passed over.
  const std::string broken = ::testing::TempDir() + "/laminator-rules.broken.test.yml";
  {
    std::string t = slurp(dir + "/laminator-rules.test.yml");
    const std::string rel = "rule_files:\n  - laminator-rules.yml";
    ASSERT_NE(t.find(rel), std::string::npos);
    t.replace(t.find(rel), rel.size(), "rule_files:\n  - " + dir + "/laminator-rules.yml");
    const std::size_t at = t.find("eval_time: 100m");
    ASSERT_NE(at, std::string::npos);
    t.replace(at, 15, "eval_time: 20m ");  // too early: the alert is not firing yet
    std::ofstream(broken) << t;
  }
  std::tie(rc, out) = shell("promtool test rules " + broken);
  EXPECT_NE(rc, 0) << out;
}

// Issue 32: `scripts/backup archive-setup` pasted the archive path into the shell command
// PostgreSQL runs as `postgres`: a path with ' made a command that always failed (visible only in
// PostgreSQL's log), and a crafted path ran commands; and the runbook never created the directory.
// Now the script creates it for the server's user and quotes the path for sh, for archive_command's
// % escapes and for postgresql.conf: a real server archives into the hostile path, runs nothing
// else, and pg_stat_archiver (exported as laminator_db_archive_*) counts no failure.
TEST(Operations, ArchiveSetupQuotesAHostilePathAndCreatesItsDirectory) {
  const std::string work = "/tmp/laminator-archive-" + std::to_string(::getpid());
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const std::string archive = work + "/arch 'it' $(touch PWNED) 100%f \\ \"q\";id";
  std::string quoted;  // for the test's own shell
  for (const char c : archive) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  const auto [rc, conf] =
      shell(kSource + "/scripts/backup archive-setup --archive '" + quoted + "' 2>&1");
  ASSERT_EQ(rc, 0) << conf;
  ASSERT_TRUE(std::filesystem::is_directory(archive)) << "the script creates the directory";
  db::LocalClusterOptions o;
  o.extra_conf = conf;
  PgCluster cluster(o);
  const std::string url = cluster.create_database("archive_hostile");
  pqxx::connection c(url);
  pqxx::nontransaction n(c);
  n.exec("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
  const std::string wal = n.exec("SELECT pg_walfile_name(pg_switch_wal())")[0][0].as<std::string>();
  const auto end = Clock::now() + 30s;
  pqxx::row st;
  do {
    std::this_thread::sleep_for(100ms);
    st = n.exec1(
        "SELECT archived_count, failed_count, COALESCE(last_archived_wal, '') "
        "FROM pg_stat_archiver");
  } while (Clock::now() < end && st[2].as<std::string>() < wal && st[1].as<int>() == 0);
  EXPECT_EQ(st[1].as<int>(), 0) << "archive_command failed: " << conf;
  EXPECT_GE(st[0].as<int>(), 1);
  EXPECT_TRUE(std::filesystem::exists(archive + "/" + wal)) << conf;
  // Nothing of the path ran: no PWNED in the server's working directory (its data directory) or
  // anywhere under the work directory.
  for (const auto& e : std::filesystem::recursive_directory_iterator(work))
    EXPECT_NE(e.path().filename(), "PWNED") << e.path();
  EXPECT_FALSE(std::filesystem::exists(cluster.directory() + "/data/PWNED"));
  // --apply (ALTER SYSTEM through psql's :'variable' quoting) sets the very same command.
  const std::string printed = n.exec1("SHOW archive_command")[0].as<std::string>();
  n.exec("ALTER SYSTEM SET archive_command = 'false'");
  n.exec("SELECT pg_reload_conf()");
  const auto [rc_apply, out_apply] = shell(kSource + "/scripts/backup archive-setup --archive '" +
                                           quoted + "' --apply --url '" + url + "' 2>&1");
  ASSERT_EQ(rc_apply, 0) << out_apply;
  n.exec("SELECT pg_reload_conf()");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(n.exec1("SHOW archive_command")[0].as<std::string>(), printed);
  // A path the server cannot reach is refused by the script, not discovered in PostgreSQL's log.
  std::filesystem::create_directories(work + "/closed");
  std::filesystem::permissions(work + "/closed", std::filesystem::perms::owner_all);
  const auto [rc2, out2] =
      shell(kSource + "/scripts/backup archive-setup --archive " + work + "/closed/a 2>&1");
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("postgres cannot write the archive directory"), std::string::npos) << out2;
  std::filesystem::remove_all(work);
}

// Issue 32: through the shipped transaction-mode PgBouncer the daemon ran, /healthz 200, and never
// received a change notification. It now refuses to start, saying what to do; the same database
// directly runs (the control).
TEST(Operations, ADaemonBehindATransactionPoolerRefusesToStart) {
  E2E e("ops_pooled");
  const std::string direct = e.url();
  PgBouncer bouncer(kSource + "/configs/pgbouncer/pgbouncer.ini", shared_cluster().directory(),
                    shared_cluster().port(), "ops_pooled");
  e.set_url(bouncer.conninfo());
  e.start();
  EXPECT_EQ(e.signal_and_wait(0, 30s), 2) << e.log_text();
  EXPECT_NE(e.log_text().find("transaction-mode pooler (PgBouncer) does not keep LISTEN"),
            std::string::npos)
      << e.log_text();
  EXPECT_NE(e.log_text().find("start-up failed"), std::string::npos) << e.log_text();
  e.set_url(direct);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  EXPECT_TRUE(wait_for([&] { return e.metric("laminator_listener_connected") == 1; }, 5s));
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

// Issue 32: with the connection limit reached, the listener retried forever while /healthz stayed
// 200 and no metric showed it. Now health says the bot's changes are not followed, since when, and
// laminator_listener_connected is 0 until it is back.
TEST(Operations, AListenerThatCannotReconnectIsLoudUntilItIsBack) {
  E2E e("ops_listener_down");
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  // (Health allows the listener 2 s to prove its first session.)
  EXPECT_TRUE(wait_for([&] { return e.metric("laminator_listener_connected") == 1; }, 5s));
  // No new connection to the database (superusers included), and the listener's session cut.
  e.exec_on("postgres", "ALTER DATABASE ops_listener_down ALLOW_CONNECTIONS false");
  e.exec_on("postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'laminator-listener' AND datname = 'ops_listener_down'");
  ASSERT_TRUE(wait_for([&] { return e.health().first == 503; }, 15s)) << e.log_text();
  const auto [code, body] = e.health();
  EXPECT_NE(body.find("the bot's changes are not followed since 20"), std::string::npos) << body;
  EXPECT_NE(body.find("the listener cannot connect"), std::string::npos) << body;
  EXPECT_EQ(e.metric("laminator_listener_connected"), 0);
  EXPECT_GT(e.metric("laminator_listener_down_since_timestamp_seconds"), 1.7e9);
  // Back: connections allowed again, the listener reconnects, resyncs, and health is 200.
  e.exec_on("postgres", "ALTER DATABASE ops_listener_down ALLOW_CONNECTIONS true");
  ASSERT_TRUE(e.wait_healthy(30s)) << e.health().second << "\n" << e.log_text();
  EXPECT_EQ(e.metric("laminator_listener_connected"), 1);
  EXPECT_EQ(e.metric("laminator_listener_down_since_timestamp_seconds"), 0);
  EXPECT_EQ(e.signal_and_wait(SIGTERM), 0) << e.log_tail();
}

// Issue 32: a shard took 1.5-2 s to exit after SIGTERM while its log said "stopped in 57 ms", and a
// daemon with a subscriber that had paused its socket took 1.6 s (the docs said < 0.1 s). The stop
// is bounded with a subscriber that reads nothing, and the log's last line is the whole time from
// the signal to the exit, phase by phase.
TEST(Operations, AStopWithAPausedSubscriberIsBoundedAndItsLogTellsTheWholeTime) {
  E2E e("ops_stop");
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_text();
  // A subscriber with a 4 KiB receive buffer that never reads, and enough events to fill it and the
  // server's socket buffer: the close handshake cannot complete.
  StreamClient paused(e.stream_url(), kToken, 5s, 4096);
  StreamClient reader(e.stream_url(), kToken);
  const double cmds = e.metric("laminator_engine_commands_total");
  for (int i = 1; i <= 300; ++i)
    add_alert(e, i, 1 + i % 3, "price_above", "greater_than",
              std::to_string(80000 + i % 50).c_str());
  wait_commands(e, cmds, 300);
  e.mock().pin_price("BTCUSDT", 8'010'000);
  ASSERT_EQ(read_n(reader, 300).size(), 300u);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(e.signal_and_wait(SIGTERM, 10s), 0) << e.log_tail();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("SIGTERM to exit with a paused subscriber: %lld ms\n", static_cast<long long>(ms));
  const std::string log = e.log_text();
  const std::size_t at = log.find("exit: ");
  ASSERT_NE(at, std::string::npos) << log;
  std::printf("%s\n", log.substr(at, log.find('\n', at) - at).c_str());
  // The paused subscriber is cut 200 ms into the stop (it resumes with `since`); a loaded 2-core
  // machine gets the rest of the margin.
  EXPECT_LT(ms, 1'000) << log;
}

/// A PostgreSQL server on a restored data directory, started as the tests' clusters are (as the
/// `postgres` user under root, socket only) and stopped at the end.
class RestoredServer {
 public:
  RestoredServer(std::string pgdata, int port) : pgdata_(std::move(pgdata)), port_(port) {
    sock_ = pgdata_ + ".sock";
    std::filesystem::create_directories(sock_);
    shell("chown postgres: " + sock_ + " 2>/dev/null; chmod 777 " + sock_);
    const auto [rc, out] =
        as_postgres(bin() + "/pg_ctl -D " + pgdata_ + " -l " + pgdata_ +
                    ".log -w -t 120 -o \"-c port=" + std::to_string(port_) +
                    " -c unix_socket_directories=" + sock_ + " -c listen_addresses=''\" start");
    if (rc != 0)
      throw std::runtime_error("restored server did not start: " + out + slurp(pgdata_ + ".log"));
  }
  ~RestoredServer() {
    as_postgres(bin() + "/pg_ctl -D " + pgdata_ + " -m immediate -w stop");
    std::error_code ec;
    std::filesystem::remove_all(sock_, ec);
  }
  [[nodiscard]] std::string conninfo(const std::string& db) const {
    return "host=" + sock_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + db;
  }
  static std::string bin() { return db::LocalCluster::find_binaries(); }
  static std::pair<int, std::string> as_postgres(const std::string& cmd) {
    return shell(::geteuid() == 0 ? "runuser -u postgres -- sh -c '" + cmd + "'" : cmd);
  }

 private:
  std::string pgdata_, sock_;
  int port_;
};

// Backup while the daemon runs and fires, restore to a point in time between two bursts of events
// into a fresh data directory, and run the daemon against it with the crash ring of the lost
// history still on disk: nothing of the lost history is replayed, the alerts that fired after the
// restore point are active again and fire again under new seqs above the declared gap, and a
// subscriber resumes across the restore with one cursor, whichever history it came from.
TEST(Operations, PointInTimeRestoreResumesWithoutStaleOrSkippedEvents) {
  const std::string work = ::testing::TempDir() + "laminator-backup-" + std::to_string(::getpid());
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work + "/archive");
  shell("chown -R postgres: " + work + " 2>/dev/null; chmod -R 777 " + work);
  db::LocalClusterOptions o;
  {
    const auto [rc, conf] =
        shell(kSource + "/scripts/backup archive-setup --archive " + work + "/archive");
    ASSERT_EQ(rc, 0) << conf;
    o.extra_conf = conf;
  }
  PgCluster cluster(o);
  DaemonKnobs k;
  k.cluster = &cluster;
  E2E e("ops_backup", k);
  add_alert(e, 1, 1, "price_above", "greater_than", "80101");  // the burst before the restore point
  add_alert(e, 2, 2, "price_above", "greater_than", "80102");
  add_alert(e, 3, 1, "price_above", "greater_than", "80201");  // the burst after it
  add_alert(e, 4, 2, "price_above", "greater_than", "80202");
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
  const auto journaled = [&](const std::string& db_url) {
    pqxx::connection c(db_url);
    pqxx::read_transaction t(c);
    return t.exec("SELECT count(*) FROM alert_events")[0][0].as<int>();
  };
  const auto wait_journal = [&](int n) {
    const auto end = Clock::now() + 20s;
    while (Clock::now() < end && journaled(e.url()) < n) std::this_thread::sleep_for(50ms);
    return journaled(e.url());
  };

  // A base backup while the daemon runs.
  const auto [brc, bout] =
      shell(kSource + "/scripts/backup base --url '" + e.url() + "' --out " + work + "/base");
  ASSERT_EQ(brc, 0) << bout;
  const std::string base =
      bout.substr(0, bout.find_last_not_of("\n") + 1).substr(bout.rfind('\n', bout.size() - 2) + 1);

  e.mock().pin_price("BTCUSDT", 8'015'000);  // 80150: alerts 1 and 2 fire (seqs 1, 2)
  ASSERT_EQ(wait_journal(2), 2) << e.log_tail();
  std::string target;
  {
    pqxx::connection c(e.url());
    pqxx::nontransaction n(c);
    target = n.exec("SELECT now()::text")[0][0].as<std::string>();
  }
  std::this_thread::sleep_for(1200ms);
  e.mock().pin_price("BTCUSDT", 8'025'000);  // 80250: alerts 3 and 4 fire (seqs 3, 4): lost below
  ASSERT_EQ(wait_journal(4), 4) << e.log_tail();
  {
    // Everything up to here into the archive.
    pqxx::connection c(e.url());
    pqxx::nontransaction n(c);
    const std::string wal =
        n.exec("SELECT pg_walfile_name(pg_switch_wal())")[0][0].as<std::string>();
    const auto end = Clock::now() + 30s;
    while (Clock::now() < end &&
           n.exec("SELECT COALESCE(last_archived_wal, '') FROM pg_stat_archiver")[0][0]
                   .as<std::string>() < wal)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(e.signal_and_wait(SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(std::filesystem::exists(e.dir() + "/events.ring"));

  // Restore to the point between the bursts, into a new data directory, and mark it restored.
  const std::string pgdata = work + "/restored";
  {
    const auto [rc, out] =
        shell(kSource + "/scripts/restore pitr --base " + base + " --archive " + work +
              "/archive --pgdata " + pgdata + " --target-time '" + target + "'");
    ASSERT_EQ(rc, 0) << out;
  }
  RestoredServer restored(pgdata, 20000 + static_cast<int>((::getpid() + 7) % 20000));
  const std::string db_name = e.url().substr(e.url().rfind("dbname=") + 7);
  const std::string rurl = restored.conninfo(db_name);
  {
    const auto [rc, out] = shell(kSource + "/scripts/restore finish --url '" + rurl + "'");
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("its journal ends at seq 2; new events start at seq 1000000000003"),
              std::string::npos)
        << out;
  }
  {
    pqxx::connection c(rurl);
    pqxx::read_transaction t(c);
    EXPECT_EQ(t.exec("SELECT count(*) FROM alert_events")[0][0].as<int>(), 2);
    EXPECT_EQ(t.exec("SELECT count(*) FROM alerts WHERE status = 'active'")[0][0].as<int>(), 2);
  }

  // The daemon on the restored database, the lost history's crash ring (seqs 1-4) still there.
  e.set_url(rurl);
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
  const std::string log = slurp(e.log_path());
  EXPECT_NE(log.find("discarded, not replayed"), std::string::npos) << e.log_tail();
  EXPECT_EQ(log.find("journal check"), std::string::npos) << e.log_tail();
  // Alerts 3 and 4 are active again and the price is above them: they fire again, above the gap.
  {
    const auto end = Clock::now() + 20s;
    while (Clock::now() < end && journaled(rurl) < 4) std::this_thread::sleep_for(50ms);
    pqxx::connection c(rurl);
    pqxx::read_transaction t(c);
    const pqxx::result rows = t.exec("SELECT seq, subject_id::text FROM alert_events ORDER BY seq");
    ASSERT_EQ(rows.size(), 4u) << e.log_tail();
    EXPECT_EQ(rows[0][0].as<std::uint64_t>(), 1u);
    EXPECT_EQ(rows[1][0].as<std::uint64_t>(), 2u);
    EXPECT_EQ(rows[2][0].as<std::uint64_t>(), 1'000'000'000'003u);
    EXPECT_EQ(rows[3][0].as<std::uint64_t>(), 1'000'000'000'004u);
    EXPECT_EQ(std::set<std::string>({rows[2][1].as<std::string>(), rows[3][1].as<std::string>()}),
              std::set<std::string>({alert_id(3), alert_id(4)}));
  }
  // A subscriber whose cursor is in the lost history (it saw seq 4) and one from before it (seq 1)
  // both get every new event once, and nothing of the lost history.
  for (const std::uint64_t since : {4u, 1u}) {
    StreamClient sub(e.stream_url("?since=" + std::to_string(since)), kToken);
    std::vector<std::uint64_t> seqs;
    read_until(sub, [&](const std::string& ev) {
      seqs.push_back(seq_of(ev));
      return seq_of(ev) == 1'000'000'000'004u;
    });
    std::vector<std::uint64_t> want;
    if (since == 1) want.push_back(2);
    want.push_back(1'000'000'000'003u);
    want.push_back(1'000'000'000'004u);
    EXPECT_EQ(seqs, want) << "since " << since;
  }
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
}

// The small-setup path: a logical dump restored into an empty database is marked restored too.
TEST(Operations, LogicalDumpRestoresIntoAnEmptyDatabaseMarkedRestored) {
  const std::string src = migrated_seeded_db("ops_dump_src", 5, 300);
  {
    pqxx::connection c(src);
    pqxx::work w(c);
    w.exec(
        "INSERT INTO alert_events (seq, type, subject_id, user_id, event_time, body) SELECT g, "
        "'alert.triggered', gen_random_uuid(), gen_random_uuid(), now(), '{}' FROM "
        "generate_series(1, 7) g");
    w.commit();
  }
  const std::string file = ::testing::TempDir() + "laminator-dump-" + std::to_string(::getpid());
  auto [rc, out] = shell(kSource + "/scripts/backup logical --url '" + src + "' --out " + file);
  ASSERT_EQ(rc, 0) << out;
  const std::string dst = shared_cluster().create_database("ops_dump_dst");
  std::tie(rc, out) = shell(kSource + "/scripts/restore logical --file " + file + " --url '" + dst +
                            "' --gap 1000");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("its journal ends at seq 7; new events start at seq 1008"), std::string::npos)
      << out;
  pqxx::connection a(src), b(dst);
  pqxx::read_transaction ta(a), tb(b);
  for (const char* table : {"users", "wallets", "markets", "positions", "alerts", "alert_events"}) {
    const std::string q = std::string("SELECT count(*) FROM ") + table;
    EXPECT_EQ(ta.exec(q)[0][0].as<int>(), tb.exec(q)[0][0].as<int>()) << table;
  }
  EXPECT_NE(ta.exec("SELECT instance_id::text FROM engine_instance")[0][0].as<std::string>(),
            tb.exec("SELECT instance_id::text FROM engine_instance")[0][0].as<std::string>());
  EXPECT_EQ(tb.exec("SELECT seq_to FROM engine_seq_gaps")[0][0].as<long long>(), 1007);
  std::filesystem::remove(file);
}

// With a streaming replica attached, its replay lag is on /metrics under its name.
TEST(Operations, AStreamingReplicasLagIsReported) {
  PgCluster cluster;
  DaemonKnobs k;
  k.cluster = &cluster;
  k.health_interval_ms = 1000;
  E2E e("ops_replica", k);
  const std::string standby =
      ::testing::TempDir() + "laminator-standby-" + std::to_string(::getpid());
  std::filesystem::remove_all(standby);
  {
    const auto [rc, out] = RestoredServer::as_postgres(
        RestoredServer::bin() + "/pg_basebackup -d \"host=" + cluster.directory() + " port=" +
        std::to_string(cluster.port()) + " user=postgres application_name=standby1\" -D " +
        standby + " -R -X stream --checkpoint=fast");
    ASSERT_EQ(rc, 0) << out;
  }
  RestoredServer replica(standby, 20000 + static_cast<int>((::getpid() + 13) % 20000));
  e.start();
  ASSERT_TRUE(e.wait_healthy()) << e.log_tail();
  e.mock().pin_price("BTCUSDT", 8'010'000);  // writes: marks, so there is WAL to replay
  const auto end = Clock::now() + 30s;
  std::string body;
  while (Clock::now() < end) {
    body = e.get("/metrics").second;
    if (body.find("laminator_db_replication_lag_seconds{replica=\"standby1\"}") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_NE(body.find("laminator_db_replication_lag_seconds{replica=\"standby1\"}"),
            std::string::npos)
      << body;
  std::error_code ec;
  std::filesystem::remove_all(standby, ec);
}

TEST(Operations, MaintenanceConfigIsValidated) {
  const daemon::Config c = daemon::parse_config(
      "[maintenance]\nhealth_interval_ms = 5000\npartition_interval_ms = 600000\n"
      "[maintenance.transactions]\nmonths_ahead = 6\nretain_months = 24\nexpiry = \"archive\"\n"
      "archive_schema = \"old\"\n[maintenance.audit_logs]\nretain_months = 3\n",
      "t.toml");
  EXPECT_EQ(c.maintenance.health_interval.count(), 5000);
  ASSERT_EQ(c.maintenance.partitions.size(), 2u);
  EXPECT_EQ(c.maintenance.partitions[0].months_ahead, 6);
  EXPECT_EQ(c.maintenance.partitions[0].retain_months, 24);
  EXPECT_EQ(c.maintenance.partitions[0].expiry, db::Expiry::archive);
  EXPECT_EQ(c.maintenance.partitions[0].archive_schema, "old");
  EXPECT_EQ(c.maintenance.partitions[1].retain_months, 3);
  EXPECT_EQ(c.maintenance.partitions[1].expiry, db::Expiry::drop);
  for (const char* bad :
       {"[maintenance.transactions]\nexpiry = \"shred\"\n",
        "[maintenance.transactions]\narchive_schema = \"x; DROP\"\n",
        "[maintenance.transactions]\nmonths_ahead = 0\n",
        "[maintenance]\nhealth_interval_ms = 10\n", "[maintenance.orders]\nretain_months = 1\n"}) {
    EXPECT_THROW((void)daemon::parse_config(bad, "t.toml"), daemon::ConfigError) << bad;
  }
}

}  // namespace
}  // namespace lam::test
