// `laminator bench` (issue 15): every scenario on small sizes (the same workloads as bench/), the
// table, the laminator-bench/1 document, the HTML report and --compare. writer and pipeline start
// their own PostgreSQL cluster, as the installed binary does.
#include "app/bench_command.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lam::app {
namespace {

namespace fs = std::filesystem;

BenchMeasurement measurement(std::string name, std::vector<double> samples, bool rate = false) {
  BenchMeasurement m;
  m.name = std::move(name);
  m.label = m.name;
  m.unit = rate ? "ticks/s" : "ns/tick";
  m.higher_is_better = rate;
  m.samples = std::move(samples);
  return m;
}

/// Parses the document and checks what every scenario's must hold; returns it for more checks.
simdjson::dom::element check_schema(simdjson::dom::parser& parser, const std::string& text,
                                    const BenchResult& r) {
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
  EXPECT_EQ(std::string_view(doc["schema"]), "laminator-bench/1");
  EXPECT_EQ(std::string_view(doc["scenario"]), r.options.scenario);
  EXPECT_FALSE(std::string_view(doc["machine"]["cpu"]).empty());
  EXPECT_GT(std::int64_t(doc["machine"]["cores"]), 0);
  EXPECT_EQ(std::string_view(doc["build"]["version"]), "0.1.0");
  EXPECT_TRUE(doc["config"].is_object());
  simdjson::dom::array results = doc["results"];
  EXPECT_EQ(results.size(), r.measurements.size());
  std::size_t i = 0;
  for (simdjson::dom::element m : results) {
    const BenchMeasurement& want = r.measurements[i++];
    EXPECT_EQ(std::string_view(m["name"]), want.name);
    EXPECT_EQ(std::string_view(m["unit"]), want.unit);
    EXPECT_EQ(std::string_view(m["better"]), want.higher_is_better ? "higher" : "lower");
    EXPECT_EQ(bool(m["baseline"]), want.baseline);
    EXPECT_GT(double(m["median"]), 0) << want.name;
    EXPECT_LE(double(m["min"]), double(m["median"]));
    EXPECT_LE(double(m["median"]), double(m["max"]));
    EXPECT_EQ(simdjson::dom::array(m["samples"]).size(), want.samples.size());
  }
  EXPECT_EQ(simdjson::dom::array(doc["ratios"]).size(), r.ratios.size());
  EXPECT_EQ(simdjson::dom::array(doc["latency"]).size(), r.latency.size());
  EXPECT_EQ(simdjson::dom::array(doc["throughput"]).size(), r.throughput.size());
  EXPECT_EQ(bool(doc["lossy"]), r.lossy);
  return doc;
}

/// The page is one file that fetches nothing and runs nothing, and draws what the result has.
void check_html(const std::string& html, const BenchResult& r) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* never : {"<script", "http:", "https:", "src=", "url(", "@import", "<link"}) {
    EXPECT_EQ(html.find(never), std::string::npos) << never;
  }
  EXPECT_NE(html.find("<svg id=\"bars\""), std::string::npos);
  EXPECT_EQ(html.find("<svg id=\"latency\"") != std::string::npos, !r.latency.empty());
  EXPECT_EQ(html.find("<svg id=\"throughput\"") != std::string::npos, !r.throughput.empty());
  for (const BenchMeasurement& m : r.measurements) {
    if (m.label.find_first_of("<>&\"") == std::string::npos) {
      EXPECT_NE(html.find(m.label), std::string::npos) << m.label;
    }
  }
  // Balanced SVG elements: every chart closed.
  std::size_t opened = 0, closed = 0;
  for (std::size_t p = 0; (p = html.find("<svg ", p)) != std::string::npos; ++p) ++opened;
  for (std::size_t p = 0; (p = html.find("</svg>", p)) != std::string::npos; ++p) ++closed;
  EXPECT_EQ(opened, closed);
  EXPECT_GE(opened, 1u);
}

