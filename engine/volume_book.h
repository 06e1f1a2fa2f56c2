#pragma once
/// Rolling-window traded volume of one market, shared by its volume alerts.
///
/// Alerts with the same window share one running sum; each trade costs O(windows + evicted) and
/// firing k alerts costs O(k log n). Trades are retained only as far back as the longest window of
/// an armed alert (and only since the first volume alert of the market was armed).

#include <cstdint>
#include <deque>
#include <memory_resource>
#include <set>
#include <vector>

#include "engine/fixed.h"
#include "engine/ladder.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam {

class VolumeBook {
 public:
  explicit VolumeBook(std::pmr::memory_resource* mem) : mem_(mem) {}

  /// Arms an alert: fires once the sum of trade sizes with ts in (t - window, t] reaches `target`.
  void add(TimeNs window, Wide target, const Uuid& id, std::uint32_t slot);
  /// Disarms; returns whether it was armed.
  bool remove(TimeNs window, Wide target, const Uuid& id);
  [[nodiscard]] bool empty() const noexcept { return windows_.empty(); }

  /// Records a trade at tick time t and appends the alerts it fires to `out`: nearest first
  /// (sum - target ascending), ties by id. `distance` is in raw size units.
  void on_trade(TimeNs t, std::int64_t size, std::vector<Crossed>& out);

  /// Current sum for a window (for tests and snapshots); 0 when no alert uses that window.
  [[nodiscard]] Wide sum(TimeNs window) const noexcept;

 private:
  struct Trade {
    TimeNs ts;
    Wide size;
  };
  struct Entry {
    Wide target;
    Uuid id;
    std::uint32_t slot;
  };
  struct EntryOrder {
    bool operator()(const Entry& a, const Entry& b) const noexcept {
      return a.target != b.target ? a.target < b.target : a.id > b.id;
    }
  };
  struct Window {
    TimeNs length;
    Wide sum = 0;
    std::uint64_t head = 0;  ///< absolute index of the oldest trade inside the window
    std::pmr::set<Entry, EntryOrder> alerts;
  };

  Window* find(TimeNs window) noexcept;
  void trim();

  std::pmr::memory_resource* mem_;
  std::deque<Trade> trades_;
  std::uint64_t base_ = 0;  ///< absolute index of trades_.front()
  std::vector<Window> windows_;
};

}  // namespace lam
