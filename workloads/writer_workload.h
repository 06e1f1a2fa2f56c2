#pragma once
/// The writer workload shared by bench/persistence_bench and `laminator bench writer`: a table of
/// open positions (persistence/seed_rows.h) and batches of N fresh marks on distinct random
/// positions, applied three ways: the engine's one-statement UNNEST batch (persistence/batch.h),
/// COPY into a temporary table + UPDATE FROM, and one prepared UPDATE per row (the baseline).

#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <random>
#include <string>
#include <vector>

#include "persistence/batch.h"

namespace lam::bench {

enum class WriteMethod : std::uint8_t { unnest_batch, copy_temp_update, update_per_row };
inline constexpr WriteMethod kWriteMethods[] = {
    WriteMethod::unnest_batch, WriteMethod::copy_temp_update, WriteMethod::update_per_row};
[[nodiscard]] const char* method_name(WriteMethod m);   ///< "unnest_batch", ...
[[nodiscard]] const char* method_label(WriteMethod m);  ///< "UNNEST statement (the engine's)"

/// Migrates the (empty) database at `url` and seeds 1,000 markets and `rows` open positions (with
/// their users, wallets and an alert each), then VACUUM ANALYZE.
void prepare_writer_db(const std::string& url, long long rows);

/// N distinct random positions of the first `rows` with fresh marks, sorted by id (the writer's
/// deterministic lock order).
[[nodiscard]] std::vector<db::WriteOp> writer_marks(std::size_t n, long long rows,
                                                    std::mt19937_64& rng);

/// A connection that writes as the engine does (its writes do not notify), prepared for `m`.
class MarkWriter {
 public:
  MarkWriter(const std::string& url, WriteMethod m);
  /// Applies the marks in one transaction; returns the rows it updated.
  std::size_t apply(const std::vector<db::WriteOp>& ops);
  /// Throws std::runtime_error unless `last`'s mark is what the table holds.
  void verify(const db::WriteOp& last);

 private:
  std::unique_ptr<pqxx::connection> c_;
  WriteMethod m_;
};

}  // namespace lam::bench
