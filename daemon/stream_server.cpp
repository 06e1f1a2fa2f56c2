#include "daemon/stream_server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <thread>
#include <unordered_set>

#include "daemon/auth.h"
#include "daemon/latency_histogram.h"
#include "daemon/prometheus.h"
#include "engine/event_json.h"

namespace lam::daemon {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t kDrainBatch = 256;  ///< events fanned out before writes get a turn
constexpr std::size_t kMaxMessageBytes = 256 * 1024;  ///< events coalesced into one message
constexpr auto kFallbackPoll = std::chrono::milliseconds(20);
/// A closing subscriber gets this long to take the write in flight and the close frame; then the
/// socket is dropped.
constexpr auto kCloseGrace = std::chrono::seconds(5);
/// A subscriber more than half full whose writes completed this recently is keeping up: the
/// server waits for it (the bus buffers) instead of filling its queue. One whose writes stalled
/// longer is slow: its queue fills and it is cut.
constexpr auto kProgressWindow = std::chrono::milliseconds(100);
constexpr auto kPacePause = std::chrono::microseconds(200);
constexpr std::size_t kMaxRequestBytes = 16 * 1024;
constexpr std::size_t kMaxClientMessage = 16 * 1024;

/// An event as the server keeps it: what filters need plus the JSON, shared by every subscriber.
struct Entry {
  EventMeta meta;
  std::shared_ptr<const std::string> json;
};

TimeNs wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class WsSession;

struct StreamServer::Impl {
  Impl(const StreamConfig& c, EventBus& b, JournalReader* j, ServerHooks h, std::uint64_t last)
      : cfg(c), bus(b), journal(j), hooks(std::move(h)), acceptor(io), doorbell(io),
        poll_timer(io), pace_timer(io), last_seq(last) {
    buf.resize(kDrainBatch);
  }

  void accept();
  void wait_doorbell();
  void arm_poll();
  void drain();
  /// Refreshes the percentiles the status line reads (from the poll timer, not per drain).
  void publish_latency();
  bool pace();  ///< true when a keeping-up subscriber needs its writes to catch up first
  void publish(const Published& p);
  void cut_all(std::uint16_t code, const std::string& why);
  std::string metrics();

  StreamConfig cfg;
  EventBus& bus;
  JournalReader* journal;
  ServerHooks hooks;
  ServerStats stats;
  net::io_context io;
  tcp::acceptor acceptor;
  net::posix::stream_descriptor doorbell;
  net::steady_timer poll_timer;
  net::steady_timer pace_timer;
  bool pace_armed = false;
  std::thread thread;
  std::atomic<std::uint16_t> port{0};
  bool stopping = false;
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("server");

  // Server-thread state.
  std::uint64_t last_seq;  ///< highest seq published (ring or not)
  std::deque<Entry> ring;
  std::unordered_set<std::shared_ptr<WsSession>> sessions;
  std::vector<Published> buf;
  LatencyHistogram latency;
  std::string scratch;
};

/// One subscriber. Lives on the server thread; owned by Impl::sessions while open.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(StreamServer::Impl& srv, tcp::socket sock, StreamFilter filter)
      : srv_(srv), ws_(std::move(sock)), filter_(std::move(filter)), grace_(srv.io) {}

