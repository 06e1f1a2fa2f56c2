// The shard's JetStream publisher (scaleout/jetstream.h).
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
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "persistence/database_url.h"
#include "persistence/journal.h"
#include "scaleout/fetch_plan.h"
#include "scaleout/gateway_event.h"
#include "scaleout/jetstream.h"
#include "scaleout/nats_common.h"
#include "scaleout/publish_cursor.h"
#include "scaleout/shard_order.h"
#include "stream/prometheus.h"
#include "stream/request_thread.h"

namespace lam::daemon {

using namespace nats_detail;

// ---------------------------------------------------------------------------------------------
// The shard's publisher.

struct JetStreamPublisher::Impl {
  struct Ack {
    std::uint64_t seq;
    bool ok;
    bool duplicate;
    jsCtx* js;
    natsStatus status;
    jsErrCode code;
  };

  Impl(NatsConfig c, std::string u, std::string s, std::string j, std::uint64_t h)
      : cfg(std::move(c)),
        url(std::move(u)),
        shard(std::move(s)),
        subject(cfg.subject_prefix + "." + shard),
        journal_url(std::move(j)),
        bus(cfg.queue_capacity) {
    stats.head.store(h);
  }

  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    const char* id = header(msg, kMsgIdHeader);
    const auto ss = id != nullptr ? parse_msg_id(id) : std::nullopt;
    if (ss) {
      Ack a{ss->seq,
            pa != nullptr,
            pa != nullptr && pa->Duplicate,
            js,
            pae != nullptr ? pae->Err : NATS_OK,
            pae != nullptr ? pae->ErrCode : jsErrCode{}};
      std::lock_guard lock(self->ack_mu);
      self->acks.push_back(a);
    }
    natsMsg_Destroy(msg);
  }

  bool connect() {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5'000;
    jo.PublishAsync.MaxPending = static_cast<std::int64_t>(cfg.max_pending);
    jo.PublishAsync.AckHandler = &Impl::on_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    jo.PublishAsync.StallWait = 5;
    const std::string name = "laminator-shard-" + shard;
    if (auto err = conn.open(cfg, url, name.c_str(), &jo)) {
      if (Clock::now() >= next_complaint) {
        log->warn("{}; retrying every {} ms (events wait in the journal)", *err,
                  cfg.reconnect_wait.count());
        next_complaint = Clock::now() + std::chrono::seconds(10);
      }
      return false;
    }
    try {
      const std::string line = ensure_stream_on(conn.js, cfg);
      if (first_connect) log->info("{}", line);
    } catch (const std::exception& e) {
      log->error("{}", e.what());
      conn.close();
      return false;
    }
    // Where the stream stands for this shard: the last message it holds on our subject, judged
    // against the journal (scaleout/publish_cursor.h, judge_tail).
    std::optional<StreamTail> tail;
    if (auto err = read_tail(tail)) {
      log->warn("cannot read the last message on {}: {}", subject, *err);
      conn.close();
      return false;
    }
    const std::uint64_t head = stats.head.load();
    std::optional<std::string> journaled;
    if (tail) {
      const auto ss = parse_msg_id(tail->msg_id);
      if (ss && ss->shard == shard && ss->seq <= head && !journal_body(ss->seq, journaled)) {
        conn.close();  // the journal cannot be read: try again (events wait in the journal)
        return false;
      }
    }
    const TailVerdict v = judge_tail(shard, tail, head, journaled);
    if (!v.trusted()) {
      refuse_tail(v, tail ? tail->msg_id : std::string(), head);
      conn.close();
      return false;
    }
    const std::uint64_t stored = v.stored;
    {
      std::lock_guard lock(ack_mu);
      acks.clear();
    }
    current_js = conn.js;
    stats.untrusted_tail.store(0, std::memory_order_relaxed);
    cur.reset(stored);
    stats.acked_through.store(stored);
    stats.connected.store(1);
    if (first_connect) {
      log->info("publishing to {} from seq {} (the stream holds up to {}; head {})", subject,
                stored + 1, stored, head);
    } else {
      stats.rewinds.fetch_add(1, std::memory_order_relaxed);
      log->info("reconnected to NATS: publishing to {} resumes at seq {} (head {})", subject,
                stored + 1, head);
    }
    first_connect = false;
    return true;
  }

