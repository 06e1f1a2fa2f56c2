// Scale-out's pure parts: which markets a shard owns, the publishing window, how an event is
// rendered through JetStream, the [shard] / [nats] / [gateway] config, the shard's search_path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "daemon/config.h"
#include "persistence/database_url.h"
#include "persistence/listener.h"
#include "scaleout/gateway_event.h"
#include "scaleout/gateway_intake.h"
#include "scaleout/nats_authorization.h"
#include "scaleout/publish_cursor.h"
#include "scaleout/publish_window.h"
#include "scaleout/shard.h"
#include "scaleout/shard_order.h"
#include "scaleout/shard_sink.h"

namespace lam::daemon {
namespace {

Uuid id(int n) {
  char b[40];
  std::snprintf(b, sizeof b, "0000000a-0000-4000-8000-%012x", n);
  return *Uuid::parse(b);
}

TEST(ShardMap, WithoutAShardEverythingIsOwned) {
  ShardMap m;
  EXPECT_FALSE(m.sharded());
  EXPECT_TRUE(m.market(id(1), "binance"));
  EXPECT_TRUE(m.owns(id(2)));
  EXPECT_TRUE(m.owns_marketless());
}

TEST(ShardMap, VenuesAndListedMarketsDecideAndRowsFollowTheirMarket) {
  ShardConfig c;
  c.id = "a";
  c.venues = {"binance", "bybit"};
  c.markets = {id(9)};
  ShardMap m(c);
  EXPECT_TRUE(m.market(id(1), "binance"));
  EXPECT_TRUE(m.market(id(2), "bybit"));
  EXPECT_FALSE(m.market(id(3), "okx"));
  EXPECT_TRUE(m.market(id(9), "okx"));  // listed
  EXPECT_TRUE(m.owns(id(1)));
  EXPECT_FALSE(m.owns(id(3)));
  // A market nobody loaded: without a hash rule, the orphans shard's; this one is not.
  EXPECT_FALSE(m.owns(id(77)));
  EXPECT_FALSE(m.owns_marketless());
  EXPECT_EQ(m.owned_markets(), 3u);
  // A market that moves venue changes hands at its next row.
  EXPECT_FALSE(m.market(id(1), "okx"));
  EXPECT_FALSE(m.owns(id(1)));
  c.orphans = true;
  ShardMap orphans(c);
  EXPECT_TRUE(orphans.owns(id(77)));
  EXPECT_TRUE(orphans.owns_marketless());
}

TEST(ShardMap, TheHashRuleGivesEveryMarketToExactlyOneShard) {
  std::vector<ShardMap> shards;
  for (std::uint32_t i = 0; i < 3; ++i) {
    ShardConfig c;
    c.id = "h" + std::to_string(i);
    c.hash_count = 3;
    c.hash_index = i;
    shards.emplace_back(c);
  }
  std::array<int, 3> per{};
  for (int n = 1; n <= 3000; ++n) {
    int owners = 0;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      // Loaded or not (an alert naming a market nobody has), the same shard answers.
      const bool loaded = n % 2 == 0 ? shards[i].market(id(n), "okx") : shards[i].owns(id(n));
      if (loaded) {
        ++owners;
        ++per[i];
      }
    }
    EXPECT_EQ(owners, 1) << n;
  }
  for (const int c : per) EXPECT_GT(c, 800);  // spread, not all in one shard
  // FNV-1a 64 of the id's 16 bytes (computed independently): shards of any build agree.
  EXPECT_EQ(market_hash(id(1)), 11231952734979282798ULL);
}

TEST(ShardId, OnlyIdentifiersThatNameASchemaAndASubjectToken) {
  EXPECT_TRUE(valid_shard_id("eu_1"));
  EXPECT_FALSE(valid_shard_id(""));
  EXPECT_FALSE(valid_shard_id("a.b"));
  EXPECT_FALSE(valid_shard_id("A"));
  EXPECT_FALSE(valid_shard_id("a>"));
  EXPECT_FALSE(valid_shard_id(std::string(33, 'a')));
  EXPECT_EQ(shard_schema("eu_1"), "laminator_shard_eu_1");
}

TEST(PublishWindow, AcksOutOfOrderMoveTheStoredPrefixOnlyWhenContiguous) {
  PublishWindow w;
  w.reset(10);
  EXPECT_EQ(w.next(), 11u);
  for (int i = 0; i < 5; ++i) w.sent();  // 11..15 in flight
  EXPECT_EQ(w.in_flight(), 5u);
  w.acked(12);
  w.acked(13);
  EXPECT_EQ(w.acked_through(), 10u);
  w.acked(11);
  EXPECT_EQ(w.acked_through(), 13u);
  w.acked(9);   // stale: before the window
  w.acked(99);  // never sent
  EXPECT_EQ(w.acked_through(), 13u);
  EXPECT_EQ(w.in_flight(), 2u);
  EXPECT_FALSE(w.needs_rewind());
  w.failed(15);
  EXPECT_TRUE(w.needs_rewind());
  // Reconnected: the stream says it holds up to 14 (15's ack was lost, or 15 was lost).
  w.reset(14);
  EXPECT_FALSE(w.needs_rewind());
  EXPECT_EQ(w.next(), 15u);
  EXPECT_EQ(w.in_flight(), 0u);
  w.failed(3);  // an old failure after the rewind: ignored
  EXPECT_FALSE(w.needs_rewind());
}

TEST(PublishWindow, SeqsJumpedOverCountAsStoredOnceNothingIsInFlight) {
  PublishWindow w;
  w.reset(0);
  w.sent();  // 1
  EXPECT_FALSE(w.jump(1'000'000'000'001)) << "1 is still in flight";
  w.acked(1);
  // A restore's gap: the journal continues at 10^12 + 1.
  ASSERT_TRUE(w.jump(1'000'000'000'001));
  EXPECT_EQ(w.acked_through(), 1'000'000'000'000u);
  EXPECT_EQ(w.next(), 1'000'000'000'001u);
  EXPECT_EQ(w.in_flight(), 0u);
  EXPECT_FALSE(w.jump(5)) << "never backwards";
  w.sent();
  w.acked(1'000'000'000'001);
  EXPECT_EQ(w.acked_through(), 1'000'000'000'001u);
}

TEST(GatewayEvent, MsgIdsRoundTripAndMalformedOnesAreRefused) {
  EXPECT_EQ(msg_id("eu_1", 42), "eu_1:42");
  const auto p = parse_msg_id("eu_1:42");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->shard, "eu_1");
  EXPECT_EQ(p->seq, 42u);
  for (const char* bad : {"", ":1", "a:", "a:0", "a:1x", "a:-1", "noseq", "a:99999999999999999999"})
    EXPECT_FALSE(parse_msg_id(bad)) << bad;
}

