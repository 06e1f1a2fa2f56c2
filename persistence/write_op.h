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
};

struct WriteOp {
  Uuid id;
  Wide amount = 0;
  std::int64_t price = 0;
  TimeNs ts = 0;
  WriteKind kind = WriteKind::position_mark;
};
static_assert(std::is_trivially_copyable_v<WriteOp>);
static_assert(sizeof(WriteOp) <= 64);

}  // namespace lam::db
