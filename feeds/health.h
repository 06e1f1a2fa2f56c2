#pragma once
/// Per-symbol health of one connection (`connecting`, `resyncing`, `live`, `stale`) and the state
/// events it produces. Pure: times are passed in (steady ns for budgets, wall ns for the events).

#include <cstdint>
#include <vector>

#include "feeds/feed_event.h"

namespace lam::feeds {

class ConnectionHealth {
 public:
  /// `kinds`: TickKinds the connection supplies (copied into every state event's tick.flags).
  ConnectionHealth(Venue venue, std::vector<InstrumentId> instruments, std::uint8_t kinds,
                   std::int64_t stale_budget_ns);

  /// Every symbol to `s` (an event for each one whose state changes).
  void set_all(FeedState s, FeedReason why, TimeNs wall, std::vector<FeedEvent>& out);
  /// A tick for `id` arrived: resyncing/stale/connecting -> live.
  void on_data(InstrumentId id, std::int64_t steady_ns, TimeNs wall, std::vector<FeedEvent>& out);
  /// The data for `id` arrived but may not price anything (an oracle update too old or too
  /// uncertain: `why`): live/resyncing -> stale until good data comes (on_data). Its staleness
  /// clock is not reset: data that cannot be used is no data.
  void hold(InstrumentId id, FeedReason why, TimeNs wall, std::vector<FeedEvent>& out);
  /// Live symbols without data for longer than the budget -> stale; resyncing symbols that never
  /// got data within the budget after subscribing -> stale too.
  void check_stale(std::int64_t steady_ns, TimeNs wall, std::vector<FeedEvent>& out);
  /// Starts the staleness clock of every symbol at `steady_ns` (on subscribe).
  void touch_all(std::int64_t steady_ns);

  [[nodiscard]] FeedState state(InstrumentId id) const;
  [[nodiscard]] std::size_t count(FeedState s) const;
  /// Symbols in `s` that got there for `why`.
  [[nodiscard]] std::size_t count(FeedState s, FeedReason why) const;
  [[nodiscard]] const std::vector<InstrumentId>& instruments() const noexcept { return ids_; }

 private:
  [[nodiscard]] std::size_t index(InstrumentId id) const;  // npos when not ours
  void change(std::size_t i, FeedState s, FeedReason why, TimeNs wall, std::vector<FeedEvent>& out);

  Venue venue_;
  std::uint8_t kinds_;
  std::int64_t stale_budget_ns_;
  std::vector<InstrumentId> ids_;      // sorted
  std::vector<FeedState> state_;       // by index into ids_
  std::vector<FeedReason> why_;        // the reason of each symbol's last change
  std::vector<std::int64_t> last_ns_;  // steady time of the last data (or of the subscribe)
};

}  // namespace lam::feeds
