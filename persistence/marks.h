#pragma once
/// What the engine publishes of its marks (docs/schema.md, "Marks"): a pure class, driven by the
/// engine loop's clock, that turns the matcher's prices into writer ops.
///
/// * Market marks: every `market_interval`, each market whose reference price changed since it was
///   last sent becomes one `market_mark` (one row per market, O(markets) per flush whatever the
///   number of positions). Readers compute a position's current price, uPnL and ROE from it
///   (positions_fresh / positions_live).
/// * The stored positions.current_price / unrealized_pnl columns: a background pass over the open
///   positions, started at most every `refresh_interval` and paced to at most
///   `refresh_rows_per_s` positions a second, so its cost on PostgreSQL is bounded whatever the
///   number of positions. A raw column's age is bounded by about two passes (see pass_seconds()).
///
/// `submit` returns false when the writer's queue is full: a market mark is retried at the next
/// interval; a position's refresh is skipped until the next pass (marks are coalesced state).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/timefmt.h"
#include "persistence/write_op.h"

namespace lam {
class Matcher;
}

namespace lam::db {

struct MarksConfig {
  std::chrono::milliseconds market_interval{10};       ///< how often changed prices are sent
  std::chrono::milliseconds refresh_interval{10'000};  ///< a refresh pass starts at most this often
  std::size_t refresh_rows_per_s = 500;  ///< positions refreshed per second at most (0: no cap)
};

class MarkPublisher {
 public:
  using Clock = std::chrono::steady_clock;
  using Submit = std::function<bool(const WriteOp&)>;

  explicit MarkPublisher(MarksConfig cfg) : cfg_(cfg) {}

  /// One step: the changed markets when `market_interval` has passed, and the next paced share of
  /// the refresh pass (at most kChunk position slots). `wall` stamps market marks (marked_at); it
  /// is only read when markets_due(now). Returns true when it sent a market mark or visited
  /// position slots (the caller's loop stays awake).
  bool step(const Matcher& m, Clock::time_point now, TimeNs wall, const Submit& submit);
  /// Whether this step takes the markets (a caller reads its wall clock only then).
  [[nodiscard]] bool markets_due(Clock::time_point now) const noexcept {
    return now - markets_at_ >= cfg_.market_interval;
  }

  /// Position slots visited per step at most: a step never holds the engine thread for long.
  static constexpr std::size_t kChunk = 512;

  [[nodiscard]] std::uint64_t market_marks_sent() const noexcept { return markets_sent_; }
  [[nodiscard]] std::uint64_t positions_sent() const noexcept { return positions_sent_; }
  [[nodiscard]] std::uint64_t passes() const noexcept { return passes_; }
  /// How long the last complete refresh pass took (0 before the first).
  [[nodiscard]] double pass_seconds() const noexcept { return pass_seconds_; }

 private:
  bool step_markets(const Matcher& m, TimeNs wall, const Submit& submit);
  bool step_refresh(const Matcher& m, Clock::time_point now, const Submit& submit);

  MarksConfig cfg_;
  Clock::time_point markets_at_{};
  std::vector<std::int64_t> sent_price_;  // by market slot
  std::vector<bool> sent_;                // by market slot
  bool in_pass_ = false;
  Clock::time_point pass_started_{};
  std::size_t cursor_ = 0;
  std::size_t visited_ = 0;  // slots visited in this pass
  std::uint64_t markets_sent_ = 0, positions_sent_ = 0, passes_ = 0;
  double pass_seconds_ = 0;
};

}  // namespace lam::db
