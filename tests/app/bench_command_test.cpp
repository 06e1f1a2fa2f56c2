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

}  // namespace
}  // namespace lam::app
