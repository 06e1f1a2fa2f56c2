#pragma once
/// Reference matcher: same inputs and events as `Matcher`, but every tick scans every alert and
/// position and evaluates the conditions of docs/semantics.md directly, with exact rational
/// comparisons instead of compiled ladder keys. Used as the oracle in randomized tests and as the
/// baseline in benchmarks. O(alerts + positions) per tick.

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/tick.h"

namespace lam {

class NaiveMatcher {
 public:
  void upsert_market(const MarketSpec& m);
  void upsert_position(const PositionSpec& p, std::vector<Event>& out);
  void upsert_alert(const AlertSpec& a, std::vector<Event>& out);
  void cancel_alert(const Uuid& id);
  void on_tick(const Tick& t, std::vector<Event>& out);

  [[nodiscard]] std::optional<AlertStatus> alert_status(const Uuid& id) const;
  [[nodiscard]] std::optional<PositionStatus> position_status(const Uuid& id) const;

 private:
  struct Market {
    MarketSpec spec;
    std::int64_t p = 0;
    bool has_p = false;
    std::vector<std::pair<TimeNs, std::int64_t>>
        trades;  // every trade since the first volume alert
    bool recording = false;
  };
  struct Position {
    PositionSpec spec;
    PositionStatus status = PositionStatus::open;
  };
  struct Alert {
    AlertSpec spec;
    AlertStatus status = AlertStatus::active;
    std::optional<std::int64_t> anchor;
    bool armed = false;
  };
  struct Fired {
    unsigned __int128 distance;
    Uuid id;
    std::size_t index;
  };

  [[nodiscard]] bool alert_holds(const Alert& a, const Market& m, TimeNs t) const;
  [[nodiscard]] std::optional<std::int64_t> ordering_key(const Alert& a, std::int64_t p) const;
  Event base_event(EventType type, TimeNs ts, const Alert& a, const Market& m);

  std::vector<Market> markets_;
  std::unordered_map<Uuid, std::size_t, UuidHash> market_index_;
  std::unordered_map<InstrumentId, std::size_t> instrument_index_;
  std::vector<Position> positions_;
  std::unordered_map<Uuid, std::size_t, UuidHash> position_index_;
  std::vector<Alert> alerts_;
  std::unordered_map<Uuid, std::size_t, UuidHash> alert_index_;
  std::uint64_t next_seq_ = 1;
  TimeNs last_ts_ = 0;
};

}  // namespace lam