  void start(http::request<http::string_body> req, std::optional<std::uint64_t> since,
             const TokenConfig& token) {
    token_ = &token;
    since_ = since;
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(kMaxClientMessage);
    ws_.text(true);
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  /// A live event (server thread).
  void on_event(const Entry& e) {
    if (closing_ != 0 || e.meta.seq <= cursor_) return;
    if (catching_up_) {
      if (pending_.size() >= srv_.cfg.client_queue) return cut_slow();
      pending_.push_back(e);
      return;
    }
    deliver(e);
  }

  [[nodiscard]] std::size_t depth() const noexcept { return queue_.size(); }
  [[nodiscard]] bool keeping_up(std::chrono::steady_clock::time_point now) const noexcept {
    return closing_ == 0 && now - last_progress_ < kProgressWindow;
  }

  /// Closes with `code` once the write in flight (if any) completes; hard-closes after a grace.
  void close(std::uint16_t code, std::string reason) {
    if (closing_ != 0) return;
    closing_ = code;
    close_reason_ = std::move(reason);
    pending_.clear();
    if (!writing_) do_close();
    grace_.expires_after(kCloseGrace);
    grace_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->hard_close();
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return finish();
    srv_.stats.subscribers.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    last_progress_ = std::chrono::steady_clock::now();
    read();
    begin_replay();
  }

  void begin_replay() {
    cursor_ = srv_.last_seq;
    if (!since_ || *since_ >= srv_.last_seq) return;  // live from here
    srv_.stats.resumes.fetch_add(1, std::memory_order_relaxed);
    cursor_ = *since_;
    if (!srv_.ring.empty() && srv_.ring.front().meta.seq <= *since_ + 1) {
      replay_ring();
      return;
    }
    if (srv_.journal == nullptr) {
      close(1011, "resume point is older than the server's memory and there is no journal");
      return;
    }
    catching_up_ = true;
    request_journal(*since_);
  }

  void request_journal(std::uint64_t after) {
    srv_.stats.journal_reads.fetch_add(1, std::memory_order_relaxed);
    std::weak_ptr<WsSession> weak = shared_from_this();
    net::io_context& io = srv_.io;
    srv_.journal->read(after, 0, filter_.users, [weak, &io](JournalPage page) {
      net::post(io, [weak, page = std::move(page)]() mutable {
        if (auto self = weak.lock()) self->on_journal(std::move(page));
      });
    });
  }

  void on_journal(JournalPage page) {
    if (closing_ != 0) return;
    if (!page.ok) return close(1011, "journal unavailable; retry with since=" + std::to_string(cursor_));
    for (JournalRow& r : page.rows) {
      if (r.meta.seq <= cursor_) continue;
      cursor_ = r.meta.seq;
      if (filter_.matches(r.meta))
        enqueue(Entry{r.meta, std::make_shared<const std::string>(std::move(r.body))});
      if (closing_ != 0) return;
    }
    if (!page.complete) return request_journal(cursor_);
    // Everything up to max_journaled is covered (for this filter); the ring must take over there.
    const std::uint64_t covered = std::max(cursor_, page.max_journaled);
    const std::uint64_t ring_first = srv_.ring.empty() ? srv_.last_seq + 1 : srv_.ring.front().meta.seq;
    if (ring_first > covered + 1) {
      return close(1013, "events not journaled yet; retry with since=" + std::to_string(cursor_));
    }
    cursor_ = covered;
    catching_up_ = false;
    for (const Entry& e : srv_.ring) {  // events after the journal's head
      if (e.meta.seq > cursor_) deliver(e);
      if (closing_ != 0) return;
    }
    for (const Entry& e : pending_) {  // live events that arrived meanwhile (mostly in the ring)
      if (e.meta.seq > cursor_) deliver(e);
      if (closing_ != 0) return;
    }
    pending_.clear();
  }

  void replay_ring() {
    for (const Entry& e : srv_.ring) {
      if (e.meta.seq > cursor_) deliver(e);
      if (closing_ != 0) return;
    }
  }

  void deliver(const Entry& e) {
    cursor_ = e.meta.seq;
    if (filter_.matches(e.meta)) enqueue(e);
  }

  void enqueue(const Entry& e) {
    if (closing_ != 0) return;
    if (queue_.size() >= srv_.cfg.client_queue) return cut_slow();
    queue_.push_back(e);
    if (!writing_) write_next();
  }

  void cut_slow() {
    srv_.stats.slow_cuts.fetch_add(1, std::memory_order_relaxed);
    close(1008, "slow consumer: resume with since=" + std::to_string(written_));
  }

  /// Everything queued (up to kMaxMessageBytes) goes out as one message, one event per line.
  void write_next() {
    if (queue_.empty()) return;
    writing_ = true;
    out_.clear();
    in_flight_ = 0;
    while (in_flight_ < queue_.size() && (out_.empty() || out_.size() < kMaxMessageBytes)) {
      if (!out_.empty()) out_.push_back('\n');
      out_.append(*queue_[in_flight_].json);
      ++in_flight_;
    }
    ws_.async_write(net::buffer(out_), [self = shared_from_this()](beast::error_code ec,
                                                                  std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (ec) return finish();
    last_progress_ = std::chrono::steady_clock::now();
    if (in_flight_ > 0 && in_flight_ <= queue_.size()) {
      written_ = queue_[in_flight_ - 1].meta.seq;
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
      srv_.stats.events_sent.fetch_add(in_flight_, std::memory_order_relaxed);
    }
    in_flight_ = 0;
    if (closing_ != 0) return do_close();
    write_next();
  }

  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    std::string error;
    auto f = parse_filter_json(text, error);
    if (!f) return close(1008, "bad filter: " + error);
    if (!apply_scope(*token_, *f)) {
      srv_.stats.forbidden.fetch_add(1, std::memory_order_relaxed);
      return close(1008, "filter names a user this token may not see");
    }
    filter_ = std::move(*f);
    read();
  }

  void do_close() {
    if (close_sent_) return;
    close_sent_ = true;
    websocket::close_reason r(static_cast<websocket::close_code>(closing_), close_reason_);
    ws_.async_close(r, [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  void hard_close() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    grace_.cancel();
    if (counted_) srv_.stats.subscribers.fetch_sub(1, std::memory_order_relaxed);
    srv_.sessions.erase(shared_from_this());
  }

  StreamServer::Impl& srv_;
  websocket::stream<beast::tcp_stream> ws_;
  StreamFilter filter_;
  net::steady_timer grace_;
  const TokenConfig* token_ = nullptr;
  std::optional<std::uint64_t> since_;
  beast::flat_buffer in_;
  std::deque<Entry> queue_;    ///< bounded by client_queue; the first in_flight_ are being written
  std::string out_;            ///< the message being written
  std::size_t in_flight_ = 0;
  std::chrono::steady_clock::time_point last_progress_{};
  std::deque<Entry> pending_;  ///< live events held while the journal is read
  std::uint64_t cursor_ = 0;   ///< highest seq considered (delivered or filtered out)
  std::uint64_t written_ = 0;  ///< highest seq fully written to the socket
  bool catching_up_ = false;
  bool writing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  bool counted_ = false;
  std::uint16_t closing_ = 0;
  std::string close_reason_;
};

namespace {

/// One HTTP request: routes it, upgrading /v1/stream to a WsSession.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(StreamServer::Impl& srv, tcp::socket sock) : srv_(srv), stream_(std::move(sock)) {}

  void start() {
    parser_.emplace();
    parser_->body_limit(kMaxRequestBytes);
    parser_->header_limit(kMaxRequestBytes);
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) return;
    http::request<http::string_body> req = parser_->release();
    const std::string_view target(req.target().data(), req.target().size());
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    if (req.method() != http::verb::get) return respond(req, http::status::method_not_allowed, "text/plain", "GET only\n");
    if (path == "/metrics") return respond(req, http::status::ok, "text/plain; version=0.0.4", srv_.metrics());
    if (path == "/healthz") {
      std::string body;
      const bool ok = srv_.hooks.health ? srv_.hooks.health(body) : true;
      return respond(req, ok ? http::status::ok : http::status::service_unavailable,
                     "application/json", body + "\n");
    }
    if (path != "/v1/stream") return respond(req, http::status::not_found, "text/plain", "not found\n");
    const auto auth = req[http::field::authorization];
    const TokenConfig* token =
        authenticate(srv_.cfg.tokens, std::string_view(auth.data(), auth.size()));
    if (token == nullptr) {
      srv_.stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
      return respond(req, http::status::unauthorized, "text/plain", "missing or wrong bearer token\n");
    }
    if (!websocket::is_upgrade(req)) {
      srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
      return respond(req, http::status::upgrade_required, "text/plain", "WebSocket upgrade required\n");
    }
    std::string error;
    auto sq = parse_stream_query(query, error);
    if (!sq) {
      srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
      return respond(req, http::status::bad_request, "text/plain", error + "\n");
    }
    if (!apply_scope(*token, sq->filter)) {
      srv_.stats.forbidden.fetch_add(1, std::memory_order_relaxed);
      return respond(req, http::status::forbidden, "text/plain", "user_id outside this token's scope\n");
    }
    if (srv_.stopping) return respond(req, http::status::service_unavailable, "text/plain", "shutting down\n");
    stream_.expires_never();
    auto ws = std::make_shared<WsSession>(srv_, stream_.release_socket(), std::move(sq->filter));
    srv_.sessions.insert(ws);
    ws->start(std::move(req), sq->since, *token);
  }

  void respond(const http::request<http::string_body>& req, http::status status,
               const char* type, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(status, req.version());
    res->set(http::field::server, "laminator");
    res->set(http::field::content_type, type);
    if (status == http::status::unauthorized) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(false);
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    });
  }

  StreamServer::Impl& srv_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

void StreamServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec) {
      if (ec != net::error::operation_aborted) accept();
      return;
    }
    stats.connections.fetch_add(1, std::memory_order_relaxed);
    sock.set_option(tcp::no_delay(true), ec);
    std::make_shared<HttpSession>(*this, std::move(sock))->start();
    accept();
  });
}

