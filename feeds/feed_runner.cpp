#include "feeds/feed_runner.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <stdexcept>
#include <thread>

#include "feeds/backoff.h"
#include "feeds/capture.h"
#include "feeds/health.h"

namespace lam::feeds {

namespace net = boost::asio;

namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t ns(Millis m) {
  return std::chrono::nanoseconds(m).count();
}

constexpr std::int64_t kLogEveryNs = 5'000'000'000;  // rate limit for bad-input warnings

}  // namespace

/// One venue route's connection, driven by the runner's thread.
class FeedConnection final : public WsClient::Handler {
 public:
  FeedConnection(FeedRunner::Impl& rt, ConnectionConfig cfg, SymbolMap symbols, std::uint64_t seed);

  void connect();
  void housekeeping(std::int64_t now);
  void shutdown();
  [[nodiscard]] bool idle_for_stop() const { return !client_; }

  void on_open() override;
  void on_frame(const char* data, std::size_t len, std::size_t capacity) override;
  void on_closed(std::string_view stage, const std::string& message, int close_code) override;

  ConnectionConfig cfg;
  ConnectionCounters ctr;

 private:
  void reconnect_now(FeedReason why);
  void lost(FeedReason why);  // the session is gone (closed or aborted): mark, then reconnect
  void schedule_reconnect();
  void pump_outbox(std::int64_t now);
  void publish();  // out_ -> queue
  void push(const FeedEvent& e);
  void note_drop(const FeedEvent& e);
  bool flush_pending();
  void sync_counters();
  /// Rate-limited warning; `frame` (possibly empty) is quoted, truncated by the caller.
  void warn_bad_input(std::int64_t now, std::string_view what, std::string_view frame);

  FeedRunner::Impl& rt_;
  std::unique_ptr<Decoder> dec_;
  ConnectionHealth health_;
  Backoff backoff_;
  WsUrl url_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<WsClient> client_;
  bool open_ = false;
  std::int64_t opened_at_ = 0, last_frame_ = 0, last_ping_ = 0, next_send_ = 0, last_warn_ = 0;
  std::optional<std::int64_t> reconnect_at_;
  std::deque<std::string> outbox_;
  std::vector<FeedEvent> decoded_, out_;
  std::deque<FeedEvent> pending_;  // state/gap events waiting for queue room (never dropped)
};

struct FeedRunner::Impl {
  Impl(RunnerOptions o, TickQueue& q) : opt(std::move(o)), queue(q), timer(io) {}

  void arm_timer() {
    timer.expires_after(opt.housekeeping);
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping) return;
      const std::int64_t now = steady_ns();
      for (auto& c : conns) c->housekeeping(now);
      if (capture) capture->flush();
      arm_timer();
    });
  }

  /// During stop: ends the loop once every session has closed.
  void finish_stop_if_idle() {
    for (auto& c : conns) {
      if (!c->idle_for_stop()) return;
    }
    io.stop();
  }

  RunnerOptions opt;
  TickQueue& queue;
  net::io_context io;
  net::steady_timer timer;
  std::optional<TickQueue::Producer> producer;
  std::unique_ptr<CaptureWriter> capture;
  std::vector<std::unique_ptr<FeedConnection>> conns;
  std::thread thread;
  bool stopping = false;  // feed thread only
  bool started = false;
};

FeedConnection::FeedConnection(FeedRunner::Impl& rt, ConnectionConfig c, SymbolMap symbols,
                               std::uint64_t seed)
    : cfg(std::move(c)),
      rt_(rt),
      dec_(make_decoder(cfg.venue, std::move(symbols))),
      health_(cfg.venue, dec_->symbols().instruments(), cfg.kinds, ns(cfg.rules.stale_budget)),
      backoff_(cfg.backoff_initial, cfg.backoff_max, seed) {
  auto u = WsUrl::parse(cfg.url);
  if (!u)
    throw std::invalid_argument("feed " + std::string(venue_name(cfg.venue)) + "/" + cfg.route +
                                ": bad url '" + cfg.url + "'");
  url_ = *u;
  dec_->set_oracle_limits(cfg.oracle);
  log_ = spdlog::default_logger()->clone("feeds." + std::string(venue_name(cfg.venue)));
}

void FeedConnection::connect() {
  reconnect_at_.reset();
  ctr.connects.fetch_add(1, std::memory_order_relaxed);
  health_.set_all(FeedState::connecting, FeedReason::connect, wall_ns(), out_);
  publish();
  try {
    client_ = make_ws_client(rt_.io, url_, cfg.client, *this);
    client_->start();
  } catch (const std::exception& e) {
    log_->error("{}: cannot start a session: {}", cfg.route, e.what());
    client_.reset();
    schedule_reconnect();
  }
}