TEST(GatewayEvent, TheLeadingSeqAndTheFilterFieldsComeFromTheBody) {
  EXPECT_EQ(leading_seq(R"({"seq":17,"type":"x"})"), 17u);
  EXPECT_EQ(leading_seq(R"({"seq":,"type":"x"})"), 0u);
  EXPECT_EQ(leading_seq(R"({"type":"x","seq":1})"), 0u);
  const auto m = parse_event_meta(
      R"({"seq":3,"type":"alert.triggered","ts":1,"alert_id":"0000000d-0000-4000-8000-000000000001","user_id":"0000000c-0000-4000-8000-000000000002","market_id":"0000000a-0000-4000-8000-000000000003","price":"1"})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, EventType::alert_triggered);
  EXPECT_EQ(m->user_id.str(), "0000000c-0000-4000-8000-000000000002");
  EXPECT_TRUE(m->has_market);
  EXPECT_EQ(m->market_id.str(), "0000000a-0000-4000-8000-000000000003");
  const auto none = parse_event_meta(
      R"({"seq":4,"type":"alert.rejected","ts":1,"alert_id":"0000000d-0000-4000-8000-000000000001","user_id":"0000000c-0000-4000-8000-000000000002","market_id":null})");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_market);
  const auto unserved = parse_event_meta(
      R"({"seq":5,"type":"market.unserved","ts":1,"market_id":"0000000a-0000-4000-8000-000000000003"})");
  ASSERT_TRUE(unserved);
  EXPECT_TRUE(unserved->user_id.is_nil());
  EXPECT_FALSE(parse_event_meta(R"({"seq":6,"type":"no.such"})"));
  EXPECT_FALSE(parse_event_meta(R"({"seq":6,"type":"alert.triggered","user_id":"bad"})"));
}

TEST(GatewayEvent, TheStreamSeqReplacesTheShardSeqWhichIsKept) {
  std::string out;
  ASSERT_TRUE(
      render_gateway_event(out, R"({"seq":17,"type":"alert.triggered","ts":1})", 1234, "b"));
  EXPECT_EQ(out, R"({"seq":1234,"shard":"b","shard_seq":17,"type":"alert.triggered","ts":1})");
  ASSERT_TRUE(render_gateway_event(out, R"({"seq":5})", 6, "a"));
  EXPECT_EQ(out, R"({"seq":6,"shard":"a","shard_seq":5})");
  out = "untouched";
  EXPECT_FALSE(render_gateway_event(out, R"({"type":"x","seq":1})", 2, "a"));
  EXPECT_FALSE(render_gateway_event(out, R"({"seq":,"x":1})", 2, "a"));
  EXPECT_FALSE(render_gateway_event(out, R"({"seq":12)", 2, "a"));
  EXPECT_FALSE(render_gateway_event(out, "", 2, "a"));
  EXPECT_EQ(out, "untouched");
}

