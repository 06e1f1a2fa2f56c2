#include "persistence/migrator.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <map>
#include <pqxx/pqxx>

namespace lam::db {
namespace {

// pg_advisory_lock key: "LAMIGRAT" as a big-endian 64-bit integer.
constexpr long long kLockKey = 0x4C414D4947524154LL;

constexpr const char* kCreateTable = R"(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  duration_ms INTEGER NOT NULL DEFAULT 0
))";

struct Applied {
  std::string name;
  std::string checksum;
  std::string applied_at;
};

std::map<int, Applied> read_applied(pqxx::transaction_base& t) {
  std::map<int, Applied> out;
  const pqxx::result r = t.exec(
      "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM schema_migrations ORDER BY version");
  for (const auto& row : r) {
    out[row[0].as<int>()] =
        Applied{row[1].as<std::string>(), row[2].as<std::string>(), row[3].as<std::string>()};
  }
  return out;
}

bool table_exists(pqxx::transaction_base& t) {
  return !t.exec("SELECT to_regclass('schema_migrations')")[0][0].is_null();
}

/// Holds the migration lock for its lifetime.
class MigrationLock {
 public:
  explicit MigrationLock(pqxx::connection& c) : c_(c) {
    pqxx::nontransaction n(c_);
    n.exec_params("SELECT pg_advisory_lock($1)", kLockKey);
  }
  ~MigrationLock() {
    try {
      pqxx::nontransaction n(c_);
      n.exec_params("SELECT pg_advisory_unlock($1)", kLockKey);
    } catch (const std::exception&) {
      // the connection is gone; so is the lock
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  pqxx::connection& c_;
};

}  // namespace

std::string sha256_hex(const std::string& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

std::string_view to_string(MigrationState s) noexcept {
  switch (s) {
    case MigrationState::pending:
      return "pending";
    case MigrationState::applied:
      return "applied";
    case MigrationState::edited:
      return "EDITED since applied";
    case MigrationState::unknown:
      return "applied, but unknown to this binary";
  }
  return "?";
}

Migrator::Migrator(std::string conninfo, std::vector<Migration> migrations)
    : conninfo_(std::move(conninfo)), migrations_(std::move(migrations)) {}

std::vector<MigrationStatus> Migrator::status() const {
  pqxx::connection c(conninfo_);
  pqxx::read_transaction t(c);
  std::map<int, Applied> applied;
  if (table_exists(t)) applied = read_applied(t);
  std::vector<MigrationStatus> out;
  for (const Migration& m : migrations_) {
    MigrationStatus s{m.version, m.name, sha256_hex(m.sql), MigrationState::pending, std::nullopt};
    if (auto it = applied.find(m.version); it != applied.end()) {
      s.state =
          it->second.checksum == s.checksum ? MigrationState::applied : MigrationState::edited;
      s.applied_at = it->second.applied_at;
      applied.erase(it);
    }
    out.push_back(std::move(s));
  }
  for (const auto& [version, a] : applied) {
    out.push_back({version, a.name, a.checksum, MigrationState::unknown, a.applied_at});
  }
  return out;
}

MigrateReport Migrator::migrate(const MigrateOptions& opt) const {
  auto log = spdlog::default_logger();
  pqxx::connection c(conninfo_);
  MigrationLock lock(c);  // a second instance waits here until the first is done
  {
    pqxx::work w(c);
    w.exec(kCreateTable);
    w.commit();
  }
  std::map<int, Applied> applied;
  {
    pqxx::read_transaction t(c);
    applied = read_applied(t);
  }
  // Refuse before touching anything if history and files disagree.
  for (const auto& [version, a] : applied) {
    const auto it = std::find_if(migrations_.begin(), migrations_.end(),
                                 [v = version](const Migration& m) { return m.version == v; });
    if (it == migrations_.end()) {
      throw MigrationError(
          "migration " + std::to_string(version) + " (" + a.name +
          ") is applied in the database but unknown to this binary; refusing to migrate");
    }
    if (sha256_hex(it->sql) != a.checksum) {
      throw MigrationError(
          "migration " + it->name + " was edited after it was applied (recorded checksum " +
          a.checksum.substr(0, 12) + "..., file " + sha256_hex(it->sql).substr(0, 12) +
          "...); add a new migration instead of editing an applied one");
    }
  }
  MigrateReport report;
  std::unique_ptr<pqxx::work>
      dry;  // a dry run applies everything in one transaction, then rolls back
  if (opt.dry_run) dry = std::make_unique<pqxx::work>(c, "migrate-dry-run");
  for (const Migration& m : migrations_) {
    if (applied.contains(m.version)) continue;
    const auto start = std::chrono::steady_clock::now();
    try {
      std::unique_ptr<pqxx::work> own;
      pqxx::work& w = dry ? *dry : *(own = std::make_unique<pqxx::work>(c, "migrate"));
      w.exec(m.sql);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      w.exec_params(
          "INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, "
          "$3, $4)",
          m.version, m.name, sha256_hex(m.sql), static_cast<int>(ms.count()));
      if (own) own->commit();
      log->info("migrate: {} {} in {} ms", opt.dry_run ? "checked" : "applied", m.name, ms.count());
    } catch (const pqxx::sql_error& e) {
      throw MigrationError(m.name + ": " + e.what() +
                           (opt.dry_run ? " (dry run: nothing applied)" : " (rolled back)"));
    }
    report.applied.push_back(m.name);
  }
  if (dry) {
    dry->abort();
    return report;
  }
  // Monthly partitions for the months ahead (idempotent).
  {
    pqxx::work w(c, "partitions");
    // Bounds are dates: read in UTC, as the daemon's partition keeper does, so that partitions
    // made by either meet without a gap or an overlap whatever the server's TimeZone.
    w.exec("SET LOCAL TIME ZONE 'UTC'");
    if (!w.exec("SELECT to_regprocedure('create_monthly_partitions(regclass,integer,date)')")[0][0]
             .is_null()) {
      for (const char* table : {"transactions", "audit_logs"}) {
        report.partitions_created +=
            w.exec_params("SELECT create_monthly_partitions($1::regclass, $2)", table,
                          opt.partition_months_ahead)[0][0]
                .as<int>();
      }
    }
    w.commit();
  }
  if (report.applied.empty()) log->info("migrate: schema is up to date");
  return report;
}

}  // namespace lam::db
