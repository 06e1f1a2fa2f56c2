#include "tools/mockex/mock_exchange.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "feeds/capture.h"
#include "feeds/decoder.h"
#include "tools/mockex/frames.h"

namespace lam::mockex {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct RouteOf {
  Venue venue = Venue::binance;
  std::string route;
  bool ok = false;
};

RouteOf route_of(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.starts_with("/market/")) return {Venue::binance, "market", true};
  if (path.starts_with("/public/")) return {Venue::binance, "public", true};
  if (path == "/v5/public/linear") return {Venue::bybit, "linear", true};
  if (path == "/ws/v5/public") return {Venue::okx, "public", true};
  if (path == "/ws") return {Venue::hyperliquid, "ws", true};
  if (path == "/hermes/ws") return {Venue::pyth, "hermes", true};
  if (path == "/" || path.empty()) return {Venue::coinbase, "advanced", true};
  return {};
}

}  // namespace

struct MockExchange::Impl {
  Impl(Options o, std::array<VenueCounters, kVenueCount>& c)
      : opt(std::move(o)), counters(c), acceptor(io), tls_acceptor(io) {}

  Faults faults_for(Venue v, std::uint64_t conn_index) {
    std::lock_guard lock(mu);
    const Faults& f = opt.faults[static_cast<std::size_t>(v)];
    if (f.connections == 0 || conn_index < f.connections) return f;
    return Faults{};
  }

  void accept();
  void accept_tls();

  Options opt;
  std::array<VenueCounters, kVenueCount>& counters;
  std::mutex mu;  // guards opt.faults (set_faults from other threads) and pins
  std::map<std::string, std::int64_t> pins;
  std::map<std::string, std::string> funding_pins;  ///< symbol -> funding rate text
  /// Venue-wide trade ids (symbol -> last id), continued by every connection (mock thread only).
  std::array<std::unordered_map<std::string, std::uint64_t>, kVenueCount> trade_ids;
  /// Venue-wide prices in random-walk mode (symbol -> cents; mock thread only).
  std::array<std::unordered_map<std::string, std::int64_t>, kVenueCount> prices;
  std::atomic<std::uint64_t> pin_version{0};
  std::atomic<std::int64_t> pyth_lag_s{0};
  net::io_context io;
  tcp::acceptor acceptor;
  tcp::acceptor tls_acceptor;
  std::optional<net::ssl::context> tls;
  std::uint16_t plain_port = 0;
  std::thread thread;
  std::uint64_t next_seed = 0;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(MockExchange::Impl& ex, tcp::socket sock)
      : ex_(ex),
        ws_(std::move(sock)),
        push_timer_(ws_.get_executor()),
        hb_timer_(ws_.get_executor()),
        deadline_(ws_.get_executor()) {}

