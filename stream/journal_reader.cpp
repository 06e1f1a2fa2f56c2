#include "stream/journal_reader.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <pqxx/pqxx>

#include "persistence/database_url.h"
#include "persistence/journal.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetentionEvery = std::chrono::minutes(10);

JournalPage read_page(pqxx::connection& c, std::uint64_t after, std::uint64_t before,
                      std::size_t limit, const std::vector<Uuid>& users) {
  JournalPage page;
  pqxx::read_transaction tx(c);
  db::JournalSlice slice = db::read_journal(tx, after, before, limit, users);
  page.max_journaled = slice.max_seq;
  page.complete = slice.scanned < limit;
  page.last_seq = slice.last_seq;
  page.rows.reserve(slice.rows.size());
  for (db::JournalRecord& r : slice.rows) {
    const auto type = parse_event_type(r.type);
    if (!type) continue;  // a type this build does not know: skip it
    JournalRow j;
    j.meta = EventMeta{r.seq, *type, r.user_id, r.market_id, r.has_market};
    j.body = std::move(r.body);
    if (r.recovered && !j.body.empty() && j.body.back() == '}') {
      j.body.pop_back();
      j.body.append(",\"redelivered\":true}");
    }
    page.rows.push_back(std::move(j));
  }
  page.ok = true;
  return page;
}

}  // namespace

PgJournalReader::PgJournalReader(std::string conninfo, std::uint32_t retention_hours)
    : conninfo_(std::move(conninfo)), retention_hours_(retention_hours) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lam-journal");
    run();
  });
}

PgJournalReader::~PgJournalReader() {
  stop();
}

void PgJournalReader::read(std::uint64_t after, std::uint64_t before, std::size_t limit,
                           std::vector<Uuid> users, std::function<void(JournalPage)> done) {
  std::lock_guard lock(mu_);
  requests_.push_back(
      {after, before, limit == 0 ? kPageRows : limit, std::move(users), std::move(done)});
  cv_.notify_one();
}

void PgJournalReader::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void PgJournalReader::run() {
  auto log = spdlog::default_logger()->clone("journal");
  std::unique_ptr<pqxx::connection> conn;
  auto next_retention = Clock::now();
  auto connect = [&] {
    if (conn) return;
    conn = std::make_unique<pqxx::connection>(conninfo_);
    db::prepare_journal(*conn);
  };
  for (;;) {
    Request req;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !requests_.empty(); });
      if (stopping_) break;
      if (!requests_.empty()) {
        req = std::move(requests_.front());
        requests_.pop_front();
      }
    }
    if (req.done) {
      JournalPage page;
      try {
        connect();
        page = read_page(*conn, req.after, req.before, req.limit, req.users);
      } catch (const std::exception& e) {
        conn.reset();
        page.ok = false;
        page.error = db::redact_secrets(e.what(), conninfo_);
        log->warn("journal read failed: {}", page.error);
      }
      req.done(std::move(page));
    } else if (Clock::now() >= next_retention) {
      next_retention = Clock::now() + kRetentionEvery;
      try {
        connect();
        pqxx::nontransaction tx(*conn);
        const std::uint64_t n = db::delete_journal_older_than(tx, retention_hours_);
        if (n > 0) log->info("journal retention: {} rows deleted from alert_events_default", n);
      } catch (const std::exception& e) {
        conn.reset();
        log->warn("journal retention failed: {}", db::redact_secrets(e.what(), conninfo_));
      }
    }
  }
}

}  // namespace lam::daemon
