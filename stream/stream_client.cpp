#include "stream/stream_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

#include "feeds/ws_client.h"

namespace lam::daemon {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct StreamClient::Impl {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  beast::flat_buffer buf;
  std::deque<std::string> lines;  ///< events of the last message not handed out yet
  bool reading = false;           ///< an async_read is outstanding
  bool done = false;
  beast::error_code result;
};

StreamClient::StreamClient(const std::string& url, const std::string& token,
                           std::chrono::milliseconds timeout, int rcvbuf)
    : impl_(std::make_unique<Impl>()) {
  const auto u = feeds::WsUrl::parse(url);
  if (!u || u->tls) throw StreamRefused(0, "want a ws:// URL, got '" + url + "'");
  beast::error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto results = resolver.resolve(u->host, u->port, ec);
  if (ec) throw StreamRefused(0, "resolve " + u->host + ": " + ec.message());
  auto& lowest = beast::get_lowest_layer(impl_->ws);
  lowest.expires_after(timeout);
  if (rcvbuf > 0) {
    const tcp::endpoint ep = *results.begin();
    lowest.socket().open(ep.protocol(), ec);
    if (!ec) lowest.socket().set_option(net::socket_base::receive_buffer_size(rcvbuf), ec);
    if (!ec) lowest.socket().connect(ep, ec);
  } else {
    lowest.connect(results, ec);
  }
  if (ec) throw StreamRefused(0, "connect " + u->host + ":" + u->port + ": " + ec.message());
  lowest.socket().set_option(tcp::no_delay(true), ec);
  impl_->ws.set_option(websocket::stream_base::decorator([&token](websocket::request_type& req) {
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  }));
  websocket::response_type res;
  impl_->ws.handshake(res, u->host + ":" + u->port, u->target, ec);
  if (ec) {
    const int status = static_cast<int>(res.result_int());
    throw StreamRefused(status, "upgrade refused: HTTP " + std::to_string(status) + " " +
                                    res.body() + (status == 0 ? ec.message() : ""));
  }
  lowest.expires_never();
}

StreamClient::~StreamClient() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().close(ec);
  impl_->io.restart();
  impl_->io.run();  // let an outstanding read complete (aborted) before the stream goes
}

std::optional<std::string> StreamClient::next(std::chrono::milliseconds timeout) {
  timed_out_ = false;
  Impl& s = *impl_;
  if (!s.lines.empty()) {
    std::string line = std::move(s.lines.front());
    s.lines.pop_front();
    return line;
  }
  if (closed_) return std::nullopt;
  if (!s.reading) {  // a read left running by an earlier timeout is simply waited on again
    s.reading = true;
    s.done = false;
    s.ws.async_read(s.buf, [&s](beast::error_code ec, std::size_t) {
      s.done = true;
      s.result = ec;
    });
  }
  s.io.restart();
  s.io.run_for(timeout);
  if (!s.done) {
    timed_out_ = true;
    return std::nullopt;
  }
  s.reading = false;
  if (s.result) {
    closed_ = true;
    close_code_ = s.ws.reason().code;
    close_reason_ = std::string(s.ws.reason().reason.c_str());
    if (close_code_ == 0) close_reason_ = s.result.message();
    return std::nullopt;
  }
  // A message carries one or more events, one per line.
  const std::string text = beast::buffers_to_string(s.buf.data());
  s.buf.consume(s.buf.size());
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto nl = text.find('\n', at);
    const auto end = nl == std::string::npos ? text.size() : nl;
    if (end > at) s.lines.emplace_back(text, at, end - at);
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  if (s.lines.empty()) return std::string();
  std::string first = std::move(s.lines.front());
  s.lines.pop_front();
  return first;
}

void StreamClient::send(const std::string& text) {
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text));
}

void StreamClient::close() {
  if (closed_) return;
  closed_ = true;
  if (impl_->reading) return;  // the destructor aborts the outstanding read
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).expires_after(std::chrono::seconds(2));
  impl_->ws.close(websocket::close_code::normal, ec);
}

std::pair<int, std::string> http_get(const std::string& host, const std::string& port,
                                     const std::string& target) {
  net::io_context io;
  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(resolver.resolve(host, port));
  http::request<http::empty_body> req(http::verb::get, target, 11);
  req.set(http::field::host, host);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return {static_cast<int>(res.result_int()), res.body()};
}

}  // namespace lam::daemon
