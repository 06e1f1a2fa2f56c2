// The one translation unit that includes nats.c (scaleout/jetstream.h).
#include "scaleout/jetstream.h"

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
#include "scaleout/publish_window.h"
#include "scaleout/shard_order.h"
#include "stream/prometheus.h"
#include "stream/request_thread.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kNsPerMs = 1'000'000;

/// A status as text. Never nats_GetLastError(): its text may quote the URL (and its credentials).
std::string why(natsStatus s, jsErrCode e = static_cast<jsErrCode>(0)) {
  std::string out = natsStatus_GetText(s);
  if (e != 0)
    out.append(" (JetStream error ").append(std::to_string(static_cast<int>(e))).append(")");
  return out;
}

/// One connection and its JetStream context. No automatic reconnection: the owner reconnects, so
/// that nothing published while disconnected is buffered and flushed out of order later.
struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;

  Conn() = default;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { close(); }

  void close() {
    if (js != nullptr) jsCtx_Destroy(js);
    js = nullptr;
    if (nc != nullptr) natsConnection_Destroy(nc);
    nc = nullptr;
  }
  [[nodiscard]] bool ok() const {
    return nc != nullptr && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
  }

  /// Connects; on failure returns the reason (and stays closed).
  std::optional<std::string> open(const NatsConfig& cfg, const std::string& url, const char* name,
                                  jsOptions* jo) {
    close();
    natsOptions* o = nullptr;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(o, name);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 2'000);
    // nats.c's flusher otherwise holds every write up to 1 ms to batch it: each publish and each
    // pull request would wait for it (measured: 1.1 ms added per event, 1,000 fetches/s).
    if (s == NATS_OK) s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK && (url.rfind("tls://", 0) == 0 || !cfg.ca_file.empty()))
      s = natsOptions_SetSecure(o, true);  // verifies the server's certificate
    if (s == NATS_OK && !cfg.ca_file.empty())
      s = natsOptions_LoadCATrustedCertificates(o, cfg.ca_file.c_str());
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, jo);
    if (s != NATS_OK) {
      close();
      return "cannot connect to NATS (" + redact_nats_url(url) + "): " + why(s);
    }
    return std::nullopt;
  }
};

std::string subjects_of(const NatsConfig& cfg) {
  return cfg.subject_prefix + ".>";
}

/// Creates the stream, or brings an existing one to the configured limits. Throws.
std::string ensure_stream_on(jsCtx* js, const NatsConfig& cfg) {
  const std::string subject = subjects_of(cfg);
  const char* subjects[] = {subject.c_str()};
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = cfg.stream.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_LimitsPolicy;
  sc.Discard = js_DiscardOld;
  sc.MaxAge = static_cast<std::int64_t>(cfg.max_age_hours) * 3600 * 1'000'000'000LL;
  sc.MaxBytes = cfg.max_bytes;
  sc.Storage = cfg.storage == NatsConfig::Storage::memory ? js_MemoryStorage : js_FileStorage;
  sc.Replicas = cfg.replicas;
  sc.Duplicates = cfg.duplicate_window.count() * kNsPerMs;  // nanoseconds
  jsStreamInfo* si = nullptr;
  jsErrCode e{};
  natsStatus s = js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e);
  std::string what;
  if (s == NATS_NOT_FOUND) {
    s = js_AddStream(&si, js, &sc, nullptr, &e);
    if (s != NATS_OK)
      throw std::runtime_error("cannot create stream " + cfg.stream + ": " + why(s, e));
    what = "created";
  } else if (s != NATS_OK) {
    throw std::runtime_error("cannot read stream " + cfg.stream + ": " + why(s, e));
  } else {
    const bool same = si->Config->Storage == sc.Storage &&
                      si->Config->Duplicates == sc.Duplicates && si->Config->MaxAge == sc.MaxAge &&
                      si->Config->MaxBytes == sc.MaxBytes && si->Config->SubjectsLen == 1 &&
                      subject == si->Config->Subjects[0] && si->Config->Replicas == sc.Replicas;
    if (si->Config->Storage != sc.Storage) {
      jsStreamInfo_Destroy(si);
      throw std::runtime_error("stream " + cfg.stream + " exists with another storage type than " +
                               "nats.storage (JetStream cannot change it; recreate the stream)");
    }
    jsStreamInfo_Destroy(si);
    si = nullptr;
    if (!same) {
      s = js_UpdateStream(&si, js, &sc, nullptr, &e);
      if (s != NATS_OK)
        throw std::runtime_error("cannot update stream " + cfg.stream + ": " + why(s, e));
      what = "updated to the configured limits";
    } else {
      s = js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e);
      if (s != NATS_OK)
        throw std::runtime_error("cannot read stream " + cfg.stream + ": " + why(s, e));
      what = "checked";
    }
  }
  const std::string line = "stream " + cfg.stream + " (" + subject + ") " + what + ": " +
                           std::to_string(si->State.Msgs) + " messages, seqs " +
                           std::to_string(si->State.FirstSeq) + ".." +
                           std::to_string(si->State.LastSeq);
  jsStreamInfo_Destroy(si);
  return line;
}

