// The subscriber's resume state machine, without sockets: every seq is delivered once, in order,
// paced by writes; the hand-offs between journal, ring and live; slow, gap, ahead and close.
#include "stream/subscription.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace lam::daemon {
namespace {

Uuid user(std::uint32_t n) {
  return *Uuid::parse("0000000c-0000-4000-8000-" + std::string(12 - std::to_string(n).size(), '0') +
                      std::to_string(n));
}

Entry entry(std::uint64_t seq, std::uint32_t u = 1) {
  return Entry{EventMeta{seq, EventType::alert_triggered, user(u), Uuid{}, false},
               std::make_shared<const std::string>("{\"seq\":" + std::to_string(seq) + "}")};
}

void fill(EventRing& ring, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t s = from; s <= to; ++s) ring.push(entry(s, static_cast<std::uint32_t>(s % 3)));
}

/// A journal holding seqs [1, max] (user = seq % 3), answering like JournalReader.
JournalPage journal_page(std::uint64_t max, const Subscription::JournalRequest& r) {
  JournalPage p;
  p.ok = true;
  p.max_journaled = max;
  for (std::uint64_t s = r.after + 1; s <= max && p.rows.size() < r.limit; ++s) {
    const Entry e = entry(s, static_cast<std::uint32_t>(s % 3));
    bool wanted = r.users.empty();
    for (const Uuid& u : r.users) wanted = wanted || u == e.meta.user_id;
    p.last_seq = s;
    if (wanted) p.rows.push_back(JournalRow{e.meta, *e.json});
  }
  p.complete = p.last_seq == 0 || p.last_seq >= max;
  if (!p.complete) {
    // Like SQL's LIMIT over the filtered rows: incomplete only when `limit` rows matched.
    p.complete = p.rows.size() < r.limit;
  }
  return p;
}

/// Writes everything the subscription composes, checking the queue bound; returns seqs written.
std::vector<std::uint64_t> write_all(Subscription& s, std::size_t cap, std::uint64_t journal_max,
                                     int max_rounds = 1'000'000) {
  std::vector<std::uint64_t> seqs;
  std::string out;
  for (int i = 0; i < max_rounds; ++i) {
    EXPECT_LE(s.queued(), cap);
    if (auto r = s.take_journal_request()) {
      s.on_journal(journal_page(journal_max, *r), r->generation);
      continue;
    }
    const std::size_t n = s.compose(out, 64 * 1024);
    if (n == 0) break;
    std::size_t start = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const auto end = out.find('\n', start);
      const std::string line = out.substr(start, end - start);
      seqs.push_back(std::stoull(line.substr(7)));
      start = end + 1;
    }
    s.on_written();
  }
  return seqs;
}

void expect_contiguous(const std::vector<std::uint64_t>& seqs, std::uint64_t from,
                       std::uint64_t to) {
  ASSERT_EQ(seqs.size(), to - from + 1);
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], from + i) << "at " << i;
}

TEST(Subscription, WithoutSinceStartsLiveAtTheHead) {
  EventRing ring(100, 0);
  fill(ring, 1, 50);
  Subscription s(ring, {}, std::nullopt, 10, true);
  s.on_accepted();
  EXPECT_EQ(s.phase(), Subscription::Phase::live);
  EXPECT_EQ(s.queued(), 0u);
  const Entry e = entry(51);
  ring.push(e);
  s.on_live(e);
  expect_contiguous(write_all(s, 10, 0), 51, 51);
}

// Issue 28, section 2: a read-committed subscriber (committed=1) is sent an event only once it is
// journaled: events published but not stored wait in its queue, in order, and none is lost.
TEST(Subscription, ReadCommittedSendsOnlyJournaledEventsInOrder) {
  EventRing ring(100, 0);
  fill(ring, 1, 50);
  Subscription s(ring, {}, 40, 10, true, 0, /*committed_only=*/true, /*committed_head=*/45);
  s.on_accepted();
  std::string out;
  EXPECT_EQ(s.compose(out, 1 << 16), 5u) << "41..45 are journaled";
  EXPECT_EQ(out, "{\"seq\":41}\n{\"seq\":42}\n{\"seq\":43}\n{\"seq\":44}\n{\"seq\":45}");
  s.on_written();
  EXPECT_EQ(s.compose(out, 1 << 16), 0u) << "46..50 are published, not journaled";
  EXPECT_EQ(s.written(), 45u) << "a resume starts after the last event sent";
  for (std::uint64_t q = 51; q <= 52; ++q) {
    const Entry e = entry(q);
    ring.push(e);
    s.on_live(e);
  }
  s.on_committed(44);  // never backwards
  EXPECT_EQ(s.compose(out, 1 << 16), 0u);
  s.on_committed(51);
  const std::size_t n = s.compose(out, 1 << 16);
  EXPECT_EQ(n, 6u);
  EXPECT_EQ(out.substr(0, 10), "{\"seq\":46}");
  EXPECT_EQ(out.substr(out.size() - 10), "{\"seq\":51}");
  s.on_written();
  s.on_committed(60);
  expect_contiguous(write_all(s, 10, 0), 52, 52);
  // The default mode sends at once.
  Subscription d(ring, {}, 50, 10, true);
  d.on_accepted();
  EXPECT_EQ(d.compose(out, 1 << 16), 2u);
}

