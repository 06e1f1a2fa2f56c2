#include "feeds/ws_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <type_traits>

#include "feeds/padded_buffer.h"

namespace lam::feeds {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::optional<WsUrl> WsUrl::parse(std::string_view url) {
  WsUrl u;
  if (url.starts_with("wss://")) {
    u.tls = true;
    url.remove_prefix(6);
  } else if (url.starts_with("ws://")) {
    url.remove_prefix(5);
  } else {
    return std::nullopt;
  }
  const std::size_t slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    u.port = std::string(authority.substr(colon + 1));
    authority = authority.substr(0, colon);
  } else {
    u.port = u.tls ? "443" : "80";
  }
  u.host = std::string(authority);
  if (u.host.empty() || u.port.empty() ||
      u.port.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return u;
}

namespace {

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

template <class Ws>
class Session final : public WsClient, public std::enable_shared_from_this<Session<Ws>> {
  static constexpr bool kTls = std::is_same_v<Ws, TlsWs>;

 public:
  /// `ctx` is the TLS context (null for plain sessions); the session keeps it alive.
  Session(net::io_context& io, WsUrl url, WsClientOptions opt, Handler& h,
          std::shared_ptr<ssl::context> ctx)
      : ctx_(std::move(ctx)),
        resolver_(io),
        ws_(make_ws(io, ctx_.get())),
        url_(std::move(url)),
        opt_(std::move(opt)),
        handler_(&h) {}

  void start() override {
    beast::get_lowest_layer(ws_).expires_after(opt_.connect_timeout);
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
          self->on_resolve(ec, std::move(r));
        });
  }

  void send(std::string text) override {
    queue_.push_back(std::move(text));
    if (open_ && !writing_) write_next();
  }

  void close(std::uint16_t code) override {
    if (!open_ || closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code{code},
                    [self = this->shared_from_this()](beast::error_code) {});
  }

  void abort() override {
    handler_ = nullptr;
    beast::error_code ec;
    resolver_.cancel();
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

 private:
  void fail(std::string_view stage, beast::error_code ec, std::string detail = {}) {
    open_ = false;
    Handler* h = handler_;
    handler_ = nullptr;
    if (h == nullptr) return;
    const int code = ws_.reason().code;
    std::string what = ec.message();
    if (!detail.empty()) what += ": " + detail;
    h->on_closed(stage, what, ec == websocket::error::closed ? code : 0);
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (handler_ == nullptr) return;
    if (ec) return fail("resolve", ec);
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = this->shared_from_this()](beast::error_code e, const tcp::endpoint&) {
          self->on_connect(e);
        });
  }

  void on_connect(beast::error_code ec) {
    if (handler_ == nullptr) return;
    if (ec) return fail("connect", ec);
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    if constexpr (kTls) {
      // SNI (names only, RFC 6066), then OpenSSL verifies the chain against the trust store and
      // the name (or IP address) against the URL's host, with the reason kept for the log.
      SSL* ssl = ws_.next_layer().native_handle();
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      beast::error_code not_ip;
      (void)net::ip::make_address(url_.host, not_ip);
      int ok = 1;
      if (not_ip) {
        // SSL_set_tlsext_host_name() is a macro with a C cast; this is its expansion.
        ok = static_cast<int>(SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                                       const_cast<char*>(url_.host.c_str())));
        ok = ok == 1 ? X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), 0) : 0;
      } else {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str());
      }
      if (ok != 1) {
        return fail("tls", beast::error_code(static_cast<int>(::ERR_get_error()),
                                             net::error::get_ssl_category()));
      }
      ws_.next_layer().set_verify_mode(ssl::verify_peer);
      ws_.next_layer().async_handshake(
          ssl::stream_base::client,
          [self = this->shared_from_this()](beast::error_code e) { self->on_tls(e); });
    } else {
      on_tls({});
    }
  }

  void on_tls(beast::error_code ec) {
    if (handler_ == nullptr) return;
    if (ec) {
      std::string why;
      if constexpr (kTls) {
        // "certificate has expired", "hostname mismatch", "unable to get local issuer certificate"
        const long v = SSL_get_verify_result(ws_.next_layer().native_handle());
        if (v != X509_V_OK) why = X509_verify_cert_error_string(v);
      }
      return fail("tls", ec, why);
    }
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = opt_.connect_timeout;
    t.idle_timeout = websocket::stream_base::none();  // the feed's own watchdog owns idleness
    t.keep_alive_pings = false;
    ws_.set_option(t);
    websocket::permessage_deflate pmd;
    pmd.client_enable = true;
    ws_.set_option(pmd);
    ws_.read_message_max(opt_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.set_option(websocket::stream_base::decorator(
        [auth = opt_.authorization](websocket::request_type& req) {
          req.set(beast::http::field::user_agent, "laminator");
          if (!auth.empty()) req.set(beast::http::field::authorization, auth);
        }));
    std::string host = url_.host;
    if (url_.port != (kTls ? "443" : "80")) host += ":" + url_.port;
    ws_.async_handshake(host, url_.target, [self = this->shared_from_this()](beast::error_code e) {
      self->on_upgrade(e);
    });
  }

  void on_upgrade(beast::error_code ec) {
    if (handler_ == nullptr) return;
    if (ec) return fail("upgrade", ec);
    open_ = true;
    handler_->on_open();
    if (!queue_.empty() && !writing_) write_next();
    read_next();
  }

  void read_next() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (handler_ == nullptr) return;
    if (ec) return fail("read", ec);
    const FrameView f = pad_frame(buffer_);  // parse in place, no copy
    handler_->on_frame(f.data, f.len, f.capacity);
    buffer_.consume(f.len);
    if (handler_ != nullptr) read_next();
  }

  void write_next() {
    writing_ = true;
    ws_.async_write(net::buffer(queue_.front()),
                    [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_write(ec);
                    });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (handler_ == nullptr) return;
    if (ec) return fail("write", ec);
    queue_.pop_front();
    if (!queue_.empty() && open_) write_next();
  }

  static Ws make_ws(net::io_context& io, ssl::context* ctx) {
    if constexpr (kTls) {
      return Ws(io, *ctx);
    } else {
      (void)ctx;
      return Ws(io);
    }
  }

  std::shared_ptr<ssl::context> ctx_;  // first: ws_ refers to it
  tcp::resolver resolver_;
  Ws ws_;
  WsUrl url_;
  WsClientOptions opt_;
  Handler* handler_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
};

}  // namespace

std::shared_ptr<WsClient> make_ws_client(net::io_context& io, const WsUrl& url,
                                         const WsClientOptions& options,
                                         WsClient::Handler& handler) {
  if (!url.tls) return std::make_shared<Session<PlainWs>>(io, url, options, handler, nullptr);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_default_verify_paths();
  if (!options.ca_file.empty()) ctx->load_verify_file(options.ca_file);
  ctx->set_verify_mode(ssl::verify_peer);
  return std::make_shared<Session<TlsWs>>(io, url, options, handler, std::move(ctx));
}

}  // namespace lam::feeds
