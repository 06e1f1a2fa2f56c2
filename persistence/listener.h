#pragma once
/// Live change capture: turns the bot's writes into engine commands.
///
/// A dedicated connection LISTENs on `laminator_changes` (fed by the 0002 triggers; the engine's
/// own writes do not notify). Notifications are collected for up to `batch_window`, the rows are
/// re-read by id on a separate reader connection (so the listener never holds a transaction open),
/// and one command per row is queued for the matcher thread. NOTIFY is at-most-once, so on every
/// (re)connect the listener LISTENs first and then resynchronises in full: resync_begin, every
/// current row, resync_end.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "engine/domain.h"
#include "engine/orders.h"
#include "persistence/change_heartbeat.h"

namespace lam::db {

struct EngineCommand {
  enum class Kind : std::uint8_t {
    resync_begin,  ///< a full snapshot follows; anything not in it is gone (see resync_end)
    resync_end,  ///< end of snapshot: alerts/positions the engine holds but the snapshot lacked are
                 ///< stale
    upsert_market,    ///< `market`
    upsert_position,  ///< `position` (any status: the matcher disarms what is not open)
    remove_position,  ///< `id` was deleted
    upsert_alert,     ///< `alert` (any status: the matcher disarms what is not active)
    remove_alert,     ///< `id` was deleted
    upsert_order,     ///< `order` (any status: the matcher disarms what is not pending/open)
    remove_order,     ///< `id` was deleted
    upsert_balance,   ///< `balance`
    remove_balance,   ///< `id` (a wallet_balances row id) was deleted
    upsert_setting,   ///< `setting` (a user_settings row)
    remove_setting,   ///< `id` (a user_settings row id) was deleted
  };
  Kind kind = Kind::resync_begin;
  MarketRow market;
  PositionSpec position;
  AlertSpec alert;
  OrderSpec order;
  BalanceSpec balance;
  UserSettingRow setting;
  Uuid id;
  std::chrono::steady_clock::time_point noticed;  ///< when the notification (or resync) was seen
  /// A position or order read because the writer asked for it (op RECONCILE: a fill of the
  /// engine's lost to the bot): newer than anything the engine wrote of this row, so never a stale
  /// read; an order read so may re-arm an order the engine holds filled (Matcher::reconcile_order).
  /// (Balances have no stale-read check: their reads always apply.)
  bool reconcile = false;
};

struct ListenerConfig {
  std::string conninfo;
  /// The change path's heartbeat (persistence/change_heartbeat.h): sent every `interval`, dead
  /// when one is not back within `timeout`; the first after each connect is the probe.
  ChangeHeartbeat::Config heartbeat{};
  std::chrono::milliseconds batch_window{2};  ///< collect notifications this long before re-reading
  std::size_t max_batch = 500;                ///< ... or until this many ids are pending
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2'000};
  std::size_t queue_capacity = 1 << 16;
  /// Follow `orders`, `wallet_balances` and `user_settings` too (resync and changes); the daemon
  /// does.
  bool orders = false;
  /// A shard's: true when `market` is known to be another shard's. A change to a position, alert or
  /// order whose notification names only such markets is dropped before it is read (counted in
  /// ListenerStats::foreign). Called on the listener thread; must be thread-safe.
  std::function<bool(const Uuid& market)> foreign = nullptr;
};

struct ListenerStats {
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<std::uint64_t> commands{0};
  std::atomic<std::uint64_t> resyncs{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> bad_payloads{0};
  std::atomic<std::uint64_t> ignored{0};  ///< tables the engine does not act on (orders)
  std::atomic<std::uint64_t> foreign{0};  ///< changes to other shards' rows, dropped unread
  std::atomic<std::uint64_t> queue_waits{
      0};  ///< times the command queue was full (the listener waited)
  /// 1 while the LISTEN session is up and proven by a heartbeat (the bot's changes are followed).
  std::atomic<std::uint64_t> connected{0};
  /// Unix milliseconds since when the bot's changes are not followed (0 while connected).
  std::atomic<std::uint64_t> down_since_ms{0};
  /// Why not (ListenerDown): 0 none, 1 no connection, 2 notifications do not arrive (a pooler?),
  /// 3 a heartbeat was lost on a proven session.
  std::atomic<std::uint8_t> down_why{1};
  std::atomic<std::uint64_t> heartbeat_rtt_us{0};  ///< the last heartbeat's round trip
  std::atomic<std::uint64_t> heartbeats{0};        ///< heartbeats that came back
  std::atomic<std::uint64_t> heartbeats_lost{0};   ///< not back in time: the session was dropped
};

/// ListenerStats::down_why.
enum class ListenerDown : std::uint8_t {
  none = 0,
  no_connection = 1,
  no_notifications = 2,
  lost = 3
};

/// Sends a notification through `conninfo` and waits for it on a LISTEN session of its own: the
/// daemon's start-up check. The error to show (secrets redacted) when it does not arrive within
/// `timeout` (a transaction-mode pooler does not keep LISTEN) or the database cannot be reached.
[[nodiscard]] std::optional<std::string> probe_change_path(const std::string& conninfo,
                                                           std::chrono::milliseconds timeout);

class Listener {
 public:
  using Queue = moodycamel::ConcurrentQueue<EngineCommand>;

  explicit Listener(ListenerConfig cfg);
  ~Listener();  ///< stops and joins
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  /// The matcher thread drains this (try_dequeue / try_dequeue_bulk).
  Queue& commands() noexcept { return queue_; }
  [[nodiscard]] const ListenerStats& stats() const noexcept { return stats_; }
  /// Backend pid of the listening connection (0 while disconnected); tests kill it to simulate a
  /// drop.
  [[nodiscard]] int backend_pid() const noexcept { return backend_pid_.load(); }
  void stop();

 private:
  void run();

  ListenerConfig cfg_;
  ListenerStats stats_;
  Queue queue_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> backend_pid_{0};
  std::thread thread_;
};

/// Parses a trigger payload {"t":"alerts","op":"UPDATE","id":"<uuid>"} (whitespace allowed), with
/// "m" (the row's market) and "om" (the market an UPDATE moved it from) when the trigger names them
/// (migration 0011).
struct ChangeNote {
  std::string table;
  std::string op;
  Uuid id;
  std::optional<Uuid> market;
  std::optional<Uuid> old_market;
};
[[nodiscard]] std::optional<ChangeNote> parse_change_payload(std::string_view payload);

}  // namespace lam::db