void FeedConnection::on_open() {
  const std::int64_t now = steady_ns();
  const TimeNs wall = wall_ns();
  open_ = true;
  ctr.opens.fetch_add(1, std::memory_order_relaxed);
  ctr.connected.store(1, std::memory_order_relaxed);
  dec_->reset();
  opened_at_ = last_frame_ = last_ping_ = next_send_ = now;
  if (rt_.capture) {
    rt_.capture->opened(wall, venue_name(cfg.venue), cfg.route);
    // Sizes in contracts: the contract size travels with the capture, so replay sizes trades as
    // live did.
    SymbolMap& map = dec_->symbols();
    for (const std::string& name : map.names()) {
      if (size_unit(cfg.venue, name) == SizeUnit::base) continue;
      const SymbolInfo* info = map.find(name);
      if (info != nullptr) {
        rt_.capture->symbol(wall, venue_name(cfg.venue), cfg.route, name, info->contract_size);
      }
    }
  }
  for (std::string& m : subscribe_messages(cfg.venue, cfg.route, dec_->symbols().names(),
                                           cfg.rules.topics_per_msg)) {
    outbox_.push_back(std::move(m));
  }
  pump_outbox(now);
  health_.touch_all(now);
  health_.set_all(FeedState::resyncing, FeedReason::subscribed, wall, out_);
  publish();
  log_->info("{}: connected to {}:{}{}, {} symbols", cfg.route, url_.host, url_.port, url_.target,
             dec_->symbols().size());
}

void FeedConnection::on_frame(const char* data, std::size_t len, std::size_t capacity) {
  const TimeNs wall = wall_ns();
  const std::int64_t now = steady_ns();
  last_frame_ = now;
  ctr.frames.fetch_add(1, std::memory_order_relaxed);
  ctr.bytes.fetch_add(len, std::memory_order_relaxed);
  ctr.last_frame_ns.store(wall, std::memory_order_relaxed);
  if (rt_.capture) rt_.capture->frame(wall, venue_name(cfg.venue), cfg.route, {data, len});
  decoded_.clear();
  const DecodeResult r = dec_->decode(data, len, capacity, wall, decoded_);
  for (const FeedEvent& e : decoded_) {
    if (e.kind == FeedEventKind::state) {
      // A decoder's verdict on the data itself (an oracle update too old or too uncertain): the
      // symbol is held through the health book, which emits the state change once.
      health_.hold(e.tick.instrument, e.reason, wall, out_);
      continue;
    }
    if (e.kind == FeedEventKind::tick) health_.on_data(e.tick.instrument, now, wall, out_);
    out_.push_back(e);
  }
  publish();
  switch (r.cls) {
    case FrameClass::pong:
      ctr.pongs.fetch_add(1, std::memory_order_relaxed);
      break;
    case FrameClass::notice:
      ctr.notices.fetch_add(1, std::memory_order_relaxed);
      log_->warn("{}: venue announced a disconnect; reconnecting now", cfg.route);
      reconnect_now(FeedReason::venue_notice);
      break;
    case FrameClass::rejected:
      warn_bad_input(now, "the venue rejected a request", {data, len < 200 ? len : 200});
      break;
    case FrameClass::malformed:
      warn_bad_input(now, "malformed frame skipped", {});
      break;
    case FrameClass::unexpected:
      warn_bad_input(now, "a frame this protocol version never sends (an older one's?) skipped",
                     {data, len < 200 ? len : 200});
      break;
    default:
      break;
  }
  sync_counters();
}

void FeedConnection::on_closed(std::string_view stage, const std::string& message, int close_code) {
  if (!rt_.stopping) {
    log_->warn("{}: {} failed: {} (close code {}){}", cfg.route, stage, message, close_code,
               open_ ? "" : " before the upgrade");
  }
  lost(FeedReason::disconnected);
}

void FeedConnection::reconnect_now(FeedReason why) {
  if (client_) client_->abort();
  lost(why);
}

void FeedConnection::lost(FeedReason why) {
  client_.reset();
  open_ = false;
  outbox_.clear();
  ctr.connected.store(0, std::memory_order_relaxed);
  ctr.disconnects.fetch_add(1, std::memory_order_relaxed);
  if (rt_.stopping) {
    rt_.finish_stop_if_idle();
    return;
  }
  health_.set_all(FeedState::connecting, why, wall_ns(), out_);
  publish();
  schedule_reconnect();
}