  /// The stream's last message on the subject (none: it holds nothing of this shard); the error.
  std::optional<std::string> read_tail(std::optional<StreamTail>& tail) {
    natsMsg* last = nullptr;
    jsErrCode e{};
    const natsStatus s =
        js_GetLastMsg(&last, conn.js, cfg.stream.c_str(), subject.c_str(), nullptr, &e);
    if (s == NATS_NOT_FOUND) return find_tail(tail);
    if (s != NATS_OK) return why(s, e);
    tail = stream_tail(last);
    natsMsg_Destroy(last);
    return std::nullopt;
  }

  /// Copied before the message goes: the header's text and the data live in it.
  static StreamTail stream_tail(natsMsg* m) {
    const char* h = header(m, kMsgIdHeader);
    return StreamTail{
        h != nullptr ? h : "",
        std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)))};
  }

  /// The last message on the subject when the server says there is none. nats-server 2.9.10
  /// (Debian 12) keeps a subject's last seq stale when its last message is deleted (the runbook's
  /// removal of a stranger's tail), even across restarts: "last by subject" then answers "not
  /// found" although the subject holds messages, and resuming from seq 1 would publish every event
  /// again (fixed upstream in nats-server PR #6235, "keep ss.Last up-to-date"). When the stream's
  /// subject state counts messages, they are read with a filtered consumer from windows growing
  /// back from the stream's end (x16 from 1,024 seqs): the last one delivered is the tail.
  std::optional<std::string> find_tail(std::optional<StreamTail>& tail) {
    jsOptions so;
    jsOptions_Init(&so);
    so.Stream.Info.SubjectsFilter = subject.c_str();
    jsStreamInfo* si = nullptr;
    jsErrCode e{};
    natsStatus s = js_GetStreamInfo(&si, conn.js, cfg.stream.c_str(), &so, &e);
    if (s != NATS_OK) return "stream info: " + why(s, e);
    std::uint64_t count = 0;
    if (si->State.Subjects != nullptr)
      for (int i = 0; i < si->State.Subjects->Count; ++i)
        if (subject == si->State.Subjects->List[i].Subject)
          count = si->State.Subjects->List[i].Msgs;
    const std::uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (count == 0) return std::nullopt;  // truly none
    log->warn(
        "nats-server says {} has no last message but counts {} on it (its last message was "
        "deleted; nats-server PR #6235): reading them back from the stream's end",
        subject, count);
    for (std::uint64_t w = 1'024;; w *= 16) {
      const std::uint64_t start = last >= first + w ? last - w + 1 : first;
      jsSubOptions o;
      jsSubOptions_Init(&o);
      o.Stream = cfg.stream.c_str();
      o.Config.DeliverPolicy = js_DeliverByStartSequence;
      o.Config.OptStartSeq = start;
      o.Config.AckPolicy = js_AckNone;
      o.Config.InactiveThreshold = 2'000 * kNsPerMs;  // it goes by itself: no delete permission
      natsSubscription* sub = nullptr;
      s = js_SubscribeSync(&sub, conn.js, subject.c_str(), nullptr, &o, &e);
      if (s != NATS_OK) return "reading the subject back: " + why(s, e);
      natsMsg* m = nullptr;
      bool found = false;
      // The first wait is the only long one: a window with none of ours delivers nothing.
      while (natsSubscription_NextMsg(&m, sub, found ? 2'000 : 300) == NATS_OK) {
        jsMsgMetaData* meta = nullptr;
        std::uint64_t pending = 1;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
          pending = meta->NumPending;
          jsMsgMetaData_Destroy(meta);
        }
        tail = stream_tail(m);
        found = true;
        natsMsg_Destroy(m);
        if (pending == 0) break;
      }
      natsSubscription_Destroy(sub);  // not Unsubscribe: the server removes it when idle
      if (found) return std::nullopt;
      if (start <= first)
        return "nats-server counts " + std::to_string(count) + " messages on " + subject +
               " but delivers none";
    }
  }

  /// The journal's body of `seq` (none: the journal no longer holds it). False when the journal
  /// cannot be read.
  bool journal_body(std::uint64_t seq, std::optional<std::string>& body) {
    try {
      if (!db) {
        db = std::make_unique<pqxx::connection>(journal_url);
        db::prepare_journal(*db);
      }
      pqxx::read_transaction tx(*db);
      db::JournalSlice slice = db::read_journal(tx, seq - 1, seq + 1, 1, {});
      if (!slice.rows.empty() && slice.rows.front().seq == seq)
        body = std::move(slice.rows.front().body);
      return true;
    } catch (const std::exception& e) {
      db.reset();
      log->warn("journal read for the stream's tail failed: {}",
                db::redact_secrets(e.what(), journal_url));
      return false;
    }
  }

  /// A tail this shard did not write: refused, loudly, until an operator removes it
  /// (docs/operations.md, "A tail the shard did not write"); nothing is skipped.
  void refuse_tail(const TailVerdict& v, const std::string& id, std::uint64_t head) {
    stats.untrusted_why.store(static_cast<std::uint8_t>(v.kind), std::memory_order_relaxed);
    stats.untrusted_tail.store(std::max<std::uint64_t>(v.stored, 1), std::memory_order_relaxed);
    if (Clock::now() < next_complaint) return;
    next_complaint = Clock::now() + std::chrono::seconds(10);
    switch (v.kind) {
      case TailVerdict::Kind::foreign_id:
        log->error("the last message on {} is not this shard's (Nats-Msg-Id '{}'): not publishing",
                   subject, id);
        break;
      case TailVerdict::Kind::beyond_head:
        log->error(
            "JetStream's last message on {} is seq {}, beyond this shard's head {}: a tail it did "
            "not write (a stranger's publish, or a journal restored below the stream); not "
            "publishing until it is removed (events wait in the journal)",
            subject, v.stored, head);
        break;
      case TailVerdict::Kind::not_journaled:
        log->error(
            "JetStream's last message on {} claims seq {} but differs from this shard's journaled "
            "event {}: a tail it did not write (a stranger's publish); not publishing until it is "
            "removed (events wait in the journal)",
            subject, v.stored, v.stored);
        break;
      case TailVerdict::Kind::resume:
        break;
    }
  }

  void drop_connection(const std::string& reason) {
    if (conn.nc != nullptr) log->warn("NATS publishing interrupted ({}); reconnecting", reason);
    current_js = nullptr;
    conn.close();
    stats.connected.store(0);
  }

  void process_acks() {
    std::vector<Ack> got;
    {
      std::lock_guard lock(ack_mu);
      got.swap(acks);
    }
    for (const Ack& a : got) {
      if (a.js != current_js) continue;  // the previous connection's
      if (a.ok) {
        cur.window().acked(a.seq);
        if (a.duplicate) stats.duplicates.fetch_add(1, std::memory_order_relaxed);
      } else {
        stats.failures.fetch_add(1, std::memory_order_relaxed);
        if (!cur.window().needs_rewind()) {
          log->warn("publish of {}:{} failed: {}", shard, a.seq, why(a.status, a.code));
        }
        cur.window().failed(a.seq);
      }
    }
    stats.acked_through.store(cur.window().acked_through(), std::memory_order_relaxed);
  }

  void pull_live() {
    Rendered buf[256];
    std::size_t n = 0;
    while ((n = bus.drain(buf, std::size(buf))) > 0) {
      for (std::size_t i = 0; i < n; ++i)
        if (cur.offer_live(std::move(buf[i].entry)))
          stats.live_overflows.fetch_add(1, std::memory_order_relaxed);  // read back later
    }
  }

  /// Reads journal rows from `from` on into the backlog. False when none are there yet.
  bool refill(std::uint64_t from) {
    if (Clock::now() < next_journal_try) return false;
    std::deque<Entry>& backlog = cur.backlog();
    backlog.clear();
    try {
      if (!db) {
        db = std::make_unique<pqxx::connection>(journal_url);
        db::prepare_journal(*db);
      }
      pqxx::read_transaction tx(*db);
      db::JournalSlice slice = db::read_journal(tx, from - 1, 0, JournalReader::kPageRows, {});
      for (db::JournalRecord& r : slice.rows) {
        if (auto j = journal_row(std::move(r)))
          backlog.push_back(
              Entry{j->meta, std::make_shared<const std::string>(std::move(j->body))});
      }
    } catch (const std::exception& e) {
      db.reset();
      log->warn("journal read for publishing failed: {}",
                db::redact_secrets(e.what(), journal_url));
      next_journal_try = Clock::now() + std::chrono::milliseconds(500);
      return false;
    }
    if (backlog.empty()) {
      next_journal_try = Clock::now() + std::chrono::milliseconds(5);  // the writer has not yet
      return false;
    }
    return true;
  }

  /// True when engine_seq_gaps (migration 0009) declares every seq of [from, to] skipped.
  bool declared_gap(std::uint64_t from, std::uint64_t to) {
    try {
      pqxx::read_transaction tx(*db);
      const pqxx::result r =
          tx.exec_params("SELECT 1 FROM engine_seq_gaps WHERE seq_from < $1 AND seq_to >= $2",
                         static_cast<std::int64_t>(from), static_cast<std::int64_t>(to));
      return !r.empty();
    } catch (const std::exception&) {
      return false;
    }
  }

  natsStatus send(const Entry& e, const std::optional<PublishCursor::Gap>& gap_before) {
    natsMsg* m = nullptr;
    natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, e.json->data(),
                                  static_cast<int>(e.json->size()));
    const std::string id = msg_id(shard, e.meta.seq);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kMsgIdHeader, id.c_str());
    if (s == NATS_OK && gap_before) {
      const std::string gap =
          std::to_string(gap_before->first) + "-" + std::to_string(gap_before->second);
      s = natsMsgHeader_Set(m, kGapHeader, gap.c_str());
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = cfg.ack_wait.count();  // milliseconds: without it a lost ack is never reported
    if (s == NATS_OK) s = js_PublishMsgAsync(conn.js, &m, &po);
    natsMsg_Destroy(m);  // no-op when the library took it
    return s;
  }

  /// Publishes what it can, as the cursor says; true when it did anything.
  bool pump() {
    using Kind = PublishCursor::Step::Kind;
    bool progress = false;
    const std::uint64_t head = stats.head.load(std::memory_order_acquire);
    while (true) {
      if (cur.live_empty()) pull_live();  // queued before `head` moved past it
      const PublishCursor::Step st = cur.next(head, cfg.max_pending);
      switch (st.kind) {
        case Kind::wait:
          return progress;
        case Kind::read_journal:
          if (!refill(st.seq)) return progress;
          continue;
        case Kind::jump: {
          const bool declared = declared_gap(st.seq, st.to - 1);
          if (declared)
            log->info("seqs {}..{} of shard {} are a restore's declared gap: not published", st.seq,
                      st.to - 1, shard);
          else
            log->error(
                "seqs {}..{} of shard {} are in neither the live stream nor the journal: skipped",
                st.seq, st.to - 1, shard);
          stats.lost.fetch_add(cur.jumped(st, declared), std::memory_order_relaxed);
          progress = true;
          continue;
        }
        case Kind::send:
          break;
      }
      const natsStatus s = send(*st.entry, st.gap);
      if (s == NATS_TIMEOUT) return progress;  // too many acks outstanding: retry shortly
      if (s != NATS_OK) {
        drop_connection("publish: " + why(s));
        return progress;
      }
      cur.sent(st);
      stats.published.fetch_add(1, std::memory_order_relaxed);
      if (!st.from_live) stats.journal_reads.fetch_add(1, std::memory_order_relaxed);
      progress = true;
    }
  }

  void wait(std::chrono::milliseconds d) {
    if (!bus.prepare_sleep()) return;
    pollfd p{bus.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(d.count())) > 0) {
      std::uint64_t v = 0;
      [[maybe_unused]] const ssize_t n = ::read(bus.fd(), &v, sizeof v);
    }
  }

  void run() {
    pthread_setname_np(pthread_self(), "lam-nats-pub");
    while (true) {
      if (stopping.load()) {
        const bool done = conn.ok() && cur.window().acked_through() >= stats.head.load() &&
                          cur.window().in_flight() == 0;
        if (done || Clock::now() >= stop_by) break;
      }
      if (conn.nc == nullptr && !connect()) {
        pull_live();
        sleep_unless(stopping, cfg.reconnect_wait);
        continue;
      }
      process_acks();
      if (cur.window().needs_rewind()) {
        drop_connection("a publish was not acknowledged");
        continue;
      }
      if (!conn.ok()) {
        drop_connection("connection lost");
        continue;
      }
      pull_live();
      if (!pump() && conn.nc != nullptr) {
        wait(cur.window().in_flight() > 0 ? std::chrono::milliseconds(1)
                                          : std::chrono::milliseconds(50));
      }
    }
    if (cur.window().acked_through() < stats.head.load()) {
      log->warn(
          "stopping with seqs {}..{} not acknowledged by JetStream: the next start publishes "
          "them from the journal",
          cur.window().acked_through() + 1, stats.head.load());
    }
    current_js = nullptr;
    conn.close();
    stats.connected.store(0);
  }

  NatsConfig cfg;
  std::string url, shard, subject, journal_url;
  PublisherStats stats;
  EntryBus bus;
  std::atomic<bool> stopping{false};
  Clock::time_point stop_by{};
  std::thread thread;
  std::mutex ack_mu;
  std::vector<Ack> acks;
  std::atomic<jsCtx*> current_js{nullptr};
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("nats");

  // Publisher thread only.
  Conn conn;
  PublishCursor cur{cfg.queue_capacity};  ///< what goes next, and the publishing window
  std::unique_ptr<pqxx::connection> db;
  Clock::time_point next_journal_try{}, next_complaint{};
  bool first_connect = true;
};