TEST(Subscription, SinceAheadOfTheHeadIsRefusedNotServedLive) {
  EventRing ring(100, 0);
  fill(ring, 1, 50);
  Subscription s(ring, {}, 80, 10, true);
  s.on_accepted();
  ASSERT_TRUE(s.close_order());
  EXPECT_EQ(s.close_order()->code, 1008);
  EXPECT_EQ(s.close_order()->kind, Subscription::CloseKind::ahead);
  EXPECT_NE(s.close_text().find("since=80"), std::string::npos);
  for (std::uint64_t q = 51; q <= 90; ++q) {  // the server goes on: nothing reaches this client
    ring.push(entry(q));
    s.on_live(entry(q));
  }
  EXPECT_EQ(s.queued(), 0u);
}

TEST(Subscription, CatchUpFromTheRingIsPacedByWritesAndLosesNothing) {
  // The old server pushed the whole backlog into the bounded queue at once and cut the client as
  // slow after one event: resume from more than client_queue back never succeeded.
  EventRing ring(100'000, 0);
  fill(ring, 1, 20'000);
  Subscription s(ring, {}, 0, 1'024, true);
  s.on_accepted();
  EXPECT_EQ(s.phase(), Subscription::Phase::catch_up);
  EXPECT_EQ(s.queued(), 1'024u);
  const auto seqs = write_all(s, 1'024, 0);
  EXPECT_FALSE(s.close_order());
  EXPECT_EQ(s.phase(), Subscription::Phase::live);
  expect_contiguous(seqs, 1, 20'000);
}

TEST(Subscription, LiveEventsDuringCatchUpComeOnceFromTheRing) {
  EventRing ring(100'000, 0);
  fill(ring, 1, 3'000);
  Subscription s(ring, {}, 100, 1'024, true);
  s.on_accepted();
  std::vector<std::uint64_t> seqs;
  std::string out;
  std::uint64_t next = 3'001;
  for (int round = 0; round < 100 && !(s.phase() == Subscription::Phase::live && s.queued() == 0);
       ++round) {
    for (int k = 0; k < 50; ++k, ++next) {  // events keep firing between writes
      const Entry e = entry(next);
      ring.push(e);
      s.on_live(e);
    }
    const std::size_t n = s.compose(out, 1 << 20);
    for (std::size_t k = 0, start = 0; k < n; ++k) {
      const auto end = out.find('\n', start);
      seqs.push_back(std::stoull(out.substr(start + 7, end - start - 7)));
      start = end + 1;
    }
    s.on_written();
  }
  const auto rest = write_all(s, 1'024, 0);
  seqs.insert(seqs.end(), rest.begin(), rest.end());
  ASSERT_FALSE(s.close_order());
  expect_contiguous(seqs, 101, next - 1);
}

TEST(Subscription, ACatchUpThatEndsWithAFullQueueIsNotCutByTheNextLiveEvent) {
  // Regression (seen under ASan in the fault suite): the catch-up reached the head with the queue
  // full, went live, and the next live event cut a reader that was keeping pace as slow.
  EventRing ring(100'000, 0);
  fill(ring, 1, 1'024);
  Subscription s(ring, {}, 0, 1'024, true);
  s.on_accepted();
  EXPECT_EQ(s.queued(), 1'024u);
  EXPECT_EQ(s.phase(), Subscription::Phase::catch_up);  // caught up, but no room for live events
  for (std::uint64_t q = 1'025; q <= 1'100; ++q) {
    const Entry e = entry(q);
    ring.push(e);
    s.on_live(e);
  }
  EXPECT_FALSE(s.close_order());
  const auto seqs = write_all(s, 1'024, 0);
  EXPECT_FALSE(s.close_order());
  EXPECT_EQ(s.phase(), Subscription::Phase::live);
  expect_contiguous(seqs, 1, 1'100);
}

TEST(Subscription, CatchUpFromTheJournalHandsOverToTheRing) {
  EventRing ring(1'000, 0);
  fill(ring, 1, 10'000);  // the ring holds 9001..10000
  Subscription s(ring, {}, 0, 1'024, true);
  s.on_accepted();
  // The writer journaled up to 9500 when the pages were read.
  expect_contiguous(write_all(s, 1'024, 9'500), 1, 10'000);
  EXPECT_EQ(s.phase(), Subscription::Phase::live);
}

TEST(Subscription, FilteredCatchUpDeliversOnlyMatchingSeqsAndResumesPastTheOthers) {
  EventRing ring(1'000, 0);
  fill(ring, 1, 10'000);
  StreamFilter f;
  f.users = {user(1)};
  Subscription s(ring, f, 0, 1'024, true);
  s.on_accepted();
  const auto seqs = write_all(s, 1'024, 10'000);
  ASSERT_EQ(seqs.size(), 3'334u);
  for (std::size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], 1 + 3 * i);
  EXPECT_EQ(s.written(), 10'000u);  // everything considered
}

TEST(Subscription, AJournalPageOfUnreadableRowsStillAdvances) {
  EventRing ring(10, 0);
  fill(ring, 1, 100);
  Subscription s(ring, {}, 0, 1'024, true);
  s.on_accepted();
  auto r = s.take_journal_request();
  ASSERT_TRUE(r);
  JournalPage p;  // 1..90 read, none kept (types this build does not know)
  p.ok = true;
  p.max_journaled = 90;
  p.last_seq = 90;
  p.complete = true;
  s.on_journal(p, r->generation);
  expect_contiguous(write_all(s, 1'024, 90), 91, 100);
}

TEST(Subscription, EventsNeitherJournaledNorInTheRingCloseWith1013AndTheRightSince) {
  EventRing ring(1'000, 0);
  fill(ring, 1, 10'000);
  Subscription s(ring, {}, 0, 1'024, true);
  s.on_accepted();
  write_all(s, 1'024, 4'000);  // the writer is 5000 events behind
  ASSERT_TRUE(s.close_order());
  EXPECT_EQ(s.close_order()->code, 1013);
  EXPECT_EQ(s.written(), 4'000u);
  EXPECT_NE(s.close_text().find("since=4000"), std::string::npos) << s.close_text();
}

TEST(Subscription, NoJournalAndTooOldCloses1011) {
  EventRing ring(10, 0);
  fill(ring, 1, 100);
  Subscription s(ring, {}, 5, 1'024, false);
  s.on_accepted();
  ASSERT_TRUE(s.close_order());
  EXPECT_EQ(s.close_order()->code, 1011);
  EXPECT_NE(s.close_text().find("since=5"), std::string::npos);
}

TEST(Subscription, ASlowLiveSubscriberIsCutWithTheSinceItReallyHas) {
  EventRing ring(100'000, 0);
  Subscription s(ring, {}, std::nullopt, 100, true);
  s.on_accepted();
  std::string out;
  for (std::uint64_t q = 1; q <= 40; ++q) {
    ring.push(entry(q));
    s.on_live(entry(q));
  }
  ASSERT_EQ(s.compose(out, 1 << 20), 40u);  // 1..40 in flight
  for (std::uint64_t q = 41; q <= 200 && !s.close_order(); ++q) {
    ring.push(entry(q));
    s.on_live(entry(q));
  }
  ASSERT_TRUE(s.close_order());
  EXPECT_EQ(s.close_order()->kind, Subscription::CloseKind::slow);
  s.on_written();  // the write in flight completes before the close frame
  EXPECT_EQ(s.written(), 40u);
  EXPECT_NE(s.close_text().find("since=40"), std::string::npos) << s.close_text();
}

TEST(Subscription, AGapInLiveEventsCutsInsteadOfSkipping) {
  EventRing ring(100, 0);
  Subscription s(ring, {}, std::nullopt, 100, true);
  s.on_accepted();
  s.on_live(entry(1));
  s.on_live(entry(3));
  ASSERT_TRUE(s.close_order());
  EXPECT_EQ(s.close_order()->kind, Subscription::CloseKind::gap);
  // Event 1 was queued, not written: the resume point stays before it.
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_NE(s.close_text().find("since=0"), std::string::npos) << s.close_text();
}

// Issue 31, section 2: a message the gateway cannot trust (malformed, of a shard it does not know)
// is a hole: its seq is kept so the ring stays contiguous, nobody is cut for it, and no filter, not
// even none, sends it, live or from the ring.
TEST(Subscription, AHoleIsPassedOverLiveAndInCatchUpWithoutACut) {
  EventRing ring(100, 0);
  Subscription live(ring, {}, std::nullopt, 100, true);
  live.on_accepted();
  Entry hole;
  hole.meta.seq = 2;
  hole.meta.hole = true;  // no JSON at all
  for (const Entry& e : {entry(1), hole, entry(3)}) {
    ASSERT_TRUE(ring.push(e));
    live.on_live(e);
  }
  EXPECT_FALSE(live.close_order());
  const auto seqs = write_all(live, 100, 0);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 3}));
  Subscription resumed(ring, {}, 0, 100, true);
  resumed.on_accepted();
  EXPECT_EQ(write_all(resumed, 100, 0), (std::vector<std::uint64_t>{1, 3}));
  EXPECT_FALSE(resumed.close_order());
  StreamFilter any;
  EXPECT_FALSE(any.matches(hole.meta));
}

TEST(Subscription, ACloseOrderedDuringTheHandshakeWinsAndNothingIsQueued) {
  EventRing ring(100, 0);
  fill(ring, 1, 10);
  Subscription s(ring, {}, 0, 100, true);
  s.on_live(entry(11));  // the handshake is not complete: nothing may be queued
  EXPECT_EQ(s.queued(), 0u);
  s.close(1001, Subscription::CloseKind::server, "server shutting down");
  s.on_accepted();
  EXPECT_EQ(s.queued(), 0u);
  EXPECT_EQ(s.close_text(), "server shutting down");
}

TEST(Subscription, ANewFilterDuringAJournalReadDiscardsTheStalePage) {
  EventRing ring(10, 0);
  fill(ring, 1, 100);
  StreamFilter only1;
  only1.users = {user(1)};
  Subscription s(ring, only1, 0, 1'024, true);
  s.on_accepted();
  auto stale = s.take_journal_request();
  ASSERT_TRUE(stale);
  s.set_filter({});  // everyone now
  auto fresh = s.take_journal_request();
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->users.empty());
  s.on_journal(journal_page(90, *stale), stale->generation);  // ignored
  EXPECT_EQ(s.queued(), 0u);
  s.on_journal(journal_page(90, *fresh), fresh->generation);
  expect_contiguous(write_all(s, 1'024, 90), 1, 100);
}

TEST(EventRing, FindsBySeqAndRestartsAfterAGap) {
  EventRing ring(3, 10);
  EXPECT_EQ(ring.first(), 11u);
  EXPECT_TRUE(ring.push(entry(11)));
  EXPECT_TRUE(ring.push(entry(12)));
  EXPECT_TRUE(ring.push(entry(13)));
  EXPECT_TRUE(ring.push(entry(14)));
  EXPECT_EQ(ring.first(), 12u);
  EXPECT_EQ(ring.find(11), nullptr);
  const Entry* e13 = ring.find(13);
  ASSERT_NE(e13, nullptr);
  const std::uint64_t seq13 = e13->meta.seq;
  EXPECT_EQ(seq13, 13u);
  EXPECT_FALSE(ring.push(entry(20)));
  EXPECT_EQ(ring.first(), 20u);
  EXPECT_EQ(ring.size(), 1u);
}

}  // namespace
}  // namespace lam::daemon

namespace lam::daemon {
namespace {

TEST(Subscription, SinceBeyondTheRingButWithinTheKnownHeadWaitsLiveForTheRingToPassIt) {
  // The gateway restarted: its ring starts at what JetStream had acknowledged (40), the stream
  // holds up to 60, and a subscriber that had been served up to 55 comes back.
  EventRing ring(100, 40);
  Subscription s(ring, {}, 55, 100, true, /*known_head=*/60);
  s.on_accepted();
  ASSERT_FALSE(s.close_order());
  EXPECT_EQ(s.phase(), Subscription::Phase::live);
  std::vector<std::uint64_t> got;
  for (std::uint64_t q = 41; q <= 70; ++q) {
    const Entry e = entry(q);
    ring.push(e);
    s.on_live(e);
  }
  ASSERT_FALSE(s.close_order());
  std::string out;
  while (s.compose(out, 1 << 20) > 0) {
    for (std::size_t at = 0; (at = out.find("\"seq\":", at)) != std::string::npos; at += 6)
      got.push_back(std::stoull(out.substr(at + 6)));
    s.on_written();
  }
  ASSERT_EQ(got.size(), 15u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], 56 + i);
  // Beyond the known head it is still "ahead".
  Subscription far(ring, {}, 90, 10, true, 80);
  far.on_accepted();
  ASSERT_TRUE(far.close_order());
  EXPECT_EQ(far.close_order()->kind, Subscription::CloseKind::ahead);
}

}  // namespace
}  // namespace lam::daemon
