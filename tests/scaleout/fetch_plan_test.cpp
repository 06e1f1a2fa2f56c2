// The gateway's fetch plan (scaleout/fetch_plan.h): its transitions, and the plan run against a
// model of libnats 3.4.1's `_fetch` (src/js.c, the version Debian 12 ships) and of a nats-server
// 2.9 that delivers with a network delay. The model writes into an array of `Batch` entries exactly
// as `_fetch` does; an entry written past it is the heap overflow fixed upstream in nats.c PR #749.
// The old way (every fetch 512 with 100 ms, as the gateway fetched before) overflows under
// three shards' bursts; the plan never does, whatever the timing.
#include "scaleout/fetch_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace lam::daemon {
namespace {

using Clock = FetchPlan::Clock;
using std::chrono::milliseconds;

Clock::time_point at_us(std::int64_t us) {
  return Clock::time_point(std::chrono::microseconds(us));
}

// ---- transitions ---------------------------------------------------------------------------

TEST(FetchPlan, IdleFetchesOneAndAMessageStartsBatches) {
  FetchPlan p({.batch = 512, .idle_wait = milliseconds(100), .burst_wait = milliseconds(1000)});
  auto r = p.next(at_us(0), 0);
  EXPECT_EQ(r.batch, 1);
  EXPECT_EQ(r.wait, milliseconds(100));
  p.done(r, 0, true, at_us(100'000));  // a quiet 100 ms: an open request of 1 at most
  EXPECT_EQ(p.next(at_us(100'000), 0).batch, 1);
  EXPECT_EQ(p.hazards(), 0u);
  p.done(p.next(at_us(100'000), 0), 1, false, at_us(100'500));
  r = p.next(at_us(100'500), 0);
  EXPECT_EQ(r.batch, 512);
  EXPECT_EQ(r.wait, milliseconds(1000));
  p.done(r, 512, false, at_us(101'000));  // full: more may be there
  EXPECT_EQ(p.next(at_us(101'000), 0).batch, 512);
  p.done(p.next(at_us(101'000), 0), 40, false, at_us(101'200));  // partial: drained
  EXPECT_EQ(p.next(at_us(101'200), 0).batch, 1);
}

TEST(FetchPlan, ABatchGivenUpOnIsFollowedBySinglesUntilSettledAndTheQueueIsShort) {
  FetchPlan p({.batch = 512, .settle = milliseconds(1000)});
  p.done(p.next(at_us(0), 0), 1, false, at_us(10));
  auto r = p.next(at_us(10), 0);
  ASSERT_EQ(r.batch, 512);
  p.done(r, 0, true, at_us(1'000'010));  // the client gave up: up to 512 may still come
  EXPECT_EQ(p.hazards(), 1u);
  EXPECT_FALSE(p.bursting());
  p.done(p.next(at_us(1'000'020), 300), 1, false, at_us(1'000'030));  // a late one, queued
  EXPECT_TRUE(p.bursting());
  EXPECT_EQ(p.next(at_us(1'500'000), 0).batch, 1) << "not settled yet";
  EXPECT_EQ(p.next(at_us(2'000'010), 200).batch, 1) << "settled, but the queue is long";
  EXPECT_EQ(p.next(at_us(2'000'010), 127).batch, 512);
  // A batch that waited its whole wait, even with messages, may have more on the way.
  p.done(p.next(at_us(2'000'010), 0), 3, true, at_us(3'000'010));
  EXPECT_EQ(p.hazards(), 2u);
  EXPECT_EQ(p.next(at_us(3'000'020), 0).batch, 1);
}

TEST(FetchPlan, ABatchIsNeverBelowEight) {
  FetchPlan p({.batch = 1});
  p.done(p.next(at_us(0), 0), 1, false, at_us(1));
  EXPECT_EQ(p.next(at_us(1), 0).batch, 8);
}

// ---- the model -------------------------------------------------------------------------------

/// nats-server 2.9's pull requests, and the network both ways (one delay, in order).
class Server {
 public:
  /// `latency_us` each way; the link to the client carries one message per `tx_us`.
  Server(std::int64_t latency_us, std::int64_t tx_us) : latency_(latency_us), tx_(tx_us) {}

  /// `n` messages published at `per_us` intervals from `start`.
  void publish(std::int64_t start, int n, std::int64_t per_us) {
    for (int i = 0; i < n; ++i) due_.push_back(start + i * per_us);
    sorted_ = false;
  }
  void request(std::int64_t now, int batch, bool no_wait, std::int64_t expires_us) {
    incoming_.push_back({now + latency_, batch, no_wait, now + latency_ + expires_us, 0});
  }
  /// Runs the server up to `now`.
  void run(std::int64_t now) {
    while (!incoming_.empty() && incoming_.front().arrives <= now) {
      open_.push_back(incoming_.front());
      incoming_.pop_front();
    }
    if (!sorted_) {
      std::sort(due_.begin(), due_.end());
      sorted_ = true;
    }
    while (!due_.empty() && due_.front() <= now) {
      ++stored_;
      due_.pop_front();
    }
    for (auto it = open_.begin(); it != open_.end();) {
      while (stored_ > 0 && it->left > 0) {
        --stored_;
        --it->left;
        ++it->delivered;
        send(now, true, false);
      }
      if (it->left == 0) {  // complete
        it = open_.erase(it);
      } else if (it->no_wait && it->delivered > 0) {  // a partial no_wait batch ends: 404
        send(now, false, true);
        it = open_.erase(it);
      } else if (it->expires <= now) {  // 408
        send(now, false, false);
        it = open_.erase(it);
      } else {
        ++it;
      }
    }
  }
  struct Item {
    std::int64_t arrives;
    bool user;
    bool not_found;  ///< a 404 (else, when not a user message, a 408)
  };
  /// What has reached the client by `now` (the subscription's queue), oldest first.
  std::deque<Item>& to_client() { return to_client_; }
  [[nodiscard]] bool quiet() const { return due_.empty() && stored_ == 0; }
  [[nodiscard]] int queued_at(std::int64_t now) const {
    int n = 0;
    for (const Item& i : to_client_) n += i.arrives <= now ? 1 : 0;
    return n;
  }

 private:
  struct Req {
    std::int64_t arrives;
    int left;
    bool no_wait;
    std::int64_t expires;
    int delivered;
  };
  void send(std::int64_t now, bool user, bool not_found) {
    link_free_ = std::max(link_free_, now) + tx_;
    to_client_.push_back({link_free_ + latency_, user, not_found});
  }
  std::int64_t latency_;
  std::int64_t tx_;
  std::int64_t link_free_ = 0;
  std::deque<std::int64_t> due_;
  bool sorted_ = true;
  int stored_ = 0;
  std::deque<Req> incoming_, open_;
  std::deque<Server::Item> to_client_;
};

struct FetchResult {
  int count = 0;
  bool timed_out = false;
  bool overflowed = false;  ///< an entry written past the array of `batch`
};

/// libnats 3.4.1's `_fetch`, step for step (the loops, the `req->Batch` it changes, the bound it
/// does not), against the model server; time moves in steps of `step_us`.
FetchResult fetch_341(Server& srv, std::int64_t& now, int batch, std::int64_t timeout_us,
                      bool simple, bool no_wait_asked) {
  FetchResult r;
  const std::int64_t deadline = now + timeout_us;
  auto& q = srv.to_client();
  auto take = [&](bool& user, bool& not_found) {
    if (q.empty() || q.front().arrives > now) return false;
    user = q.front().user;
    not_found = q.front().not_found;
    q.pop_front();
    return true;
  };
  auto store = [&] {
    if (r.count >= batch) r.overflowed = true;  // msgs[count] with count >= Batch
    ++r.count;
  };
  // First loop: what is queued already, not more than the batch.
  for (bool user, nf; r.count < batch && take(user, nf);)
    if (user) store();
  bool no_wait = simple ? (batch - r.count > 1) : no_wait_asked;
  int req_batch = batch;
  bool send = true;
  constexpr std::int64_t kStep = 50;
  while (r.count != req_batch) {
    if (deadline - now <= 0) {
      r.timed_out = true;
      break;
    }
    if (send) {
      send = false;
      req_batch = req_batch - r.count;  // `req->Batch = req->Batch - count`
      srv.request(now, req_batch, no_wait, deadline - now);
    }
    bool user = false, nf = false, got = false;
    while (!(got = take(user, nf)) && now < deadline) {
      now += kStep;
      srv.run(now);
    }
    if (!got) {
      r.timed_out = true;
      break;
    }
    if (user) {
      store();
      continue;
    }
    if (simple && no_wait && nf && r.count == 0) {  // resend, waiting this time
      no_wait = false;
      send = true;
      continue;
    }
    break;  // a status ends the fetch
  }
  if (r.count > 0) r.timed_out = false;  // the library returns OK with what it has
  return r;
}

struct GatewayRun {
  int overflows = 0;
  int delivered = 0;
  std::uint64_t hazards = 0;
};

/// Three shards bursting together, several times, at random moments relative to the fetches;
/// the gateway fetches (the old way or the plan's) and spends `per_msg_us` on each message.
GatewayRun gateway_run(unsigned seed, bool plan_way, FetchPlan::Config cfg = {}) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> jitter(0, 250'000);
  const std::int64_t latency = std::uniform_int_distribution<int>(50, 2'000)(rng);
  Server srv(latency, std::uniform_int_distribution<int>(1, 30)(rng));
  int published = 0;
  std::int64_t t0 = 50'000;
  for (int round = 0; round < 4; ++round) {
    t0 += 300'000 + jitter(rng);
    for (int shard = 0; shard < 3; ++shard) {
      // A shard publishes its burst as fast as its window allows: thousands within milliseconds.
      const int n = std::uniform_int_distribution<int>(1'000, 6'000)(rng);
      srv.publish(t0 + jitter(rng) / 50, n, std::uniform_int_distribution<int>(0, 3)(rng));
      published += n;
    }
  }
  FetchPlan plan(cfg);
  GatewayRun out;
  std::int64_t now = 0;
  const std::int64_t per_msg_us = std::uniform_int_distribution<int>(2, 40)(rng);
  while (now < 20'000'000 && (out.delivered < published || !srv.quiet())) {
    srv.run(now);
    FetchResult r;
    if (!plan_way) {
      r = fetch_341(srv, now, 512, 100'000, true, false);
    } else {
      const std::int64_t start = now;
      const auto req = plan.next(at_us(now), srv.queued_at(now));
      if (req.batch == 1) {
        r = fetch_341(srv, now, 1, req.wait.count() * 1'000, true, false);
      } else {
        r = fetch_341(srv, now, req.batch, req.wait.count() * 1'000, false, true);
      }
      const bool gave_up = r.timed_out || now - start >= req.wait.count() * 1'000;
      plan.done(req, r.count, gave_up, at_us(now));
    }
    out.overflows += r.overflowed ? 1 : 0;
    out.delivered += r.count;
    now += r.count * per_msg_us + 5;  // the gateway renders and hands each message on
  }
  out.hazards = plan.hazards();
  EXPECT_EQ(out.delivered, published) << "seed " << seed << (plan_way ? " plan" : " old");
  return out;
}

TEST(FetchPlan, TheOldWayOverflowsLibnats341UnderBurstsAndThePlanNeverDoes) {
  int old_overflows = 0, plan_overflows = 0;
  std::uint64_t hazards = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    old_overflows += gateway_run(seed, false).overflows;
    const GatewayRun p = gateway_run(seed, true);
    plan_overflows += p.overflows;
    hazards += p.hazards;
  }
  EXPECT_GT(old_overflows, 0) << "the model no longer shows the defect: it tests nothing";
  EXPECT_EQ(plan_overflows, 0);
  RecordProperty("old_overflows", old_overflows);
  RecordProperty("plan_hazards", static_cast<int>(hazards));
}

// The plan's own hazard, made frequent: burst fetches whose wait (3 ms) ends while a burst is
// still being delivered leave up to a batch of late messages; the settle period of single fetches
// takes them from the queue before any batch is asked for again.
TEST(FetchPlan, BurstFetchesGivenUpOnLeaveLateMessagesThatNeverOverflow) {
  int overflows = 0;
  std::uint64_t hazards = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    const GatewayRun p = gateway_run(seed, true,
                                     {.batch = 512,
                                      .idle_wait = milliseconds(100),
                                      .burst_wait = milliseconds(3),
                                      .settle = milliseconds(50)});
    overflows += p.overflows;
    hazards += p.hazards;
  }
  EXPECT_GT(hazards, 20u) << "the hazard was not exercised";
  EXPECT_EQ(overflows, 0);
  RecordProperty("hazards", static_cast<int>(hazards));
}

}  // namespace
}  // namespace lam::daemon
