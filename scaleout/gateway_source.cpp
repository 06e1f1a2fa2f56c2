// The gateway's source: its durable consumer (scaleout/jetstream.h).
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "scaleout/fetch_plan.h"
#include "scaleout/gateway_event.h"
#include "scaleout/jetstream.h"
#include "scaleout/nats_common.h"
#include "scaleout/publish_window.h"
#include "scaleout/shard_order.h"
#include "stream/prometheus.h"
#include "stream/request_thread.h"

namespace lam::daemon {

using namespace nats_detail;

// ---------------------------------------------------------------------------------------------
// The gateway's source.

struct GatewaySource::Impl {
  Impl(NatsConfig c, GatewayConfig g, std::string u, EntryBus& o,
       const std::atomic<std::uint64_t>& p)
      : cfg(std::move(c)), gw(std::move(g)), url(std::move(u)), out(o), published(p) {}

  ~Impl() { close(); }

  void close() {
    for (auto& [seq, m] : unacked) natsMsg_Destroy(m);
    unacked.clear();
    if (sub != nullptr) natsSubscription_Destroy(sub);  // not Unsubscribe: that deletes a durable
    sub = nullptr;
    conn.close();
    stats.connected.store(0);
  }

  /// (Re)opens everything; throws with the reason.
  Start open() {
    close();
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5'000;
    if (auto err = conn.open(cfg, url, "laminator-gateway", &jo)) throw std::runtime_error(*err);
    ensure_stream_on(conn.js, cfg);
    const auto [first, last] = stream_bounds(conn.js, cfg);
    jsConsumerInfo* ci = nullptr;
    jsErrCode e{};
    natsStatus s =
        js_GetConsumerInfo(&ci, conn.js, cfg.stream.c_str(), gw.durable.c_str(), nullptr, &e);
    std::uint64_t acked = 0;
    bool create = false;
    if (s == NATS_NOT_FOUND) {
      create = true;
    } else if (s != NATS_OK) {
      throw std::runtime_error("cannot read consumer " + gw.durable + ": " + why(s, e));
    } else {
      acked = ci->AckFloor.Stream;
      // Delivered but unacknowledged messages would come back only after AckWait, behind newer
      // ones: start the consumer again right after what was acknowledged, so they come first.
      create = ci->Delivered.Stream > ci->AckFloor.Stream;
      jsConsumerInfo_Destroy(ci);
      ci = nullptr;
      if (create) {
        s = js_DeleteConsumer(conn.js, cfg.stream.c_str(), gw.durable.c_str(), nullptr, &e);
        if (s != NATS_OK && s != NATS_NOT_FOUND)
          throw std::runtime_error("cannot reset consumer " + gw.durable + ": " + why(s, e));
      }
    }
    if (first > acked + 1 && last > 0) {
      log->error(
          "the stream's first seq is {}: seqs {}..{} expired before the gateway read them "
          "(nats.max_age_hours or max_bytes too small for the gateway's downtime)",
          first, acked + 1, first - 1);
      acked = first - 1;
    }
    if (create) {
      const std::string filter = subjects_of(cfg);
      jsConsumerConfig cc;
      jsConsumerConfig_Init(&cc);
      cc.Durable = gw.durable.c_str();
      cc.AckPolicy = js_AckAll;
      cc.AckWait = gw.ack_wait.count() * kNsPerMs;  // nanoseconds
      cc.MaxAckPending = 1 << 20;
      cc.FilterSubject = filter.c_str();
      if (acked > 0) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = acked + 1;
      } else {
        cc.DeliverPolicy = js_DeliverAll;
      }
      s = js_AddConsumer(&ci, conn.js, cfg.stream.c_str(), &cc, nullptr, &e);
      if (s != NATS_OK)
        throw std::runtime_error("cannot create consumer " + gw.durable + ": " + why(s, e));
      jsConsumerInfo_Destroy(ci);
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = cfg.stream.c_str();
    so.Consumer = gw.durable.c_str();  // bind: never let the library create (or delete) it
    const std::string filter = subjects_of(cfg);
    s = js_PullSubscribe(&sub, conn.js, filter.c_str(), gw.durable.c_str(), nullptr, &so, &e);
    if (s != NATS_OK)
      throw std::runtime_error("cannot bind to consumer " + gw.durable + ": " + why(s, e));
    intake.reopened(acked);
    plan = FetchPlan(plan.config());  // a new subscription: nothing of an earlier request queued
    stats.acked.store(acked);
    stats.stream_last.store(last);
    stats.connected.store(1);
    return Start{acked, last};
  }

  void ack_published() {
    const std::uint64_t p = published.load(std::memory_order_acquire);
    natsMsg* newest = nullptr;
    std::uint64_t newest_seq = 0;
    while (!unacked.empty() && unacked.front().first <= p) {
      if (newest != nullptr) natsMsg_Destroy(newest);
      newest = unacked.front().second;
      newest_seq = unacked.front().first;
      unacked.pop_front();
    }
    if (newest == nullptr) return;
    // AckAll: acknowledges every message of the consumer up to this one.
    const natsStatus s = natsMsg_Ack(newest, nullptr);
    natsMsg_Destroy(newest);
    if (s == NATS_OK) stats.acked.store(newest_seq, std::memory_order_relaxed);
  }

