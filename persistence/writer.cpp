#include "persistence/writer.h"

#include <concurrentqueue/concurrentqueue.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <pqxx/pqxx>
#include <unordered_map>
#include <vector>

#include "engine/tsan_sync.h"
#include "persistence/batch.h"
#include "persistence/database_url.h"

namespace lam::db {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kDequeueBulk = 1024;
/// A position whose mark did not fit its columns is not marked again for this long (each retry
/// would cost a bisection of the batch); its transitions are still attempted.
constexpr auto kPoisonedMarkQuarantine = std::chrono::seconds(60);
constexpr std::size_t kMaxLoggedDeadLetters = 20;  ///< per flush; the rest are counted
/// A flush in pieces aims at pieces of this many seconds (the express lane runs between them) ...
constexpr double kPieceTarget = 0.2;
/// ... and of at least this many rows (below it, round trips and commits dominate).
constexpr std::size_t kMinPieceRows = 1'000;

constexpr const char* kDeadLetter = R"SQL(
INSERT INTO engine_dead_letters (table_name, row_id, kind, detail, sqlstate, error)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (table_name, row_id, kind) DO UPDATE
  SET detail = EXCLUDED.detail, sqlstate = EXCLUDED.sqlstate, error = EXCLUDED.error,
      occurrences = engine_dead_letters.occurrences + 1, last_seen = now()
)SQL";

/// Errors about the data, not the connection or the server: retrying the same rows cannot help.
bool is_data_error(const pqxx::sql_error& e) {
  const std::string& s = e.sqlstate();
  if (s.size() != 5) return false;
  return s.compare(0, 2, "22") == 0 ||  // data exception: numeric overflow, bad datetime, ...
         s.compare(0, 2, "23") == 0 ||  // integrity constraint violation: a CHECK, NOT NULL, FK
         s.compare(0, 2, "P0") == 0 ||  // raised by a trigger
         s == "42804";                  // datatype mismatch
}

/// The first line of a server error (libpqxx appends the statement text on later lines).
std::string first_line(const char* what) {
  std::string s(what);
  if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return s;
}

/// The statement ran past statement_timeout (or was cancelled): the batch is too slow as a whole,
/// not wrong. Split like a data error, so that one heavy part cannot hold back the rest.
bool is_timeout(const pqxx::sql_error& e) {
  return e.sqlstate() == "57014" || e.sqlstate() == "55P03";  // canceled; lock_timeout
}

std::uint64_t pack_sqlstate(const std::string& s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < s.size() && i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}

}  // namespace

std::string unpack_sqlstate(std::uint64_t packed) {
  std::string s;
  for (; packed != 0; packed >>= 8) s.push_back(static_cast<char>(packed & 0xFF));
  return s;
}

void configure_writer_session(pqxx::connection_base& c,
                              std::chrono::milliseconds statement_timeout) {
  prepare_batch(c);
  c.prepare("dead_letter", kDeadLetter);
  pqxx::nontransaction n(c);
  n.exec("SET application_name = 'laminator-writer'");
  n.exec("SET app.origin = 'engine'");  // our writes never come back as change notifications
  n.exec("SET statement_timeout = " + std::to_string(statement_timeout.count()));
  // Whatever the server's default: a batch the writer counts as committed (journal rows included)
  // must survive a PostgreSQL crash, or its alerts fire again after the next start.
  n.exec("SET synchronous_commit = on");
}

struct Writer::Impl {
  explicit Impl(std::size_t capacity)
      : queue(capacity), token(queue), events(capacity), event_token(events) {}
  moodycamel::ConcurrentQueue<WriteOp> queue;
  moodycamel::ProducerToken token;
  moodycamel::ConcurrentQueue<Event> events;
  moodycamel::ProducerToken event_token;
  std::atomic<std::int64_t> in_flight{0};  // queued + pending, for idle()
  /// Writer thread -> engine loop: the events conflicts voided (bounded; overflow counted).
  moodycamel::ConcurrentQueue<std::pair<EventType, Uuid>> voided{4096};
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("writer");
};

