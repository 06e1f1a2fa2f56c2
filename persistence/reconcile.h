#pragma once
/// `laminator reconcile`: the books' invariants checked over the whole database, every violating
/// row named (docs/schema.md, "Invariants of the books"). Read-only, in one repeatable-read
/// snapshot, so the checks agree with each other while the daemon and the bot keep writing.
/// The maintenance thread runs it on a timer for the `laminator_reconcile_violations` gauge.

#include <cstdint>
#include <string>
#include <vector>

namespace pqxx {
class transaction_base;
}  // namespace pqxx

namespace lam::db {

struct Invariant {
  const char* name;  ///< stable, a metric label: `order_filled_size`
  const char* rule;  ///< one sentence, as docs/schema.md states it
};

/// Every invariant reconcile checks, in the order it checks them.
[[nodiscard]] const std::vector<Invariant>& invariants();

struct Violation {
  std::string invariant;
  std::string table;
  std::string row_id;
  std::string detail;
};

struct ReconcileReport {
  std::vector<Violation> violations;  ///< the first `limit` per invariant
  /// Per invariant (in invariants() order): rows that break it (all of them, not only those
  /// listed).
  std::vector<std::uint64_t> counts;
  /// Wallet balances whose audit history does not reach back to a baseline (expired audit
  /// partitions): their balance was not checked against their moves.
  std::uint64_t balances_unchecked = 0;
  double seconds = 0;
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t n = 0;
    for (const std::uint64_t c : counts) n += c;
    return n;
  }
};

/// Runs every check in `tx` (give it a repeatable-read, read-only transaction).
[[nodiscard]] ReconcileReport reconcile(pqxx::transaction_base& tx, std::size_t limit = 100);

}  // namespace lam::db