  void hand(Rendered&& r) {
    while (!out.try_publish(r)) {  // the server is behind: wait (JetStream holds the rest)
      if (stopping.load()) return;
      out.ring_doorbell();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  /// One fetch as the plan says (scaleout/fetch_plan.h): never the path of libnats 3.4.1's `_fetch`
  /// that writes past its array (nats.c PR #749).
  natsStatus fetch(natsMsgList& list, jsErrCode& e) {
    int queued = 0, bytes = 0;
    if (natsSubscription_GetPending(sub, &queued, &bytes) != NATS_OK) queued = 0;
    const FetchPlan::Request req = plan.next(Clock::now(), queued);
    const auto t0 = Clock::now();
    natsStatus s;
    if (req.batch == 1) {
      s = natsSubscription_Fetch(&list, sub, 1, req.wait.count(), &e);
    } else {
      jsFetchRequest fr;
      jsFetchRequest_Init(&fr);
      fr.Batch = req.batch;
      fr.NoWait = true;  // with Expires: the server answers with what it has once it has any
      fr.Expires = req.wait.count() * kNsPerMs;
      s = natsSubscription_FetchRequest(&list, sub, &fr);
    }
    const auto now = Clock::now();
    const bool gave_up = s == NATS_TIMEOUT || now - t0 >= req.wait;
    const std::uint64_t hazards = plan.hazards();
    plan.done(req, list.Count, gave_up, now);
    if (plan.hazards() != hazards) stats.fetch_hazards.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  /// Counts and logs what the shard order said of an event.
  void note_order(const GatewayIntake::Decision& d, std::uint64_t seq) {
    const std::string& shard = d.decoded->shard;
    const std::uint64_t n = d.decoded->shard_seq, last = d.shard_last;
    switch (d.order) {
      case ShardOrder::Verdict::repeat:
        stats.shard_repeats.fetch_add(1, std::memory_order_relaxed);
        log->warn(
            "shard {} seq {} at stream seq {} repeats (last {}): a republication outside the "
            "duplicate window",
            shard, n, seq, last);
        break;
      case ShardOrder::Verdict::gap:
        stats.shard_gaps.fetch_add(1, std::memory_order_relaxed);
        log->warn("shard {} jumped from seq {} to {} at stream seq {}", shard, last, n, seq);
        break;
      case ShardOrder::Verdict::declared_gap:
        stats.declared_gaps.fetch_add(1, std::memory_order_relaxed);
        log->info("shard {} went from seq {} to {} at stream seq {}: a restore's declared gap",
                  shard, last, n, seq);
        break;
      case ShardOrder::Verdict::in_order:
        break;
    }
  }

  void run() {
    pthread_setname_np(pthread_self(), "lam-nats-src");
    while (!stopping.load()) {
      if (sub == nullptr || !conn.ok()) {
        try {
          // A reconnect resumes after what was acknowledged, which may be below what was already
          // handed to the server: the intake skips those as redeliveries.
          open();
          stats.reconnects.fetch_add(1, std::memory_order_relaxed);
          log->info("consumer {} reconnected", gw.durable);
        } catch (const std::exception& e) {
          if (Clock::now() >= next_complaint) {
            log->warn("{}; retrying", e.what());
            next_complaint = Clock::now() + std::chrono::seconds(10);
          }
          close();
          sleep_unless(stopping, cfg.reconnect_wait);
          continue;
        }
      }
      natsMsgList list{nullptr, 0};
      jsErrCode e{};
      const natsStatus s = fetch(list, e);
      if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND) {
        natsMsgList_Destroy(&list);
        log->warn("fetch failed: {}; reconnecting", why(s, e));
        close();
        continue;
      }
      for (int i = 0; i < list.Count; ++i) {
        natsMsg* m = list.Msgs[i];
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
          stats.malformed.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        const std::uint64_t seq = meta->Sequence.Stream;
        stats.pending.store(meta->NumPending, std::memory_order_relaxed);
        stats.stream_last.store(seq + meta->NumPending, std::memory_order_relaxed);
        jsMsgMetaData_Destroy(meta);
        stats.received.fetch_add(1, std::memory_order_relaxed);
        GatewayIntake::Decision d = intake.take(stream_message(m, seq));
        switch (d.kind) {
          case GatewayIntake::Kind::redelivery:
            continue;
          case GatewayIntake::Kind::malformed:
          case GatewayIntake::Kind::unknown_shard: {
            const bool unknown = d.kind == GatewayIntake::Kind::unknown_shard;
            (unknown ? stats.unknown_shards : stats.malformed)
                .fetch_add(1, std::memory_order_relaxed);
            log->warn("stream seq {}: {}: passed over", seq,
                      unknown ? "an event of shard '" + d.decoded->shard +
                                    "', not one of [gateway] shards"
                              : std::string("not a Laminator event (subject, headers or body)"));
            break;
          }
          case GatewayIntake::Kind::event:
            note_order(d, seq);
            break;
        }
        hand(Rendered{std::move(d).entry(seq), 0});
      }
      if (list.Count > 0) {
        out.ring_doorbell();
        // Keep the batch's last message to acknowledge it (and everything before) once published.
        natsMsg* keep = list.Msgs[list.Count - 1];
        list.Msgs[list.Count - 1] = nullptr;
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, keep) == NATS_OK) {
          unacked.emplace_back(meta->Sequence.Stream, keep);
          jsMsgMetaData_Destroy(meta);
        } else {
          natsMsg_Destroy(keep);
        }
      }
      natsMsgList_Destroy(&list);
      ack_published();
    }
    close();
  }