/// The stream's first and last seq (0, 0 when unknown).
std::pair<std::uint64_t, std::uint64_t> stream_bounds(jsCtx* js, const NatsConfig& cfg) {
  jsStreamInfo* si = nullptr;
  jsErrCode e{};
  if (js_GetStreamInfo(&si, js, cfg.stream.c_str(), nullptr, &e) != NATS_OK) return {0, 0};
  const std::pair<std::uint64_t, std::uint64_t> out{si->State.FirstSeq, si->State.LastSeq};
  jsStreamInfo_Destroy(si);
  return out;
}

const char* header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, key, &v) == NATS_OK ? v : nullptr;
}

/// A message of the stream as the gateway serves it: its JSON re-rendered with `stream_seq`, its
/// filter fields from the headers. Null (counted by the caller) when it is not one of ours.
struct Decoded {
  Entry entry;
  std::string shard;
  std::uint64_t shard_seq = 0;
  std::optional<ShardOrder::Declared> gap;  ///< the Laminator-Gap header: seqs declared skipped
};
std::optional<Decoded> decode(natsMsg* m, std::uint64_t stream_seq, std::string_view prefix,
                              std::string& scratch) {
  const char* id = header(m, kMsgIdHeader);
  if (id == nullptr) return std::nullopt;
  const auto ss = parse_msg_id(id);
  if (!ss) return std::nullopt;
  // A shard publishes on its own subject only: an id naming another shard is not its message.
  const char* subject = natsMsg_GetSubject(m);
  const std::string_view sv = subject == nullptr ? std::string_view{} : std::string_view(subject);
  if (sv.size() != prefix.size() + 1 + ss->shard.size() || sv.substr(0, prefix.size()) != prefix ||
      sv[prefix.size()] != '.' || sv.substr(prefix.size() + 1) != ss->shard)
    return std::nullopt;
  const std::string_view body(natsMsg_GetData(m),
                              static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  auto meta = parse_event_meta(body);
  if (!meta) return std::nullopt;
  Decoded d;
  d.entry.meta = *meta;
  d.entry.meta.seq = stream_seq;
  if (!render_gateway_event(scratch, body, stream_seq, ss->shard)) return std::nullopt;
  d.entry.json = std::make_shared<const std::string>(scratch);
  d.shard = std::string(ss->shard);
  d.shard_seq = ss->seq;
  if (const char* g = header(m, kGapHeader)) d.gap = parse_gap(g);
  return d;
}

/// `shard` is one the gateway serves (`allowed` empty: any).
bool trusted_shard(const std::vector<std::string>& allowed, std::string_view shard) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), shard) != allowed.end();
}

void sleep_unless(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
  const auto until = Clock::now() + d;
  while (!stop.load(std::memory_order_relaxed) && Clock::now() < until)
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(10), until - Clock::now()));
}

}  // namespace

std::string ensure_stream(const NatsConfig& cfg, const std::string& url) {
  Conn c;
  if (auto err = c.open(cfg, url, "laminator-setup", nullptr)) throw std::runtime_error(*err);
  return ensure_stream_on(c.js, cfg);
}

