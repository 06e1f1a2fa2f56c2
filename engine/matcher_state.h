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

/// 56 bytes: what every armed alert needs. What only some alerts need (an expiry, an anchor, a
/// percentage or value target, a volume window, a position group, the time it fired) is in an
/// AlertExtra, allocated for those alerts alone. A price alert without expiry has none.
struct Matcher::AlertState {
  Uuid id;
  std::int64_t up_key = 0;        // filed under this key in its market's up ladder (has_up)
  std::int64_t down_key = 0;      // (has_down)
  std::uint64_t fingerprint = 0;  // of the spec it was last upserted with: alert_unchanged()
  std::uint32_t user = kNone;     // ids_ handle
  std::uint32_t market = kNone;
  std::uint32_t extra = kNone;  // alert_extra_ slot
  AlertType type = AlertType::unknown;
  ConditionType condition = ConditionType::unknown;
  AlertStatus status = AlertStatus::active;
  bool has_up : 1 = false;
  bool has_down : 1 = false;
  bool armed : 1 = false;
  bool pending_anchor : 1 = false;
  bool in_expiry : 1 = false;
  bool in_volume : 1 = false;
  bool live : 1 = false;  // false for a free (forgotten) slot
};

struct Matcher::AlertExtra {
  std::optional<TimeNs> expires_at;
  std::optional<std::int64_t> anchor;
  std::optional<TimeNs> triggered_at;
  std::optional<Decimal> target_percentage;
  std::optional<Decimal> target_value;
  Wide volume_target = 0;
  std::int64_t window_seconds = kDefaultVolumeWindowSec;
  std::uint32_t group = kNone;  // position_pnl: its (user, market) group
};

/// 72 bytes: the order row with its user and wallet interned and its times set aside, its state,
/// and where it is filed. What only some orders need (times, the id of a market the engine does
/// not know, a fill's outcome) is in an OrderExtra. spec_of() gives the row back, exactly.
struct Matcher::OrderState {
  Uuid id;
  std::int64_t size = 0;           // raw
  std::int64_t price = 0;          // limit price, raw (has_price)
  std::int64_t trigger_price = 0;  // raw (has_trigger)
  std::int64_t leverage = kScale;  // raw
  std::uint32_t user = kNone;      // ids_ handles
  std::uint32_t wallet = kNone;
  std::uint32_t market = kNone;
  std::uint32_t extra = kNone;  // order_extra_ slot
  OrderType type = OrderType::market;
  OrderSide side = OrderSide::long_side;
  Execution execution = Execution::paper;
  TriggerSource trigger_source = TriggerSource::reference;
  OrderStatus row_status = OrderStatus::pending;  // the row's, as upserted
  OrderStatus status = OrderStatus::pending;
  // trigger ladder source index (0 mark, 1 last, 2 mid), -1 none
  std::int8_t trig_source : 3 = -1;
  bool has_price : 1 = false;
  bool has_trigger : 1 = false;
  bool triggered : 1 = false;  // triggered_at is set (the row's or the engine's)
  // Where it is filed while the engine watches it:
  bool trig_up : 1 = false;  // in trig up ladder (else down)
  bool resting : 1 = false;  // in a limit ladder
  bool waiting : 1 = false;  // in the market's waiting list
  bool in_expiry : 1 = false;
  bool in_reduce : 1 = false;  // listed in reduce_orders_
  bool live : 1 = false;       // false for a removed slot
  [[nodiscard]] bool watched() const noexcept { return trig_source >= 0 || resting || waiting; }
};

struct Matcher::OrderExtra {
  RejectReason invalid = RejectReason::none;  // the row reader's
  RejectReason reason = RejectReason::none;   // why the engine cancelled or failed it
  std::optional<TimeNs> row_triggered_at;     // the row's, as upserted
  std::optional<TimeNs> triggered_at;         // the row's, then the engine's
  std::optional<TimeNs> expires_at;
  std::optional<Uuid> market_id;  // a market the engine does not know (else its market's id)
  // Its fill, and what the fill did to the position and the wallet (the writer applies it as
  // deltas):
  std::optional<TimeNs> filled_at;
  std::int64_t filled_size = 0;
  std::optional<std::int64_t> fill_price;
  Wide fees = 0;
  Wide realized = 0;
  std::optional<Uuid> position_id;
  Wide locked_delta = 0;         // margin added (> 0) or released (< 0)
  std::int64_t entry_after = 0;  // the position's entry price right after this fill
  bool taker = false;
  bool opened_position = false;  // its fill opened the position
};

struct Matcher::AlertIds {
  const std::vector<AlertState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].id; }
};
struct Matcher::PositionIds {
  const std::vector<PositionState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].spec.id; }
};
struct Matcher::OrderIds {
  const std::vector<OrderState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].id; }
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
