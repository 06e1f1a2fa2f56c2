#pragma once
/// The matcher thread: the one owner of the Matcher (and, once started, of the InstrumentTable).
///
/// Each turn it drains the tick queue (feed events) and the listener's command queue, runs the
/// matcher, and hands every event, in order, to: the crash ring (memcpy), the writer (the row
/// transition, then the journal entry), and the event bus (subscribers). Nothing on this path
/// takes a lock or waits: a full writer queue parks ops in a local FIFO (transitions are never
/// dropped), a full bus is counted (subscribers resume from the journal).
///
/// Never acts on a stale price: a tick is passed to the matcher only while its symbol's feed is
/// `live` for that tick kind (the feed marks a symbol `stale` when it has had no frame within its
/// staleness budget). Held ticks are counted; the first fresh tick after recovery is evaluated.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/config.h"
#include "daemon/crash_ring.h"
#include "daemon/transition_book.h"
#include "engine/instruments.h"
#include "engine/matcher.h"
#include "feeds/tick_queue.h"
#include "persistence/listener.h"
#include "persistence/marks.h"
#include "persistence/writer.h"
#include "scaleout/shard.h"
#include "stream/event_bus.h"

namespace lam::daemon {

struct EngineStats {
  std::atomic<std::uint64_t> ticks{0};       ///< ticks given to the matcher
  std::atomic<std::uint64_t> held_ticks{0};  ///< ticks not evaluated: their feed was not live
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> alerts_fired{0}, liquidations{0};
  std::atomic<std::uint64_t> revivals_refused{0};    ///< order.revival_refused events
  std::atomic<std::uint64_t> fills_voided{0};        ///< order.fill_voided events
  std::atomic<std::uint64_t> transitions_voided{0};  ///< transition.voided events
  std::atomic<std::uint64_t> foreign_wallets{0};     ///< rows rejected: another user's wallet
  std::atomic<std::uint64_t> commands{0}, commands_skipped{0};
  /// Positions a resync's snapshot lacked but our own unjournaled fills had moved: kept.
  std::atomic<std::uint64_t> resync_kept{0};
  std::atomic<std::uint64_t> foreign_commands{0};  ///< rows of other shards' markets, dropped
  std::atomic<std::uint64_t> marks{0};             ///< position refreshes sent to the writer
  std::atomic<std::uint64_t> market_marks{0};      ///< market marks sent to the writer
  std::atomic<std::uint64_t> refresh_passes{0};
  std::atomic<std::uint64_t> refresh_pass_ms{0};  ///< gauge: the last complete refresh pass
  std::atomic<std::uint64_t> writer_parked{0};  ///< gauge: ops waiting for room in the writer queue
  std::atomic<std::uint64_t> next_seq{0};       ///< gauge
  std::atomic<std::uint32_t> held_instruments{0};  ///< gauge: instruments with no live feed
  std::atomic<std::uint32_t> unserved_markets{0};  ///< gauge: markets no feed serves (a fault)
  std::atomic<std::uint32_t> disabled_markets{0};  ///< gauge: markets of disabled venues
};

struct EngineLoopDeps {
  Matcher* matcher = nullptr;
  InstrumentTable* instruments = nullptr;
  feeds::TickQueue* ticks = nullptr;
  db::Listener::Queue* commands = nullptr;  ///< optional
  db::Writer* writer = nullptr;             ///< optional (tests and benchmarks without a database)
  EventBus* bus = nullptr;
  CrashRing* ring = nullptr;  ///< optional
  /// Which markets are this shard's (optional: everything). Owned by the matcher thread once
  /// started.
  ShardMap* shard = nullptr;
  ForeignMarkets* foreign = nullptr;  ///< with `shard`: told which markets are other shards'
  MarketCoverage coverage;            ///< which instruments the feeds serve (default: none known)
};

class EngineLoop {
 public:
  EngineLoop(const EngineConfig& cfg, EngineLoopDeps deps);
  ~EngineLoop();  ///< stop() and join
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  /// Events the start-up load produced (rejections): published first, before start().
  void publish_initial(std::vector<Event> events);
  void start();
  /// Drains what is queued (ticks, commands, parked writer ops: up to `deadline`) and joins.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(2));
  [[nodiscard]] const EngineStats& stats() const noexcept { return stats_; }

 private:
  struct Parked {
    db::WriteOp op;
    Event event;
    bool is_event = false;
  };

  void run();
  bool turn();  ///< one pass; false when there was nothing to do
  void on_feed_event(const feeds::FeedEvent& fe);
  void on_command(const db::EngineCommand& c);
  void publish(TimeNs recv_ts);
  void submit(const Parked& p);
  void persist_rested();
  void persist_trails();
  void flush_parked();
  void confirm(std::chrono::steady_clock::time_point now);
  bool publish_marks(std::chrono::steady_clock::time_point now);  ///< true: visited something
  void grow_live(InstrumentId id);                                ///< new instruments start held
  [[nodiscard]] bool held(InstrumentId id, TickKind k) const noexcept {
    return id >= live_.size() || (live_[id] & feeds::kind_bit(k)) == 0;
  }

  EngineConfig cfg_;
  EngineLoopDeps d_;
  EngineStats stats_;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point stop_deadline_{};
  std::thread thread_;

  // Matcher-thread state.
  std::vector<feeds::FeedEvent> buf_;
  TimeNs dequeued_ts_ = 0;  ///< wall time of the last pop that took ticks (the stage stamps)
  std::vector<db::EngineCommand> cmd_buf_;
  std::vector<Event> events_;
  std::vector<std::uint8_t> live_;  ///< per instrument: TickKinds whose feed is live
  std::int64_t held_count_ = 0;     ///< instruments with live_ == 0
  bool published_ = false;          ///< events went onto the bus since the last doorbell
  std::deque<Parked> parked_;
  TransitionBook transitions_;  ///< our finished rows, against stale listener reads
  ResyncBook resync_;           ///< rows a full resync delivered
  MarketCoverage coverage_;     ///< markets no feed serves
  std::vector<Uuid> rested_;    ///< scratch: limit orders that started resting
  std::vector<TrailActivation> trail_activations_;  ///< scratch: trailing stops activated
  std::vector<TrailGroupChange> trail_groups_;      ///< scratch: their groups' moves
  std::vector<std::pair<EventType, Uuid>> voided_;  ///< scratch: transitions the bot beat
  static constexpr std::chrono::milliseconds kClockEvery{100};
  std::chrono::steady_clock::time_point last_clock_{};
  db::MarkPublisher marks_;
};

}  // namespace lam::daemon