std::string reset_gateway_consumer(const NatsConfig& cfg, const GatewayConfig& gw,
                                   const std::string& url, bool purge) {
  Conn c;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5'000;
  if (auto err = c.open(cfg, url, "laminator-gateway-reset", &jo)) throw std::runtime_error(*err);
  std::string done;
  jsErrCode e{};
  if (purge) {
    const natsStatus s = js_PurgeStream(c.js, cfg.stream.c_str(), nullptr, &e);
    if (s != NATS_OK)
      throw std::runtime_error("cannot purge stream " + cfg.stream + ": " + why(s, e) +
                               " (under authorization, use an admin's NATS user)");
    done = "purged stream " + cfg.stream + "; ";
  }
  const natsStatus s = js_DeleteConsumer(c.js, cfg.stream.c_str(), gw.durable.c_str(), nullptr, &e);
  if (s == NATS_NOT_FOUND) return done + "consumer " + gw.durable + " did not exist";
  if (s != NATS_OK)
    throw std::runtime_error("cannot delete consumer " + gw.durable + ": " + why(s, e));
  return done + "deleted consumer " + gw.durable +
         ": the gateway's next start reads the stream from its first event";
}

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
    // Where the stream stands for this shard: the last message it holds on our subject.
    natsMsg* last = nullptr;
    jsErrCode e{};
    std::uint64_t stored = 0;
    const natsStatus s =
        js_GetLastMsg(&last, conn.js, cfg.stream.c_str(), subject.c_str(), nullptr, &e);
    if (s == NATS_OK) {
      // Copied before the message goes: the header's text lives in it.
      const char* h = header(last, kMsgIdHeader);
      const std::string id = h != nullptr ? h : "";
      natsMsg_Destroy(last);
      const auto ss = parse_msg_id(id);
      if (!ss || ss->shard != shard) {
        log->error("the last message on {} is not this shard's (Nats-Msg-Id '{}'): not publishing",
                   subject, id);
        conn.close();
        return false;
      }
      stored = ss->seq;
      // A tail beyond anything this shard published is not its own: a stranger's message on its
      // subject, or a journal that restarted below what the stream holds. Resuming after it
      // would never publish the journal's events up to it: refuse, loudly, until an operator
      // removes it (docs/operations.md, "A tail the shard did not write"); nothing is skipped.
      const std::uint64_t head = stats.head.load();
      if (stored > head) {
        stats.untrusted_tail.store(stored, std::memory_order_relaxed);
        if (Clock::now() >= next_complaint) {
          log->error(
              "JetStream's last message on {} is seq {}, beyond this shard's head {}: a tail it "
              "did "
              "not write (a stranger's publish, or a journal restored below the stream); not "
              "publishing until it is removed (events wait in the journal)",
              subject, stored, head);
          next_complaint = Clock::now() + std::chrono::seconds(10);
        }
        conn.close();
        return false;
      }
    } else if (s != NATS_NOT_FOUND) {
      log->warn("cannot read the last message on {}: {}", subject, why(s, e));
      conn.close();
      return false;
    }
    {
      std::lock_guard lock(ack_mu);
      acks.clear();
    }
    current_js = conn.js;
    stats.untrusted_tail.store(0, std::memory_order_relaxed);
    window.reset(stored);
    stats.acked_through.store(stored);
    stats.connected.store(1);
    const std::uint64_t head = stats.head.load();
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
        window.acked(a.seq);
        if (a.duplicate) stats.duplicates.fetch_add(1, std::memory_order_relaxed);
      } else {
        stats.failures.fetch_add(1, std::memory_order_relaxed);
        if (!window.needs_rewind()) {
          log->warn("publish of {}:{} failed: {}", shard, a.seq, why(a.status, a.code));
        }
        window.failed(a.seq);
      }
    }
    stats.acked_through.store(window.acked_through(), std::memory_order_relaxed);
  }

  void pull_live() {
    Rendered buf[256];
    std::size_t n = 0;
    while ((n = bus.drain(buf, std::size(buf))) > 0) {
      for (std::size_t i = 0; i < n; ++i) {
        if (buf[i].entry.meta.seq < window.next()) continue;
        if (live.size() >= cfg.queue_capacity) {
          live.pop_front();  // read back from the journal
          stats.live_overflows.fetch_add(1, std::memory_order_relaxed);
        }
        live.push_back(std::move(buf[i].entry));
      }
    }
  }

  /// Reads journal rows from `from` on into the backlog. False when none are there yet.
  bool refill(std::uint64_t from) {
    if (Clock::now() < next_journal_try) return false;
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

  natsStatus send(const Entry& e) {
    natsMsg* m = nullptr;
    natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, e.json->data(),
                                  static_cast<int>(e.json->size()));
    const std::string id = msg_id(shard, e.meta.seq);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kMsgIdHeader, id.c_str());
    if (s == NATS_OK && gap_before && gap_before->second + 1 == e.meta.seq) {
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

  /// Publishes what it can; true when it did anything.
  bool pump() {
    bool progress = false;
    const std::uint64_t head = stats.head.load(std::memory_order_acquire);
    while (window.in_flight() < cfg.max_pending && window.next() <= head) {
      const std::uint64_t s = window.next();
      while (!live.empty() && live.front().meta.seq < s) live.pop_front();
      if (live.empty()) pull_live();  // queued before `head` moved past it
      const Entry* e = nullptr;
      bool from_live = false;
      if (!live.empty() && live.front().meta.seq == s) {
        e = &live.front();
        from_live = true;
      } else {
        while (!backlog.empty() && backlog.front().meta.seq < s) backlog.pop_front();
        if (backlog.empty() && !refill(s)) break;
        if (backlog.front().meta.seq > s) {
          // The journal holds later events but not these: they are not coming (a restore's
          // declared gap, or a hole start-up's journal check reported). Jumped over once what is
          // in flight is acknowledged, rather than stalling the shard.
          const std::uint64_t to =
              std::min(backlog.front().meta.seq, live.empty() ? UINT64_MAX : live.front().meta.seq);
          if (!window.jump(to)) break;
          if (declared_gap(s, to - 1)) {
            log->info("seqs {}..{} of shard {} are a restore's declared gap: not published", s,
                      to - 1, shard);
            gap_before = {s, to - 1};  // named on the next event: the gateway expects the jump
          } else {
            log->error(
                "seqs {}..{} of shard {} are in neither the live stream nor the journal: "
                "skipped",
                s, to - 1, shard);
            stats.lost.fetch_add(to - s, std::memory_order_relaxed);
          }
          progress = true;
          continue;
        }
        e = &backlog.front();
      }
      const natsStatus st = send(*e);
      if (st == NATS_TIMEOUT) break;  // too many acks outstanding: retry shortly, not a failure
      if (st != NATS_OK) {
        drop_connection("publish: " + why(st));
        return progress;
      }
      window.sent();
      stats.published.fetch_add(1, std::memory_order_relaxed);
      if (!from_live) stats.journal_reads.fetch_add(1, std::memory_order_relaxed);
      if (from_live)
        live.pop_front();
      else
        backlog.pop_front();
      progress = true;
    }
    return progress;
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
        const bool done =
            conn.ok() && window.acked_through() >= stats.head.load() && window.in_flight() == 0;
        if (done || Clock::now() >= stop_by) break;
      }
      if (conn.nc == nullptr && !connect()) {
        pull_live();
        sleep_unless(stopping, cfg.reconnect_wait);
        continue;
      }
      process_acks();
      if (window.needs_rewind()) {
        drop_connection("a publish was not acknowledged");
        continue;
      }
      if (!conn.ok()) {
        drop_connection("connection lost");
        continue;
      }
      pull_live();
      if (!pump() && conn.nc != nullptr) {
        wait(window.in_flight() > 0 ? std::chrono::milliseconds(1) : std::chrono::milliseconds(50));
      }
    }
    if (window.acked_through() < stats.head.load()) {
      log->warn(
          "stopping with seqs {}..{} not acknowledged by JetStream: the next start publishes "
          "them from the journal",
          window.acked_through() + 1, stats.head.load());
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
  PublishWindow window;
  /// The last restore's declared gap jumped over: named on the event right after it.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> gap_before;
  std::deque<Entry> live, backlog;
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
     "The stream's last seq for this shard when beyond its own head (a tail it did not write): "
     "publishing stopped; 0 when trusted",
     [](const PublisherStats& s) -> std::uint64_t { return s.untrusted_tail.load(); }},
};

}  // namespace

