// The stream's pure parts: bearer-token auth and scopes, stream filters, the latency histogram and
// its split by stage.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/event.h"
#include "stream/auth.h"
#include "stream/latency_histogram.h"
#include "stream/stage_latency.h"
#include "stream/stream_filter.h"

namespace lam::daemon {
namespace {

TEST(Auth, BearerTokensAreHashedAndScoped) {
  std::vector<TokenConfig> tokens(2);
  tokens[0].name = "all";
  tokens[0].sha256 = token_hash("secret-a");
  tokens[1].name = "one";
  tokens[1].sha256 = token_hash("secret-b");
  tokens[1].users = {*Uuid::parse("0000000c-0000-4000-8000-000000000001")};
  EXPECT_EQ(authenticate(tokens, "Bearer secret-a"), &tokens[0]);
  EXPECT_EQ(authenticate(tokens, "Bearer secret-b"), &tokens[1]);
  EXPECT_EQ(authenticate(tokens, "Bearer secret-c"), nullptr);
  EXPECT_EQ(authenticate(tokens, "Basic secret-a"), nullptr);
  EXPECT_EQ(authenticate(tokens, ""), nullptr);
  EXPECT_EQ(authenticate(tokens, "Bearer "), nullptr);

  StreamFilter f;
  EXPECT_TRUE(apply_scope(tokens[1], f));  // narrowed to the token's user
  ASSERT_EQ(f.users.size(), 1u);
  StreamFilter other;
  other.users = {*Uuid::parse("0000000c-0000-4000-8000-000000000002")};
  EXPECT_FALSE(apply_scope(tokens[1], other));
  EXPECT_TRUE(apply_scope(tokens[0], other));
}

TEST(StreamFilter, EveryEventTypePassesTheDefaultFilterAndCanBeChosenByName) {
  // The filter once held 8 type bits: order and position events (types 8..15) never reached a
  // subscriber, with or without a `type` filter.
  std::string err;
  const auto all = parse_stream_query("", err);
  ASSERT_TRUE(all) << err;
  for (std::size_t i = 0; i < kEventTypeCount; ++i) {
    EventMeta m;
    m.type = static_cast<EventType>(i);
    EXPECT_TRUE(all->filter.matches(m)) << to_string(m.type);
    const auto one = parse_stream_query("type=" + std::string(to_string(m.type)), err);
    ASSERT_TRUE(one) << err;
    EXPECT_TRUE(one->filter.matches(m)) << to_string(m.type);
    m.type = static_cast<EventType>((i + 1) % kEventTypeCount);
    EXPECT_FALSE(one->filter.matches(m)) << to_string(m.type);
  }
}

TEST(StreamFilter, QueryAndJson) {
  std::string err;
  auto q = parse_stream_query(
      "user_id=0000000c-0000-4000-8000-000000000001&type=alert.triggered,position.liquidated&since="
      "42",
      err);
  ASSERT_TRUE(q) << err;
  EXPECT_EQ(*q->since, 42u);
  EventMeta m;
  m.user_id = *Uuid::parse("0000000c-0000-4000-8000-000000000001");
  m.type = EventType::alert_triggered;
  EXPECT_TRUE(q->filter.matches(m));
  m.type = EventType::alert_expired;
  EXPECT_FALSE(q->filter.matches(m));
  m.type = EventType::position_liquidated;
  m.user_id = *Uuid::parse("0000000c-0000-4000-8000-000000000002");
  EXPECT_FALSE(q->filter.matches(m));

  EXPECT_FALSE(q->committed) << "the default: events as soon as they are published";
  EXPECT_TRUE(parse_stream_query("committed=1&since=3", err)->committed);
  EXPECT_FALSE(parse_stream_query("committed=0", err)->committed);
  EXPECT_FALSE(parse_stream_query("committed=yes", err));
  EXPECT_EQ(err, "committed: expected 1 or 0");
  EXPECT_FALSE(parse_stream_query("since=-1", err));
  EXPECT_FALSE(parse_stream_query("colour=red", err));
  EXPECT_EQ(err, "unknown parameter 'colour'");
  EXPECT_FALSE(parse_stream_query("type=alert.exploded", err));
  EXPECT_FALSE(parse_stream_query("user_id=%zz", err));

  auto f = parse_filter_json(
      R"({"market_id":["0000000a-0000-4000-8000-000000000001"],"type":"alert.triggered"})", err);
  ASSERT_TRUE(f) << err;
  m.type = EventType::alert_triggered;
  m.has_market = false;
  EXPECT_FALSE(f->matches(m));
  m.has_market = true;
  m.market_id = *Uuid::parse("0000000a-0000-4000-8000-000000000001");
  EXPECT_TRUE(f->matches(m));
  EXPECT_FALSE(parse_filter_json("[1]", err));
  EXPECT_FALSE(parse_filter_json(R"({"user_id": 5})", err));
  EXPECT_FALSE(parse_filter_json(R"({"nope": "x"})", err));
  EXPECT_FALSE(parse_filter_json("{not json", err));
}

TEST(LatencyHistogram, QuantilesAreBucketUpperBounds) {
  LatencyHistogram h;
  for (int i = 0; i < 990; ++i) h.record_ns(10'000);    // 10 us
  for (int i = 0; i < 10; ++i) h.record_ns(1'000'000);  // 1 ms
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_GE(h.quantile_us(0.5), 10.0);
  EXPECT_LT(h.quantile_us(0.5), 12.0);
  EXPECT_LT(h.quantile_us(0.99), 12.0);
  EXPECT_GE(h.quantile_us(0.999), 1000.0);
  std::string out;
  h.render(out, "x_seconds", "help");
  EXPECT_NE(out.find("x_seconds_count 1000"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_bucket{le=\"+Inf\"} 1000"), std::string::npos);
}

TEST(StageLatency, ASlowEventCountsUnderTheStageThatTookMostOfIt) {
  StageLatency st;  // slow: above 1 ms
  constexpr std::int64_t t0 = 1'000'000'000;
  // Fast: 5 us queue, 2 us matcher, 20 us bus.
  st.record({t0, t0 + 5'000, t0 + 7'000, t0 + 27'000});
  // Slow, the queue's: 1.5 ms before the dequeue.
  st.record({t0, t0 + 1'500'000, t0 + 1'501'000, t0 + 1'520'000});
  // Slow, the bus's: 0.4 ms queue, 0.1 ms matcher, 0.9 ms bus (no stage alone above 1 ms).
  st.record({t0, t0 + 400'000, t0 + 500'000, t0 + 1'400'000});
  // Exactly at the threshold: not slow.
  st.record({t0, t0 + 1'000'000, t0 + 1'000'000, t0 + 1'000'000});
  EXPECT_EQ(st.slow_total(), 2u);
  EXPECT_EQ(st.slow(Stage::queue), 1u);
  EXPECT_EQ(st.slow(Stage::matcher), 0u);
  EXPECT_EQ(st.slow(Stage::bus), 1u);
  EXPECT_EQ(st.slow_ns_in(Stage::queue), 1'900'000);
  EXPECT_EQ(st.slow_ns_in(Stage::matcher), 101'000);
  EXPECT_EQ(st.slow_ns_in(Stage::bus), 919'000);
  EXPECT_EQ(st.histogram(Stage::queue).count(), 4u);
  EXPECT_GE(st.histogram(Stage::queue).quantile_us(1.0), 1'500.0);
  EXPECT_LT(st.histogram(Stage::matcher).quantile_us(0.5), 3.0);
}

TEST(StageLatency, MissingOrDisorderedStampsNeverGoNegative) {
  StageLatency st(100'000);
  constexpr std::int64_t t0 = 5'000'000'000;
  // No dequeue or made stamp (0): the whole time is the bus stage's.
  st.record({t0, 0, 0, t0 + 300'000});
  EXPECT_EQ(st.slow(Stage::bus), 1u);
  EXPECT_EQ(st.slow_ns_in(Stage::bus), 300'000);
  EXPECT_EQ(st.slow_ns_in(Stage::queue), 0);
  // A clock that stepped back between threads: that stage is 0, the others are kept.
  st.record({t0, t0 + 200'000, t0 + 150'000, t0 + 400'000});
  EXPECT_EQ(st.slow(Stage::bus), 2u);  // 250 us of bus beats 200 us of queue
  EXPECT_EQ(st.slow_ns_in(Stage::matcher), 0);
  std::string out;
  st.render(out);
  EXPECT_NE(out.find("laminator_event_stage_seconds_bucket{stage=\"bus\",le=\"+Inf\"} 2"),
            std::string::npos);
  EXPECT_NE(out.find("laminator_event_stage_seconds_count{stage=\"queue\"} 2"), std::string::npos);
  EXPECT_NE(out.find("laminator_slow_events_total{stage=\"bus\"} 2"), std::string::npos);
  EXPECT_NE(out.find("laminator_slow_events_total{stage=\"matcher\"} 0"), std::string::npos);
}

}  // namespace
}  // namespace lam::daemon
