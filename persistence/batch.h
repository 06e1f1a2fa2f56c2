#pragma once
/// One flush worth of writes, coalesced: marks per position (latest wins), transitions in order, an
/// anchor folded into its alert. Turned into the one SQL statement the writer sends.

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/event.h"
#include "engine/orders.h"
#include "persistence/write_op.h"

namespace pqxx {
class connection_base;
class transaction_base;
}  // namespace pqxx

namespace lam::db {

class Batch {
 public:
  void add(const WriteOp& op);
  /// Journals a published event (alert_events), in the same statement as the transitions.
  /// `recovered`: re-journaled at start-up from the crash ring.
  void add_event(const Event& e, bool recovered = false);
  void clear();
  [[nodiscard]] bool empty() const noexcept {
    return marks_.empty() && liquidations_.empty() && alerts_.empty() && orders_.empty() &&
           events_.empty() && market_marks_.empty() && activations_.empty() &&
           trail_groups_.empty() && placements_.empty();
  }
  /// Rows this batch will write (updates and journal inserts; an order's fill counts as one: its
  /// order, position, trade, balance and audit rows are one unit).
  [[nodiscard]] std::size_t rows() const noexcept {
    return marks_.size() + liquidations_.size() + alerts_.size() + orders_.size() + events_.size() +
           market_marks_.size() + activations_.size() + trail_groups_.size() + placements_.size();
  }
  [[nodiscard]] std::size_t transitions() const noexcept;
  [[nodiscard]] std::size_t events() const noexcept { return events_.size(); }
  /// Highest journaled seq in this batch (0: none).
  [[nodiscard]] std::uint64_t max_seq() const noexcept { return max_seq_; }

  /// Splits in two halves of rows, in the order market marks, marks, liquidations, alert writes,
  /// order writes, events (so a transition never lands after the event that describes it). Needs
  /// rows() >= 2.
  [[nodiscard]] std::pair<Batch, Batch> split() const;
  /// For a one-row batch: the table, the row's id, the kind of write and the values (dead letters).
  struct RowDescription {
    std::string table, row_id, kind, detail;
  };
  [[nodiscard]] RowDescription describe_single() const;
  /// Drops the marks of these positions (their marks are known not to fit); returns how many.
  template <class Pred>
  std::size_t drop_marks_if(Pred&& pred) {
    return std::erase_if(marks_, [&](const auto& kv) { return pred(kv.first); });
  }

  /// Moves this batch's alert writes (triggers, expiries, anchors) into a batch of their own. They
  /// depend on no other row of the batch (the alerts table alone; their events stay here), so the
  /// writer may apply them ahead of a long flush: one user's burst of fills does not hold back
  /// another user's triggered alert.
  [[nodiscard]] Batch take_alerts();
  [[nodiscard]] bool has_alerts() const noexcept { return !alerts_.empty(); }

  /// The event a conflict of this batch ("table:id:found", BatchResult::conflicts) voids: the
  /// transition the statement tried on that row. Nothing for a fill the bot finished the order
  /// first (the engine voids those itself when the order's row reaches it: order.fill_voided),
  /// nor for what this batch does not hold.
  [[nodiscard]] std::optional<std::pair<EventType, Uuid>> voided_by(
      const std::string& conflict) const;

  /// Orders the engine places (protective stops): inserted by their own statement, before the
  /// batch statement in the same transaction, so that the batch's later transitions of them find
  /// their rows.
  [[nodiscard]] bool has_placements() const noexcept { return !placements_.empty(); }
  /// Array literals for the placement statement's parameters ($1..$5, placement_statement()).
  [[nodiscard]] std::vector<std::string> placement_parameters() const;
  /// Array literals for the batch statement's parameters ($1..$42, see batch_statement()).
  [[nodiscard]] std::vector<std::string> parameters() const;

 private:
  struct AlertWrite {
    WriteKind transition = WriteKind::alert_anchored;  ///< triggered / expired, or only an anchor
    TimeNs ts = 0;
    std::int64_t anchor = 0;  ///< 0: leave anchor_price as it is
  };
  std::unordered_map<Uuid, WriteOp, UuidHash> marks_;
  std::unordered_map<Uuid, WriteOp, UuidHash> market_marks_;  // by market
  std::unordered_map<Uuid, WriteOp, UuidHash> activations_;   // trailing stops, by order
  std::unordered_map<Uuid, WriteOp, UuidHash> trail_groups_;  // by group
  std::unordered_map<Uuid, WriteOp, UuidHash> placements_;    // by the placed order
  std::vector<WriteOp> liquidations_;
  std::unordered_map<Uuid, std::size_t, UuidHash> alert_index_;
  std::vector<std::pair<Uuid, AlertWrite>> alerts_;
  /// One order's transitions in this batch, coalesced (a stop triggered and filled in one flush is
  /// one row update): the last status wins, a trigger time is kept.
  struct OrderWrite {
    OrderStatus status = OrderStatus::open;
    RejectReason reason = RejectReason::none;
    TimeNs triggered_at = 0;
    bool triggered = false;
    bool filled = false;
    bool rested = false;     ///< a limit that went pending -> open by resting (its own audit row)
    std::uint64_t last = 0;  ///< when its last transition was added (ops_ at that moment)
    TimeNs at = 0;
    WriteOp fill;  ///< when filled
  };
  /// The orders in the order of their last transitions: fills in the order the engine made them
  /// (a stop triggered before another order opened the position it then fills into comes after
  /// that order), which is the order the statement applies and audits them in.
  [[nodiscard]] std::vector<const std::pair<Uuid, OrderWrite>*> orders_by_last() const;
  std::uint64_t ops_ = 0;
  std::unordered_map<Uuid, std::size_t, UuidHash> order_index_;
  std::vector<std::pair<Uuid, OrderWrite>> orders_;
  std::vector<std::pair<Event, bool>> events_;
  std::uint64_t max_seq_ = 0;
};

/// What one batch did.
struct BatchResult {
  std::size_t marks_applied = 0;
  std::size_t market_marks_applied = 0;
  std::vector<std::string> conflicts;  ///< "table:id:found_status" per transition not applied
  std::size_t fills_applied = 0;       ///< order fills written (order, position, trade, balance)
  std::size_t placed = 0;              ///< orders the engine placed, inserted (not there before)
};

/// Prepares the batch statement on a connection (once per connection) and makes the session plan
/// it generically (per-row index lookups; see batch.cpp).
void prepare_batch(pqxx::connection_base& c);
/// Sends the batch as the one prepared statement: one round trip, one implicit transaction when
/// `tx` is a nontransaction. Throws pqxx exceptions.
BatchResult apply_batch(pqxx::transaction_base& tx, const Batch& b);

/// The single statement that applies a batch: data-modifying CTEs over unnest() of array literals.
/// Result: one row (marks_applied, conflicts, fills_applied, reconciled, market_marks_applied)
/// where conflicts is a text array of "table:id:found". Journal rows are inserted with ON CONFLICT
/// (seq) DO NOTHING, so a retried batch is harmless.
[[nodiscard]] const char* batch_statement() noexcept;
/// The statement that inserts the orders the engine placed (WriteKind::order_placed); result: the
/// rows inserted.
[[nodiscard]] const char* placement_statement() noexcept;

}  // namespace lam::db