void JetStreamPublisher::render(std::string& out) const {
  const PublisherStats& s = impl_->stats;
  PromWriter m(out);
  m.table(kPublisherMetrics, s);
}

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
    handed = acked;
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

  void run() {
    pthread_setname_np(pthread_self(), "lam-nats-src");
    std::string scratch;
    while (!stopping.load()) {
      if (sub == nullptr || !conn.ok()) {
        try {
          const std::uint64_t before = handed;
          open();
          // A reconnect resumes after what was acknowledged, which may be below what was already
          // handed to the server: the server skips those (counted).
          handed = std::max(handed, before);
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
        if (seq <= handed) continue;  // a redelivery
        auto d = decode(m, seq, cfg.subject_prefix, scratch);
        const bool known = d && trusted_shard(gw.shards, d->shard);
        if (!known) {
          // Not an event of ours (malformed, on a subject its id does not name, or of a shard not
          // in [gateway] shards): passed over as a hole, so the seq still advances for subscribers
          // and nobody is cut for someone else's message; counted.
          (d ? stats.unknown_shards : stats.malformed).fetch_add(1, std::memory_order_relaxed);
          log->warn("stream seq {}: {}: passed over", seq,
                    d ? "an event of shard '" + d->shard + "', not one of [gateway] shards"
                      : std::string("not a Laminator event (subject, headers or body)"));
          Entry hole;
          hole.meta.seq = seq;
          hole.meta.hole = true;
          hand(Rendered{std::move(hole), 0});
          handed = seq;
          continue;
        }
        const std::uint64_t last = order.last(d->shard);
        switch (order.observe(d->shard, d->shard_seq, d->gap)) {
          case ShardOrder::Verdict::repeat:
            stats.shard_repeats.fetch_add(1, std::memory_order_relaxed);
            log->warn(
                "shard {} seq {} at stream seq {} repeats (last {}): a republication outside "
                "the duplicate window",
                d->shard, d->shard_seq, seq, last);
            break;
          case ShardOrder::Verdict::gap:
            stats.shard_gaps.fetch_add(1, std::memory_order_relaxed);
            log->warn("shard {} jumped from seq {} to {} at stream seq {}", d->shard, last,
                      d->shard_seq, seq);
            break;
          case ShardOrder::Verdict::declared_gap:
            stats.declared_gaps.fetch_add(1, std::memory_order_relaxed);
            log->info("shard {} went from seq {} to {} at stream seq {}: a restore's declared gap",
                      d->shard, last, d->shard_seq, seq);
            break;
          case ShardOrder::Verdict::in_order:
            break;
        }
        hand(Rendered{std::move(d->entry), 0});
        handed = seq;
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
  std::uint64_t handed = 0;  ///< highest stream seq handed to the server
  std::deque<std::pair<std::uint64_t, natsMsg*>> unacked;
  ShardOrder order;  ///< each shard's last seq seen, repeats and jumps
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

// ---------------------------------------------------------------------------------------------
// The gateway's journal: the stream itself.

struct JetStreamJournal::Impl {
  struct Request {
    std::uint64_t after = 0, before = 0;
    std::size_t limit = 0;
    std::vector<Uuid> users;
    std::function<void(JournalPage)> done;
  };

  JournalPage read_page(const Request& r) {
    JournalPage page;
    if (!conn.ok()) {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = 5'000;
      if (auto err = conn.open(cfg, url, "laminator-gateway-journal", &jo)) {
        page.error = *err;
        return page;
      }
    }
    const auto [first, last] = stream_bounds(conn.js, cfg);
    page.max_journaled = last;
    page.last_seq = r.after;
    if (r.after >= last) {
      page.ok = true;
      page.complete = true;
      return page;
    }
    const std::string filter = subjects_of(cfg);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = cfg.stream.c_str();
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = std::max(r.after + 1, first);
    so.Config.AckPolicy = js_AckNone;
    so.Config.InactiveThreshold = 30'000 * kNsPerMs;
    natsSubscription* sub = nullptr;
    jsErrCode e{};
    natsStatus s = js_PullSubscribe(&sub, conn.js, filter.c_str(), nullptr, nullptr, &so, &e);
    if (s != NATS_OK) {
      page.error = "cannot read the stream: " + why(s, e);
      conn.close();
      return page;
    }
    std::string scratch;
    std::size_t scanned = 0;
    bool end = false;
    bool end_read = false;
    while (!end && !end_read && scanned < r.limit) {
      natsMsgList list{nullptr, 0};
      const int want = static_cast<int>(std::min<std::size_t>(r.limit - scanned, 512));
      // no_wait with a wait: the server answers at once with what it has (or with the first
      // message to come), then ends the request, so none is ever left open for the next fetch to
      // find its late messages queued (libnats 3.4.1's `_fetch` overflow, nats.c PR #749;
      // scaleout/fetch_plan.h). The one that times out ends the read: its subscription goes.
      jsFetchRequest fr;
      jsFetchRequest_Init(&fr);
      fr.Batch = want;
      fr.NoWait = true;
      fr.Expires = 1'000 * kNsPerMs;
      const auto t0 = Clock::now();
      s = natsSubscription_FetchRequest(&list, sub, &fr);
      if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) break;
      // A page still arriving after the wait may have more on the way: this one is the last.
      if (Clock::now() - t0 >= std::chrono::seconds(1)) end_read = true;
      if (s != NATS_OK) {
        natsMsgList_Destroy(&list);
        page.error = "stream read failed: " + why(s, e);
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        return page;
      }
      for (int i = 0; i < list.Count && !end; ++i) {
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, list.Msgs[i]) != NATS_OK) continue;
        const std::uint64_t seq = meta->Sequence.Stream;
        const bool at_end = meta->NumPending == 0;
        jsMsgMetaData_Destroy(meta);
        if (r.before != 0 && seq >= r.before) {
          end = true;
          break;
        }
        ++scanned;
        page.last_seq = seq;
        if (at_end || seq >= last) end = true;
        auto d = decode(list.Msgs[i], seq, cfg.subject_prefix, scratch);
        if (!d || !trusted_shard(shards, d->shard)) continue;  // passed over live too
        if (!r.users.empty() &&
            std::find(r.users.begin(), r.users.end(), d->entry.meta.user_id) == r.users.end())
          continue;
        page.rows.push_back(JournalRow{d->entry.meta, *d->entry.json});
      }
      natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);  // deletes the ephemeral consumer
    natsSubscription_Destroy(sub);
    page.ok = true;
    // Complete only when the stream's end (or `before`) was reached: a fetch that timed out says
    // nothing about what follows, and a complete page lets the subscriber skip to max_journaled.
    page.complete = end;
    page.max_journaled = std::max(page.max_journaled, page.last_seq);
    return page;
  }

  void serve(Request& req) {
    JournalPage page = read_page(req);
    if (!page.ok) log->warn("journal read from JetStream failed: {}", page.error);
    req.done(std::move(page));
  }

  NatsConfig cfg;
  std::string url;
  std::vector<std::string> shards;  ///< [gateway] shards (empty: any)
  Conn conn;                        ///< the reader thread's (closed after it stopped)
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("gateway");
  RequestThread<Request> thread;  ///< last: stopped first
};

JetStreamJournal::JetStreamJournal(NatsConfig cfg, std::string url, std::vector<std::string> shards)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
  impl_->url = std::move(url);
  impl_->shards = std::move(shards);
  impl_->thread.start("lam-nats-jrnl", [i = impl_.get()](Impl::Request& r) { i->serve(r); });
}

JetStreamJournal::~JetStreamJournal() {
  stop();
}

void JetStreamJournal::read(std::uint64_t after, std::uint64_t before, std::size_t limit,
                            std::vector<Uuid> users, std::function<void(JournalPage)> done) {
  impl_->thread.post(
      {after, before, limit == 0 ? kPageRows : limit, std::move(users), std::move(done)});
}

void JetStreamJournal::stop() {
  impl_->thread.stop();
  impl_->conn.close();
}

}  // namespace lam::daemon