// ---------------------------------------------------------------------------------------------
// The publisher's decisions (scaleout/publish_cursor.h).

TEST(StreamTail, OnlyATailThisShardWroteIsResumedAfter) {
  using K = TailVerdict::Kind;
  const std::string body = R"({"seq":40,"type":"alert.triggered"})";
  EXPECT_EQ(judge_tail("a", std::nullopt, 100, std::nullopt).kind, K::resume);
  EXPECT_EQ(judge_tail("a", std::nullopt, 100, std::nullopt).stored, 0u);
  const auto own = judge_tail("a", StreamTail{"a:40", body}, 100, body);
  EXPECT_EQ(own.kind, K::resume);
  EXPECT_EQ(own.stored, 40u);
  // The journal no longer holds seq 40 (retention): trusted by its seq alone.
  EXPECT_EQ(judge_tail("a", StreamTail{"a:40", body}, 100, std::nullopt).kind, K::resume);
  // Section 2's forged tail: beyond anything the shard journaled.
  const auto forged = judge_tail("a", StreamTail{"a:99999999", body}, 100, std::nullopt);
  EXPECT_EQ(forged.kind, K::beyond_head);
  EXPECT_EQ(forged.stored, 99'999'999u);
  EXPECT_FALSE(forged.trusted());
  // A forged tail below the head: its seq is plausible, its body is not the shard's event 40.
  // Resuming after it would publish 41..100 a second time.
  EXPECT_EQ(judge_tail("a", StreamTail{"a:40", R"({"seq":40,"type":"x"})"}, 100, body).kind,
            K::not_journaled);
  // Another shard's id, a malformed one, none.
  EXPECT_EQ(judge_tail("a", StreamTail{"b:40", body}, 100, body).kind, K::foreign_id);
  EXPECT_EQ(judge_tail("a", StreamTail{"a:x", body}, 100, body).kind, K::foreign_id);
  EXPECT_EQ(judge_tail("a", StreamTail{"", body}, 100, body).kind, K::foreign_id);
  // A journal restored below the stream: head 30, the stream holds 40.
  EXPECT_EQ(judge_tail("a", StreamTail{"a:40", body}, 30, std::nullopt).kind, K::beyond_head);
}

Entry entry(std::uint64_t seq) {
  Entry e;
  e.meta.seq = seq;
  e.json = std::make_shared<const std::string>("{\"seq\":" + std::to_string(seq) + "}");
  return e;
}

using Step = PublishCursor::Step;

/// Sends and acknowledges what the cursor says until it waits; the seqs sent and where from.
std::vector<std::pair<std::uint64_t, bool>> drain(PublishCursor& c, std::uint64_t head,
                                                  std::size_t max_pending = 100) {
  std::vector<std::pair<std::uint64_t, bool>> out;
  for (Step st = c.next(head, max_pending); st.kind == Step::Kind::send;
       st = c.next(head, max_pending)) {
    EXPECT_EQ(st.entry->meta.seq, st.seq);
    out.emplace_back(st.seq, st.from_live);
    c.sent(st);
    c.window().acked(st.seq);
  }
  return out;
}

TEST(PublishCursor, LiveEventsGoInOrderAndWhatIsAlreadyStoredIsDropped) {
  PublishCursor c(8);
  c.reset(3);  // the stream holds 1..3
  EXPECT_FALSE(c.offer_live(entry(2)));
  EXPECT_TRUE(c.live_empty()) << "an event the stream holds is not queued";
  for (std::uint64_t s = 4; s <= 6; ++s) EXPECT_FALSE(c.offer_live(entry(s)));
  EXPECT_EQ(c.next(3, 100).kind, Step::Kind::wait) << "head 3: nothing journaled to publish";
  const auto sent = drain(c, 6);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent.front(), (std::pair<std::uint64_t, bool>{4, true}));
  EXPECT_EQ(sent.back(), (std::pair<std::uint64_t, bool>{6, true}));
  EXPECT_EQ(c.window().acked_through(), 6u);
  EXPECT_EQ(c.next(6, 100).kind, Step::Kind::wait);
}

TEST(PublishCursor, AFullWindowWaitsAndAnOverflowIsReadBackFromTheJournal) {
  PublishCursor c(4);
  c.reset(0);
  int overflows = 0;
  for (std::uint64_t s = 1; s <= 10; ++s) overflows += c.offer_live(entry(s)) ? 1 : 0;
  EXPECT_EQ(overflows, 6) << "a bounded live queue: the oldest six dropped, counted";
  // 1..6 are gone from the live queue: the journal has them.
  Step st = c.next(10, 2);
  ASSERT_EQ(st.kind, Step::Kind::read_journal);
  EXPECT_EQ(st.seq, 1u);
  for (std::uint64_t s = 1; s <= 6; ++s) c.backlog().push_back(entry(s));
  st = c.next(10, 2);
  ASSERT_EQ(st.kind, Step::Kind::send);
  EXPECT_FALSE(st.from_live);
  c.sent(st);
  c.sent(c.next(10, 2));
  EXPECT_EQ(c.next(10, 2).kind, Step::Kind::wait) << "two in flight of at most two";
  c.window().acked(1);
  c.window().acked(2);
  const auto sent = drain(c, 10);
  ASSERT_EQ(sent.size(), 8u);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].first, 3 + i);
    EXPECT_EQ(sent[i].second, sent[i].first >= 7) << "the journal to 6, then live";
  }
}

