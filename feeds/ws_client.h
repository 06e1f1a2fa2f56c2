#pragma once
/// The WebSocket client session shared by every venue (Boost.Beast; the Beast code is confined to
/// ws_client.cpp). `wss://` goes through OpenSSL with certificate and hostname verification and
/// SNI; `ws://` is plain (loopback, the mock exchange). permessage-deflate is offered, TCP_NODELAY
/// is set, one flat_buffer is reused for every read, writes are queued with at most one in flight.
/// Everything runs on the io_context's thread; not thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace lam::feeds {

struct WsUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  ///< path and query, at least "/"

  /// Parses ws://host[:port][/path][?query] and wss://...; nullopt when malformed.
  [[nodiscard]] static std::optional<WsUrl> parse(std::string_view url);
};

struct WsClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  ///< resolve + connect + TLS + upgrade
  std::string ca_file;  ///< extra trusted CA (PEM); the system store is always used
  std::size_t max_message_bytes = std::size_t{16} << 20;
  /// Sent as the handshake's `Authorization` header when not empty ("Bearer <key>": Pyth Hermes).
  /// A secret: never logged, never put in the URL.
  std::string authorization;
};

class WsClient {
 public:
  /// Callbacks; never called after `abort()`.
  class Handler {
   public:
    virtual void on_open() = 0;
    /// One complete message. `capacity` bytes from `data` are readable (>= len + kFramePadding).
    /// Valid only during the call.
    virtual void on_frame(const char* data, std::size_t len, std::size_t capacity) = 0;
    /// The session ended: `stage` is where (resolve, connect, tls, upgrade, read, write, close),
    /// `close_code` the peer's WebSocket close code (0 if none).
    virtual void on_closed(std::string_view stage, const std::string& message, int close_code) = 0;

   protected:
    ~Handler() = default;
  };

  virtual ~WsClient() = default;
  /// Resolves, connects, handshakes, then reads until closed.
  virtual void start() = 0;
  /// Queues a text message.
  virtual void send(std::string text) = 0;
  /// WebSocket close handshake with `code`; `on_closed` follows.
  virtual void close(std::uint16_t code) = 0;
  /// Drops the socket at once and detaches the handler.
  virtual void abort() = 0;
};

/// `handler` must outlive the session or call `abort()` first.
[[nodiscard]] std::shared_ptr<WsClient> make_ws_client(boost::asio::io_context& io,
                                                       const WsUrl& url,
                                                       const WsClientOptions& options,
                                                       WsClient::Handler& handler);

}  // namespace lam::feeds
