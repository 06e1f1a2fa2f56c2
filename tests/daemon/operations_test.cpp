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

#include "daemon/config.h"
#include "tests/daemon/e2e_harness.h"

namespace lam::test {
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
  const std::regex name("laminator_[a-z0-9_]+");
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