TEST(PublishCursor, AReconnectBelowWhatWasSentRepublishesFromTheJournal) {
  PublishCursor c(16);
  c.reset(0);
  for (std::uint64_t s = 1; s <= 5; ++s) c.offer_live(entry(s));
  for (int i = 0; i < 5; ++i) c.sent(c.next(5, 100));
  c.window().acked(1);
  c.window().failed(3);
  ASSERT_TRUE(c.window().needs_rewind());
  c.reset(2);  // the stream holds 1..2: 3..5 again, from the journal (live already sent them)
  Step st = c.next(5, 100);
  ASSERT_EQ(st.kind, Step::Kind::read_journal);
  EXPECT_EQ(st.seq, 3u);
  for (std::uint64_t s = 3; s <= 5; ++s) c.backlog().push_back(entry(s));
  const auto sent = drain(c, 5);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent.front().first, 3u);
  EXPECT_FALSE(sent.front().second);
}

TEST(PublishCursor, SeqsThatAreNotComingAreJumpedOnceNothingIsInFlight) {
  PublishCursor c(16);
  c.reset(0);
  c.offer_live(entry(1));
  c.sent(c.next(20, 100));
  // 2..9 are in neither the live queue nor the journal (a hole); the journal continues at 10.
  ASSERT_EQ(c.next(20, 100).kind, Step::Kind::read_journal);
  for (std::uint64_t s = 10; s <= 12; ++s) c.backlog().push_back(entry(s));
  EXPECT_EQ(c.next(20, 100).kind, Step::Kind::wait) << "1 is still in flight";
  c.window().acked(1);
  Step st = c.next(20, 100);
  ASSERT_EQ(st.kind, Step::Kind::jump);
  EXPECT_EQ(st.seq, 2u);
  EXPECT_EQ(st.to, 10u);
  EXPECT_EQ(c.jumped(st, false), 8u) << "lost: counted";
  st = c.next(20, 100);
  ASSERT_EQ(st.kind, Step::Kind::send);
  EXPECT_EQ(st.seq, 10u);
  EXPECT_FALSE(st.gap) << "an undeclared hole is not named to the gateway";
  EXPECT_EQ(c.window().acked_through(), 9u);
}

