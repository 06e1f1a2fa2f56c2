#pragma once
/// The engine loop's bookkeeping, as pure classes (no threads, no clocks of their own, no I/O), so
/// that each decision has a unit test instead of living inside the matcher thread.
///
/// TransitionBook: alerts and positions the engine finished (triggered, expired, liquidated). The
/// listener may deliver a row read before our write reached the database; it still shows the row
/// active/open and must not re-arm it. A transition is *unconfirmed* until its event is journaled
/// (the writer commits the row's transition before, or with, the journal row), then *finished*
/// from that moment: a command noticed before it is a stale read. After `memory`, a finished id is
/// released (the caller forgets the alert).
///
/// ResyncBook: which alerts and positions a full resync delivered, so that those it did not were
/// deleted (or closed) while the listener was away.
///
/// MarketCoverage: which markets no feed serves (a renamed symbol, a market added after start-up,
/// an unknown venue): counted for /healthz and /metrics, and a transition into "unserved" is
/// reported once.

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/instruments.h"
#include "engine/uuid.h"

namespace lam::daemon {

class TransitionBook {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TransitionBook(Clock::duration memory = std::chrono::minutes(10)) : memory_(memory) {}

  /// Our transition of `id` was published with `seq` (not journaled yet).
  void published(const Uuid& id, std::uint64_t seq);
  /// Everything up to `journaled_seq` is in the database as of `now`. Returns the ids released
  /// after `memory` (finished long enough ago, not re-published since).
  std::vector<Uuid> confirm(std::uint64_t journaled_seq, Clock::time_point now);
  /// A command about `id` that the listener noticed at `noticed` predates our write.
  [[nodiscard]] bool stale_read(const Uuid& id, Clock::time_point noticed) const;

  [[nodiscard]] std::size_t unconfirmed() const noexcept { return unconfirmed_.size(); }
  [[nodiscard]] std::size_t finished() const noexcept { return finished_.size(); }

 private:
  Clock::duration memory_;
  std::deque<std::pair<std::uint64_t, Uuid>> unconfirmed_fifo_;
  std::unordered_map<Uuid, std::uint64_t, UuidHash> unconfirmed_;
  std::deque<std::pair<Clock::time_point, Uuid>> finished_fifo_;
  std::unordered_map<Uuid, Clock::time_point, UuidHash> finished_;
};

class ResyncBook {
 public:
  /// A resync starts; its snapshot was taken at or after `noticed`.
  void begin(std::chrono::steady_clock::time_point noticed = {});
  /// When the current (or last) resync's snapshot was at the earliest.
  [[nodiscard]] std::chrono::steady_clock::time_point began() const noexcept { return began_; }
  /// A row the resync (or a change during it) delivered.
  void saw_alert(const Uuid& id);
  void saw_position(const Uuid& id);
  void saw_setting(const Uuid& id);
  /// Of `held` (the user_settings rows the engine follows), those the resync did not deliver:
  /// deleted while the listener was away. Before end(); nothing outside a resync.
  template <class ForEachSetting>
  [[nodiscard]] std::vector<Uuid> gone_settings(ForEachSetting held) const {
    std::vector<Uuid> gone;
    if (!active_) return gone;
    held([&](const Uuid& id) {
      if (!settings_.count(id)) gone.push_back(id);
    });
    return gone;
  }
  /// The engine opened this position itself (a fill) while the resync ran: the snapshot cannot
  /// hold it, and it is not gone.
  void opened_position(const Uuid& id) { saw_position(id); }
  [[nodiscard]] bool active() const noexcept { return active_; }
  /// Ends the resync; of `held` (the engine's active alerts / open positions), those not seen.
  template <class ForEachAlert, class ForEachPosition>
  std::pair<std::vector<Uuid>, std::vector<Uuid>> end(ForEachAlert alerts,
                                                      ForEachPosition positions) {
    std::vector<Uuid> gone_alerts, gone_positions;
    if (active_) {
      alerts([&](const Uuid& id) {
        if (!alerts_.count(id)) gone_alerts.push_back(id);
      });
      positions([&](const Uuid& id) {
        if (!positions_.count(id)) gone_positions.push_back(id);
      });
    }
    active_ = false;
    alerts_.clear();
    positions_.clear();
    settings_.clear();
    return {std::move(gone_alerts), std::move(gone_positions)};
  }

 private:
  bool active_ = false;
  std::chrono::steady_clock::time_point began_{};
  std::unordered_set<Uuid, UuidHash> alerts_, positions_, settings_;
};

class MarketCoverage {
 public:
  /// `served[i]`: instrument i is subscribed by some feed connection. `disabled`: venues
  /// (dex_name) the config turned off: their markets are unserved by choice, not a fault.
  MarketCoverage(std::vector<bool> served, std::vector<std::string> disabled);
  MarketCoverage() = default;

  enum class Change : std::uint8_t { none, became_unserved, became_served };
  /// The market now names `instrument` on `dex_name`.
  Change update(const Uuid& market, InstrumentId instrument, std::string_view dex_name);

  /// Markets that no feed serves although their venue is enabled (or unknown): a fault.
  [[nodiscard]] std::size_t unserved() const noexcept { return unserved_.size(); }
  /// Markets of disabled venues.
  [[nodiscard]] std::size_t disabled() const noexcept { return disabled_markets_.size(); }

 private:
  std::vector<bool> served_;
  std::vector<std::string> disabled_;
  std::unordered_set<Uuid, UuidHash> unserved_, disabled_markets_;
};

}  // namespace lam::daemon
