#pragma once
// Internal to the matcher's translation units: the per-market, per-position and per-alert records.
// Not part of the engine's interface; include engine/matcher.h instead.

#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "engine/matcher.h"

namespace lam {

struct Matcher::MarketCold {
  explicit MarketCold(std::pmr::memory_resource* mem)
      : up(mem), down(mem), liq_up(mem), liq_down(mem), expiry(mem) {}
  MarketSpec spec;
  Ladder<Direction::up> up;
  Ladder<Direction::down> down;
  Ladder<Direction::up> liq_up;      // shorts
  Ladder<Direction::down> liq_down;  // longs
  std::pmr::set<ExpiryEntry> expiry;
  std::vector<std::uint32_t> pending_anchor;  // alert slots waiting for the next reference price
  std::vector<std::uint32_t> positions;       // every position slot ever on this market
  std::unique_ptr<VolumeBook> volume;
};

struct Matcher::PositionState {
  PositionSpec spec;
  std::uint32_t market = kNone;
  std::uint32_t group = kNone;
  std::optional<std::int64_t> liq_key;  // filed under this key while armed
  PositionStatus status = PositionStatus::open;
  std::optional<TimeNs> closed_at;
  std::optional<std::int64_t> close_price;
  Wide realized = 0;
  bool attached = false;  // counted in its group's aggregate
  bool removed = true;    // a free slot until upsert_position fills it
};

struct Matcher::AlertState {
  AlertSpec spec;
  std::uint32_t market = kNone;
  std::uint32_t group = kNone;
  std::optional<std::int64_t> up_key;
  std::optional<std::int64_t> down_key;
  std::optional<std::int64_t> anchor;
  std::optional<TimeNs> triggered_at;
  Wide volume_target = 0;
  AlertStatus status = AlertStatus::active;
  bool armed = false;
  bool pending_anchor = false;
  bool in_expiry = false;
  bool in_volume = false;
  bool live = false;  // false for a free (forgotten) slot
};

struct Matcher::Group {
  PnlAggregate agg;
  std::vector<std::uint32_t> alerts;  // armed position_pnl alert slots
};

}  // namespace lam