JetStreamPublisher::JetStreamPublisher(NatsConfig cfg, std::string url, std::string shard,
                                       std::string journal_url, std::uint64_t head)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(url), std::move(shard),
                                   std::move(journal_url), head)) {}

JetStreamPublisher::~JetStreamPublisher() {
  stop(std::chrono::milliseconds(0));
}

void JetStreamPublisher::start() {
  impl_->thread = std::thread([this] { impl_->run(); });
}

void JetStreamPublisher::stop(std::chrono::milliseconds deadline) {
  Impl& i = *impl_;
  if (!i.thread.joinable()) return;
  i.stop_by = Clock::now() + deadline;
  i.stopping.store(true);
  i.bus.ring_doorbell();
  i.thread.join();
}

void JetStreamPublisher::offer(const Entry& e) {
  Impl& i = *impl_;
  // Queued before the head moves: a publisher that sees the head finds the event on the bus
  // (unless the bus was full: then it reads it from the journal).
  if (!i.bus.try_publish(Rendered{e, 0}))
    i.stats.live_overflows.fetch_add(1, std::memory_order_relaxed);
  i.stats.head.store(e.meta.seq, std::memory_order_release);
  i.bus.ring_doorbell();
}

const PublisherStats& JetStreamPublisher::stats() const noexcept {
  return impl_->stats;
}

