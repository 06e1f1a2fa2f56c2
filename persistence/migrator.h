#pragma once
/// `laminator migrate`: applies the embedded migrations in order, each in one transaction, records
/// version and SHA-256 checksum in `schema_migrations`, refuses to run when an applied file was
/// edited, and holds a PostgreSQL advisory lock so that two instances never migrate at once.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "persistence/migrations.h"

namespace lam::db {

/// A migration that cannot be applied, or an applied one that no longer matches its file.
class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class MigrationState { pending, applied, edited, unknown };

struct MigrationStatus {
  int version = 0;
  std::string name;
  std::string checksum;  ///< of the file (or, for `unknown`, as recorded)
  MigrationState state = MigrationState::pending;
  std::optional<std::string> applied_at;
};

struct MigrateOptions {
  bool dry_run = false;            ///< run pending files in one transaction, then roll it back
  int partition_months_ahead = 3;  ///< monthly partitions to ensure after migrating
};

struct MigrateReport {
  std::vector<std::string> applied;  ///< file names applied (or that would be, in a dry run)
  int partitions_created = 0;
};

class Migrator {
 public:
  /// `conninfo`: a libpq URL or key=value string.
  explicit Migrator(std::string conninfo,
                    std::vector<Migration> migrations = embedded_migrations());

  /// Every known migration with its state. Throws pqxx exceptions on database errors.
  [[nodiscard]] std::vector<MigrationStatus> status() const;
  /// Applies what is pending. Throws MigrationError (nothing of the failing file is applied).
  MigrateReport migrate(const MigrateOptions& opt) const;

 private:
  std::string conninfo_;
  std::vector<Migration> migrations_;
};

/// Lower-case hex SHA-256 of `data`.
[[nodiscard]] std::string sha256_hex(const std::string& data);

[[nodiscard]] std::string_view to_string(MigrationState s) noexcept;

}  // namespace lam::db
