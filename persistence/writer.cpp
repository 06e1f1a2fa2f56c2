#include "persistence/writer.h"

#include <concurrentqueue/concurrentqueue.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
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

/// The writer thread: what is not written yet, the connection, the express lane, the marks in
/// quarantine, and the steps that move them. Owned by that thread alone.
class Writer::Loop {
 public:
  explicit Loop(Writer& w)
      : w_(w),
        cfg_(w.cfg_),
        stats_(w.stats_),
        impl_(*w.impl_),
        log_(*impl_.log),
        buf_(kDequeueBulk),
        ebuf_(kDequeueBulk),
        backoff_(cfg_.backoff_min),
        next_attempt_(Clock::now()),
        piece_rows_(std::min(cfg_.max_batch_rows, 2 * kMinPieceRows)) {}

  /// Drains, flushes when due, keeps the connection warm when idle; returns when stopped (all
  /// written, or the stop deadline passed).
  void run();

 private:
  // What is not written yet, oldest first: each a batch with the count of submitted ops folded
  // into it and when its first one arrived. The back receives what is drained; while the front is
  // flushed the back is another entry, so what arrives during a long flush waits in order behind
  // it (and its alert writes may go ahead: `express`).
  struct Pending {
    Batch batch;
    std::int64_t ops = 0;
    Clock::time_point first = Clock::time_point::max();
  };

  /// Events first, then ops, into the back batch, so every journaled event's transition op
  /// (submitted before it) is in this batch too, or in an earlier one. Marks coalesce here.
  void drain();
  /// Ops (events stay queued: their transitions must not trail them, and ops never do); up to
  /// max_batch_rows when `capped`.
  void drain_ops(Pending& into, bool capped);
  /// Publishes the pending-rows and oldest-pending gauges; returns the rows pending.
  std::size_t report_pending(Clock::time_point now);
  /// Writes the front batch (and what the express lane took ahead); on failure keeps it and
  /// schedules a retry.
  void flush_front();
  /// Nothing to write: keeps the connection warm and the health gauge honest.
  void ping();
  void connect();
  /// Keeps the batch, drops the connection, and schedules the next attempt with capped backoff.
  void retry_later(const char* why, const std::string& what, bool unreachable,
                   const std::string& sqlstate = {});
  /// Applies `whole`; a batch over max_batch_rows is applied in pieces, a batch that fails on
  /// data (or past statement_timeout) is split until the offending rows are isolated, everything
  /// else is written. With `express_between`, the express lane runs between two pieces. Throws
  /// only what retrying on a new connection may fix (the whole batch is then retried: every write
  /// in it is idempotent).
  BatchResult apply_isolating(const Batch& whole, bool express_between);
  /// One statement of `cur` (a piece over `cap` rows is split onto `stack` unsent); a piece that
  /// fails on data is split onto `stack` too, or dead-lettered when it is one row. True when a
  /// statement ran (the express lane may go next).
  bool apply_piece(Batch cur, std::size_t cap, bool express_between, std::vector<Batch>& stack,
                   BatchResult& total);
  /// Records one row that cannot be written; never throws for data (a dead letter that cannot be
  /// stored is logged and counted); throws for the connection.
  void dead_letter(const Batch& one, const pqxx::sql_error& e);
  void record(const BatchResult& r);
  /// The express lane. A flush in pieces (one user's burst of fills) takes seconds; meanwhile the
  /// ops the matcher queues are drained behind it, and their alert writes, which depend on no
  /// other row, are committed at once: another user's triggered alert is not held back by the
  /// burst. Its event is journaled in its turn, after the burst's (the journal stays in seq
  /// order).
  void express();
  [[nodiscard]] bool all_empty() const {
    return pending_.size() == 1 && pending_.front().batch.empty() && express_pending_.empty();
  }

