#include "stream/stream_server.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>

#include "engine/event_json.h"
#include "stream/http_session.h"
#include "stream/prometheus.h"
#include "stream/server_core.h"
#include "stream/ws_session.h"

namespace lam::daemon {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr std::size_t kDrainBatch = 256;  ///< events fanned out before writes get a turn
constexpr auto kFallbackPoll = std::chrono::milliseconds(20);
constexpr auto kPacePause = std::chrono::microseconds(200);
/// Accepting again after the process ran out of descriptors (EMFILE/ENFILE/ENOBUFS): a pause,
/// not a loop at a full core.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

}  // namespace

ServerCore::ServerCore(const StreamConfig& c, EventBus* b, EntryBus* e, JournalReader* j,
                       ServerHooks h, std::uint64_t last)
    : cfg(c),
      bus(b),
      entries(e),
      journal(j),
      hooks(std::move(h)),
      acceptor(io),
      doorbell(io),
      poll_timer(io),
      pace_timer(io),
      accept_timer(io),
      ring(c.ring_events, last) {
  if (bus != nullptr)
    buf.resize(kDrainBatch);
  else
    rendered.resize(kDrainBatch);
}

std::size_t ServerCore::drain_batch() {
  if (bus != nullptr) {
    const std::size_t n = bus->drain(buf.data(), buf.size());
    for (std::size_t i = 0; i < n; ++i) publish(buf[i]);
    return n;
  }
  const std::size_t n = entries->drain(rendered.data(), rendered.size());
  for (std::size_t i = 0; i < n; ++i) {
    publish_entry(std::move(rendered[i].entry), rendered[i].recv_ts);
    rendered[i].entry.json.reset();
  }
  return n;
}

void ServerCore::accept() {
  acceptor.async_accept([this](error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      stats.accept_errors.fetch_add(1, std::memory_order_relaxed);
      const bool exhausted = ec == net::error::no_descriptors ||
                             ec == net::error::no_buffer_space || ec == net::error::no_memory;
      // Rate-limited by the backoff itself: at most one line per pause.
      log->warn(
          "accept failed: {}{}", ec.message(),
          exhausted
              ? "; pausing new connections (raise LimitNOFILE or lower stream.max_connections)"
              : "");
      accept_timer.expires_after(kAcceptBackoff);
      accept_timer.async_wait([this](error_code e) {
        if (!e) accept();
      });
      return;
    }
    stats.connections.fetch_add(1, std::memory_order_relaxed);
    sock.set_option(tcp::no_delay(true), ec);
    const bool over = stats.open_connections.load(std::memory_order_relaxed) >= cfg.max_connections;
    auto http = std::make_shared<HttpSession>(*this, std::move(sock), ConnectionSlot(stats));
    if (over)
      http->refuse();
    else
      http->start();
    accept();
  });
}

void ServerCore::wait_doorbell() {
  doorbell.async_wait(net::posix::stream_descriptor::wait_read, [this](error_code ec) {
    if (ec) return;
    std::uint64_t v = 0;
    [[maybe_unused]] const ssize_t n = ::read(doorbell.native_handle(), &v, sizeof v);
    drain();
    wait_doorbell();
  });
}

void ServerCore::arm_poll() {
  poll_timer.expires_after(kFallbackPoll);
  poll_timer.async_wait([this](error_code ec) {
    if (ec) return;
    drain();
    publish_latency();
    arm_poll();
  });
}

bool ServerCore::pace() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& s : sessions)
    if (s->depth() > cfg.client_queue / 2 && s->keeping_up(now)) return true;
  return false;
}

void ServerCore::advance_committed() {
  if (!hooks.committed_head) return;
  const std::uint64_t head = hooks.committed_head();
  if (head <= committed_seen) return;
  committed_seen = head;
  for (const auto& s : sessions)
    if (s->committed_only()) s->on_committed(head);
}

void ServerCore::drain() {
  advance_committed();
  if (pace()) {
    if (!pace_armed) {
      pace_armed = true;
      pace_timer.expires_after(kPacePause);
      pace_timer.async_wait([this](error_code ec) {
        pace_armed = false;
        if (!ec) drain();
      });
    }
    return;
  }
  const std::size_t n = drain_batch();
  // A full batch: let the subscribers' writes run before the next one (a burst of fires must not
  // fill every queue before any socket is written). Otherwise announce sleep, or go again if
  // events slipped in.
  if (n == kDrainBatch || !prepare_sleep()) net::post(io, [this] { drain(); });
}

