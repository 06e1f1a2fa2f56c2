#pragma once
/// What the engine asks the writer to persist: a trivially copyable queue payload.

#include <cstdint>
#include <type_traits>

#include "engine/fixed.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam::db {

enum class WriteKind : std::uint8_t {
  position_mark,  ///< price = current_price, amount = unrealized_pnl (1e-18); coalesced, latest
                  ///< wins
  position_liquidated,  ///< price = current_price, amount = realized_pnl (1e-9), ts = closed_at
  alert_triggered,      ///< ts = triggered_at, price = anchor (0: none)
  alert_expired,        ///< ts = tick time
  alert_anchored,       ///< price = anchor_price
  // Orders (pending / open -> the next status, conditional like every transition):
  order_triggered,  ///< a stop / stop_limit: status open, triggered_at = ts
  order_rested,     ///< a limit that did not cross: status open
  order_ended,      ///< code = the final OrderStatus (cancelled, expired, failed), reason = why
  /// A paper fill, applied whole or not at all (order, position, trade, balance, audit rows):
  /// id = order, ref = position, price = fill price, size = fill size, amount = fee,
  /// realized = the fill's realized PnL (-fee when it opens or increases), locked = margin added
  /// (< 0: released), entry = the position's entry after the fill, ts = filled_at,
  /// flags: kTaker, kOpened (the fill opened the position), kReduce (sell / buy).
  order_filled,
  /// A market's reference price (market_marks): id = market, price, ts = when the engine took it;
  /// coalesced per market, latest wins.
  market_mark,
  /// A trailing stop started to trail (docs/design/trailing-stops.md): id = order, ts =
  /// activated_at, ref = the group it joined (trail_group_id); its row must still be pending.
  order_activated,
  /// A trailing group made or moved (price = its best price) or melded (ref = the group it melded
  /// into, else nil): id = group; coalesced per group, latest price wins, a meld stays.
  trail_group,
  /// The engine placed an order (a user's protective stop, docs/semantics.md "The users' own
  /// settings"): id = the new order, ref = the order whose fill opened the position it protects
  /// (its user, wallet, market, leverage, and side: a long's is a sell, a short's a buy), price =
  /// trigger_price, size, ts = created_at. Inserted before the batch's other
  /// writes, once (ON CONFLICT DO NOTHING), while that order is not cancelled, expired or failed.
  order_placed,
};

struct WriteOp {
  static constexpr std::uint8_t kTaker = 1, kOpened = 2, kReduce = 4;
  // The first five fields keep the layout (and aggregate order) alerts and positions use.
  Uuid id;
  Wide amount = 0;
  std::int64_t price = 0;
  TimeNs ts = 0;
  WriteKind kind = WriteKind::position_mark;
  std::uint8_t code = 0;    ///< order_ended: the OrderStatus
  std::uint8_t reason = 0;  ///< order_ended: the RejectReason (status_reason)
  std::uint8_t flags = 0;
  Uuid ref{};
  Wide realized = 0;
  Wide locked = 0;
  std::int64_t size = 0;
  std::int64_t entry = 0;
};
static_assert(std::is_trivially_copyable_v<WriteOp>);
static_assert(sizeof(WriteOp) <= 128);

}  // namespace lam::db
