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
  for (db::JournalRecord& r : slice.rows)
    if (auto j = journal_row(std::move(r))) page.rows.push_back(std::move(*j));
  page.ok = true;
  return page;
}

}  // namespace

std::optional<JournalRow> journal_row(db::JournalRecord&& r) {
  const auto type = parse_event_type(r.type);
  if (!type) return std::nullopt;  // a type this build does not know: skipped
  JournalRow j;
  j.meta = EventMeta{r.seq, *type, r.user_id, r.market_id, r.has_market};
  j.body = std::move(r.body);
  if (r.recovered && !j.body.empty() && j.body.back() == '}') {
    j.body.pop_back();
    j.body.append(",\"redelivered\":true}");
  }
  return j;
}

struct PgJournalReader::Conn {
  explicit Conn(const std::string& conninfo) : c(conninfo) { db::prepare_journal(c); }
  pqxx::connection c;
};

PgJournalReader::PgJournalReader(std::string conninfo, std::uint32_t retention_hours)
    : conninfo_(std::move(conninfo)),
      retention_hours_(retention_hours),
      log_(spdlog::default_logger()->clone("journal")) {
  thread_.start(
      "lam-journal", [this](Request& r) { serve(r); }, [this] { retention(); });
}

PgJournalReader::~PgJournalReader() {
  stop();
}

void PgJournalReader::read(std::uint64_t after, std::uint64_t before, std::size_t limit,
                           std::vector<Uuid> users, std::function<void(JournalPage)> done) {
  thread_.post({after, before, limit == 0 ? kPageRows : limit, std::move(users), std::move(done)});
}

void PgJournalReader::stop() {
  thread_.stop();
}

void PgJournalReader::serve(Request& req) {
  JournalPage page;
  try {
    if (!conn_) conn_ = std::make_unique<Conn>(conninfo_);
    page = read_page(conn_->c, req.after, req.before, req.limit, req.users);
  } catch (const std::exception& e) {
    conn_.reset();
    page.ok = false;
    page.error = db::redact_secrets(e.what(), conninfo_);
    log_->warn("journal read failed: {}", page.error);
  }
  req.done(std::move(page));
}

void PgJournalReader::retention() {
  if (Clock::now() < next_retention_) return;
  next_retention_ = Clock::now() + kRetentionEvery;
  try {
    if (!conn_) conn_ = std::make_unique<Conn>(conninfo_);
    pqxx::nontransaction tx(conn_->c);
    const std::uint64_t n = db::delete_journal_older_than(tx, retention_hours_);
    if (n > 0) log_->info("journal retention: {} rows deleted from alert_events_default", n);
  } catch (const std::exception& e) {
    conn_.reset();
    log_->warn("journal retention failed: {}", db::redact_secrets(e.what(), conninfo_));
  }
}

}  // namespace lam::daemon
