// `laminator bench matcher` (issue 15): small sizes, the same workload as bench/matcher_bench; the
// table and the laminator-bench/1 document.
#include "app/bench_command.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdio>
#include <stdexcept>

namespace lam::app {
namespace {

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
    ASSERT_EQ(m.ns_per_tick.size(), 3u);
    EXPECT_GT(m.min(), 0);
    EXPECT_LE(m.min(), m.median());
    EXPECT_LE(m.median(), m.max());
  }
  // The flat scan walks 4,000 records a tick; the ladders look at one or two.
  EXPECT_GT(r.ratio, 10) << format_bench_table(r);
  const std::string table = format_bench_table(r);
  EXPECT_NE(table.find("quiet tick (ladders)"), std::string::npos) << table;
  EXPECT_NE(table.find("flat scan / ladders"), std::string::npos) << table;

  simdjson::dom::parser parser;
  const std::string text = bench_json(r);
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
  EXPECT_EQ(std::string_view(doc["schema"]), "laminator-bench/1");
  EXPECT_EQ(std::string_view(doc["scenario"]), "matcher");
  EXPECT_FALSE(std::string_view(doc["machine"]["cpu"]).empty());
  EXPECT_GT(std::int64_t(doc["machine"]["cores"]), 0);
  EXPECT_EQ(std::string_view(doc["build"]["version"]), "0.1.0");
  EXPECT_EQ(std::int64_t(doc["config"]["objects"]), 2000);
  EXPECT_EQ(std::int64_t(doc["config"]["markets"]), 1000);
  simdjson::dom::array results = doc["results"];
  ASSERT_EQ(results.size(), 3u);
  const char* names[] = {"quiet_tick", "quiet_tick_flat_scan", "firing_tick"};
  std::size_t i = 0;
  for (simdjson::dom::element m : results) {
    EXPECT_EQ(std::string_view(m["name"]), names[i++]);
    EXPECT_EQ(std::string_view(m["unit"]), "ns/tick");
    EXPECT_GT(double(m["median"]), 0);
    EXPECT_EQ(simdjson::dom::array(m["samples"]).size(), 3u);
  }
  EXPECT_NEAR(double(doc["ratios"].at(0)["value"]), r.ratio, r.ratio * 1e-5);
}

TEST(BenchMatcher, BadOptionsAreRefused) {
  BenchOptions opt;
  opt.scenario = "nothing";
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
  opt.scenario = "matcher";
  opt.objects = 10;
  EXPECT_THROW((void)run_bench(opt, nullptr), std::invalid_argument);
}

// --compare: a change counts only beyond the noise the repetitions measured; a regression exits 3.
TEST(BenchMatcher, CompareFlagsOnlyChangesBeyondTheMeasuredNoise) {
  BenchResult now;
  now.options.scenario = "matcher";
  now.measurements = {{"quiet_tick", "q", {10.0, 10.2, 9.9}},
                      {"quiet_tick_flat_scan", "f", {1000, 1010, 990}},
                      {"firing_tick", "x", {250, 240, 260}}};
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

}  // namespace
}  // namespace lam::app
