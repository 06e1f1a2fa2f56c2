#include "stream/ws_session.h"

namespace lam::daemon {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
constexpr std::size_t kMaxMessageBytes = 256 * 1024;  ///< events coalesced into one message
constexpr std::size_t kMaxClientMessage = 16 * 1024;
constexpr std::size_t kMaxCloseReason = 123;  ///< RFC 6455: a close frame's payload is <= 125
/// A closing subscriber gets this long to take the write in flight and the close frame; then the
/// socket is dropped.
constexpr auto kCloseGrace = std::chrono::seconds(5);
/// While the server stops: a subscriber that does not take its close within this is cut (TCP), so
/// one that paused its socket cannot hold the daemon's exit (it resumes with `since`: nothing is
/// lost). Issue 32: the stop waited out its 1.5 s deadline for such a subscriber.
constexpr auto kStopGrace = std::chrono::milliseconds(200);
/// A subscriber more than half full whose writes completed this recently is keeping up: the
/// server waits for it (the bus buffers) instead of filling its queue. One whose writes stalled
/// longer is slow: its queue fills and it is cut.
constexpr auto kProgressWindow = std::chrono::milliseconds(100);
}  // namespace

WsSession::WsSession(ServerCore& srv, tcp::socket sock, ConnectionSlot slot, StreamFilter filter,
                     std::optional<std::uint64_t> since, const TokenConfig& token,
                     bool committed_only)
    : srv_(srv),
      ws_(std::move(sock)),
      slot_(std::move(slot)),
      sub_(srv.ring, std::move(filter), since, srv.cfg.client_queue, srv.journal != nullptr,
           srv.hooks.known_head ? srv.hooks.known_head() : 0, committed_only, srv.committed_head()),
      grace_(srv.io),
      token_(&token) {}

void WsSession::start(http::request<http::string_body> req) {
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "laminator"); }));
  ws_.read_message_max(kMaxClientMessage);
  ws_.text(true);
  ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
}

bool WsSession::keeping_up(std::chrono::steady_clock::time_point now) const noexcept {
  return !sub_.close_order() && now - last_progress_ < kProgressWindow;
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) return finish();
  accepted_ = true;
  srv_.stats.subscribers.fetch_add(1, std::memory_order_relaxed);
  srv_.join(shared_from_this());
  last_progress_ = std::chrono::steady_clock::now();
  if (srv_.stopping) sub_.close(1001, Subscription::CloseKind::server, "server shutting down");
  sub_.on_accepted();
  if (sub_.resumed()) srv_.stats.resumes.fetch_add(1, std::memory_order_relaxed);
  read();
  advance();
}

void WsSession::on_event(const Entry& e) {
  sub_.on_live(e);
  advance();
}

void WsSession::on_committed(std::uint64_t head) {
  sub_.on_committed(head);
  advance();
}

void WsSession::close(std::uint16_t code, const std::string& reason) {
  sub_.close(code, Subscription::CloseKind::server, reason);
  advance();  // before the handshake completes this does nothing; on_accept carries it out
}

void WsSession::advance() {
  if (!accepted_ || finished_) return;
  if (const auto r = sub_.take_journal_request()) request_journal(*r);
  if (const auto& c = sub_.close_order()) {
    if (!grace_armed_) {
      grace_armed_ = true;
      switch (c->kind) {
        case Subscription::CloseKind::slow:
          srv_.stats.slow_cuts.fetch_add(1);
          break;
        case Subscription::CloseKind::ahead:
          srv_.stats.ahead_refusals.fetch_add(1);
          break;
        case Subscription::CloseKind::not_journaled:
          srv_.stats.not_journaled_cuts.fetch_add(1);
          break;
        default:
          break;
      }
      if (srv_.stopping)
        grace_.expires_after(kStopGrace);
      else
        grace_.expires_after(kCloseGrace);
      grace_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e) self->hard_close();
      });
    }
    if (!writing_) do_close();
    return;
  }
  if (!writing_) write_next();
}

void WsSession::request_journal(const Subscription::JournalRequest& r) {
  srv_.stats.journal_reads.fetch_add(1, std::memory_order_relaxed);
  std::weak_ptr<WsSession> weak = shared_from_this();
  net::io_context& io = srv_.io;
  const std::uint64_t gen = r.generation;
  srv_.journal->read(r.after, 0, r.limit, r.users, [weak, &io, gen](JournalPage page) {
    net::post(io, [weak, gen, page = std::move(page)]() mutable {
      if (auto self = weak.lock()) {
        self->sub_.on_journal(std::move(page), gen);
        self->advance();
      }
    });
  });
}

void WsSession::write_next() {
  const std::size_t n = sub_.compose(out_, kMaxMessageBytes);
  if (n == 0) return;
  writing_ = true;
  ws_.async_write(net::buffer(out_),
                  [self = shared_from_this(), n](beast::error_code ec, std::size_t) {
                    if (!ec) self->srv_.stats.events_sent.fetch_add(n, std::memory_order_relaxed);
                    self->on_write(ec);
                  });
}

void WsSession::on_write(beast::error_code ec) {
  writing_ = false;
  if (ec) return finish();
  last_progress_ = std::chrono::steady_clock::now();
  sub_.on_written();
  advance();
}

void WsSession::read() {
  ws_.async_read(
      in_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
}

void WsSession::on_read(beast::error_code ec) {
  if (ec) return finish();
  if (!ws_.got_text()) {
    in_.consume(in_.size());
    sub_.close(1003, Subscription::CloseKind::server,
               "binary frames are not accepted: send a filter as JSON text");
    return advance();
  }
  const std::string text = beast::buffers_to_string(in_.data());
  in_.consume(in_.size());
  std::string error;
  auto f = parse_filter_json(text, error);
  if (!f) {
    sub_.close(1008, Subscription::CloseKind::server, "bad filter: " + error);
    return advance();
  }
  if (!apply_scope(*token_, *f)) {
    srv_.stats.forbidden.fetch_add(1, std::memory_order_relaxed);
    sub_.close(1008, Subscription::CloseKind::server, "filter names a user this token may not see");
    return advance();
  }
  sub_.set_filter(std::move(*f));
  read();
  advance();
}

void WsSession::do_close() {
  if (close_sent_) return;
  close_sent_ = true;
  std::string reason = sub_.close_text();
  if (reason.size() > kMaxCloseReason) reason.resize(kMaxCloseReason);
  websocket::close_reason r(static_cast<websocket::close_code>(sub_.close_order()->code), reason);
  ws_.async_close(r, [self = shared_from_this()](beast::error_code) { self->finish(); });
}

void WsSession::hard_close() {
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().close(ec);
  finish();
}

void WsSession::finish() {
  if (finished_) return;
  finished_ = true;
  grace_.cancel();
  if (accepted_) {
    srv_.stats.subscribers.fetch_sub(1, std::memory_order_relaxed);
    srv_.leave(shared_from_this());
  }
}

}  // namespace lam::daemon
