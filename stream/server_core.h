#pragma once
/// The stream server's shared state on its thread: the io_context, the ring, the subscribers, the
/// counters. Private to the server's own files (stream_server.cpp, http_session.cpp,
/// ws_session.cpp), the only ones that include Beast; everything here runs on the server thread
/// unless marked atomic.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "stream/event_ring.h"
#include "stream/latency_histogram.h"
#include "stream/stage_latency.h"
#include "stream/stream_server.h"

namespace lam::daemon {

class WsSession;

struct ServerCore final : ServerProbe {
  /// Exactly one of `b` (the matcher's events) and `e` (rendered events: the gateway) is set.
  ServerCore(const StreamConfig& c, EventBus* b, EntryBus* e, JournalReader* j, ServerHooks h,
             std::uint64_t last);

  void accept();
  void wait_doorbell();
  void arm_poll();
  void drain();
  /// Refreshes the percentiles the status line reads (from the poll timer, not per drain).
  void publish_latency();
  bool pace();  ///< true when a keeping-up subscriber needs its writes to catch up first
  void publish(const Published& p) override;
  /// Returns the wall time it recorded the latency at (0 when `recv_ts` is 0).
  TimeNs publish_entry(Entry entry, TimeNs recv_ts);
  /// Drains up to one batch from whichever bus feeds the server; returns how many.
  std::size_t drain_batch();
  [[nodiscard]] bool prepare_sleep() {
    return bus ? bus->prepare_sleep() : entries->prepare_sleep();
  }
  /// Every event up to this seq is journaled (hooks.committed_head; without it, all of them).
  [[nodiscard]] std::uint64_t committed_head() const {
    return hooks.committed_head ? hooks.committed_head() : UINT64_MAX;
  }
  /// Hands a new committed head to the committed=1 subscribers (from drain and the poll timer).
  void advance_committed();
  void begin_stop() override;
  void cut_all(std::uint16_t code, const std::string& why);
  std::string metrics();

  /// An accepted subscriber joins the fan-out (only after its WebSocket handshake completed).
  void join(const std::shared_ptr<WsSession>& s) { sessions.insert(s); }
  void leave(const std::shared_ptr<WsSession>& s) { sessions.erase(s); }

  StreamConfig cfg;
  EventBus* bus;
  EntryBus* entries;
  JournalReader* journal;
  ServerHooks hooks;
  ServerStats stats;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::posix::stream_descriptor doorbell;
  boost::asio::steady_timer poll_timer;
  boost::asio::steady_timer pace_timer;
  boost::asio::steady_timer accept_timer;  ///< backs off accepting while descriptors run out
  bool pace_armed = false;
  std::thread thread;
  std::atomic<std::uint16_t> port{0};
  bool stopping = false;
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("server");

  EventRing ring;
  std::unordered_set<std::shared_ptr<WsSession>> sessions;  ///< accepted subscribers only
  std::vector<Published> buf;
  std::vector<Rendered> rendered;
  LatencyHistogram latency;
  StageLatency stages;  ///< the matcher's events only (the gateway's have no stages)
  std::string scratch;
  std::uint64_t committed_seen = 0;  ///< the committed head last handed to subscribers
};

/// Held by every HTTP or WebSocket session for its connection's lifetime: counts open connections.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(ServerStats& s) : stats_(&s) {
    stats_->open_connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~ConnectionSlot() {
    if (stats_ != nullptr) stats_->open_connections.fetch_sub(1, std::memory_order_relaxed);
  }
  ConnectionSlot(ConnectionSlot&& o) noexcept : stats_(std::exchange(o.stats_, nullptr)) {}
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;

 private:
  ServerStats* stats_;
};

}  // namespace lam::daemon
