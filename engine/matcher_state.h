#pragma once
// Internal to the matcher's translation units: the per-market, per-position and per-alert records.
// Not part of the engine's interface; include engine/matcher.h instead.

#include <array>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "engine/matcher.h"
#include "engine/trail_book.h"

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
  // Open position slots showing their loaded price until the market has one (release_loaded);
  // may hold slots since reused or moved, which release_loaded skips.
  std::vector<std::uint32_t> loaded;
  std::size_t loaded_compacted = 0;  // loaded.size() after its last compaction
  std::unique_ptr<VolumeBook> volume;
  // orders: untriggered stops by source (mark, last, mid), resting limits, and those waiting for
  // a tradeable price
  std::array<Ladder<Direction::up>, 3> trig_up;      // buy direction: source >= trigger
  std::array<Ladder<Direction::down>, 3> trig_down;  // sell direction: source <= trigger
  Ladder<Direction::down> lim_buy;                   // key = limit price
  Ladder<Direction::up> lim_sell;
  std::vector<std::uint32_t> waiting;
  // activated trailing stops by source and side (trail_index), made on first use
  std::array<std::unique_ptr<TrailBook>, 6> trail;
  FundingNotice funding;  // the venue's latest funding announcement (issue 33 §1)
};

/// The trailing book of a source index (kMark, kLast, kMid) and side.
inline std::size_t trail_index(std::size_t src, bool buy) noexcept {
  return src * 2 + (buy ? 1 : 0);
}

/// 64 bytes, one cache line: the position as it stands, its user and wallet interned, and its
/// state. Its liquidation key is not kept: it is recomputed from these fields, which change only
/// while it is detached. What only some positions need (a realized PnL or a leverage that does
/// not fit here, a close, a loaded price shown until the market has one, the id of a market the
/// engine does not know) is in a PositionExtra.
struct Matcher::PositionState {
  static constexpr std::int64_t kRealizedInExtra = std::numeric_limits<std::int64_t>::min();
  Uuid id;
  std::int64_t size = 0;         // raw, > 0 while open
  std::int64_t entry_price = 0;  // raw
  std::int64_t margin = 0;       // raw
  std::int64_t realized = 0;     // raw; kRealizedInExtra: the extra's (beyond int64)
  std::uint32_t user = kNone;    // ids_ handles; kNone: a free slot
  std::uint32_t wallet = kNone;
  std::uint32_t market = kNone;
  std::uint16_t leverage_centi = 100;  // leverage in hundredths; 0: the extra's
  PositionStatus status = PositionStatus::open;
  bool is_short : 1 = false;
  bool has_liq : 1 = false;    // filed in its market's liquidation ladder
  bool attached : 1 = false;   // armed: valid, open, its market known
  bool listed : 1 = false;     // its side's open position (open_positions_ / open_stacks_)
  bool in_group : 1 = false;   // counted in its (user, market) group's aggregate
  bool has_extra : 1 = false;  // position_extra_at_ holds its PositionExtra
  [[nodiscard]] Side side() const noexcept { return is_short ? Side::short_side : Side::long_side; }
  [[nodiscard]] bool removed() const noexcept { return user == kNone; }
};

struct Matcher::PositionExtra {
  Wide realized = 0;          // when the record says kRealizedInExtra
  std::int64_t leverage = 0;  // when the record's leverage_centi is 0
  std::optional<TimeNs> closed_at;
  std::optional<std::int64_t> close_price;
  // As loaded, shown until the market has a price (open) or for good (closed before loading):
  std::optional<std::int64_t> loaded_price;
  Wide loaded_upnl = 0;           // raw
  std::optional<Uuid> market_id;  // a market the engine does not know
  [[nodiscard]] bool holds_nothing(const PositionState& ps) const noexcept {
    return ps.realized != PositionState::kRealizedInExtra && ps.leverage_centi != 0 && !closed_at &&
           !close_price && !loaded_price && loaded_upnl == 0 && !market_id;
  }
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
  bool in_trail : 1 = false;   // a trailing stop activated: in its market's trail book
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
  bool opened_position = false;   // its fill opened the position
  std::optional<Uuid> opened_by;  // an engine-made protective stop: the order that opened its
                                  // position
  // A trailing stop: its row's fields, and while it waits for its activation price the key it is
  // filed under in a trigger ladder (0: the source's first price); once activated, its member in
  // the book of its source and side.
  std::optional<std::int64_t> trail_rate;
  std::optional<std::int64_t> trail_distance;
  std::optional<std::int64_t> activation_price;
  std::int64_t wait_key = 0;
  std::uint32_t trail_member = TrailBook::kNone;
  std::uint8_t trail_src = 0;
  std::optional<TimeNs> activated_at;
  Uuid trail_group{};  // the group it joined when activated (its row's trail_group_id)
  // the row's, as upserted (a restart's: the engine wrote them)
  std::optional<TimeNs> row_activated_at;
  std::optional<Uuid> row_trail_group;
  std::optional<std::int64_t> row_trail_extreme;
};

struct Matcher::AlertIds {
  const std::vector<AlertState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].id; }
};
struct Matcher::PositionIds {
  const std::vector<PositionState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].id; }
};
struct Matcher::OrderIds {
  const std::vector<OrderState>& v;
  const Uuid& operator()(std::uint32_t slot) const noexcept { return v[slot].id; }
};
struct Matcher::OpenKeys {
  const std::vector<PositionState>& v;
  SideKey operator()(std::uint32_t slot) const noexcept {
    return SideKey{v[slot].user, v[slot].market, v[slot].side()};
  }
};

template <class F>
void Matcher::for_each_listed(const SideKey& k, F&& f) const {
  const std::uint32_t primary = open_positions_.find(k, OpenKeys{positions_});
  if (primary == kNone) return;
  f(primary);
  if (const auto it = open_stacks_.find(k); it != open_stacks_.end())
    for (std::uint32_t s : it->second) f(s);
}

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