  void start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    http::async_read(
        beast::get_lowest_layer(ws_), buf_, req_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_request(ec); });
  }

 private:
  VenueCounters& ctr() { return ex_.counters[static_cast<std::size_t>(route_.venue)]; }

  void on_request(beast::error_code ec) {
    if (ec) return;
    route_ = route_of(req_.target());
    if (!route_.ok || !websocket::is_upgrade(req_)) return;  // dropped: not a venue path
    const auto vi = static_cast<std::size_t>(route_.venue);
    if (route_.venue == Venue::pyth && !ex_.opt.pyth_api_key.empty() &&
        req_[http::field::authorization] != "Bearer " + ex_.opt.pyth_api_key) {
      // Hermes without (or with a wrong) API key: 401, no upgrade.
      ex_.counters[vi].unauthorized.fetch_add(1);
      auto res = std::make_shared<http::response<http::string_body>>(http::status::unauthorized,
                                                                     req_.version());
      res->set(http::field::content_type, "text/plain");
      res->body() = "Unauthorized";
      res->prepare_payload();
      http::async_write(beast::get_lowest_layer(ws_), *res,
                        [self = shared_from_this(), res](beast::error_code, std::size_t) {
                          beast::error_code ignored;
                          beast::get_lowest_layer(self->ws_).socket().shutdown(
                              tcp::socket::shutdown_both, ignored);
                        });
      return;
    }
    const std::uint64_t index = ex_.counters[vi].connections.fetch_add(1);
    faults_ = ex_.faults_for(route_.venue, index);
    gen_.emplace(route_.venue, ex_.opt.seed + 7919 * (++ex_.next_seed));
    gen_->set_snapshot_every(ex_.opt.bybit_snapshot_every);
    gen_->share_trade_ids(&ex_.trade_ids[vi]);
    if (ex_.opt.walk_bps > 0) gen_->set_walk(ex_.opt.walk_bps, &ex_.prices[vi]);
    auto it =
        ex_.opt.replay.find(std::string(feeds::venue_name(route_.venue)) + "/" + route_.route);
    if (it != ex_.opt.replay.end() && !it->second.empty()) replay_ = &it->second;
    // Binance combined streams may be requested in the URL as well.
    const std::string_view target = req_.target();
    if (route_.venue == Venue::binance) {
      const auto q = target.find("streams=");
      if (q != std::string_view::npos) {
        std::string params = "[";
        std::string_view list = target.substr(q + 8);
        bool first = true;
        while (!list.empty()) {
          const auto slash = list.find('/');
          if (!first) params += ',';
          first = false;
          params += '"' + std::string(list.substr(0, slash)) + '"';
          list = slash == std::string_view::npos ? std::string_view{} : list.substr(slash + 1);
        }
        params += "]";
        add_topics(parse_subscribe(Venue::binance, route_.route,
                                   R"({"method":"SUBSCRIBE","params":)" + params + R"(,"id":0})"));
      }
    }
    beast::get_lowest_layer(ws_).expires_never();
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    // Raw writes (frames_per_write > 1) bypass Beast's write serialization: no keep-alive ping of
    // Beast's own may go out while one is in flight (mock_exchange.h).
    if (ex_.opt.frames_per_write > 1) timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.read_message_max(1 << 20);
    ws_.async_accept(req_,
                     [self = shared_from_this()](beast::error_code e) { self->on_accept(e); });
  }

  void on_accept(beast::error_code ec) {
    if (ec) return;
    ctr().open.fetch_add(1);
    ws_.text(true);
    if (route_.venue == Venue::hyperliquid) send("Websocket connection established.");
    if (route_.venue == Venue::pyth) {
      // Hermes pings every 30 s and counts the pongs (Beast's client answers them).
      // A weak reference: the stream owns the callback, and the session owns the stream.
      ws_.control_callback(
          [weak = weak_from_this()](websocket::frame_type kind, beast::string_view) {
            if (kind != websocket::frame_type::pong) return;
            if (auto self = weak.lock()) self->ctr().pongs.fetch_add(1);
          });
      arm_ping();
    }
    if (route_.venue == Venue::coinbase) {
      deadline_.expires_after(ex_.opt.coinbase_subscribe_deadline);
      deadline_.async_wait([self = shared_from_this()](beast::error_code e) {
        if (!e && self->topics_.empty() && !self->heartbeats_) self->close(1008);
      });
    }
    last_tick_ = std::chrono::steady_clock::now();
    read();
    arm_push();
  }

  void read() {
    ws_.async_read(rbuf_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) return finish();
    const std::string msg = beast::buffers_to_string(rbuf_.data());
    rbuf_.consume(rbuf_.size());
    handle(msg);
    if (!done_) read();
  }

  void handle(const std::string& msg) {
    const Venue v = route_.venue;
    if (v == Venue::binance) {
      // The venue's incoming-message limit: 10 per second, else disconnected.
      const std::int64_t sec = now_ms() / 1000;
      if (sec != rate_sec_) {
        rate_sec_ = sec;
        rate_count_ = 0;
      }
      if (++rate_count_ > ex_.opt.binance_max_msgs_per_s) {
        ctr().rejected_for_rate.fetch_add(1);
        return close(1008);
      }
    }
    if (v == Venue::okx && msg == "ping") {
      ctr().pings.fetch_add(1);
      return send("pong");
    }
    if ((v == Venue::bybit && msg.find(R"("op":"ping")") != std::string::npos) ||
        (v == Venue::hyperliquid && msg.find(R"("method":"ping")") != std::string::npos)) {
      ctr().pings.fetch_add(1);
      return send(
          v == Venue::bybit
              ? R"({"success":true,"ret_msg":"pong","conn_id":"mock","req_id":"","op":"ping"})"
              : R"({"channel":"pong"})");
    }
    SubscribeRequest r = parse_subscribe(v, route_.route, msg);
    if (!r.is_subscribe) return;
    ctr().subscribes.fetch_add(1);
    ack(r, msg);
    if (faults_.reject_subscribe) return;
    if (v == Venue::coinbase && replay_ == nullptr && !faults_.silent_after_ack) {
      // The venue answers a market_trades subscribe with its latest trades, seen or not.
      std::vector<std::string> products;
      for (const Topic& t : r.topics)
        if (t.stream == Stream::trade) products.push_back(t.symbol);
      if (!products.empty()) send(gen_->trades_snapshot(products, now_ms()));
    }
    if (v == Venue::okx && replay_ == nullptr && !faults_.silent_after_ack) {
      // OKX pushes each subscribed symbol's latest trade at once, seen or not.
      for (const Topic& t : r.topics)
        if (t.stream == Stream::trade) send(gen_->okx_latest_trade(t.symbol, now_ms()));
    }
    add_topics(std::move(r));
  }

  void ack(const SubscribeRequest& r, const std::string& msg) {
    const bool bad = faults_.reject_subscribe;
    switch (route_.venue) {
      case Venue::binance:
        return send(bad ? R"({"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":)" +
                              (r.id.empty() ? "null" : r.id) + "}"
                        : R"({"result":null,"id":)" + (r.id.empty() ? "null" : r.id) + "}");
      case Venue::bybit:
        return send(std::string(R"({"success":)") + (bad ? "false" : "true") + R"(,"ret_msg":")" +
                    (bad ? "Params Error" : "") + R"(","conn_id":"mock","req_id":")" + r.id +
                    R"(","op":"subscribe"})");
      case Venue::okx:
        if (bad) {
          return send(
              R"({"id":")" + r.id +
              R"(","event":"error","code":"60012","msg":"Invalid request","connId":"mock"})");
        }
        for (const Topic& t : r.topics) {
          const char* ch = t.stream == Stream::mark      ? "mark-price"
                           : t.stream == Stream::book    ? "tickers"
                           : t.stream == Stream::funding ? "funding-rate"
                                                         : "trades";
          send(R"({"id":")" + r.id + R"(","event":"subscribe","arg":{"channel":")" + ch +
               R"(","instId":")" + t.symbol + R"("},"connId":"mock"})");
        }
        return;
      case Venue::hyperliquid: {
        if (bad) return send(R"({"channel":"error","data":"Invalid subscription"})");
        const auto at = msg.find(R"("subscription")");
        const std::string sub =
            at == std::string::npos ? "{}" : msg.substr(at + 15, msg.size() - at - 16);
        return send(
            R"({"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":)" +
            sub + "}}");
      }
      case Venue::pyth: {
        if (!bad) return send(R"({"type":"response","status":"success"})");
        std::string ids;
        for (const Topic& t : r.topics) ids += (ids.empty() ? "" : ", ") + t.symbol;
        return send(R"({"type":"response","status":"error","error":"Price feed(s) with id(s) [)" +
                    ids + R"(] not found"})");
      }
      case Venue::coinbase:
        if (bad) return send(R"({"type":"error","message":"Failed to subscribe"})");
        return send(
            R"({"channel":"subscriptions","client_id":"","timestamp":"2026-09-06T01:30:00.104233187Z","sequence_num":)" +
            std::to_string(gen_->bump_sequence()) + R"(,"events":[{"subscriptions":{}}]})");
    }
  }

  void add_topics(SubscribeRequest r) {
    for (Topic& t : r.topics) {
      if (t.stream == Stream::heartbeat) {
        if (!heartbeats_) {
          heartbeats_ = true;
          arm_heartbeat();
        }
        continue;
      }
      if (t.stream == Stream::mids) {
        mids_ = true;
        continue;
      }
      if (route_.venue == Venue::hyperliquid && mids_ && t.stream == Stream::mark) {
        topics_.push_back({Stream::mids, t.symbol});
      }
      topics_.push_back(std::move(t));
    }
    pump();
  }

  void arm_ping() {
    hb_timer_.expires_after(ex_.opt.pyth_ping_every);
    hb_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->done_ || self->closing_) return;
      self->ctr().pings.fetch_add(1);
      self->ws_.async_ping({}, [self](beast::error_code e) {
        if (!e) self->arm_ping();
      });
    });
  }

  void arm_heartbeat() {
    hb_timer_.expires_after(ex_.opt.heartbeat_every);
    hb_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->done_) return;
      const bool stalled =
          self->faults_.stall_after != 0 && self->sent_ >= self->faults_.stall_after;
      if (!self->faults_.silent_after_ack && !stalled) {
        self->send(self->gen_->next({Stream::heartbeat, ""}, now_ms()));
      }
      self->arm_heartbeat();
    });
  }

  // Paced pushing: a token bucket refilled every millisecond (or as fast as possible at rate 0).
  void arm_push() {
    if (done_) return;
    push_timer_.expires_after(std::chrono::milliseconds(1));
    push_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->done_) return;
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - self->last_tick_).count();
      self->last_tick_ = now;
      const double rate = self->ex_.opt.rate;
      self->budget_ = rate <= 0 ? 1e18 : std::min(self->budget_ + rate * dt, rate * 0.05 + 1);
      self->pump();
      self->arm_push();
    });
  }

  bool may_push() const {
    if (faults_.stall_after != 0 && sent_ >= faults_.stall_after) return false;
    return !done_ && !topics_.empty() && !faults_.silent_after_ack &&
           (ex_.opt.max_frames == 0 || sent_ < ex_.opt.max_frames) && !closing_;
  }

  /// Appends `payload` as one unmasked, final WebSocket text frame (server to client).
  static void append_ws_frame(std::string& out, const std::string& payload) {
    const std::size_t n = payload.size();
    out.push_back(static_cast<char>(0x81));
    if (n < 126) {
      out.push_back(static_cast<char>(n));
    } else if (n < 65536) {
      out.push_back(static_cast<char>(126));
      out.push_back(static_cast<char>((n >> 8) & 0xff));
      out.push_back(static_cast<char>(n & 0xff));
    } else {
      out.push_back(static_cast<char>(127));
      for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff));
    }
    out.append(payload);
  }

  void send_raw(std::string bytes) {
    if (done_) return;
    queue_.push_back(std::move(bytes));
    raw_.push_back(true);
    if (!writing_) write_next();
  }

  void pump() {
    const std::uint32_t per_write = ex_.opt.frames_per_write;
    std::string raw;
    std::uint32_t in_raw = 0;
    // Keep at most one write queued behind the one being written.
    while (may_push() && budget_ >= 1 && queue_.size() < 2) {
      budget_ -= 1;
      const std::uint64_t n = ++sent_;
      if (faults_.drop_after != 0 && n > faults_.drop_after) return drop();
      if (faults_.rate_limit_after != 0 && n > faults_.rate_limit_after &&
          route_.venue == Venue::pyth) {
        send(R"({"status":"error","error":"Rate limit exceeded"})");
        return close(1008);
      }
      if (faults_.close_after != 0 && n > faults_.close_after) {
        if (faults_.notice_before_close && route_.venue == Venue::pyth) {
          send(
              R"x({"type":"response","status":"error","error":"Connection timeout reached (24h)"})x");
          return close(1000);
        }
        if (faults_.notice_before_close && route_.venue == Venue::okx) {
          closing_ = true;  // the venue warns, then keeps quiet until the client goes
          return send(
              R"({"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"mock"})");
        }
        return close(faults_.close_code);
      }
      std::string frame;
      if (replay_ != nullptr) {
        frame = (*replay_)[replay_pos_++ % replay_->size()];
      } else {
        if (const auto v = ex_.pin_version.load(std::memory_order_acquire); v != pins_seen_) {
          pins_seen_ = v;
          std::lock_guard lock(ex_.mu);
          for (const auto& [sym, cents] : ex_.pins) gen_->pin_price(sym, cents);
          for (const auto& [sym, rate] : ex_.funding_pins) gen_->pin_funding(sym, rate);
        }
        const bool skip = faults_.skip_seq_every != 0 && n % faults_.skip_seq_every == 0;
        gen_->set_publish_lag_s(ex_.pyth_lag_s.load(std::memory_order_relaxed));
        frame = gen_->next(topics_[rr_++ % topics_.size()], now_ms(), skip);
      }
      if (faults_.garbage_every != 0 && n % faults_.garbage_every == 0) {
        frame =
            (n / faults_.garbage_every) % 2 ? "<html>502 Bad Gateway</html>" : R"({"oops": [1, 2,)";
      } else if (faults_.truncate_every != 0 && n % faults_.truncate_every == 0) {
        frame.resize(frame.size() / 2);
      }
      ctr().frames.fetch_add(1, std::memory_order_relaxed);
      if (ex_.opt.on_data_frame) ex_.opt.on_data_frame(frame);
      if (per_write > 1) {
        append_ws_frame(raw, frame);
        if (++in_raw == per_write) {
          send_raw(std::move(raw));
          raw.clear();
          in_raw = 0;
        }
        continue;
      }
      send(std::move(frame));
    }
    if (!raw.empty()) send_raw(std::move(raw));
  }

  void send(std::string text) {
    if (done_) return;
    queue_.push_back(std::move(text));
    raw_.push_back(false);
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    auto on_written = [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->finish();
      self->queue_.pop_front();
      self->raw_.pop_front();
      if (!self->queue_.empty()) {
        self->write_next();
      } else if (self->pending_close_ != 0) {
        self->do_close(std::exchange(self->pending_close_, 0));
      } else {
        self->pump();
      }
    };
    if (raw_.front()) {
      // Pre-encoded frames straight onto the socket; one write in flight, so never interleaved
      // with Beast's own writes of this session.
      net::async_write(beast::get_lowest_layer(ws_), net::buffer(queue_.front()),
                       std::move(on_written));
    } else {
      ws_.async_write(net::buffer(queue_.front()), std::move(on_written));
    }
  }

  /// The close handshake, after what is queued (a venue's last words, Hermes' rate-limit frame)
  /// has been written.
  void close(std::uint16_t code) {
    if (closing_ || done_) return;  // one close handshake per session
    closing_ = true;
    if (writing_) {
      pending_close_ = code;
      return;
    }
    do_close(code);
  }

  void do_close(std::uint16_t code) {
    ws_.async_close(websocket::close_code{code},
                    [self = shared_from_this()](beast::error_code) { self->finish(); });
  }

  void drop() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    finish();
  }

  void finish() {
    if (done_) return;
    done_ = true;
    push_timer_.cancel();
    hb_timer_.cancel();
    deadline_.cancel();
    ctr().open.fetch_sub(1);
  }

  MockExchange::Impl& ex_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer push_timer_, hb_timer_, deadline_;
  beast::flat_buffer buf_, rbuf_;
  http::request<http::string_body> req_;
  RouteOf route_;
  Faults faults_;
  std::optional<FrameGenerator> gen_;
  const std::vector<std::string>* replay_ = nullptr;
  std::size_t replay_pos_ = 0;
  std::vector<Topic> topics_;
  std::size_t rr_ = 0;
  std::deque<std::string> queue_;
  std::deque<bool> raw_;  ///< per queue_ entry: pre-encoded WebSocket frames (blaster mode)
  std::uint64_t sent_ = 0;
  std::uint64_t pins_seen_ = 0;
  double budget_ = 0;
  std::chrono::steady_clock::time_point last_tick_;
  std::int64_t rate_sec_ = 0;
  std::uint64_t rate_count_ = 0;
  std::uint16_t pending_close_ = 0;  ///< close code waiting for the queue to drain
  bool writing_ = false, closing_ = false, done_ = false, heartbeats_ = false, mids_ = false;
};