void FeedConnection::schedule_reconnect() {
  if (rt_.stopping) return;
  const std::int64_t now = steady_ns();
  if (opened_at_ != 0 && now - opened_at_ >= ns(cfg.stable_after)) backoff_.reset();
  opened_at_ = 0;
  const Millis d = backoff_.next();
  log_->info("{}: reconnect attempt {} in {} ms", cfg.route, backoff_.attempts(), d.count());
  if (d.count() == 0) {
    net::post(rt_.io, [this] {
      if (!rt_.stopping && !client_) connect();
    });
  } else {
    reconnect_at_ = now + ns(d);
  }
}

void FeedConnection::housekeeping(std::int64_t now) {
  const TimeNs wall = wall_ns();
  if (open_) {
    // Staleness first, so a symbol silent past its budget is reported stale even when a late tick
    // also finds the whole connection idle.
    health_.check_stale(now, wall, out_);
    publish();
    if (now - last_frame_ > ns(cfg.rules.idle_budget)) {
      ctr.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      log_->warn("{}: no frame for {} ms; reconnecting", cfg.route,
                 (now - last_frame_) / 1'000'000);
      reconnect_now(FeedReason::idle_timeout);
    } else if (cfg.rules.max_lifetime.count() > 0 &&
               now - opened_at_ >= ns(cfg.rules.max_lifetime)) {
      log_->info("{}: connection lifetime reached; reconnecting", cfg.route);
      reconnect_now(FeedReason::lifetime);
    } else {
      if (cfg.rules.ping_every.count() > 0 && now - last_ping_ >= ns(cfg.rules.ping_every)) {
        last_ping_ = now;
        outbox_.push_back(cfg.rules.ping_text);
        ctr.pings.fetch_add(1, std::memory_order_relaxed);
      }
      pump_outbox(now);
    }
  } else if (!client_ && reconnect_at_ && now >= *reconnect_at_) {
    connect();
  }
  flush_pending();
  ctr.live_symbols.store(static_cast<std::uint32_t>(health_.count(FeedState::live)),
                         std::memory_order_relaxed);
  ctr.stale_symbols.store(static_cast<std::uint32_t>(health_.count(FeedState::stale)),
                          std::memory_order_relaxed);
  ctr.oracle_held.store(
      static_cast<std::uint32_t>(health_.count(FeedState::stale, FeedReason::oracle_stale) +
                                 health_.count(FeedState::stale, FeedReason::oracle_uncertain)),
      std::memory_order_relaxed);
}

void FeedConnection::pump_outbox(std::int64_t now) {
  const double rate = cfg.rules.max_msgs_per_s > 0 ? cfg.rules.max_msgs_per_s : 1.0;
  const auto gap = static_cast<std::int64_t>(1e9 / rate);
  // Send slots are `gap` apart; each pump sends every slot that has come due, so the rate holds
  // even when it is faster than the housekeeping tick. Unused slots do not pile up beyond one tick.
  const std::int64_t oldest = now - std::max(gap, ns(rt_.opt.housekeeping));
  if (next_send_ < oldest) next_send_ = oldest;
  while (client_ && open_ && !outbox_.empty() && next_send_ <= now) {
    client_->send(std::move(outbox_.front()));
    outbox_.pop_front();
    next_send_ += gap;
  }
}

void FeedConnection::shutdown() {
  reconnect_at_.reset();
  if (client_ && open_) {
    client_->close(1000);
  } else if (client_) {
    client_->abort();
    client_.reset();
  }
}

bool FeedConnection::flush_pending() {
  while (!pending_.empty()) {
    if (!rt_.producer->try_push(pending_.front())) return false;
    pending_.pop_front();
  }
  return true;
}

void FeedConnection::note_drop(const FeedEvent& e) {
  ctr.queue_drops.fetch_add(1, std::memory_order_relaxed);
  // One overflow gap per instrument while the queue is full: merge into a pending one.
  for (FeedEvent& p : pending_) {
    if (p.kind == FeedEventKind::gap && p.reason == FeedReason::queue_overflow &&
        p.tick.instrument == e.tick.instrument) {
      if (p.count != UINT32_MAX) ++p.count;
      return;
    }
  }
  FeedEvent g;
  g.kind = FeedEventKind::gap;
  g.venue = e.venue;
  g.reason = FeedReason::queue_overflow;
  g.count = 1;
  g.tick.instrument = e.tick.instrument;
  g.tick.recv_ts = g.tick.exch_ts = e.tick.recv_ts;
  pending_.push_back(g);
}