  Writer& w_;
  const WriterConfig& cfg_;
  WriterStats& stats_;
  Impl& impl_;
  spdlog::logger& log_;
  std::unique_ptr<pqxx::connection> conn_;
  std::deque<Pending> pending_ = std::deque<Pending>(1);
  Batch express_pending_;  // alert writes taken ahead, not yet committed
  std::vector<WriteOp> buf_;
  std::vector<Event> ebuf_;
  std::chrono::milliseconds backoff_;
  Clock::time_point next_attempt_;
  Clock::time_point last_contact_{};  // ping at once: health is known from the start
  std::unordered_map<Uuid, Clock::time_point, UuidHash> poisoned_marks_;
  std::size_t dead_logged_ = 0;
  /// Learnt: the rows a statement writes in kPieceTarget; starts low, grows with what is measured.
  std::size_t piece_rows_;
};

void Writer::run() {
  Loop(*this).run();
}

void Writer::Loop::run() {
  for (;;) {
    const bool stopping = w_.stopping_.load(std::memory_order_acquire);
    drain();
    const auto now = Clock::now();
    const std::size_t rows = report_pending(now);
    Pending& front = pending_.front();
    if (front.batch.empty() && pending_.size() > 1 &&
        express_pending_.empty()) {  // drained nothing but its ops were counted
      impl_.in_flight.fetch_sub(front.ops, std::memory_order_release);
      pending_.pop_front();
      continue;
    }
    const bool due =
        !front.batch.empty() && (stopping || front.batch.rows() >= cfg_.max_batch_rows ||
                                 now - front.first >= cfg_.flush_interval);
    if (due && now >= next_attempt_) {
      flush_front();
      continue;
    }
    const bool empty = all_empty();
    if (empty && !stopping && now >= next_attempt_ && now - last_contact_ >= cfg_.idle_ping) {
      ping();
      continue;
    }
    if (stopping &&
        (empty || Clock::now().time_since_epoch().count() >= w_.stop_deadline_ns_.load())) {
      if (!empty) log_.error("stopping with {} rows not written (database unreachable)", rows);
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

void Writer::Loop::drain() {
  Pending& back = pending_.back();
  bool took_events = false;
  while (back.batch.rows() < cfg_.max_batch_rows) {
    tsan_acquire(&impl_.events);
    const std::size_t n = impl_.events.try_dequeue_bulk(ebuf_.data(), ebuf_.size());
    tsan_release(&impl_.events);
    if (n == 0) break;
    took_events = true;
    for (std::size_t i = 0; i < n; ++i) back.batch.add_event(ebuf_[i]);
    back.ops += static_cast<std::int64_t>(n);
    if (back.first == Clock::time_point::max()) back.first = Clock::now();
  }
  // With events taken, drain every op queued so far (their transitions), even past the cap: the
  // flush applies the batch in pieces of at most max_batch_rows.
  drain_ops(back, !took_events);
}

void Writer::Loop::drain_ops(Pending& into, bool capped) {
  // Acquired before and released after every attempt, an empty one too (it read the blocks the
  // producer writes next).
  for (;;) {
    tsan_acquire(&impl_.queue);
    const std::size_t n = impl_.queue.try_dequeue_bulk(buf_.data(), buf_.size());
    tsan_release(&impl_.queue);
    if (n == 0) break;
    for (std::size_t i = 0; i < n; ++i) into.batch.add(buf_[i]);
    into.ops += static_cast<std::int64_t>(n);
    if (into.first == Clock::time_point::max()) into.first = Clock::now();
    if (capped && into.batch.rows() >= cfg_.max_batch_rows) break;
  }
}

std::size_t Writer::Loop::report_pending(Clock::time_point now) {
  std::size_t rows = 0;
  for (const Pending& p : pending_) rows += p.batch.rows();
  stats_.pending_rows.store(rows, std::memory_order_relaxed);
  const Pending& front = pending_.front();
  stats_.oldest_pending_ms.store(
      front.first == Clock::time_point::max()
          ? 0
          : static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(now - front.first).count()),
      std::memory_order_relaxed);
  return rows;
}

void Writer::Loop::flush_front() {
  const auto t0 = Clock::now();
  if (pending_.size() == 1) pending_.emplace_back();  // drains during this flush go behind it
  Pending& cur = pending_.front();
  try {
    if (!conn_) {
      connect();
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
    }
    dead_logged_ = 0;
    if (!express_pending_.empty()) {  // taken ahead by a flush that then failed
      record(apply_isolating(express_pending_, false));
      express_pending_.clear();
    }
    if (!poisoned_marks_.empty()) {
      const auto t = Clock::now();
      std::erase_if(poisoned_marks_, [&](const auto& kv) { return kv.second <= t; });
      stats_.quarantined_marks.fetch_add(
          cur.batch.drop_marks_if([&](const Uuid& id) { return poisoned_marks_.contains(id); }),
          std::memory_order_relaxed);
    }
    const BatchResult r = apply_isolating(cur.batch, true);
    if (dead_logged_ > kMaxLoggedDeadLetters)
      log_.error("{} more dead letters in this flush (engine_dead_letters has them all)",
                 dead_logged_ - kMaxLoggedDeadLetters);
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
    last_contact_ = Clock::now();
    impl_.in_flight.fetch_sub(cur.ops, std::memory_order_release);
    pending_.pop_front();
    backoff_ = cfg_.backoff_min;
  } catch (const pqxx::broken_connection& e) {
    // Includes a failed connect. 6.4 does not heal a broken connection: build a new one.
    retry_later("database unreachable", redact_secrets(e.what(), cfg_.conninfo), true);
  } catch (const pqxx::in_doubt_error& e) {
    // The statement may or may not have committed: re-sending is safe (absolute values,
    // conditional transitions recognised as our own).
    retry_later("commit in doubt", redact_secrets(e.what(), cfg_.conninfo), true);
  } catch (const pqxx::sql_error& e) {
    // Server-side error (restart in progress, deadlock, timeout): retry on a new connection.
    retry_later(e.sqlstate().c_str(), redact_secrets(e.what(), cfg_.conninfo), false, e.sqlstate());
  }
}

void Writer::Loop::ping() {
  last_contact_ = Clock::now();
  try {
    if (!conn_) {
      connect();
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
    }
    pqxx::nontransaction(*conn_).exec("SELECT 1");
    stats_.db_ok.store(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    stats_.db_ok.store(0, std::memory_order_relaxed);
    conn_.reset();
    log_.warn("database check failed: {}", redact_secrets(e.what(), cfg_.conninfo));
  }
}

void Writer::Loop::connect() {
  conn_ = std::make_unique<pqxx::connection>(cfg_.conninfo);
  configure_writer_session(*conn_, cfg_.statement_timeout);
}

void Writer::Loop::retry_later(const char* why, const std::string& what, bool unreachable,
                               const std::string& sqlstate) {
  stats_.failures.fetch_add(1, std::memory_order_relaxed);
  // Health says what is wrong: an unreachable database is not a slow or refused statement.
  stats_.db_ok.store(unreachable ? 0 : 1, std::memory_order_relaxed);
  stats_.writes_failing.store(unreachable ? 0 : 1, std::memory_order_relaxed);
  if (!sqlstate.empty())
    stats_.last_error_sqlstate.store(pack_sqlstate(sqlstate), std::memory_order_relaxed);
  log_.warn("flush failed ({}: {}); keeping {} rows, retrying in {} ms", why, what,
            pending_.front().batch.rows(), backoff_.count());
  conn_.reset();
  next_attempt_ = Clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, cfg_.backoff_max);
}

BatchResult Writer::Loop::apply_isolating(const Batch& whole, bool express_between) {
  BatchResult total;
  std::vector<Batch> stack;
  stack.push_back(whole);
  // With an express lane, pieces are sized to take about kPieceTarget each (from the rows/s of
  // the pieces so far), so an alert queued behind a burst waits about one piece.
  const std::size_t cap =
      express_between ? std::min(cfg_.max_batch_rows, piece_rows_) : cfg_.max_batch_rows;
  while (!stack.empty()) {
    Batch cur = std::move(stack.back());
    stack.pop_back();
    const bool ran = apply_piece(std::move(cur), cap, express_between, stack, total);
    if (ran && !stack.empty() && express_between) express();
  }
  return total;
}

bool Writer::Loop::apply_piece(Batch cur, std::size_t cap, bool express_between,
                               std::vector<Batch>& stack, BatchResult& total) {
  if (cur.rows() > cap) {
    // A batch never exceeds max_batch_rows: the ops drained with its events (their transitions,
    // which must not trail them) can take it past the cap. The halves keep the order transitions
    // first, events last, so an event never lands before its transition.
    stats_.capped_splits.fetch_add(1, std::memory_order_relaxed);
    auto [first, second] = cur.split();
    stack.push_back(std::move(second));
    stack.push_back(std::move(first));
    return false;
  }
  try {
    const auto started = Clock::now();
    pqxx::nontransaction tx(*conn_);  // one statement = one implicit transaction
    BatchResult r = apply_batch(tx, cur);
    for (const std::string& c : r.conflicts) {
      if (const auto v = cur.voided_by(c)) {
        tsan_acquire(&impl_.voided);
        const bool queued = impl_.voided.try_enqueue(*v);
        tsan_release(&impl_.voided);
        if (!queued) stats_.voided_dropped.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (cur.rows() > stats_.largest_statement_rows.load(std::memory_order_relaxed))
      stats_.largest_statement_rows.store(cur.rows(), std::memory_order_relaxed);
    const double took = std::chrono::duration<double>(Clock::now() - started).count();
    if (express_between && cur.rows() >= kMinPieceRows && took > 0) {
      const double fit = static_cast<double>(cur.rows()) / took * kPieceTarget;
      piece_rows_ = std::clamp(static_cast<std::size_t>(fit), kMinPieceRows, cfg_.max_batch_rows);
    }
    total.marks_applied += r.marks_applied;
    total.fills_applied += r.fills_applied;
    total.placed += r.placed;
    for (auto& c : r.conflicts) total.conflicts.push_back(std::move(c));
  } catch (const pqxx::sql_error& e) {
    const bool timeout = is_timeout(e);
    if (!is_data_error(e) && !timeout) throw;
    stats_.isolation_steps.fetch_add(1, std::memory_order_relaxed);
    if (timeout) stats_.timeout_splits.fetch_add(1, std::memory_order_relaxed);
    if (cur.rows() <= 1) {
      dead_letter(cur, e);
      return false;
    }
    auto [first, second] = cur.split();
    stack.push_back(std::move(second));  // the first half (transitions first) runs first
    stack.push_back(std::move(first));
  }
  return true;
}

void Writer::Loop::dead_letter(const Batch& one, const pqxx::sql_error& e) {
  const Batch::RowDescription d = one.describe_single();
  const std::string error = redact_secrets(first_line(e.what()), cfg_.conninfo);
  stats_.dead_letters.fetch_add(1, std::memory_order_relaxed);
  if (d.kind == "mark") {
    if (const auto id = Uuid::parse(d.row_id))
      poisoned_marks_[*id] = Clock::now() + kPoisonedMarkQuarantine;
  }
  if (dead_logged_++ < kMaxLoggedDeadLetters)
    log_.error("dead letter: {} {} ({}) not written: {} [{}]; values: {}", d.table, d.row_id,
               d.kind, error, e.sqlstate(), d.detail);
  try {
    pqxx::nontransaction tx(*conn_);
    tx.exec_prepared("dead_letter", d.table, d.row_id, d.kind, d.detail, e.sqlstate(), error);
  } catch (const pqxx::sql_error& again) {
    if (!is_data_error(again)) throw;
    log_.error("dead letter for {} {} could not be stored: {}", d.table, d.row_id,
               redact_secrets(first_line(again.what()), cfg_.conninfo));
  }
}

void Writer::Loop::record(const BatchResult& r) {
  for (std::size_t i = 0; i < r.conflicts.size() && i < 20; ++i)
    log_.warn("conflict: {} changed by someone else first; engine transition not applied",
              r.conflicts[i]);
  stats_.conflicts.fetch_add(r.conflicts.size(), std::memory_order_relaxed);
  stats_.fills.fetch_add(r.fills_applied, std::memory_order_relaxed);
  stats_.orders_placed.fetch_add(r.placed, std::memory_order_relaxed);
}

void Writer::Loop::express() {
  drain_ops(pending_.back(), true);
  if (!pending_.back().batch.has_alerts()) return;
  express_pending_ = pending_.back().batch.take_alerts();
  record(apply_isolating(express_pending_, false));
  express_pending_.clear();
}

}  // namespace lam::db
