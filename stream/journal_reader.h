#pragma once
/// Where subscribers that resume beyond the server's in-memory ring read from: `PgJournalReader`
/// (the daemon: the alert_events journal, whose retention it also applies) or the gateway's
/// JetStream reader (scaleout/jetstream.h). Each has its own thread and connection, so the stream
/// server thread never blocks; requests are rare, so a mutex-guarded request list is fine.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stream/request_thread.h"
#include "stream/stream_filter.h"

namespace spdlog {
class logger;
}

namespace lam::db {
struct JournalRecord;
}

namespace lam::daemon {

struct JournalRow {
  EventMeta meta;
  std::string
      body;  ///< the event's JSON as first published (`"redelivered":true` added if recovered)
};

/// A journal row as the stream serves it (the journal reader's pages, a shard's publisher): its
/// filter fields, its JSON with `"redelivered":true` when crash recovery journaled it; nullopt for
/// a type this build does not know (skipped).
[[nodiscard]] std::optional<JournalRow> journal_row(db::JournalRecord&& r);

struct JournalPage {
  bool ok = false;
  std::string error;
  std::vector<JournalRow> rows;     ///< ascending seq
  bool complete = false;            ///< false: more rows follow (ask again after last_seq)
  std::uint64_t last_seq = 0;       ///< highest seq read, rows skipped as unreadable included
  std::uint64_t max_journaled = 0;  ///< highest seq in the journal when read
};

class JournalReader {
 public:
  static constexpr std::size_t kPageRows = 4'096;  ///< when a request gives no limit

  JournalReader() = default;
  virtual ~JournalReader() = default;
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  /// At most `limit` rows (0: kPageRows) with seq > after (and < before unless before == 0) for
  /// `users` (empty: all). `done` runs on the reader's thread.
  virtual void read(std::uint64_t after, std::uint64_t before, std::size_t limit,
                    std::vector<Uuid> users, std::function<void(JournalPage)> done) = 0;
  virtual void stop() = 0;
};

/// The daemon's: reads alert_events and applies its retention (rows of the default partition).
class PgJournalReader final : public JournalReader {
 public:
  PgJournalReader(std::string conninfo, std::uint32_t retention_hours);
  ~PgJournalReader() override;  ///< stops and joins

  void read(std::uint64_t after, std::uint64_t before, std::size_t limit, std::vector<Uuid> users,
            std::function<void(JournalPage)> done) override;
  void stop() override;

 private:
  struct Request {
    std::uint64_t after = 0, before = 0;
    std::size_t limit = kPageRows;
    std::vector<Uuid> users;
    std::function<void(JournalPage)> done;
  };
  void serve(Request& r);
  void retention();

  std::string conninfo_;
  std::uint32_t retention_hours_;
  struct Conn;                  ///< its pqxx connection (defined in journal_reader.cpp)
  std::unique_ptr<Conn> conn_;  ///< the reader thread's
  std::chrono::steady_clock::time_point next_retention_{};
  std::shared_ptr<spdlog::logger> log_;
  RequestThread<Request> thread_;  ///< last: stopped first
};

}  // namespace lam::daemon
