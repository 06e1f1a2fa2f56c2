#pragma once
// Internal to the matcher's translation units: the per-market, per-position and per-alert records.
// Not part of the engine's interface; include engine/matcher.h instead.

#include <array>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "engine/matcher.h"

namespace lam {

/// Ladders by source and tick kinds share one index: mark, last (trade), mid (BBO).
inline constexpr std::size_t kMark = 0, kLast = 1, kMid = 2;

inline std::size_t index_of(PriceSource s) noexcept {
  switch (s) {
    case PriceSource::mark:
      return kMark;
    case PriceSource::last:
      return kLast;
    case PriceSource::mid:
      return kMid;
  }
  return kMark;
}

/// floor((bid + ask) / 2) without overflow and without a 128-bit division: exact whenever
/// bid + ask is even on the 1e-9 grid. The BBO's mid, for the quiet check and the order step alike.
inline std::int64_t mid_price(std::int64_t bid, std::int64_t ask) noexcept {
  return (bid >> 1) + (ask >> 1) + (bid & ask & 1);
}

/// a + d, clamped to the int64 range
inline std::int64_t sat_add(std::int64_t a, std::int64_t d) noexcept {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, d, &r))
    return d > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  return r;
}

struct Matcher::MarketCold {
  explicit MarketCold(std::pmr::memory_resource* mem) : expiry(mem) {}
  MarketSpec spec;
  Ladder<Direction::up> up;
  Ladder<Direction::down> down;
  Ladder<Direction::up> liq_up;      // shorts
  Ladder<Direction::down> liq_down;  // longs
  std::pmr::set<ExpiryEntry> expiry;
  std::vector<std::uint32_t> pending_anchor;  // alert slots waiting for the next reference price
  std::vector<std::uint32_t> positions;       // every position slot ever on this market
  std::unique_ptr<VolumeBook> volume;
  // orders: untriggered stops by source (mark, last, mid), resting limits, and those waiting for
  // a tradeable price
  std::array<Ladder<Direction::up>, 3> trig_up;      // buy direction: source >= trigger
  std::array<Ladder<Direction::down>, 3> trig_down;  // sell direction: source <= trigger
  Ladder<Direction::down> lim_buy;                   // key = limit price
  Ladder<Direction::up> lim_sell;
  std::vector<std::uint32_t> waiting;
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
  std::uint64_t listed = 0;  // when it became its side's open position (0: not listed)
  bool attached = false;     // counted in its group's aggregate
  bool removed = true;       // a free slot until upsert_position fills it
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

struct Matcher::OrderState {
  OrderSpec spec;
  std::uint32_t market = kNone;
  OrderStatus status = OrderStatus::pending;
  RejectReason reason = RejectReason::none;
  std::optional<TimeNs> triggered_at;
  std::optional<TimeNs> filled_at;
  std::int64_t filled_size = 0;
  std::optional<std::int64_t> fill_price;
  Wide fees = 0;
  Wide realized = 0;
  std::optional<Uuid> position_id;
  // What its fill did to the position and the wallet (the writer applies it as deltas):
  Wide locked_delta = 0;         // margin added (> 0) or released (< 0)
  std::int64_t entry_after = 0;  // the position's entry price right after this fill
  bool taker = false;
  bool opened_position = false;  // its fill opened the position
  // Where it is filed while the engine watches it:
  std::int8_t trig_source = -1;  // trigger ladder source index (0 mark, 1 last, 2 mid), -1 none
  bool trig_up = false;          // in trig up ladder (else down)
  bool resting = false;          // in a limit ladder
  bool waiting = false;          // in the market's waiting list
  bool in_expiry = false;
  bool in_reduce = false;  // listed in reduce_orders_
  bool live = false;       // false for a removed slot
  [[nodiscard]] bool watched() const noexcept { return trig_source >= 0 || resting || waiting; }
};

struct Matcher::AlertIds {
  const std::vector<AlertState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].spec.id; }
};
struct Matcher::PositionIds {
  const std::vector<PositionState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].spec.id; }
};
struct Matcher::OrderIds {
  const std::vector<OrderState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].spec.id; }
};

struct Matcher::Due {
  enum class What : std::uint8_t { trigger, limit, waiting };
  unsigned __int128 distance = 0;
  Uuid id;
  std::uint32_t slot = 0;
  What what = What::trigger;
  std::int64_t price = 0;  // the source price (trigger) or the limit price (limit)
};

struct Matcher::Group {
  PnlAggregate agg;
  std::vector<std::uint32_t> alerts;  // armed position_pnl alert slots
};

}  // namespace lam