void ServerCore::publish_latency() {
  stats.latency_count.store(latency.count(), std::memory_order_relaxed);
  stats.latency_p50_us.store(latency.quantile_us(0.50), std::memory_order_relaxed);
  stats.latency_p90_us.store(latency.quantile_us(0.90), std::memory_order_relaxed);
  stats.latency_p99_us.store(latency.quantile_us(0.99), std::memory_order_relaxed);
  stats.latency_p999_us.store(latency.quantile_us(0.999), std::memory_order_relaxed);
  stats.latency_max_us.store(latency.quantile_us(1.0), std::memory_order_relaxed);
  for (std::size_t i = 0; i < kStages; ++i) {
    const auto s = static_cast<Stage>(i);
    stats.stage_p50_us[i].store(stages.histogram(s).quantile_us(0.5), std::memory_order_relaxed);
    stats.stage_p99_us[i].store(stages.histogram(s).quantile_us(0.99), std::memory_order_relaxed);
    stats.slow_events[i].store(stages.slow(s), std::memory_order_relaxed);
    stats.slow_stage_us[i].store(static_cast<double>(stages.slow_ns_in(s)) / 1e3,
                                 std::memory_order_relaxed);
  }
}

void ServerCore::publish(const Published& p) {
  const Event& e = p.event;
  scratch.clear();
  append_event_json(scratch, e);
  const TimeNs at =
      publish_entry(Entry{EventMeta{e.seq, e.type, e.user_id, e.market_id, e.has_market},
                          std::make_shared<const std::string>(scratch)},
                    p.recv_ts);
  if (at > 0) stages.record(StageStamps{p.recv_ts, p.dequeued_ts, p.made_ts, at});
}

TimeNs ServerCore::publish_entry(Entry entry, TimeNs recv_ts) {
  const std::uint64_t seq = entry.meta.seq;
  const std::uint64_t before = ring.head();
  if (!ring.push(entry)) {
    // The bus overflowed: live subscribers missed events. They resume from the journal.
    stats.bus_gaps.fetch_add(1, std::memory_order_relaxed);
    log->warn("event bus gap: seq {} after {}; cutting subscribers so they resume from the journal",
              seq, before);
    cut_all(1008, "server fell behind; resume with since");
  }
  if (hooks.on_publish) hooks.on_publish(entry);
  // on_event never leaves the set synchronously (finish() runs only from completion handlers), so
  // no per-event copy of the set.
  for (const auto& s : sessions) s->on_event(entry);
  stats.events_published.fetch_add(1, std::memory_order_relaxed);
  if (recv_ts <= 0) return 0;
  const TimeNs now = wall_ns();
  latency.record_ns(now - recv_ts);
  return now;
}

void ServerCore::begin_stop() {
  stopping = true;
  error_code ec;
  acceptor.close(ec);
  accept_timer.cancel();
  while (drain_batch() > 0) {
  }
  cut_all(1001, "server shutting down");
}

void ServerCore::cut_all(std::uint16_t code, const std::string& why) {
  std::vector<std::shared_ptr<WsSession>> all(sessions.begin(), sessions.end());
  for (const auto& s : all) s->close(code, why);
}