namespace {

const MetricDesc<PublisherStats> kPublisherMetrics[] = {
    {"laminator_nats_connected", "gauge", "1 while the shard's JetStream connection is up",
     [](const PublisherStats& s) -> std::uint64_t { return s.connected.load(); }},
    {"laminator_nats_published_total", "counter", "Events handed to JetStream (async)",
     [](const PublisherStats& s) -> std::uint64_t { return s.published.load(); }},
    {"laminator_nats_acked_seq", "gauge", "Every event up to this shard seq is stored in JetStream",
     [](const PublisherStats& s) -> std::uint64_t { return s.acked_through.load(); }},
    {"laminator_nats_unacked_events", "gauge",
     "Events of this shard published locally and not yet stored in JetStream",
     [](const PublisherStats& s) -> std::uint64_t {
       return s.head.load() - std::min(s.head.load(), s.acked_through.load());
     }},
    {"laminator_nats_duplicates_total", "counter",
     "Publishes JetStream de-duplicated (republished after a reconnect or restart)",
     [](const PublisherStats& s) -> std::uint64_t { return s.duplicates.load(); }},
    {"laminator_nats_failures_total", "counter", "Publishes failed or not acknowledged in time",
     [](const PublisherStats& s) -> std::uint64_t { return s.failures.load(); }},
    {"laminator_nats_rewinds_total", "counter",
     "Reconnections after which publishing resumed from the stream's last stored seq",
     [](const PublisherStats& s) -> std::uint64_t { return s.rewinds.load(); }},
    {"laminator_nats_journal_events_total", "counter",
     "Events published from the journal (after an outage, a restart or a full live queue)",
     [](const PublisherStats& s) -> std::uint64_t { return s.journal_reads.load(); }},
    {"laminator_nats_live_overflows_total", "counter",
     "Live events the publisher had no room for (read back from the journal)",
     [](const PublisherStats& s) -> std::uint64_t { return s.live_overflows.load(); }},
    {"laminator_nats_lost_total", "counter", "Seqs in neither the live stream nor the journal",
     [](const PublisherStats& s) -> std::uint64_t { return s.lost.load(); }},
    {"laminator_nats_untrusted_tail_seq", "gauge",
     "The stream's last seq for this shard when it is not the shard's (beyond its head, or not the "
     "event it journaled under that seq; 1: an id not its own): publishing stopped; 0 when trusted",
     [](const PublisherStats& s) -> std::uint64_t { return s.untrusted_tail.load(); }},
};

}  // namespace

void JetStreamPublisher::render(std::string& out) const {
  const PublisherStats& s = impl_->stats;
  PromWriter m(out);
  m.table(kPublisherMetrics, s);
}

}  // namespace lam::daemon
