#pragma once
/// The batched writer: its own thread and its own PostgreSQL connection, fed by a bounded lock-free
/// queue from the matcher thread.
///
/// * Marks coalesce per position (latest wins) and are flushed at most every `flush_interval`;
///   transitions (liquidations, alert triggers/expiries, anchors) are never coalesced away or
///   dropped.
/// * One round trip per batch (batch.h). Transitions are conditional, so a user's cancel that raced
/// a
///   trigger is not overwritten: such conflicts are counted and logged.
/// * Database down or restarted: the batch is kept, retried with capped exponential backoff on a
///   new connection; memory stays bounded because marks coalesce.
/// * A batch that fails on data (a value a column cannot hold, a CHECK, a trigger) is split until
///   the offending rows are isolated; those go to engine_dead_letters (logged with table, id and
///   error, counted) and everything else is written. One bad row never stalls the others.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/event.h"
#include "persistence/atomic_histogram.h"
#include "persistence/write_op.h"

namespace pqxx {
class connection_base;
}  // namespace pqxx

namespace lam::db {

struct WriterConfig {
  std::string conninfo;
  std::chrono::milliseconds flush_interval{50};
  std::size_t max_batch_rows = 10'000;  ///< flush early once this many rows are pending
  std::size_t queue_capacity = 1 << 16;
  std::chrono::milliseconds backoff_min{20};
  std::chrono::milliseconds backoff_max{2'000};
  std::chrono::milliseconds idle_ping{
      1'000};  ///< with nothing to flush, check the database this often
  /// A statement running longer (a lock the bot holds, a server in trouble) is cancelled and its
  /// batch split in halves, down to a dead letter for the one row that cannot be written.
  std::chrono::milliseconds statement_timeout{30'000};
};

struct WriterStats {
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> rejected_full{
      0};  ///< try_submit found the queue full (caller keeps the op)
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> rows{0};
  std::atomic<std::uint64_t> transitions{0};
  std::atomic<std::uint64_t> conflicts{0};
  std::atomic<std::uint64_t> fills{0};  ///< paper fills written (order, position, trade, balance)
  std::atomic<std::uint64_t> orders_placed{0};  ///< protective stops inserted (not there before)
  std::atomic<std::uint64_t> failures{0};       ///< failed flush attempts (each retried)
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> last_flush_us{0};
  std::atomic<std::uint64_t> pending_rows{0};
  std::atomic<std::uint64_t> events_journaled{0};
  std::atomic<std::uint64_t> journaled_seq{0};  ///< highest event seq committed to alert_events
  std::atomic<std::uint64_t> last_batch_rows{0};
  std::atomic<std::uint64_t> dead_letters{
      0};  ///< rows isolated as unwritable (engine_dead_letters)
  std::atomic<std::uint64_t> isolation_steps{0};  ///< statements that failed on data and were split
  std::atomic<std::uint64_t> quarantined_marks{
      0};  ///< marks skipped for positions that just failed
  std::atomic<std::uint8_t> db_ok{
      0};  ///< gauge: 1 after a successful flush or idle ping, 0 when the database is unreachable
  /// gauge: 1 while flushes fail on a server-side error (a statement timeout, a deadlock, a server
  /// shutting down): the database answers, the writes do not land. 0 after a flush.
  std::atomic<std::uint8_t> writes_failing{0};
  std::atomic<std::uint64_t> last_error_sqlstate{0};  ///< the 5 characters of the last failure
  /// gauge: how long the oldest change not yet written has waited (0: none pending), in ms.
  std::atomic<std::uint64_t> oldest_pending_ms{0};
  std::atomic<std::uint64_t> capped_splits{0};  ///< batches split to stay within max_batch_rows
  std::atomic<std::uint64_t> largest_statement_rows{0};  ///< the most rows one statement wrote
  std::atomic<std::uint64_t> voided_dropped{0};  ///< voided transitions not handed on: queue full
  std::atomic<std::uint64_t> timeout_splits{0};  ///< statements that timed out and were split
  AtomicHistogram flush_seconds;                 ///< each committed flush: build, send, commit
};

/// Prepares the writer's statements on `c` and sets its session: app.origin = 'engine',
/// statement_timeout, and synchronous_commit = on whatever the server's default (what the writer
/// counts as committed must survive a PostgreSQL crash).
void configure_writer_session(
    pqxx::connection_base& c,
    std::chrono::milliseconds statement_timeout = std::chrono::seconds(30));

/// The sqlstate packed by WriterStats::last_error_sqlstate, as text ("" for none).
[[nodiscard]] std::string unpack_sqlstate(std::uint64_t packed);

class Writer {
 public:
  explicit Writer(WriterConfig cfg);
  ~Writer();  ///< stop(): drains and flushes what it can within 5 s
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Enqueues without blocking; false when the queue is full (nothing is lost: the caller keeps the
  /// op and retries, or for marks simply sends a newer one later). Single producer: the matcher
  /// thread.
  bool try_submit(const WriteOp& op);
  /// Enqueues a published event for the alert_events journal; false when that queue is full.
  /// Same single producer as try_submit. Submit an event's transition op before the event: the
  /// writer drains events first and ops second, so a journaled event's transition is always in the
  /// same statement or an earlier one (the crash recovery relies on it).
  bool try_journal(const Event& e);
  /// Transitions the writer found the bot had beaten (the row changed first): the events they void,
  /// for the engine loop to compensate (transition.voided). Moves out what is queued; any thread,
  /// one consumer.
  void take_voided(std::vector<std::pair<EventType, Uuid>>& out);
  /// Stops accepting work, flushes everything queued, and joins; gives up after `deadline`.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  /// True when nothing is queued or pending (everything submitted so far is in the database).
  [[nodiscard]] bool idle() const;
  [[nodiscard]] const WriterStats& stats() const noexcept { return stats_; }

 private:
  struct Impl;
  class Loop;  ///< the writer thread's state and steps (writer.cpp)
  void run();

  WriterConfig cfg_;
  WriterStats stats_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> stop_deadline_ns_{0};
  std::thread thread_;
};

}  // namespace lam::db