TEST(BenchMatcher, MeasuresTheSameRunBaselineAndWritesSchemaOne) {
  BenchOptions opt;
  opt.scenario = "matcher";
  opt.objects = 2'000;
  opt.repetitions = 3;
  opt.seconds = 0.6;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  ASSERT_EQ(r.measurements.size(), 3u);
  for (const BenchMeasurement& m : r.measurements) {
    SCOPED_TRACE(m.name);
    ASSERT_EQ(m.samples.size(), 3u);
    EXPECT_GT(m.min(), 0);
    EXPECT_LE(m.min(), m.median());
    EXPECT_LE(m.median(), m.max());
  }
  EXPECT_TRUE(r.measurements[1].baseline);
  // The flat scan walks 4,000 records a tick; the ladders look at one or two.
  ASSERT_EQ(r.ratios.size(), 1u);
  EXPECT_GT(r.ratios[0].value, 10) << format_bench_table(r);
  const std::string table = format_bench_table(r);
  EXPECT_NE(table.find("quiet tick (ladders)"), std::string::npos) << table;
  EXPECT_NE(table.find("flat scan / ladders"), std::string::npos) << table;
  ASSERT_EQ(r.throughput.size(), 3u);  // one point per repetition, as ticks/s
  EXPECT_EQ(r.throughput[0].points.size(), 3u);

  simdjson::dom::parser parser;
  const auto doc = check_schema(parser, bench_json(r), r);
  EXPECT_EQ(std::int64_t(doc["config"]["objects"]), 2000);
  EXPECT_EQ(std::int64_t(doc["config"]["markets"]), 1000);
  EXPECT_NEAR(double(doc["ratios"].at(0)["value"]), r.ratios[0].value, r.ratios[0].value * 1e-5);
  check_html(bench_html(r), r);
}

// With --orders: N resting orders too, and ticks that trigger and fill one each (bench/'s
// OrderFillTick, the same OrderFillBatch).
TEST(BenchMatcher, WithOrdersTimesTheTriggerAndFillTick) {
  BenchOptions opt;
  opt.scenario = "matcher";
  opt.objects = 2'000;
  opt.orders = true;
  opt.repetitions = 2;
  opt.seconds = 0.4;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  ASSERT_EQ(r.measurements.size(), 4u);
  const BenchMeasurement* fill = r.find("order_fill_tick");
  ASSERT_NE(fill, nullptr);
  EXPECT_EQ(fill->samples.size(), 2u);
  EXPECT_GT(fill->min(), 0);
  EXPECT_EQ(r.throughput.size(), 4u);
  EXPECT_NE(format_bench_table(r).find("resting orders"), std::string::npos);
}

TEST(BenchReplay, ParsingAndFullReplayOnAGeneratedFile) {
  BenchOptions opt;
  opt.scenario = "replay";
  opt.ticks = 20'000;
  opt.repetitions = 2;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  ASSERT_EQ(r.measurements.size(), 2u);
  EXPECT_EQ(r.measurements[0].name, "replay_full");
  EXPECT_TRUE(r.measurements[1].baseline);
  for (const BenchMeasurement& m : r.measurements) {
    EXPECT_EQ(m.unit, "ticks/s");
    EXPECT_TRUE(m.higher_is_better);
    EXPECT_EQ(m.samples.size(), 2u);
  }
  // Time of a full replay over parsing alone, from the medians (a few ms each at this size: only
  // the benchmark's own sizes say how large it is).
  ASSERT_EQ(r.ratios.size(), 1u);
  EXPECT_NEAR(r.ratios[0].value, r.measurements[1].median() / r.measurements[0].median(), 1e-9);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("parsing is"), std::string::npos);
  simdjson::dom::parser parser;
  const auto doc = check_schema(parser, bench_json(r), r);
  EXPECT_EQ(std::int64_t(doc["config"]["ticks"]), 20000);
  EXPECT_GT(std::int64_t(doc["config"]["events_per_replay"]), 0);
  check_html(bench_html(r), r);
}