void StreamServer::Impl::wait_doorbell() {
  doorbell.async_wait(net::posix::stream_descriptor::wait_read, [this](beast::error_code ec) {
    if (ec) return;
    std::uint64_t v = 0;
    [[maybe_unused]] const ssize_t n = ::read(doorbell.native_handle(), &v, sizeof v);
    drain();
    wait_doorbell();
  });
}

void StreamServer::Impl::arm_poll() {
  poll_timer.expires_after(kFallbackPoll);
  poll_timer.async_wait([this](beast::error_code ec) {
    if (ec) return;
    drain();
    publish_latency();
    arm_poll();
  });
}

bool StreamServer::Impl::pace() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& s : sessions)
    if (s->depth() > cfg.client_queue / 2 && s->keeping_up(now)) return true;
  return false;
}

void StreamServer::Impl::drain() {
  if (pace()) {
    if (!pace_armed) {
      pace_armed = true;
      pace_timer.expires_after(kPacePause);
      pace_timer.async_wait([this](beast::error_code ec) {
        pace_armed = false;
        if (!ec) drain();
      });
    }
    return;
  }
  const std::size_t n = bus.drain(buf.data(), buf.size());
  for (std::size_t i = 0; i < n; ++i) publish(buf[i]);
  // A full batch: let the subscribers' writes run before the next one (a burst of fires must not
  // fill every queue before any socket is written). Otherwise announce sleep, or go again if
  // events slipped in.
  if (n == buf.size() || !bus.prepare_sleep()) net::post(io, [this] { drain(); });
}