Writer::Writer(WriterConfig cfg)
    : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>(cfg_.queue_capacity)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lam-writer");  // visible in top -H / ps -L
    run();
  });
}

Writer::~Writer() {
  stop();
}

bool Writer::try_submit(const WriteOp& op) {
  // Released after every attempt, a refused one too (it read the queue's blocks).
  tsan_acquire(&impl_->queue);
  const bool queued =
      !stopping_.load(std::memory_order_relaxed) && impl_->queue.try_enqueue(impl_->token, op);
  tsan_release(&impl_->queue);
  if (!queued) {
    stats_.rejected_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  impl_->in_flight.fetch_add(1, std::memory_order_release);
  stats_.submitted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Writer::try_journal(const Event& e) {
  tsan_acquire(&impl_->events);
  const bool queued = !stopping_.load(std::memory_order_relaxed) &&
                      impl_->events.try_enqueue(impl_->event_token, e);
  tsan_release(&impl_->events);
  if (!queued) {
    stats_.rejected_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  impl_->in_flight.fetch_add(1, std::memory_order_release);
  stats_.submitted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Writer::take_voided(std::vector<std::pair<EventType, Uuid>>& out) {
  std::pair<EventType, Uuid> v;
  tsan_acquire(&impl_->voided);
  while (impl_->voided.try_dequeue(v)) out.push_back(v);
  tsan_release(&impl_->voided);
}

bool Writer::idle() const {
  return impl_->in_flight.load(std::memory_order_acquire) == 0;
}

void Writer::stop(std::chrono::milliseconds deadline) {
  if (!thread_.joinable()) return;
  stop_deadline_ns_.store((Clock::now() + deadline).time_since_epoch().count(),
                          std::memory_order_relaxed);
  stopping_.store(true, std::memory_order_release);
  thread_.join();
}

void Writer::run() {
  auto& log = *impl_->log;
  std::unique_ptr<pqxx::connection> conn;
  // What is not written yet, oldest first: each a batch with the count of submitted ops folded
  // into it and when its first one arrived. The back receives what is drained; while the front is
  // flushed the back is another entry, so what arrives during a long flush waits in order behind
  // it (and its alert writes may go ahead: `express`).
  struct Pending {
    Batch batch;
    std::int64_t ops = 0;
    Clock::time_point first = Clock::time_point::max();
  };
  std::deque<Pending> pending(1);
  Batch express_pending;  // alert writes taken ahead, not yet committed
  std::vector<WriteOp> buf(kDequeueBulk);
  std::vector<Event> ebuf(kDequeueBulk);
  auto backoff = cfg_.backoff_min;
  auto next_attempt = Clock::now();

  // Keeps the batch, drops the connection, and schedules the next attempt with capped backoff.
  auto last_contact = Clock::time_point{};  // ping at once: health is known from the start
  auto retry_later = [&](const char* why, const std::string& what, bool unreachable,
                         const std::string& sqlstate = {}) {
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    // Health says what is wrong: an unreachable database is not a slow or refused statement.
    stats_.db_ok.store(unreachable ? 0 : 1, std::memory_order_relaxed);
    stats_.writes_failing.store(unreachable ? 0 : 1, std::memory_order_relaxed);
    if (!sqlstate.empty())
      stats_.last_error_sqlstate.store(pack_sqlstate(sqlstate), std::memory_order_relaxed);
    log.warn("flush failed ({}: {}); keeping {} rows, retrying in {} ms", why, what,
             pending.front().batch.rows(), backoff.count());
    conn.reset();
    next_attempt = Clock::now() + backoff;
    backoff = std::min(backoff * 2, cfg_.backoff_max);
  };

  auto connect = [&] {
    conn = std::make_unique<pqxx::connection>(cfg_.conninfo);
    configure_writer_session(*conn, cfg_.statement_timeout);
  };

  // Ops (events stay queued: their transitions must not trail them, and ops never do); up to
  // max_batch_rows when `capped`.
  auto drain_ops = [&](Pending& into, bool capped) {
    // Acquired before and released after every attempt, an empty one too (it read the blocks the
    // producer writes next).
    for (;;) {
      tsan_acquire(&impl_->queue);
      const std::size_t n = impl_->queue.try_dequeue_bulk(buf.data(), buf.size());
      tsan_release(&impl_->queue);
      if (n == 0) break;
      for (std::size_t i = 0; i < n; ++i) into.batch.add(buf[i]);
      into.ops += static_cast<std::int64_t>(n);
      if (into.first == Clock::time_point::max()) into.first = Clock::now();
      if (capped && into.batch.rows() >= cfg_.max_batch_rows) break;
    }
  };

  std::unordered_map<Uuid, Clock::time_point, UuidHash> poisoned_marks;
  std::size_t dead_logged = 0;
  // Learnt: the rows a statement writes in kPieceTarget; starts low, grows with what is measured.
  std::size_t piece_rows = std::min(cfg_.max_batch_rows, 2 * kMinPieceRows);
  // Records one row that cannot be written; never throws for data (a dead letter that cannot be
  // stored is logged and counted); throws for the connection.
  auto dead_letter = [&](const Batch& one, const pqxx::sql_error& e) {
    const Batch::RowDescription d = one.describe_single();
    const std::string error = redact_secrets(first_line(e.what()), cfg_.conninfo);
    stats_.dead_letters.fetch_add(1, std::memory_order_relaxed);
    if (d.kind == "mark") {
      if (const auto id = Uuid::parse(d.row_id))
        poisoned_marks[*id] = Clock::now() + kPoisonedMarkQuarantine;
    }
    if (dead_logged++ < kMaxLoggedDeadLetters)
      log.error("dead letter: {} {} ({}) not written: {} [{}]; values: {}", d.table, d.row_id,
                d.kind, error, e.sqlstate(), d.detail);
    try {
      pqxx::nontransaction tx(*conn);
      tx.exec_prepared("dead_letter", d.table, d.row_id, d.kind, d.detail, e.sqlstate(), error);
    } catch (const pqxx::sql_error& again) {
      if (!is_data_error(again)) throw;
      log.error("dead letter for {} {} could not be stored: {}", d.table, d.row_id,
                redact_secrets(first_line(again.what()), cfg_.conninfo));
    }
  };
  // Applies `whole`; a batch over max_batch_rows is applied in pieces, a batch that fails on data
  // (or past statement_timeout) is split until the offending rows are isolated, everything else
  // is written. Between two pieces, `between` runs (the express lane). Throws only what retrying
  // on a new connection may fix (the whole batch is then retried: every write in it is
  // idempotent).
  std::function<BatchResult(const Batch&, const std::function<void()>&)> apply_isolating =
      [&](const Batch& whole, const std::function<void()>& between) {
        BatchResult total;
        std::vector<Batch> stack;
        stack.push_back(whole);
        // With an express lane, pieces are sized to take about kPieceTarget each (from the rows/s
        // of the pieces so far), so an alert queued behind a burst waits about one piece.
        const std::size_t cap =
            between ? std::min(cfg_.max_batch_rows, piece_rows) : cfg_.max_batch_rows;
        while (!stack.empty()) {
          Batch cur = std::move(stack.back());
          stack.pop_back();
          if (cur.rows() > cap) {
            // A batch never exceeds max_batch_rows: the ops drained with its events (their
            // transitions, which must not trail them) can take it past the cap. The halves keep
            // the order transitions first, events last, so an event never lands before its
            // transition.
            stats_.capped_splits.fetch_add(1, std::memory_order_relaxed);
            auto [first, second] = cur.split();
            stack.push_back(std::move(second));
            stack.push_back(std::move(first));
            continue;
          }
          try {
            const auto started = Clock::now();
            pqxx::nontransaction tx(*conn);  // one statement = one implicit transaction
            BatchResult r = apply_batch(tx, cur);
            for (const std::string& c : r.conflicts) {
              if (const auto v = cur.voided_by(c)) {
                tsan_acquire(&impl_->voided);
                const bool queued = impl_->voided.try_enqueue(*v);
                tsan_release(&impl_->voided);
                if (!queued) stats_.voided_dropped.fetch_add(1, std::memory_order_relaxed);
              }
            }
            if (cur.rows() > stats_.largest_statement_rows.load(std::memory_order_relaxed))
              stats_.largest_statement_rows.store(cur.rows(), std::memory_order_relaxed);
            const double took = std::chrono::duration<double>(Clock::now() - started).count();
            if (between && cur.rows() >= kMinPieceRows && took > 0) {
              const double fit = static_cast<double>(cur.rows()) / took * kPieceTarget;
              piece_rows =
                  std::clamp(static_cast<std::size_t>(fit), kMinPieceRows, cfg_.max_batch_rows);
            }
            total.marks_applied += r.marks_applied;
            total.fills_applied += r.fills_applied;
            for (auto& c : r.conflicts) total.conflicts.push_back(std::move(c));
          } catch (const pqxx::sql_error& e) {
            const bool timeout = is_timeout(e);
            if (!is_data_error(e) && !timeout) throw;
            stats_.isolation_steps.fetch_add(1, std::memory_order_relaxed);
            if (timeout) stats_.timeout_splits.fetch_add(1, std::memory_order_relaxed);
            if (cur.rows() <= 1) {
              dead_letter(cur, e);
              continue;
            }
            auto [first, second] = cur.split();
            stack.push_back(std::move(second));  // the first half (transitions first) runs first
            stack.push_back(std::move(first));
          }
          if (!stack.empty() && between) between();
        }
        return total;
      };
  auto record = [&](const BatchResult& r) {
    for (std::size_t i = 0; i < r.conflicts.size() && i < 20; ++i)
      log.warn("conflict: {} changed by someone else first; engine transition not applied",
               r.conflicts[i]);
    stats_.conflicts.fetch_add(r.conflicts.size(), std::memory_order_relaxed);
    stats_.fills.fetch_add(r.fills_applied, std::memory_order_relaxed);
  };
  // The express lane. A flush in pieces (one user's burst of fills) takes seconds; meanwhile the
  // ops the matcher queues are drained behind it, and their alert writes, which depend on no other
  // row, are committed at once: another user's triggered alert is not held back by the burst. Its
  // event is journaled in its turn, after the burst's (the journal stays in seq order).
  auto express = [&] {
    drain_ops(pending.back(), true);
    if (!pending.back().batch.has_alerts()) return;
    express_pending = pending.back().batch.take_alerts();
    record(apply_isolating(express_pending, nullptr));
    express_pending.clear();
  };

  for (;;) {
    const bool stopping = stopping_.load(std::memory_order_acquire);
    // Drain into the back batch: events first, then ops, so every journaled event's transition op
    // (submitted before it) is in this batch too, or in an earlier one. Marks coalesce here.
    Pending& back = pending.back();
    std::size_t n = 0;
    bool took_events = false;
    while (back.batch.rows() < cfg_.max_batch_rows) {
      tsan_acquire(&impl_->events);
      n = impl_->events.try_dequeue_bulk(ebuf.data(), ebuf.size());
      tsan_release(&impl_->events);
      if (n == 0) break;
      took_events = true;
      for (std::size_t i = 0; i < n; ++i) back.batch.add_event(ebuf[i]);
      back.ops += static_cast<std::int64_t>(n);
      if (back.first == Clock::time_point::max()) back.first = Clock::now();
    }
    // With events taken, drain every op queued so far (their transitions), even past the cap:
    // the flush applies the batch in pieces of at most max_batch_rows.
    drain_ops(back, !took_events);
    std::size_t rows = 0;
    for (const Pending& p : pending) rows += p.batch.rows();
    stats_.pending_rows.store(rows, std::memory_order_relaxed);
    const auto now = Clock::now();
    Pending& front = pending.front();
    stats_.oldest_pending_ms.store(
        front.first == Clock::time_point::max()
            ? 0
            : static_cast<std::uint64_t>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(now - front.first).count()),
        std::memory_order_relaxed);
    if (front.batch.empty() && pending.size() > 1 &&
        express_pending.empty()) {  // drained nothing but its ops were counted
      impl_->in_flight.fetch_sub(front.ops, std::memory_order_release);
      pending.pop_front();
      continue;
    }
    const bool due =
        !front.batch.empty() && (stopping || front.batch.rows() >= cfg_.max_batch_rows ||
                                 now - front.first >= cfg_.flush_interval);
    if (due && now >= next_attempt) {
      const auto t0 = Clock::now();
      if (pending.size() == 1) pending.emplace_back();  // drains during this flush go behind it
      Pending& cur = pending.front();
      try {
        if (!conn) {
          connect();
          stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
        }
        dead_logged = 0;
        if (!express_pending.empty()) {  // taken ahead by a flush that then failed
          record(apply_isolating(express_pending, nullptr));
          express_pending.clear();
        }
        if (!poisoned_marks.empty()) {
          const auto t = Clock::now();
          std::erase_if(poisoned_marks, [&](const auto& kv) { return kv.second <= t; });
          stats_.quarantined_marks.fetch_add(
              cur.batch.drop_marks_if([&](const Uuid& id) { return poisoned_marks.contains(id); }),
              std::memory_order_relaxed);
        }
        const BatchResult r = apply_isolating(cur.batch, express);
        if (dead_logged > kMaxLoggedDeadLetters)
          log.error("{} more dead letters in this flush (engine_dead_letters has them all)",
                    dead_logged - kMaxLoggedDeadLetters);
        record(r);
        stats_.events_journaled.fetch_add(cur.batch.events(), std::memory_order_relaxed);
        if (cur.batch.max_seq() > 0)
          stats_.journaled_seq.store(cur.batch.max_seq(), std::memory_order_release);
        stats_.last_batch_rows.store(cur.batch.rows(), std::memory_order_relaxed);
        stats_.batches.fetch_add(1, std::memory_order_relaxed);
        stats_.rows.fetch_add(cur.batch.rows(), std::memory_order_relaxed);
        stats_.transitions.fetch_add(cur.batch.transitions(), std::memory_order_relaxed);
        const auto flush_time = Clock::now() - t0;
        stats_.last_flush_us.store(
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(flush_time).count()),
            std::memory_order_relaxed);
        stats_.flush_seconds.record(std::chrono::duration<double>(flush_time).count());
        stats_.db_ok.store(1, std::memory_order_relaxed);
        stats_.writes_failing.store(0, std::memory_order_relaxed);
        last_contact = Clock::now();
        impl_->in_flight.fetch_sub(cur.ops, std::memory_order_release);
        pending.pop_front();
        backoff = cfg_.backoff_min;
      } catch (const pqxx::broken_connection& e) {
        // Includes a failed connect. 6.4 does not heal a broken connection: build a new one.
        retry_later("database unreachable", redact_secrets(e.what(), cfg_.conninfo), true);
      } catch (const pqxx::in_doubt_error& e) {
        // The statement may or may not have committed: re-sending is safe (absolute values,
        // conditional transitions recognised as our own).
        retry_later("commit in doubt", redact_secrets(e.what(), cfg_.conninfo), true);
      } catch (const pqxx::sql_error& e) {
        // Server-side error (restart in progress, deadlock, timeout): retry on a new connection.
        retry_later(e.sqlstate().c_str(), redact_secrets(e.what(), cfg_.conninfo), false,
                    e.sqlstate());
      }
      continue;
    }
    const bool all_empty = pending.size() == 1 && front.batch.empty() && express_pending.empty();
    if (all_empty && !stopping && now >= next_attempt && now - last_contact >= cfg_.idle_ping) {
      // Nothing to write: keep the connection warm and the health gauge honest.
      last_contact = now;
      try {
        if (!conn) {
          connect();
          stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
        }
        pqxx::nontransaction(*conn).exec("SELECT 1");
        stats_.db_ok.store(1, std::memory_order_relaxed);
      } catch (const std::exception& e) {
        stats_.db_ok.store(0, std::memory_order_relaxed);
        conn.reset();
        log.warn("database check failed: {}", redact_secrets(e.what(), cfg_.conninfo));
      }
      continue;
    }
    if (stopping &&
        (all_empty || Clock::now().time_since_epoch().count() >= stop_deadline_ns_.load())) {
      if (!all_empty) log.error("stopping with {} rows not written (database unreachable)", rows);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace lam::db