TEST(BenchWriter, TheBatchStatementAgainstOneUpdatePerRowOnRealPostgres) {
  BenchOptions opt;
  opt.scenario = "writer";
  opt.rows = 4'000;
  opt.batch_sizes = {50, 500};
  opt.repetitions = 2;
  opt.seconds = 1.2;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  ASSERT_EQ(r.measurements.size(), 6u);  // 3 methods x 2 sizes
  for (const BenchMeasurement& m : r.measurements) {
    EXPECT_EQ(m.unit, "rows/s");
    EXPECT_EQ(m.samples.size(), 2u);
    EXPECT_EQ(m.baseline, m.name.rfind("update_per_row", 0) == 0) << m.name;
  }
  ASSERT_NE(r.find("unnest_batch_500"), nullptr);
  ASSERT_EQ(r.ratios.size(), 4u);
  // The ratio is of the same run's medians (how large it is is the benchmark's to say: a test
  // asserting a speed on a shared machine would be a timed test). Every batch was checked for
  // its row count and the last one read back by the workload itself.
  EXPECT_EQ(r.ratios[2].name, "unnest_batch_500/update_per_row_500");
  EXPECT_NEAR(r.ratios[2].value,
              r.find("unnest_batch_500")->median() / r.find("update_per_row_500")->median(), 1e-9);
  ASSERT_EQ(r.latency.size(), 6u);  // batch time percentiles per method and size
  EXPECT_EQ(r.latency[0].unit, "ms");
  EXPECT_DOUBLE_EQ(r.latency[0].points.back().first, 1.0);
  simdjson::dom::parser parser;
  const auto doc = check_schema(parser, bench_json(r), r);
  EXPECT_EQ(simdjson::dom::array(doc["config"]["batch_sizes"]).size(), 2u);
  EXPECT_FALSE(std::string_view(doc["config"]["postgresql"]).empty());
  check_html(bench_html(r), r);
}

