#pragma once
/// A small synchronous alert-stream client: `laminator tail`, the end-to-end tests and the
/// benchmark use it. Plain ws:// (the stream binds loopback or sits behind a TLS proxy).

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace lam::daemon {

/// The server refused the upgrade (`status`: 401, 403, 400, ...) or the connection failed (0).
class StreamRefused : public std::runtime_error {
 public:
  StreamRefused(int http_status, const std::string& what)
      : std::runtime_error(what), status(http_status) {}
  int status;
};

class StreamClient {
 public:
  /// Connects to `url` (ws://host:port/v1/stream?query) with `Authorization: Bearer token`.
  /// Throws StreamRefused.
  /// `rcvbuf`: SO_RCVBUF in bytes before connecting (0: the system's); tests make slow readers.
  StreamClient(const std::string& url, const std::string& token,
               std::chrono::milliseconds timeout = std::chrono::seconds(5), int rcvbuf = 0);
  ~StreamClient();
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  /// The next event (a message may carry several, one per line); nullopt when the server closed
  /// (see close_code()) or `timeout` passed (timed_out() is then true; the read stays outstanding
  /// and the next call continues it).
  std::optional<std::string> next(std::chrono::milliseconds timeout);
  void send(const std::string& text);
  /// Sends a close (1000) and waits briefly for the server's.
  void close();
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] int close_code() const noexcept { return close_code_; }
  [[nodiscard]] const std::string& close_reason() const noexcept { return close_reason_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  bool timed_out_ = false;
  bool closed_ = false;
  int close_code_ = 0;
  std::string close_reason_;
};

/// Plain HTTP GET on loopback (for /metrics and /healthz); returns (status, body). Throws on I/O.
std::pair<int, std::string> http_get(const std::string& host, const std::string& port,
                                     const std::string& target);

}  // namespace lam::daemon
