#include "stream/http_session.h"

#include <boost/beast/websocket/rfc6455.hpp>

#include "stream/auth.h"
#include "stream/ws_session.h"

namespace lam::daemon {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = boost::asio::ip::tcp;

namespace {
constexpr std::size_t kMaxRequestBytes = 16 * 1024;
constexpr auto kRequestTimeout = std::chrono::seconds(10);
}  // namespace

HttpSession::HttpSession(ServerCore& srv, tcp::socket sock, ConnectionSlot slot)
    : srv_(srv), stream_(std::move(sock)), slot_(std::move(slot)) {}

void HttpSession::start() {
  parser_.emplace();
  parser_->body_limit(kMaxRequestBytes);
  parser_->header_limit(kMaxRequestBytes);
  stream_.expires_after(kRequestTimeout);
  http::async_read(
      stream_, buf_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
}

void HttpSession::refuse() {
  srv_.stats.refused_connections.fetch_add(1, std::memory_order_relaxed);
  respond(11, http::status::service_unavailable, "text/plain", "too many connections\n");
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return respond(11, http::status::request_header_fields_too_large, "text/plain",
                   "request headers too large\n");
  }
  if (ec == http::error::body_limit) {
    srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return respond(11, http::status::payload_too_large, "text/plain", "request body too large\n");
  }
  // A timeout, a reset or a peer that closed before a full request: nobody to answer.
  if (ec == beast::error::timeout || ec == http::error::end_of_stream ||
      ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
      ec == boost::asio::error::operation_aborted || ec == http::error::partial_message)
    return;
  if (ec) {
    srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return respond(11, http::status::bad_request, "text/plain", "malformed request\n");
  }
  route(parser_->release());
}

void HttpSession::route(http::request<http::string_body> req) {
  const std::string_view target(req.target().data(), req.target().size());
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  const unsigned v = req.version();
  if (req.method() != http::verb::get)
    return respond(v, http::status::method_not_allowed, "text/plain", "GET only\n");
  if (path == "/metrics")
    return respond(v, http::status::ok, "text/plain; version=0.0.4", srv_.metrics());
  if (path == "/healthz") {
    std::string body;
    const bool ok = srv_.hooks.health ? srv_.hooks.health(body) : true;
    return respond(v, ok ? http::status::ok : http::status::service_unavailable, "application/json",
                   body + "\n");
  }
  if (path != "/v1/stream") return respond(v, http::status::not_found, "text/plain", "not found\n");
  const auto auth = req[http::field::authorization];
  const TokenConfig* token =
      authenticate(srv_.cfg.tokens, std::string_view(auth.data(), auth.size()));
  if (token == nullptr) {
    srv_.stats.auth_failures.fetch_add(1, std::memory_order_relaxed);
    return respond(v, http::status::unauthorized, "text/plain", "missing or wrong bearer token\n");
  }
  if (!websocket::is_upgrade(req)) {
    srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return respond(v, http::status::upgrade_required, "text/plain", "WebSocket upgrade required\n");
  }
  std::string error;
  auto sq = parse_stream_query(query, error);
  if (!sq) {
    srv_.stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    return respond(v, http::status::bad_request, "text/plain", error + "\n");
  }
  if (!apply_scope(*token, sq->filter)) {
    srv_.stats.forbidden.fetch_add(1, std::memory_order_relaxed);
    return respond(v, http::status::forbidden, "text/plain",
                   "user_id outside this token's scope\n");
  }
  if (srv_.stopping)
    return respond(v, http::status::service_unavailable, "text/plain", "shutting down\n");
  if (srv_.hooks.before_accept) srv_.hooks.before_accept(srv_);
  stream_.expires_never();
  auto ws = std::make_shared<WsSession>(srv_, stream_.release_socket(), std::move(slot_),
                                        std::move(sq->filter), sq->since, *token, sq->committed);
  ws->start(std::move(req));
}

void HttpSession::respond(unsigned version, http::status status, const char* type,
                          std::string body) {
  auto res = std::make_shared<http::response<http::string_body>>(status, version);
  res->set(http::field::server, "laminator");
  res->set(http::field::content_type, type);
  if (status == http::status::unauthorized) res->set(http::field::www_authenticate, "Bearer");
  res->keep_alive(false);
  res->body() = std::move(body);
  res->prepare_payload();
  stream_.expires_after(kRequestTimeout);
  http::async_write(stream_, *res,
                    [self = shared_from_this(), res](beast::error_code, std::size_t) {
                      beast::error_code ec;
                      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
                    });
}

}  // namespace lam::daemon
