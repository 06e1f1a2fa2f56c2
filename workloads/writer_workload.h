#pragma once
/// The writer workload shared by bench/persistence_bench and `laminator bench writer`: a table of
/// open positions (persistence/seed_rows.h) and batches of N fresh marks on distinct random
/// positions, applied three ways: the engine's one-statement UNNEST batch (persistence/batch.h),
/// COPY into a temporary table + UPDATE FROM, and one prepared UPDATE per row (the baseline).
/// And paper fills (issue 35): pending market orders filled through the same batch statement, in
/// batches or one transaction per fill (the baseline); each fill updates its order and writes a
/// position, a trade, the balance and their audit rows.

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

/// Fills' users: order n belongs to user and wallet 1 + n % kFillUsers.
inline constexpr long long kFillUsers = 10'000;
/// The kind prefix of the fills' order ids (db::seq_id(kFillOrderKind, n): '0000000f-...').
inline constexpr unsigned kFillOrderKind = 0xF;

/// Adds to a database seeded with db::seed (at least kFillUsers users over `markets` markets, user
/// g's position on market g % markets) a funded balance for each of the first kFillUsers wallets
/// and `orders` pending paper market orders: order n (1-based) on market (u + 1 + n / kFillUsers) %
/// markets, so every fill opens its own (user, market) position, never on the market of the
/// user's seeded one. Needs orders / kFillUsers + 2 < markets. Then VACUUM ANALYZE.
void prepare_fills(const std::string& url, int markets, long long orders);

/// The fill of order n as the engine loop builds it: size 1 at 1000, taker fee 0.5, margin 100.
[[nodiscard]] db::WriteOp fill_op(long long n);

/// A connection that fills orders as the engine's writer does.
class FillWriter {
 public:
  explicit FillWriter(const std::string& url);
  /// Fills orders [first, first + n) in batches of `per_batch` (1: a statement and transaction
  /// per fill); returns the fills applied. Throws std::runtime_error on a conflict.
  std::size_t fill(long long first, std::size_t n, std::size_t per_batch);
  /// Throws std::runtime_error unless the trades table holds exactly `fills` rows.
  void verify(long long fills);

 private:
  std::unique_ptr<pqxx::connection> c_;
};

}  // namespace lam::bench