/// One wss:// connection: the TLS handshake, then bytes relayed both ways to the plain server.
class TlsRelay : public std::enable_shared_from_this<TlsRelay> {
 public:
  TlsRelay(tcp::socket sock, net::ssl::context& ctx, std::uint16_t plain_port)
      : tls_(std::move(sock), ctx), plain_(tls_.get_executor()), port_(plain_port) {}

  void start() {
    tls_.async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](auto ec) {
      if (ec) return self->close();  // a client that refused our certificate ends here
      self->plain_.async_connect(tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), self->port_),
                                 [self](auto e) {
                                   if (e) return self->close();
                                   self->pump_up();
                                   self->pump_down();
                                 });
    });
  }

 private:
  void pump_up() {  // client -> server
    tls_.async_read_some(net::buffer(up_), [self = shared_from_this()](auto ec, std::size_t n) {
      if (ec) return self->close();
      net::async_write(self->plain_, net::buffer(self->up_, n), [self](auto e, std::size_t) {
        if (e) return self->close();
        self->pump_up();
      });
    });
  }
  void pump_down() {  // server -> client
    plain_.async_read_some(net::buffer(down_), [self = shared_from_this()](auto ec, std::size_t n) {
      if (ec) return self->close();
      net::async_write(self->tls_, net::buffer(self->down_, n), [self](auto e, std::size_t) {
        if (e) return self->close();
        self->pump_down();
      });
    });
  }
  void close() {
    beast::error_code ec;
    plain_.close(ec);
    tls_.lowest_layer().close(ec);
  }

  net::ssl::stream<tcp::socket> tls_;
  tcp::socket plain_;
  std::uint16_t port_;
  std::array<char, 16384> up_{}, down_{};
};

}  // namespace

