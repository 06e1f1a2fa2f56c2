#pragma once
/// One alert-stream subscriber's WebSocket session: moves bytes for its Subscription (the resume,
/// catch-up, slow-consumer and close decisions live there). Server thread only. Joins the server's
/// fan-out only once the handshake completed; a close ordered before that is carried out after it.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <memory>
#include <optional>
#include <string>

#include "stream/auth.h"
#include "stream/server_core.h"
#include "stream/subscription.h"

namespace lam::daemon {

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(ServerCore& srv, boost::asio::ip::tcp::socket sock, ConnectionSlot slot,
            StreamFilter filter, std::optional<std::uint64_t> since, const TokenConfig& token,
            bool committed_only = false);

  /// Starts the WebSocket accept on the upgrade request already read.
  void start(boost::beast::http::request<boost::beast::http::string_body> req);
  /// A live event (after it was pushed to the ring).
  void on_event(const Entry& e);
  [[nodiscard]] std::size_t depth() const noexcept { return sub_.queued(); }
  /// committed=1 subscribers: everything up to `head` is journaled now.
  void on_committed(std::uint64_t head);
  [[nodiscard]] bool committed_only() const noexcept { return sub_.committed_only(); }
  [[nodiscard]] bool keeping_up(std::chrono::steady_clock::time_point now) const noexcept;
  /// Closes with `code` once the write in flight (if any) completes; hard-closes after a grace.
  void close(std::uint16_t code, const std::string& reason);

 private:
  void on_accept(boost::beast::error_code ec);
  void advance();  ///< carries out what the subscription wants now
  void request_journal(const Subscription::JournalRequest& r);
  void write_next();
  void on_write(boost::beast::error_code ec);
  void read();
  void on_read(boost::beast::error_code ec);
  void do_close();
  void hard_close();
  void finish();

  ServerCore& srv_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  ConnectionSlot slot_;
  Subscription sub_;
  boost::asio::steady_timer grace_;
  const TokenConfig* token_;
  boost::beast::flat_buffer in_;
  std::string out_;  ///< the message being written
  std::chrono::steady_clock::time_point last_progress_{};
  bool accepted_ = false;
  bool writing_ = false;
  bool close_sent_ = false;
  bool grace_armed_ = false;
  bool finished_ = false;
};

}  // namespace lam::daemon