TEST(PublishCursor, ARestoresDeclaredGapIsNamedOnTheEventAfterIt) {
  PublishCursor c(16);
  c.reset(50);
  c.offer_live(entry(1'051));
  c.offer_live(entry(1'052));
  ASSERT_EQ(c.next(1'052, 100).kind, Step::Kind::read_journal);
  c.backlog().push_back(entry(1'051));
  Step st = c.next(1'052, 100);
  ASSERT_EQ(st.kind, Step::Kind::jump);
  EXPECT_EQ(st.seq, 51u);
  EXPECT_EQ(st.to, 1'051u);
  EXPECT_EQ(c.jumped(st, true), 0u) << "declared: nothing lost";
  st = c.next(1'052, 100);
  ASSERT_EQ(st.kind, Step::Kind::send);
  EXPECT_TRUE(st.from_live);
  ASSERT_TRUE(st.gap);
  EXPECT_EQ(*st.gap, (PublishCursor::Gap{51, 1'050}));
  c.sent(st);
  st = c.next(1'052, 100);
  ASSERT_EQ(st.kind, Step::Kind::send);
  EXPECT_FALSE(st.gap) << "named once";
}

// ---------------------------------------------------------------------------------------------
// The gateway's decision per message (scaleout/gateway_intake.h).

std::string body(int seq, const char* type = "alert.triggered") {
  return "{\"seq\":" + std::to_string(seq) + ",\"type\":\"" + type +
         R"(","ts":1,"user_id":"0000000c-0000-4000-8000-000000000002"})";
}

TEST(GatewayIntake, EventsAreRenderedWithTheStreamSeqAndJudgedInTheirShardsOrder) {
  GatewayIntake in({"a", "b"}, "laminator.events");
  const std::string b1 = body(1), b2 = body(2), b4 = body(4), b3 = body(3);
  auto d = in.take({10, "laminator.events.a", "a:1", nullptr, b1});
  ASSERT_EQ(d.kind, GatewayIntake::Kind::event);
  EXPECT_EQ(d.order, ShardOrder::Verdict::in_order);
  EXPECT_EQ(
      *d.decoded->entry.json,
      R"({"seq":10,"shard":"a","shard_seq":1,"type":"alert.triggered","ts":1,"user_id":"0000000c-0000-4000-8000-000000000002"})");
  const Entry e = std::move(d).entry(10);
  EXPECT_EQ(e.meta.seq, 10u);
  EXPECT_FALSE(e.meta.hole);
  EXPECT_EQ(in.take({11, "laminator.events.b", "b:1", nullptr, b1}).order,
            ShardOrder::Verdict::in_order)
      << "each shard has its own order";
  d = in.take({12, "laminator.events.a", "a:4", nullptr, b4});
  EXPECT_EQ(d.order, ShardOrder::Verdict::gap);
  EXPECT_EQ(d.shard_last, 1u);
  EXPECT_EQ(in.take({13, "laminator.events.a", "a:3", nullptr, b3}).order,
            ShardOrder::Verdict::repeat);
  d = in.take({14, "laminator.events.b", "b:9", "2-8", body(9)});
  EXPECT_EQ(d.order, ShardOrder::Verdict::declared_gap);
  EXPECT_EQ(in.handed(), 14u);
}

TEST(GatewayIntake, RedeliveriesAreSkippedAndAReopenedConsumerKeepsWhatWasHanded) {
  GatewayIntake in({}, "laminator.events");
  const std::string b1 = body(1), b2 = body(2);
  EXPECT_EQ(in.take({5, "laminator.events.a", "a:1", nullptr, b1}).kind,
            GatewayIntake::Kind::event);
  EXPECT_EQ(in.take({5, "laminator.events.a", "a:1", nullptr, b1}).kind,
            GatewayIntake::Kind::redelivery);
  // Reopened after acknowledging 3 only: 4 and 5 come again and are not served twice.
  in.reopened(3);
  EXPECT_EQ(in.handed(), 5u);
  EXPECT_EQ(in.take({4, "laminator.events.a", "a:0", nullptr, b1}).kind,
            GatewayIntake::Kind::redelivery);
  EXPECT_EQ(in.take({6, "laminator.events.a", "a:2", nullptr, b2}).kind,
            GatewayIntake::Kind::event);
  in.reopened(9);  // a restore: the consumer starts after 9
  EXPECT_EQ(in.handed(), 9u);
}

TEST(GatewayIntake, WhatIsNotOursBecomesAHoleAndNeverCutsAnybody) {
  GatewayIntake in({"a"}, "laminator.events");
  const std::string good = body(1);
  struct Case {
    const char* what;
    StreamMessage m;
    GatewayIntake::Kind kind;
  };
  const std::string bad_type = body(1, "no.such"), no_seq = R"({"type":"alert.triggered"})";
  const Case cases[] = {
      {"no id", {1, "laminator.events.a", nullptr, nullptr, good}, GatewayIntake::Kind::malformed},
      {"bad id", {2, "laminator.events.a", "a:", nullptr, good}, GatewayIntake::Kind::malformed},
      {"id names another subject",
       {3, "laminator.events.a", "b:1", nullptr, good},
       GatewayIntake::Kind::malformed},
      {"another prefix",
       {4, "other.events.a", "a:1", nullptr, good},
       GatewayIntake::Kind::malformed},
      {"unknown type",
       {5, "laminator.events.a", "a:1", nullptr, bad_type},
       GatewayIntake::Kind::malformed},
      {"no leading seq",
       {6, "laminator.events.a", "a:1", nullptr, no_seq},
       GatewayIntake::Kind::malformed},
      {"empty body", {7, "laminator.events.a", "a:1", nullptr, ""}, GatewayIntake::Kind::malformed},
      {"a shard not served",
       {8, "laminator.events.z", "z:1", nullptr, good},
       GatewayIntake::Kind::unknown_shard},
  };
  for (const Case& c : cases) {
    auto d = in.take(c.m);
    EXPECT_EQ(d.kind, c.kind) << c.what;
    const Entry hole = std::move(d).entry(c.m.stream_seq);
    EXPECT_TRUE(hole.meta.hole) << c.what;
    EXPECT_EQ(hole.meta.seq, c.m.stream_seq) << c.what << ": the seq still advances";
    EXPECT_EQ(hole.json, nullptr) << c.what;
  }
  EXPECT_EQ(in.handed(), 8u);
  // A malformed gap header is ignored, not trusted: the jump counts as a fault.
  in.take({9, "laminator.events.a", "a:1", nullptr, good});
  const std::string b5 = body(5);
  EXPECT_EQ(in.take({10, "laminator.events.a", "a:5", "4-2", b5}).order, ShardOrder::Verdict::gap);
}

TEST(ScaleOutConfig, ShardNatsAndGatewaySectionsParseAndValidate) {
  const Config c = parse_config(R"(
[shard]
id = "eu_1"
venues = ["binance", "okx"]
markets = ["0000000a-0000-4000-8000-000000000009"]
hash_count = 4
hash_index = 3
orphans = true
[nats]
url = "nats://user:secret@127.0.0.1:4222"
stream = "EVENTS"
subject_prefix = "lam.ev"
storage = "memory"
duplicate_window_ms = 60000
max_age_hours = 24
max_pending = 1000
ack_wait_ms = 2000
)",
                                "t.toml");
  ASSERT_TRUE(c.shard);
  EXPECT_EQ(c.shard->id, "eu_1");
  EXPECT_EQ(c.shard->venues.size(), 2u);
  EXPECT_EQ(c.shard->markets.size(), 1u);
  EXPECT_EQ(c.shard->hash_count, 4u);
  EXPECT_TRUE(c.shard->orphans);
  ASSERT_TRUE(c.nats);
  EXPECT_EQ(c.nats->stream, "EVENTS");
  EXPECT_EQ(c.nats->storage, NatsConfig::Storage::memory);
  EXPECT_EQ(c.nats->duplicate_window.count(), 60'000);
  EXPECT_FALSE(c.is_gateway);
  EXPECT_EQ(nats_url(c), "nats://user:secret@127.0.0.1:4222");
  // The password never reaches a log line.
  const std::string summary = redacted_summary(c);
  EXPECT_EQ(summary.find("secret"), std::string::npos) << summary;
  EXPECT_NE(summary.find("nats://***@127.0.0.1:4222"), std::string::npos) << summary;
  EXPECT_EQ(redact_nats_url("nats://a:b@h1:1,tls://tok@h2:2,nats://h3:3"),
            "nats://***@h1:1,tls://***@h2:2,nats://h3:3");

  const auto fails = [](const std::string& text, const std::string& what) {
    try {
      (void)parse_config(text, "t.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  fails("[shard]\nid = \"Bad.Id\"\nvenues = [\"okx\"]\n[nats]\n", "shard.id");
  fails("[shard]\nid = \"a\"\nvenues = [\"nyse\"]\n[nats]\n", "unknown venue");
  fails("[shard]\nid = \"a\"\n[nats]\n", "owns no market");
  fails("[shard]\nid = \"a\"\nhash_count = 2\nhash_index = 2\n[nats]\n", "below hash_count");
  fails("[shard]\nid = \"a\"\nvenues = [\"okx\"]\n", "add a [nats] section");
  fails("[nats]\nstream = \"a.b\"\n", "nats.stream");
  fails("[nats]\nsubject_prefix = \"a.>\"\n", "nats.subject_prefix");
  fails("[nats]\nstorage = \"tape\"\n", "nats.storage");
  fails("[nats]\nduplicate_window_ms = 5\n", "nats.duplicate_window_ms");
  fails("[nats]\n[gateway]\ndurable = \"a b\"\n", "gateway.durable");
}

// Issue 31, section 4: `laminator config check` of a gateway's file says it is one (it described it
// as a daemon's: database, writer, venues), and what a gateway needs is checked.
TEST(ScaleOutConfig, AGatewaysFileIsCheckedAndDescribedAsAGateways) {
  const Config g = parse_config(R"(
[nats]
url = "nats://gw:secret@127.0.0.1:4222"
[gateway]
durable = "gw-1"
fetch_batch = 64
shards = ["a", "b"]
)",
                                "gw.toml");
  EXPECT_TRUE(g.is_gateway);
  EXPECT_EQ(g.gateway.durable, "gw-1");
  EXPECT_EQ(g.gateway.fetch_batch, 64u);
  EXPECT_EQ(g.gateway.shards, (std::vector<std::string>{"a", "b"}));
  const std::string summary = redacted_summary(g);
  EXPECT_EQ(summary.rfind("gateway config gw.toml", 0), 0u) << summary;
  EXPECT_NE(summary.find("consumer gw-1, fetch_batch 64, shards a,b"), std::string::npos)
      << summary;
  EXPECT_EQ(summary.find("database"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("secret"), std::string::npos) << summary;
  const auto fails = [](const std::string& text, const std::string& what) {
    try {
      (void)parse_config(text, "gw.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  fails("[gateway]\n", "the gateway reads JetStream: add a [nats] section");
  fails("[shard]\nid = \"a\"\nvenues = [\"okx\"]\n[nats]\n[gateway]\n", "one per file");
  fails("[nats]\n[gateway]\nshards = [\"A-1\"]\n", "not a shard id");
  fails("[nats]\n[gateway]\nfetch_batch = 4\n", "gateway.fetch_batch");

  // laminator-gateway's loader: the same file, without the daemon's sections (it does not link the
  // venue table that reads them).
  const std::string path = ::testing::TempDir() + "gw-" + std::to_string(::getpid()) + ".toml";
  const auto write = [&](const std::string& text) {
    std::ofstream(path) << text;
    return path;
  };
  const Config lg = load_gateway_config(
      write("[nats]\nurl = \"nats://127.0.0.1:4222\"\n[gateway]\nshards = [\"a\"]\n"));
  EXPECT_TRUE(lg.is_gateway);
  EXPECT_EQ(lg.gateway.shards, (std::vector<std::string>{"a"}));
  for (const char* section : {"feeds", "shard"}) {
    try {
      (void)load_gateway_config(write(std::string("[nats]\n[gateway]\n[") + section + "]\n"));
      ADD_FAILURE() << "a gateway's config took [" << section << "]";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(section) + ": a daemon's section"),
                std::string::npos)
          << e.what();
    }
  }
  std::remove(path.c_str());
}

// `laminator nats-authorization`: each shard's user publishes on its own subject only, the
// gateway's on none; bad names and a wrong number of passwords are refused, not written.
TEST(NatsAuthorization, EachShardPublishesOnItsOwnSubjectAndTheGatewayOnNone) {
  NatsAuthorization a;
  a.shards = {"a", "b"};
  a.passwords = {"pa", "pb", "pg\"x"};
  const std::string block = nats_authorization_block(a);
  const auto user = [&](const std::string& name) {
    const auto at = block.find("{user: \"" + name + "\"");
    return at == std::string::npos ? std::string() : block.substr(at, block.find("}}", at) - at);
  };
  const std::string ua = user("shard_a"), ub = user("shard_b"), ug = user("gateway");
  ASSERT_FALSE(ua.empty());
  ASSERT_FALSE(ug.empty());
  EXPECT_NE(ua.find("\"laminator.events.a\""), std::string::npos) << ua;
  EXPECT_EQ(ua.find("laminator.events.b"), std::string::npos) << ua;
  EXPECT_NE(ub.find("\"laminator.events.b\""), std::string::npos) << ub;
  EXPECT_EQ(ug.find("allow: [\"laminator.events"), std::string::npos) << ug;
  EXPECT_NE(ug.find("deny: [\"laminator.events.>\"]"), std::string::npos) << ug;
  EXPECT_EQ(ug.find("STREAM.UPDATE"), std::string::npos) << "the gateway never changes the stream";
  EXPECT_NE(ug.find("$JS.API.CONSUMER.*.*.LAMINATOR.>"), std::string::npos) << ug;
  EXPECT_NE(ug.find("password: \"pg\\\"x\""), std::string::npos) << "quotes escaped: " << ug;
  const auto refused = [](NatsAuthorization x) {
    try {
      (void)nats_authorization_block(x);
      return false;
    } catch (const std::invalid_argument&) {
      return true;
    }
  };
  NatsAuthorization bad = a;
  bad.shards = {"a.b", "c"};
  EXPECT_TRUE(refused(bad));
  bad = a;
  bad.passwords.pop_back();
  EXPECT_TRUE(refused(bad));
  bad = a;
  bad.subject_prefix = "laminator.>";
  EXPECT_TRUE(refused(bad));
  bad = a;
  bad.stream = "A B";
  EXPECT_TRUE(refused(bad));
}

// Issue 31, section 4: after a point-in-time restore a shard jumps over the seqs it declared
// skipped and names them on its next event (Laminator-Gap); the gateway counted that jump as a
// fault (LaminatorGatewayShardOrder fired for 10 minutes). A declared gap is not one; an undeclared
// jump, one only partly declared, and a repeat still are.
TEST(ShardOrder, ADeclaredGapIsNoFaultAndEverythingElseIsJudgedAsBefore) {
  using V = ShardOrder::Verdict;
  ShardOrder o;
  EXPECT_EQ(o.observe("a", 1), V::in_order);
  EXPECT_EQ(o.observe("a", 2), V::in_order);
  EXPECT_EQ(o.observe("b", 7), V::in_order) << "the first seen of a shard sets where it is";
  EXPECT_EQ(o.observe("a", 2), V::repeat);
  EXPECT_EQ(o.observe("a", 1'000, ShardOrder::Declared{3, 999}), V::declared_gap);
  EXPECT_EQ(o.observe("a", 1'001), V::in_order);
  EXPECT_EQ(o.observe("a", 2'000, ShardOrder::Declared{1'500, 1'999}), V::gap)
      << "1,002..1,499 were not declared";
  EXPECT_EQ(o.observe("a", 2'005), V::gap);
  EXPECT_EQ(o.last("a"), 2'005u);
  EXPECT_EQ(o.observe("b", 9, ShardOrder::Declared{8, 8}), V::declared_gap);
  EXPECT_EQ(parse_gap("3-999"), (std::pair<std::uint64_t, std::uint64_t>{3, 999}));
  EXPECT_EQ(parse_gap("5-5"), (std::pair<std::uint64_t, std::uint64_t>{5, 5}));
  for (const char* bad : {"", "-", "3-", "-4", "0-4", "5-4", "3-4x", "a-b", "3--4"})
    EXPECT_FALSE(parse_gap(bad)) << bad;
}

TEST(ChangeNotes, TheMarketsOfAChangeComeWithItAndBadOnesAreRefused) {
  // As json_strip_nulls(json_build_object(...)) writes them (migration 0011).
  const auto plain = db::parse_change_payload(
      R"({"t" : "markets", "op" : "UPDATE", "id" : "0000000a-0000-4000-8000-000000000001"})");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->market);
  EXPECT_FALSE(plain->old_market);
  const auto moved = db::parse_change_payload(
      R"({"t" : "alerts", "op" : "UPDATE", "id" : "0000000d-0000-4000-8000-000000000001", )"
      R"("m" : "0000000a-0000-4000-8000-000000000002", "om" : "0000000a-0000-4000-8000-000000000003"})");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->table, "alerts");
  ASSERT_TRUE(moved->market);
  EXPECT_EQ(moved->market->str(), "0000000a-0000-4000-8000-000000000002");
  ASSERT_TRUE(moved->old_market);
  EXPECT_EQ(moved->old_market->str(), "0000000a-0000-4000-8000-000000000003");
  EXPECT_FALSE(db::parse_change_payload(
      R"({"t":"alerts","op":"INSERT","id":"0000000d-0000-4000-8000-000000000001","m":"nope"})"));
}

// The start-up half of the ownership rule: the loader's rows of other shards' markets never reach
// the matcher's sink; an alert without a market goes to the orphans shard only.
TEST(ShardSink, OtherShardsRowsAreSkippedAndCounted) {
  ShardConfig cfg;
  cfg.id = "a";
  cfg.venues = {"binance"};
  ShardMap shard(cfg);
  const Uuid ours = *Uuid::parse("0000000a-0000-4000-8000-000000000001");
  const Uuid theirs = *Uuid::parse("0000000a-0000-4000-8000-000000000002");
  ASSERT_TRUE(shard.market(ours, "binance"));
  ASSERT_FALSE(shard.market(theirs, "okx"));
  std::vector<Uuid> positions, alerts, orders;
  db::LoadSink inner;
  inner.position = [&](PositionSpec&& s) { positions.push_back(s.market_id); };
  inner.alert = [&](AlertSpec&& s) { alerts.push_back(s.id); };
  inner.order = [&](OrderSpec&& s) { orders.push_back(s.market_id); };
  std::size_t skipped = 0;
  db::LoadSink sink = shard_filtered(std::move(inner), shard, skipped);
  for (const Uuid& m : {ours, theirs}) {
    PositionSpec p;
    p.market_id = m;
    sink.position(std::move(p));
    OrderSpec o;
    o.market_id = m;
    sink.order(std::move(o));
  }
  AlertSpec a1;
  a1.id = ours;
  a1.market_id = ours;
  sink.alert(std::move(a1));
  AlertSpec a2;
  a2.id = theirs;  // no market: the orphans shard's, not this one's
  sink.alert(std::move(a2));
  EXPECT_EQ(positions, std::vector<Uuid>{ours});
  EXPECT_EQ(orders, std::vector<Uuid>{ours});
  EXPECT_EQ(alerts, std::vector<Uuid>{ours});
  EXPECT_EQ(skipped, 3u);
  EXPECT_TRUE(shard.owns_alert(std::nullopt) == false && shard.owns_alert(ours));
  // Without [shard] the sink is handed back as it was.
  std::size_t none = 0;
  db::LoadSink plain;
  plain.position = [&](PositionSpec&&) { ++none; };
  ShardMap all;
  db::LoadSink same = shard_filtered(std::move(plain), all, skipped);
  PositionSpec p;
  p.market_id = theirs;
  same.position(std::move(p));
  EXPECT_EQ(none, 1u);
}

TEST(ForeignMarkets, MarkedAndUnmarkedFromAnyThread) {
  ForeignMarkets f;
  f.set(id(1), true);
  EXPECT_TRUE(f.contains(id(1)));
  EXPECT_FALSE(f.contains(id(2)));
  f.set(id(1), false);
  EXPECT_FALSE(f.contains(id(1)));
}

TEST(ShardConnection, TheJournalSchemaGoesFirstOnTheSearchPath) {
  EXPECT_EQ(db::with_search_path("postgresql://u@/db?host=/tmp", "laminator_shard_a"),
            "postgresql://u@/db?host=/tmp&options=-c%20search_path%3Dlaminator_shard_a%2Cpublic");
  EXPECT_EQ(db::with_search_path("postgres://u@h/db", "s"),
            "postgres://u@h/db?options=-c%20search_path%3Ds%2Cpublic");
  EXPECT_EQ(db::with_search_path("host=/tmp dbname=x", "s"),
            "host=/tmp dbname=x options='-c search_path=s,public'");
}

}  // namespace
}  // namespace lam::daemon