TEST(BenchWriter, FillsInBatchesAgainstATransactionPerFillOnRealPostgres) {
  BenchOptions opt;
  opt.scenario = "writer";
  opt.fills = true;
  opt.rows = 10'000;
  opt.batch_sizes = {100, 1'000};
  opt.repetitions = 1;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  ASSERT_EQ(r.measurements.size(), 3u);  // 2 batch sizes and the baseline
  for (const BenchMeasurement& m : r.measurements) {
    EXPECT_EQ(m.unit, "fills/s");
    EXPECT_EQ(m.samples.size(), 1u);
    EXPECT_GT(m.median(), 0);
    EXPECT_EQ(m.baseline, m.name == "fills_per_transaction") << m.name;
  }
  ASSERT_NE(r.find("fills_batch_1000"), nullptr);
  ASSERT_EQ(r.ratios.size(), 2u);
  EXPECT_EQ(r.ratios[1].name, "fills_batch_1000/fills_per_transaction");
  EXPECT_NEAR(r.ratios[1].value,
              r.find("fills_batch_1000")->median() / r.find("fills_per_transaction")->median(),
              1e-9);
  ASSERT_EQ(r.latency.size(), 2u);  // batch time percentiles per size
  EXPECT_EQ(r.latency[0].unit, "ms");
  simdjson::dom::parser parser;
  const auto doc = check_schema(parser, bench_json(r), r);
  // Every fill of the run landed once (FillWriter::verify counted the trades): 5,000 per batch
  // size and 500 one at a time.
  EXPECT_EQ(std::int64_t(doc["config"]["orders"]), 10'500);
  check_html(bench_html(r), r);
  opt.rows = 5'000;  // fewer users than the fills need
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
}

TEST(BenchFanin, EveryEventThroughJetStreamAndTheGatewayAndTheLatencyItAdds) {
  // In process: a shard daemon, a real nats-server, the gateway and both subscribers.
  BenchOptions opt;
  opt.scenario = "fanin";
  opt.burst = 500;
  opt.probes = 20;
  opt.repetitions = 2;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  EXPECT_FALSE(r.lossy) << format_bench_table(r);
  for (const char* name : {"direct_events", "gateway_events", "stored_events"}) {
    const BenchMeasurement* m = r.find(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->samples.size(), 2u) << name;
    EXPECT_GT(m->median(), 0) << name;
    EXPECT_TRUE(m->higher_is_better) << name;
  }
  EXPECT_TRUE(r.find("direct_events")->baseline);
  ASSERT_NE(r.find("added_p99"), nullptr);
  EXPECT_GE(r.find("added_p99")->median(), r.find("added_p50")->median());
  ASSERT_EQ(r.ratios.size(), 1u);
  EXPECT_GT(r.ratios[0].value, 0);
  ASSERT_EQ(r.latency.size(), 2u);
  EXPECT_FALSE(r.latency[0].points.empty());
  simdjson::dom::parser parser;
  check_schema(parser, bench_json(r), r);
  check_html(bench_html(r), r);
}

// Issue 31: three shards (Binance, Bybit, Hyperliquid) burst at the same moment; the gateway serves
// all of their events, nothing lost at either side, each shard's own rate is a sample of the
// baseline.
TEST(BenchFanin, ThreeShardsBurstingTogetherAllReachTheGateway) {
  BenchOptions opt;
  opt.scenario = "fanin";
  opt.shards = 3;
  opt.burst = 300;
  opt.probes = 20;
  opt.repetitions = 1;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  EXPECT_FALSE(r.lossy) << format_bench_table(r);
  EXPECT_EQ(r.find("direct_events")->samples.size(), 3u) << "one per shard";
  EXPECT_EQ(r.find("gateway_events")->samples.size(), 1u);
  EXPECT_GT(r.find("gateway_events")->median(), 0);
  EXPECT_NE(r.title.find("3 shards bursting together"), std::string::npos) << r.title;
  simdjson::dom::parser parser;
  const auto doc = check_schema(parser, bench_json(r), r);
  EXPECT_EQ(std::int64_t(doc["config"]["shards"]), 3);
}

TEST(BenchPipeline, TheDaemonOnLoopbackLosesNothingAndReportsItsLatency) {
  BenchOptions opt;
  opt.scenario = "pipeline";
  opt.probes = 40;
  opt.rate = 2'000;
  opt.frames = 20'000;
  opt.warmup_s = 0;
  opt.repetitions = 1;
  opt.progress = false;
  const BenchResult r = run_bench(opt, nullptr);
  EXPECT_FALSE(r.lossy) << format_bench_table(r);
  const BenchMeasurement* rate = r.find("flat_out");
  ASSERT_NE(rate, nullptr);
  EXPECT_GT(rate->median(), 1'000);
  const BenchMeasurement* p99 = r.find("wire_p99");
  ASSERT_NE(p99, nullptr);
  EXPECT_GT(p99->median(), 0);
  ASSERT_NE(r.find("daemon_p99"), nullptr);
  EXPECT_TRUE(r.find("daemon_p99")->baseline);
  // Both wire modes: one frame per socket write, then the frames of each millisecond batched.
  ASSERT_EQ(r.latency.size(), 6u);
  EXPECT_EQ(r.latency[0].name, "wire");
  EXPECT_EQ(r.latency[1].name, "committed");  // read-committed subscribers on the same probes
  EXPECT_EQ(r.latency[3].name, "batched_wire");
  for (const char* name : {"batched_wire_p99", "batched_daemon_p99", "wire_p999", "daemon_p999"}) {
    const BenchMeasurement* m = r.find(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_GT(m->median(), 0) << name;
  }
  // The stall table of each mode: the slow events by the stage that took most of their time.
  int stall_notes = 0;
  for (const std::string& n : r.notes) {
    if (n.find("stalls: ") == std::string::npos) continue;
    ++stall_notes;
    for (const char* stage : {"queue: ", "matcher: ", "bus: "})
      EXPECT_NE(n.find(stage), std::string::npos) << n;
  }
  EXPECT_EQ(stall_notes, 2);
  const BenchMeasurement* c50 = r.find("committed_p50");
  ASSERT_NE(c50, nullptr);
  EXPECT_GE(c50->median(), r.find("wire_p50")->median()) << "journaled after it was published";
  EXPECT_DOUBLE_EQ(r.latency[0].points.back().first, 1.0);  // the maximum last
  for (const auto& c : r.latency) {
    for (std::size_t i = 1; i < c.points.size(); ++i)
      EXPECT_LE(c.points[i - 1].second, c.points[i].second) << c.name;  // percentiles ascend
  }
  ASSERT_EQ(r.throughput.size(), 1u);
  EXPECT_FALSE(r.throughput[0].points.empty());
  simdjson::dom::parser parser;
  check_schema(parser, bench_json(r), r);
  check_html(bench_html(r), r);
}

TEST(BenchCommand, BadOptionsAreRefused) {
  BenchOptions opt;
  opt.scenario = "nothing";
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.scenario = "matcher";
  opt.objects = 10;
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.scenario = "replay";
  opt.ticks = 5;
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.scenario = "writer";
  opt.batch_sizes = {};
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.batch_sizes = {1'000'000};
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.scenario = "pipeline";
  opt.probes = 1;
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
}

// Labels are escaped; a page without curves has no empty charts.
TEST(BenchHtml, EscapesTextAndDrawsOnlyWhatTheRunHas) {
  BenchResult r;
  r.options.scenario = "matcher";
  r.title = "a <title> & more";
  r.measurements = {measurement("a", {1, 2, 3}), measurement("b", {10, 20, 30})};
  r.measurements[0].label = "x < y & \"z\"";
  const std::string html = bench_html(r);
  EXPECT_NE(html.find("x &lt; y &amp; &quot;z&quot;"), std::string::npos);
  EXPECT_EQ(html.find("x < y"), std::string::npos);
  EXPECT_NE(html.find("a &lt;title&gt; &amp; more"), std::string::npos);
  check_html(html, r);
}

// --compare: a change counts only beyond the noise the repetitions measured; a regression exits 3.
TEST(BenchCompare, FlagsOnlyChangesBeyondTheMeasuredNoise) {
  BenchResult now;
  now.options.scenario = "matcher";
  now.measurements = {measurement("quiet_tick", {10.0, 10.2, 9.9}),
                      measurement("quiet_tick_flat_scan", {1000, 1010, 990}),
                      measurement("firing_tick", {250, 240, 260})};
  // The old run: quiet 10 +- 1 %, flat scan 800 (now 25 % slower), firing 350 (now 29 % faster).
  const std::string old = R"({"schema":"laminator-bench/1","scenario":"matcher","results":[
    {"name":"quiet_tick","unit":"ns/tick","median":10.05,"min":9.95,"max":10.1,"samples":[]},
    {"name":"quiet_tick_flat_scan","unit":"ns/tick","median":800,"min":795,"max":805,"samples":[]},
    {"name":"firing_tick","unit":"ns/tick","median":350,"min":340,"max":360,"samples":[]}]})";
  const BenchComparison c = compare_bench(now, old);
  ASSERT_TRUE(c.problems.empty());
  ASSERT_EQ(c.changes.size(), 3u);
  EXPECT_FALSE(c.changes[0].regression);
  EXPECT_FALSE(c.changes[0].improvement);
  EXPECT_TRUE(c.changes[1].regression);
  EXPECT_NEAR(c.changes[1].change, 0.25, 1e-9);
  EXPECT_TRUE(c.changes[2].improvement);
  EXPECT_TRUE(c.regressed());
  const std::string text = format_comparison(c);
  EXPECT_NE(text.find("REGRESSION"), std::string::npos) << text;
  EXPECT_NE(text.find("within noise"), std::string::npos) << text;

  // A noisy old run hides the same 25 %: its spread was 40 %.
  const std::string noisy = R"({"schema":"laminator-bench/1","scenario":"matcher","results":[
    {"name":"quiet_tick","median":10,"min":9,"max":11},
    {"name":"quiet_tick_flat_scan","median":800,"min":640,"max":960},
    {"name":"firing_tick","median":250,"min":240,"max":260}]})";
  EXPECT_FALSE(compare_bench(now, noisy).regressed());
  // Not a comparison at all: said, and counted as a failure.
  EXPECT_TRUE(compare_bench(now, "{}").regressed());
  EXPECT_FALSE(
      compare_bench(now, R"({"schema":"laminator-bench/1","scenario":"replay","results":[]})")
          .problems.empty());
}