void StreamServer::Impl::publish_latency() {
  stats.latency_count.store(latency.count(), std::memory_order_relaxed);
  stats.latency_p50_us.store(latency.quantile_us(0.50), std::memory_order_relaxed);
  stats.latency_p99_us.store(latency.quantile_us(0.99), std::memory_order_relaxed);
  stats.latency_p999_us.store(latency.quantile_us(0.999), std::memory_order_relaxed);
}

void StreamServer::Impl::publish(const Published& p) {
  const Event& e = p.event;
  if (e.seq != last_seq + 1 && !ring.empty()) {
    // The bus overflowed: the ring is no longer contiguous. Subscribers resume from the journal.
    stats.bus_gaps.fetch_add(1, std::memory_order_relaxed);
    log->warn("event bus gap: seq {} after {}; cutting subscribers so they resume from the journal",
              e.seq, last_seq);
    ring.clear();
    cut_all(1008, "server fell behind; resume with since");
  }
  last_seq = e.seq;
  scratch.clear();
  append_event_json(scratch, e);
  Entry entry{EventMeta{e.seq, e.type, e.user_id, e.market_id, e.has_market},
              std::make_shared<const std::string>(scratch)};
  ring.push_back(entry);
  if (ring.size() > cfg.ring_events) ring.pop_front();
  for (const auto& s : sessions) s->on_event(entry);
  stats.events_published.fetch_add(1, std::memory_order_relaxed);
  if (p.recv_ts > 0) latency.record_ns(wall_ns() - p.recv_ts);
}

void StreamServer::Impl::cut_all(std::uint16_t code, const std::string& why) {
  std::vector<std::shared_ptr<WsSession>> all(sessions.begin(), sessions.end());
  for (const auto& s : all) s->close(code, why);
}

std::string StreamServer::Impl::metrics() {
  std::string out;
  out.reserve(16 * 1024);
  PromWriter m(out);
  m.one("laminator_stream_subscribers", "gauge", "Connected alert-stream subscribers",
        stats.subscribers.load());
  m.one("laminator_stream_connections_total", "counter", "TCP connections accepted",
        stats.connections.load());
  m.one("laminator_stream_auth_failures_total", "counter", "Requests refused with 401",
        stats.auth_failures.load());
  m.one("laminator_stream_events_published_total", "counter", "Events published to the stream",
        stats.events_published.load());
  m.one("laminator_stream_events_sent_total", "counter", "Events written to subscribers",
        stats.events_sent.load());
  m.one("laminator_stream_slow_cuts_total", "counter",
        "Subscribers closed with 1008 for a full queue", stats.slow_cuts.load());
  m.one("laminator_stream_resumes_total", "counter", "Subscriptions that resumed with since",
        stats.resumes.load());
  m.one("laminator_stream_journal_reads_total", "counter", "Journal pages read for resumes",
        stats.journal_reads.load());
  m.one("laminator_stream_bus_gaps_total", "counter",
        "Times the matcher-to-server queue overflowed", stats.bus_gaps.load());
  m.one("laminator_stream_ring_events", "gauge", "Events held in the in-memory ring", ring.size());
  latency.render(out, "laminator_tick_to_event_seconds",
                 "Local receive of the tick to the event published to subscribers");
  if (hooks.metrics) hooks.metrics(out);
  return out;
}

StreamServer::StreamServer(const StreamConfig& cfg, EventBus& bus, JournalReader* journal,
                           ServerHooks hooks, std::uint64_t last_seq)
    : impl_(std::make_unique<Impl>(cfg, bus, journal, std::move(hooks), last_seq)) {}

StreamServer::~StreamServer() {
  stop();
}

void StreamServer::start() {
  Impl& s = *impl_;
  beast::error_code ec;
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
  s.doorbell.assign(::dup(s.bus.fd()));
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
  Impl& s = *impl_;
  if (!s.thread.joinable()) return;
  net::post(s.io, [&s] {
    s.stopping = true;
    beast::error_code ec;
    s.acceptor.close(ec);
    std::size_t n = 0;
    while ((n = s.bus.drain(s.buf.data(), s.buf.size())) > 0)
      for (std::size_t i = 0; i < n; ++i) s.publish(s.buf[i]);
    s.cut_all(1001, "server shutting down");
  });
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