void FeedConnection::push(const FeedEvent& e) {
  const bool clear = flush_pending();
  if (e.kind == FeedEventKind::tick) {
    if (!clear || !rt_.producer->try_push(e)) note_drop(e);
  } else if (!clear || !rt_.producer->try_push(e)) {
    pending_.push_back(e);
  }
}

void FeedConnection::publish() {
  for (const FeedEvent& e : out_) push(e);
  out_.clear();
}

void FeedConnection::sync_counters() {
  const DecoderStats& s = dec_->stats();
  ctr.ticks.store(s.ticks, std::memory_order_relaxed);
  ctr.malformed.store(s.malformed, std::memory_order_relaxed);
  ctr.bad_values.store(s.bad_values, std::memory_order_relaxed);
  ctr.unknown_symbol.store(s.unknown_symbol, std::memory_order_relaxed);
  ctr.out_of_order.store(s.out_of_order, std::memory_order_relaxed);
  ctr.gaps.store(s.gaps, std::memory_order_relaxed);
  ctr.rejected.store(s.rejected, std::memory_order_relaxed);
  ctr.unexpected.store(s.unexpected, std::memory_order_relaxed);
  ctr.unsized.store(s.unsized, std::memory_order_relaxed);
  ctr.rounded.store(s.rounded, std::memory_order_relaxed);
  ctr.oracle_stale.store(s.oracle_stale, std::memory_order_relaxed);
  ctr.oracle_uncertain.store(s.oracle_uncertain, std::memory_order_relaxed);
}

void FeedConnection::warn_bad_input(std::int64_t now, std::string_view what,
                                    std::string_view frame) {
  if (now - last_warn_ < kLogEveryNs) return;
  last_warn_ = now;
  const DecoderStats& s = dec_->stats();
  log_->warn("{}: {}{}{} (so far: {} malformed, {} bad values, {} rejected, {} unexpected)",
             cfg.route, what, frame.empty() ? "" : ": ", frame, s.malformed, s.bad_values,
             s.rejected, s.unexpected);
}

FeedRunner::FeedRunner(RunnerOptions opt, TickQueue& queue)
    : impl_(std::make_unique<Impl>(std::move(opt), queue)) {}

FeedRunner::~FeedRunner() {
  stop();
}

std::size_t FeedRunner::add(ConnectionConfig cfg, SymbolMap symbols) {
  if (impl_->started) throw std::logic_error("FeedRunner::add after start");
  const std::uint64_t seed = impl_->opt.seed + 0x9E3779B97F4A7C15ULL * (impl_->conns.size() + 1);
  impl_->conns.push_back(
      std::make_unique<FeedConnection>(*impl_, std::move(cfg), std::move(symbols), seed));
  return impl_->conns.size() - 1;
}

void FeedRunner::start() {
  Impl& s = *impl_;
  if (s.started) return;
  s.started = true;
  if (!s.opt.record_dir.empty()) {
    s.capture = std::make_unique<CaptureWriter>(s.opt.record_dir, s.opt.record_rotate_bytes);
  }
  s.producer.emplace(s.queue);
  for (auto& c : s.conns) net::post(s.io, [conn = c.get()] { conn->connect(); });
  s.arm_timer();
  s.thread = std::thread([&s] {
    pthread_setname_np(pthread_self(), "lam-feed");
    s.io.run();
  });
}

void FeedRunner::stop() {
  Impl& s = *impl_;
  if (!s.started || !s.thread.joinable()) return;
  net::post(s.io, [&s] {
    s.stopping = true;
    s.timer.cancel();
    for (auto& c : s.conns) c->shutdown();
    // Close handshakes get one second; then the sockets are dropped.
    s.timer.expires_after(std::chrono::seconds(1));
    s.timer.async_wait([&s](boost::system::error_code) { s.io.stop(); });
    s.finish_stop_if_idle();
  });
  s.thread.join();
  if (s.capture) s.capture->flush();
}

std::size_t FeedRunner::size() const {
  return impl_->conns.size();
}
const ConnectionCounters& FeedRunner::counters(std::size_t i) const {
  return impl_->conns.at(i)->ctr;
}
const ConnectionConfig& FeedRunner::config(std::size_t i) const {
  return impl_->conns.at(i)->cfg;
}
std::uint64_t FeedRunner::recorded_frames() const {
  return impl_->capture ? impl_->capture->frames() : 0;
}

}  // namespace lam::feeds