// For rates, lower is worse: a 30 % drop in ticks/s is a regression, a rise an improvement.
TEST(BenchCompare, ARateThatFellIsARegression) {
  BenchResult now;
  now.options.scenario = "replay";
  now.measurements = {measurement("replay_full", {700, 705, 695}, true),
                      measurement("replay_parse_only", {1300, 1310, 1290}, true)};
  const std::string old = R"({"schema":"laminator-bench/1","scenario":"replay","results":[
    {"name":"replay_full","better":"higher","median":1000,"min":990,"max":1010},
    {"name":"replay_parse_only","better":"higher","median":1000,"min":990,"max":1010}]})";
  const BenchComparison c = compare_bench(now, old);
  ASSERT_EQ(c.changes.size(), 2u);
  EXPECT_TRUE(c.changes[0].regression);
  EXPECT_NEAR(c.changes[0].worse, 1000.0 / 700 - 1, 1e-9);
  EXPECT_FALSE(c.changes[1].regression);
  EXPECT_TRUE(c.changes[1].improvement);
}

// The command as people run it: exit 0, the table on stdout, both files written; --compare
// against a run that was ten times faster exits 3.
TEST(BenchCommand, TheBinaryWritesJsonAndHtmlAndExitsThreeOnARegression) {
  const fs::path dir = fs::temp_directory_path() / ("lam_bench_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto run = [&](const std::string& args) {
    const std::string cmd = std::string(LAMINATOR_BINARY) + " bench " + args + " >" +
                            (dir / "out").string() + " 2>" + (dir / "err").string();
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string json = (dir / "run.json").string(), html = (dir / "run.html").string();
  ASSERT_EQ(run("replay --ticks 10000 --repetitions 2 --json " + json + " --html " + html), 0)
      << slurp(dir / "err");
  EXPECT_NE(slurp(dir / "out").find("replay (parse + match + events)"), std::string::npos);
  EXPECT_EQ(slurp(dir / "err"), "");  // no progress line when stderr is not a terminal
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const std::string text = slurp(json);
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS);
  EXPECT_EQ(std::string_view(doc["scenario"]), "replay");
  EXPECT_NE(slurp(html).find("<svg id=\"throughput\""), std::string::npos);

  // An earlier run ten times as fast: every rate fell far beyond the noise.
  std::string faster = text;
  for (const char* key : {"\"median\":", "\"min\":", "\"max\":"}) {
    for (std::size_t p = 0; (p = faster.find(key, p)) != std::string::npos; ++p) {
      const std::size_t v = p + std::strlen(key);
      const std::size_t end = faster.find_first_of(",}", v);
      const double x = std::stod(faster.substr(v, end - v));
      faster.replace(v, end - v, std::to_string(x * 10));
    }
  }
  std::ofstream(dir / "faster.json") << faster;
  EXPECT_EQ(run("replay --ticks 10000 --repetitions 2 --compare " + (dir / "faster.json").string()),
            3);
  EXPECT_NE(slurp(dir / "out").find("REGRESSION"), std::string::npos) << slurp(dir / "out");
  EXPECT_EQ(run("nothing"), 2);  // a usage error
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lam::app
