#include "daemon/journal_reader.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <pqxx/pqxx>

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kRetentionEvery = std::chrono::minutes(10);

constexpr const char* kRead = R"SQL(
SELECT seq, type, user_id, market_id, body, recovered, (SELECT COALESCE(max(seq), 0) FROM alert_events)
FROM alert_events
WHERE seq > $1 AND ($2 = 0 OR seq < $2) AND (cardinality($3::uuid[]) = 0 OR user_id = ANY($3::uuid[]))
ORDER BY seq LIMIT $4
)SQL";

std::string uuid_array(const std::vector<Uuid>& ids) {
  std::string s = "{";
  for (const Uuid& u : ids) {
    if (s.size() > 1) s.push_back(',');
    u.append_to(s);
  }
  s.push_back('}');
  return s;
}

JournalPage read_page(pqxx::connection& c, std::uint64_t after, std::uint64_t before,
                      const std::vector<Uuid>& users) {
  JournalPage page;
  pqxx::read_transaction tx(c);
  const pqxx::result r = tx.exec_prepared("journal_read", after, before, uuid_array(users),
                                          JournalReader::kPageRows);
  page.rows.reserve(r.size());
  for (const auto& row : r) {
    JournalRow j;
    j.meta.seq = row[0].as<std::uint64_t>();
    const auto type = parse_event_type(row[1].c_str());
    if (!type) continue;  // a type this build does not know: skip it
    j.meta.type = *type;
    j.meta.user_id = Uuid::parse(row[2].c_str()).value_or(Uuid{});
    if (!row[3].is_null()) {
      j.meta.market_id = Uuid::parse(row[3].c_str()).value_or(Uuid{});
      j.meta.has_market = true;
    }
    j.body = row[4].c_str();
    if (row[5].as<bool>() && !j.body.empty() && j.body.back() == '}') {
      j.body.pop_back();
      j.body.append(",\"redelivered\":true}");
    }
    page.max_journaled = row[6].as<std::uint64_t>();
    page.rows.push_back(std::move(j));
  }
  if (r.empty()) {
    page.max_journaled =
        tx.exec1("SELECT COALESCE(max(seq), 0) FROM alert_events")[0].as<std::uint64_t>();
  }
  page.complete = r.size() < JournalReader::kPageRows;
  page.ok = true;
  return page;
}

}  // namespace

JournalReader::JournalReader(std::string conninfo, std::uint32_t retention_hours)
    : conninfo_(std::move(conninfo)), retention_hours_(retention_hours) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lam-journal");
    run();
  });
}

JournalReader::~JournalReader() {
  stop();
}

void JournalReader::read(std::uint64_t after, std::uint64_t before, std::vector<Uuid> users,
                         std::function<void(JournalPage)> done) {
  std::lock_guard lock(mu_);
  requests_.push_back({after, before, std::move(users), std::move(done)});
  cv_.notify_one();
}

void JournalReader::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void JournalReader::run() {
  auto log = spdlog::default_logger()->clone("journal");
  std::unique_ptr<pqxx::connection> conn;
  auto next_retention = Clock::now();
  auto connect = [&] {
    if (conn) return;
    conn = std::make_unique<pqxx::connection>(conninfo_);
    conn->prepare("journal_read", kRead);
    conn->prepare("journal_retention",
                  "DELETE FROM alert_events WHERE created_at < now() - make_interval(hours => $1)");
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
        page = read_page(*conn, req.after, req.before, req.users);
      } catch (const std::exception& e) {
        conn.reset();
        page.ok = false;
        page.error = e.what();
        log->warn("journal read failed: {}", e.what());
      }
      req.done(std::move(page));
    } else if (Clock::now() >= next_retention) {
      next_retention = Clock::now() + kRetentionEvery;
      try {
        connect();
        pqxx::nontransaction tx(*conn);
        const auto r = tx.exec_prepared("journal_retention", static_cast<int>(retention_hours_));
        if (r.affected_rows() > 0) log->info("journal retention: {} rows deleted", r.affected_rows());
      } catch (const std::exception& e) {
        conn.reset();
        log->warn("journal retention failed: {}", e.what());
      }
    }
  }
}

}  // namespace lam::daemon