namespace {

const MetricDesc<ServerStats> kServerMetrics[] = {
    {"laminator_stream_subscribers", "gauge", "Connected alert-stream subscribers",
     [](const ServerStats& s) -> std::uint64_t { return s.subscribers.load(); }},
    {"laminator_stream_open_connections", "gauge",
     "Open HTTP and WebSocket connections (capped by stream.max_connections)",
     [](const ServerStats& s) -> std::uint64_t { return s.open_connections.load(); }},
    {"laminator_stream_connections_total", "counter", "TCP connections accepted",
     [](const ServerStats& s) -> std::uint64_t { return s.connections.load(); }},
    {"laminator_stream_refused_connections_total", "counter",
     "Connections answered 503 over stream.max_connections",
     [](const ServerStats& s) -> std::uint64_t { return s.refused_connections.load(); }},
    {"laminator_stream_accept_errors_total", "counter",
     "Accepts that failed (descriptors exhausted, ...), each followed by a pause",
     [](const ServerStats& s) -> std::uint64_t { return s.accept_errors.load(); }},
    {"laminator_stream_auth_failures_total", "counter", "Requests refused with 401",
     [](const ServerStats& s) -> std::uint64_t { return s.auth_failures.load(); }},
    {"laminator_stream_bad_requests_total", "counter", "Requests answered 400/413/426/431",
     [](const ServerStats& s) -> std::uint64_t { return s.bad_requests.load(); }},
    {"laminator_stream_events_published_total", "counter", "Events published to the stream",
     [](const ServerStats& s) -> std::uint64_t { return s.events_published.load(); }},
    {"laminator_stream_events_sent_total", "counter", "Events written to subscribers",
     [](const ServerStats& s) -> std::uint64_t { return s.events_sent.load(); }},
    {"laminator_stream_slow_cuts_total", "counter", "Subscribers closed with 1008 for a full queue",
     [](const ServerStats& s) -> std::uint64_t { return s.slow_cuts.load(); }},
    {"laminator_stream_resumes_total", "counter", "Subscriptions that resumed with since",
     [](const ServerStats& s) -> std::uint64_t { return s.resumes.load(); }},
    {"laminator_stream_since_ahead_total", "counter",
     "Subscriptions refused because since was beyond the stream's head",
     [](const ServerStats& s) -> std::uint64_t { return s.ahead_refusals.load(); }},
    {"laminator_stream_not_journaled_cuts_total", "counter",
     "Resumes closed with 1013: events older than the ring and not journaled yet",
     [](const ServerStats& s) -> std::uint64_t { return s.not_journaled_cuts.load(); }},
    {"laminator_stream_journal_reads_total", "counter", "Journal pages read for resumes",
     [](const ServerStats& s) -> std::uint64_t { return s.journal_reads.load(); }},
    {"laminator_stream_bus_gaps_total", "counter",
     "Times the queue into the server overflowed (events skipped seqs)",
     [](const ServerStats& s) -> std::uint64_t { return s.bus_gaps.load(); }},
};

}  // namespace

std::string ServerCore::metrics() {
  std::string out;
  out.reserve(16 * 1024);
  PromWriter m(out);
  m.table(kServerMetrics, stats);
  m.family("process_start_time_seconds", "gauge",
           "Start time of the process since the Unix epoch in seconds (a restart moves it)");
  m.sample_double("process_start_time_seconds", process_start_time_seconds());
  m.one("laminator_stream_ring_events", "gauge", "Events held in the in-memory ring", ring.size());
  latency.render(out, "laminator_tick_to_event_seconds",
                 "Local receive of the tick to the event published to subscribers");
  if (bus != nullptr) stages.render(out);
  if (hooks.metrics) hooks.metrics(out);
  return out;
}

StreamServer::StreamServer(const StreamConfig& cfg, EventBus& bus, JournalReader* journal,
                           ServerHooks hooks, std::uint64_t last_seq)
    : impl_(std::make_unique<ServerCore>(cfg, &bus, nullptr, journal, std::move(hooks), last_seq)) {
}

StreamServer::StreamServer(const StreamConfig& cfg, EntryBus& entries, JournalReader* journal,
                           ServerHooks hooks, std::uint64_t last_seq)
    : impl_(std::make_unique<ServerCore>(cfg, nullptr, &entries, journal, std::move(hooks),
                                         last_seq)) {}

StreamServer::~StreamServer() {
  stop();
}

void StreamServer::start() {
  ServerCore& s = *impl_;
  error_code ec;
  const auto addr = net::ip::make_address(s.cfg.address, ec);
  if (ec) throw std::runtime_error("stream.address: " + ec.message());
  const tcp::endpoint ep(addr, s.cfg.port);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + s.cfg.address + ":" +
                             std::to_string(s.cfg.port) + ": " + ec.message());
  s.port.store(s.acceptor.local_endpoint().port());
  s.doorbell.assign(::dup(s.bus != nullptr ? s.bus->fd() : s.entries->fd()));
  s.accept();
  s.wait_doorbell();
  s.arm_poll();
  s.thread = std::thread([&s] {
    pthread_setname_np(pthread_self(), "lam-server");
    s.io.run();
  });
  s.log->info("alert stream on {}:{}", s.cfg.address, s.port.load());
}

void StreamServer::stop(std::chrono::milliseconds deadline) {
  ServerCore& s = *impl_;
  if (!s.thread.joinable()) return;
  net::post(s.io, [&s] { s.begin_stop(); });
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (s.stats.subscribers.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.io.stop();
  s.thread.join();
}

std::uint16_t StreamServer::port() const noexcept {
  return impl_->port.load();
}

const ServerStats& StreamServer::stats() const noexcept {
  return impl_->stats;
}

}  // namespace lam::daemon
