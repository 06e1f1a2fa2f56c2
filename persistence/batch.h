#pragma once
/// One flush worth of writes, coalesced: marks per position (latest wins), transitions in order, an
/// anchor folded into its alert. Turned into the one SQL statement the writer sends.

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "persistence/write_op.h"

namespace lam::db {

class Batch {
 public:
  void add(const WriteOp& op);
  void clear();
  [[nodiscard]] bool empty() const noexcept {
    return marks_.empty() && liquidations_.empty() && alerts_.empty();
  }
  /// Rows this batch will update.
  [[nodiscard]] std::size_t rows() const noexcept {
    return marks_.size() + liquidations_.size() + alerts_.size();
  }
  [[nodiscard]] std::size_t transitions() const noexcept;

  /// Array literals for the batch statement's parameters ($1..$12, see batch_statement()).
  [[nodiscard]] std::vector<std::string> parameters() const;

 private:
  struct AlertWrite {
    WriteKind transition = WriteKind::alert_anchored;  ///< triggered / expired, or only an anchor
    TimeNs ts = 0;
    std::int64_t anchor = 0;  ///< 0: leave anchor_price as it is
  };
  std::unordered_map<Uuid, WriteOp, UuidHash> marks_;
  std::vector<WriteOp> liquidations_;
  std::unordered_map<Uuid, std::size_t, UuidHash> alert_index_;
  std::vector<std::pair<Uuid, AlertWrite>> alerts_;
};

/// The single statement that applies a batch: data-modifying CTEs over unnest() of array literals.
/// Result: one row (marks_applied, conflicts) where conflicts is a text array of "table:id:found".
[[nodiscard]] const char* batch_statement() noexcept;

}  // namespace lam::db