void MockExchange::Impl::accept_tls() {
  tls_acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec) return;
    sock.set_option(tcp::no_delay(true), ec);
    std::make_shared<TlsRelay>(std::move(sock), *tls, plain_port)->start();
    accept_tls();
  });
}

void MockExchange::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (ec) return;
    sock.set_option(tcp::no_delay(true), ec);
    std::make_shared<Session>(*this, std::move(sock))->start();
    accept();
  });
}

MockExchange::MockExchange(Options opt)
    : impl_(std::make_unique<Impl>(std::move(opt), counters_)) {}

MockExchange::~MockExchange() {
  stop();
}

void MockExchange::start() {
  Impl& s = *impl_;
  beast::error_code ec;
  const tcp::endpoint ep(net::ip::make_address(s.opt.address, ec), s.opt.port);
  if (ec) throw std::runtime_error("mockex: bad address " + s.opt.address);
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("mockex: cannot listen on " + s.opt.address + ": " + ec.message());
  port_ = s.acceptor.local_endpoint().port();
  s.plain_port = port_;
  s.accept();
  if (!s.opt.tls_cert_file.empty()) {
    s.tls.emplace(net::ssl::context::tls_server);
    s.tls->use_certificate_chain_file(s.opt.tls_cert_file);
    s.tls->use_private_key_file(s.opt.tls_key_file, net::ssl::context::pem);
    const tcp::endpoint tep(ep.address(), 0);
    s.tls_acceptor.open(tep.protocol(), ec);
    if (!ec) s.tls_acceptor.bind(tep, ec);
    if (!ec) s.tls_acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("mockex: cannot listen for TLS: " + ec.message());
    tls_port_ = s.tls_acceptor.local_endpoint().port();
    s.accept_tls();
  }
  s.thread = std::thread([&s, nice = s.opt.nice] {
    pthread_setname_np(pthread_self(), "mockex");
    // A load generator that yields the CPU to the system it drives (benchmarks' A/B arm): a higher
    // nice value needs no privilege.
    if (nice > 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
    s.io.run();
  });
}

void MockExchange::stop() {
  Impl& s = *impl_;
  if (!s.thread.joinable()) return;
  s.io.stop();
  s.thread.join();
}

std::string MockExchange::url(Venue v, const std::string& route, bool tls) const {
  const std::string base = (tls ? "wss://" : "ws://") + impl_->opt.address + ":" +
                           std::to_string(tls ? tls_port_ : port_);
  switch (v) {
    case Venue::binance:
      return base + "/" + route + "/stream";
    case Venue::bybit:
      return base + "/v5/public/linear";
    case Venue::okx:
      return base + "/ws/v5/public";
    case Venue::hyperliquid:
      return base + "/ws";
    case Venue::coinbase:
      return base + "/";
    case Venue::pyth:
      return base + "/hermes/ws";
  }
  return base;
}

void MockExchange::set_faults(Venue v, const Faults& f) {
  std::lock_guard lock(impl_->mu);
  impl_->opt.faults[static_cast<std::size_t>(v)] = f;
}

void MockExchange::set_pyth_publish_lag(std::chrono::seconds lag) {
  impl_->pyth_lag_s.store(lag.count(), std::memory_order_relaxed);
}

void MockExchange::pin_price(const std::string& symbol, std::int64_t cents) {
  std::lock_guard lock(impl_->mu);
  impl_->pins[symbol] = cents;
  impl_->pin_version.fetch_add(1, std::memory_order_release);
}

void MockExchange::pin_funding(const std::string& symbol, const std::string& rate) {
  std::lock_guard lock(impl_->mu);
  impl_->funding_pins[symbol] = rate;
  impl_->pin_version.fetch_add(1, std::memory_order_release);
}

void load_replay(Options& opt, const std::vector<std::string>& capture_files) {
  // Keep data frames only: acks, pongs and heartbeats are the server's own business.
  std::map<std::string, std::unique_ptr<feeds::Decoder>> decoders;
  InstrumentTable table;
  std::vector<feeds::FeedEvent> scratch;
  feeds::CaptureRecord rec;
  for (const std::string& path : capture_files) {
    feeds::CaptureReader reader(path);
    while (reader.next(rec)) {
      if (rec.type != feeds::CaptureRecord::Type::frame) continue;
      const auto venue = feeds::parse_venue(rec.venue);
      if (!venue) continue;
      const std::string key = rec.venue + "/" + rec.route;
      auto& dec = decoders[key];
      if (!dec) dec = feeds::make_decoder(*venue, feeds::SymbolMap(*venue, &table));
      std::string padded = rec.data;
      padded.append(feeds::kFramePadding, '\0');
      scratch.clear();
      const auto r = dec->decode(padded.data(), rec.data.size(), padded.size(), rec.recv, scratch);
      if (r.cls == feeds::FrameClass::data) opt.replay[key].push_back(rec.data);
    }
  }
}

}  // namespace lam::mockex
