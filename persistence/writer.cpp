#include "persistence/writer.h"

#include <concurrentqueue/concurrentqueue.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

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

}  // namespace

void configure_writer_session(pqxx::connection_base& c) {
  prepare_batch(c);
  c.prepare("dead_letter", kDeadLetter);
  pqxx::nontransaction n(c);
  n.exec("SET app.origin = 'engine'");  // our writes never come back as change notifications
  n.exec("SET statement_timeout = '30s'");
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
  tsan_acquire(&impl_->queue);
  if (stopping_.load(std::memory_order_relaxed) || !impl_->queue.try_enqueue(impl_->token, op)) {
    stats_.rejected_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  tsan_release(&impl_->queue);
  impl_->in_flight.fetch_add(1, std::memory_order_release);
  stats_.submitted.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Writer::try_journal(const Event& e) {
  tsan_acquire(&impl_->events);
  if (stopping_.load(std::memory_order_relaxed) ||
      !impl_->events.try_enqueue(impl_->event_token, e)) {
    stats_.rejected_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  tsan_release(&impl_->events);
  impl_->in_flight.fetch_add(1, std::memory_order_release);
  stats_.submitted.fetch_add(1, std::memory_order_relaxed);
  return true;
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
  Batch batch;
  std::int64_t batch_ops = 0;  // submitted ops folded into `batch`
  std::vector<WriteOp> buf(kDequeueBulk);
  std::vector<Event> ebuf(kDequeueBulk);
  auto backoff = cfg_.backoff_min;
  auto next_attempt = Clock::now();
  auto first_pending = Clock::time_point::max();

  // Keeps the batch, drops the connection, and schedules the next attempt with capped backoff.
  auto last_contact = Clock::time_point{};  // ping at once: health is known from the start
  auto retry_later = [&](const char* why, const std::string& what) {
    stats_.failures.fetch_add(1, std::memory_order_relaxed);
    stats_.db_ok.store(0, std::memory_order_relaxed);
    log.warn("flush failed ({}: {}); keeping {} rows, retrying in {} ms", why, what, batch.rows(),
             backoff.count());
    conn.reset();
    next_attempt = Clock::now() + backoff;
    backoff = std::min(backoff * 2, cfg_.backoff_max);
  };

  auto connect = [&] {
    conn = std::make_unique<pqxx::connection>(cfg_.conninfo);
    configure_writer_session(*conn);
  };

  std::unordered_map<Uuid, Clock::time_point, UuidHash> poisoned_marks;
  std::size_t dead_logged = 0;
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
  // Applies `whole`; a batch that fails on data is split until the offending rows are isolated,
  // everything else is written. Throws only what retrying on a new connection may fix (the whole
  // batch is then retried: every write in it is idempotent).
  auto apply_isolating = [&](const Batch& whole) {
    BatchResult total;
    std::vector<Batch> stack;
    stack.push_back(whole);
    dead_logged = 0;
    while (!stack.empty()) {
      Batch cur = std::move(stack.back());
      stack.pop_back();
      try {
        pqxx::nontransaction tx(*conn);  // one statement = one implicit transaction
        BatchResult r = apply_batch(tx, cur);
        total.marks_applied += r.marks_applied;
        total.fills_applied += r.fills_applied;
        for (auto& c : r.conflicts) total.conflicts.push_back(std::move(c));
      } catch (const pqxx::sql_error& e) {
        if (!is_data_error(e)) throw;
        stats_.isolation_steps.fetch_add(1, std::memory_order_relaxed);
        if (cur.rows() <= 1) {
          dead_letter(cur, e);
          continue;
        }
        auto [first, second] = cur.split();
        stack.push_back(std::move(second));  // the first half (transitions first) runs first
        stack.push_back(std::move(first));
      }
    }
    if (dead_logged > kMaxLoggedDeadLetters)
      log.error("{} more dead letters in this flush (engine_dead_letters has them all)",
                dead_logged - kMaxLoggedDeadLetters);
    return total;
  };

  for (;;) {
    const bool stopping = stopping_.load(std::memory_order_acquire);
    // Drain into the batch: events first, then ops, so every journaled event's transition op
    // (submitted before it) is in this batch too. Marks coalesce here.
    std::size_t n = 0;
    bool took_events = false;
    while (batch.rows() < cfg_.max_batch_rows &&
           (tsan_acquire(&impl_->events),
            n = impl_->events.try_dequeue_bulk(ebuf.data(), ebuf.size())) > 0) {
      tsan_release(&impl_->events);
      took_events = true;
      for (std::size_t i = 0; i < n; ++i) batch.add_event(ebuf[i]);
      batch_ops += static_cast<std::int64_t>(n);
      if (first_pending == Clock::time_point::max()) first_pending = Clock::now();
    }
    while ((tsan_acquire(&impl_->queue),
            n = impl_->queue.try_dequeue_bulk(buf.data(), buf.size())) > 0) {
      tsan_release(&impl_->queue);
      for (std::size_t i = 0; i < n; ++i) batch.add(buf[i]);
      batch_ops += static_cast<std::int64_t>(n);
      if (first_pending == Clock::time_point::max()) first_pending = Clock::now();
      // With events taken, drain every op queued so far (their transitions), even past the cap.
      if (!took_events && batch.rows() >= cfg_.max_batch_rows) break;
    }
    stats_.pending_rows.store(batch.rows(), std::memory_order_relaxed);
    const auto now = Clock::now();
    const bool due = !batch.empty() && (stopping || batch.rows() >= cfg_.max_batch_rows ||
                                        now - first_pending >= cfg_.flush_interval);
    if (due && now >= next_attempt) {
      const auto t0 = Clock::now();
      try {
        if (!conn) {
          connect();
          stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
        }
        if (!poisoned_marks.empty()) {
          const auto t = Clock::now();
          std::erase_if(poisoned_marks, [&](const auto& kv) { return kv.second <= t; });
          stats_.quarantined_marks.fetch_add(
              batch.drop_marks_if([&](const Uuid& id) { return poisoned_marks.contains(id); }),
              std::memory_order_relaxed);
        }
        const BatchResult r = apply_isolating(batch);
        for (std::size_t i = 0; i < r.conflicts.size() && i < 20; ++i)
          log.warn("conflict: {} changed by someone else first; engine transition not applied",
                   r.conflicts[i]);
        stats_.conflicts.fetch_add(r.conflicts.size(), std::memory_order_relaxed);
        stats_.fills.fetch_add(r.fills_applied, std::memory_order_relaxed);
        stats_.events_journaled.fetch_add(batch.events(), std::memory_order_relaxed);
        if (batch.max_seq() > 0)
          stats_.journaled_seq.store(batch.max_seq(), std::memory_order_release);
        stats_.last_batch_rows.store(batch.rows(), std::memory_order_relaxed);
        stats_.batches.fetch_add(1, std::memory_order_relaxed);
        stats_.rows.fetch_add(batch.rows(), std::memory_order_relaxed);
        stats_.transitions.fetch_add(batch.transitions(), std::memory_order_relaxed);
        const auto flush_time = Clock::now() - t0;
        stats_.last_flush_us.store(
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(flush_time).count()),
            std::memory_order_relaxed);
        stats_.flush_seconds.record(std::chrono::duration<double>(flush_time).count());
        batch.clear();
        stats_.db_ok.store(1, std::memory_order_relaxed);
        last_contact = Clock::now();
        impl_->in_flight.fetch_sub(batch_ops, std::memory_order_release);
        batch_ops = 0;
        first_pending = Clock::time_point::max();
        backoff = cfg_.backoff_min;
      } catch (const pqxx::broken_connection& e) {
        // Includes a failed connect. 6.4 does not heal a broken connection: build a new one.
        retry_later("database unreachable", redact_secrets(e.what(), cfg_.conninfo));
      } catch (const pqxx::in_doubt_error& e) {
        // The statement may or may not have committed: re-sending is safe (absolute values,
        // conditional transitions recognised as our own).
        retry_later("commit in doubt", redact_secrets(e.what(), cfg_.conninfo));
      } catch (const pqxx::sql_error& e) {
        // Server-side error (restart in progress, deadlock, timeout): retry on a new connection.
        retry_later(e.sqlstate().c_str(), redact_secrets(e.what(), cfg_.conninfo));
      }
      continue;
    }
    if (batch.empty() && !stopping && now >= next_attempt && now - last_contact >= cfg_.idle_ping) {
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
        (batch.empty() || Clock::now().time_since_epoch().count() >= stop_deadline_ns_.load())) {
      if (!batch.empty())
        log.error("stopping with {} rows not written (database unreachable)", batch.rows());
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace lam::db
