#pragma once
/// One HTTP request on the stream server's address: routes /metrics, /healthz and the /v1/stream
/// upgrade (auth, scope, query) and answers malformed requests with a status instead of a reset:
/// 431 for headers over the limit, 413 for a body over it, 400 for anything unparseable.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>

#include "stream/server_core.h"

namespace lam::daemon {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(ServerCore& srv, boost::asio::ip::tcp::socket sock, ConnectionSlot slot);
  void start();
  /// Answers 503 and closes (too many connections).
  void refuse();

 private:
  void on_read(boost::beast::error_code ec);
  void route(boost::beast::http::request<boost::beast::http::string_body> req);
  void respond(unsigned version, boost::beast::http::status status, const char* type,
               std::string body);

  ServerCore& srv_;
  boost::beast::tcp_stream stream_;
  ConnectionSlot slot_;
  boost::beast::flat_buffer buf_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace lam::daemon