  NatsConfig cfg;
  GatewayConfig gw;
  std::string url;
  EntryBus& out;
  const std::atomic<std::uint64_t>& published;
  SourceStats stats;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("gateway");

  // Source thread only (and open() before start()).
  Conn conn;
  natsSubscription* sub = nullptr;
  FetchPlan plan{
      FetchPlan::Config{.batch = static_cast<int>(std::min<std::size_t>(gw.fetch_batch, 100'000))}};
  GatewayIntake intake{gw.shards, cfg.subject_prefix};  ///< what each message is
  std::deque<std::pair<std::uint64_t, natsMsg*>> unacked;
  Clock::time_point next_complaint{};
};

GatewaySource::GatewaySource(NatsConfig cfg, GatewayConfig gw, std::string url, EntryBus& out,
                             const std::atomic<std::uint64_t>& published)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(gw), std::move(url), out, published)) {
}

GatewaySource::~GatewaySource() {
  stop();
}

GatewaySource::Start GatewaySource::open() {
  return impl_->open();
}

void GatewaySource::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void GatewaySource::stop() {
  impl_->stopping.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

const SourceStats& GatewaySource::stats() const noexcept {
  return impl_->stats;
}

namespace {

const MetricDesc<SourceStats> kSourceMetrics[] = {
    {"laminator_gateway_nats_connected", "gauge", "1 while the consumer's connection is up",
     [](const SourceStats& s) -> std::uint64_t { return s.connected.load(); }},
    {"laminator_gateway_received_total", "counter", "Messages fetched from the durable consumer",
     [](const SourceStats& s) -> std::uint64_t { return s.received.load(); }},
    {"laminator_gateway_malformed_total", "counter",
     "Messages without Laminator headers or body, or on a subject their id does not name (passed "
     "over)",
     [](const SourceStats& s) -> std::uint64_t { return s.malformed.load(); }},
    {"laminator_gateway_shard_repeats_total", "counter",
     "Events whose shard seq repeats one already served",
     [](const SourceStats& s) -> std::uint64_t { return s.shard_repeats.load(); }},
    {"laminator_gateway_shard_gaps_total", "counter",
     "Events whose shard seq skipped past the next expected",
     [](const SourceStats& s) -> std::uint64_t { return s.shard_gaps.load(); }},
    {"laminator_gateway_declared_gaps_total", "counter",
     "Shard seqs jumped over that the shard declared skipped (a restore's gap): no fault",
     [](const SourceStats& s) -> std::uint64_t { return s.declared_gaps.load(); }},
    {"laminator_gateway_consumer_pending", "gauge",
     "Messages of the stream the consumer has not delivered yet",
     [](const SourceStats& s) -> std::uint64_t { return s.pending.load(); }},
    {"laminator_gateway_acked_seq", "gauge", "The stream seq acknowledged (published to the ring)",
     [](const SourceStats& s) -> std::uint64_t { return s.acked.load(); }},
    {"laminator_gateway_stream_last_seq", "gauge", "The stream's last seq when last seen",
     [](const SourceStats& s) -> std::uint64_t { return s.stream_last.load(); }},
    {"laminator_gateway_reconnects_total", "counter", "Consumer reconnections",
     [](const SourceStats& s) -> std::uint64_t { return s.reconnects.load(); }},
    {"laminator_gateway_fetch_hazards_total", "counter",
     "Burst fetches the gateway gave up waiting for (single fetches follow until their late "
     "messages are in: the libnats 3.4.1 _fetch overflow is never reached)",
     [](const SourceStats& s) -> std::uint64_t { return s.fetch_hazards.load(); }},
    {"laminator_gateway_unknown_shards_total", "counter",
     "Events of shards not in [gateway] shards, passed over (a stranger on the bus?)",
     [](const SourceStats& s) -> std::uint64_t { return s.unknown_shards.load(); }},
};

}  // namespace

void GatewaySource::render(std::string& out) const {
  const SourceStats& s = impl_->stats;
  PromWriter m(out);
  m.table(kSourceMetrics, s);
}

}  // namespace lam::daemon
