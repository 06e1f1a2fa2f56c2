#pragma once
/// The normalized market-data tick: what every feed produces and the matcher consumes.

#include <cstdint>
#include <type_traits>

#include "engine/timefmt.h"

namespace lam {

/// Dense id of a (venue, symbol) pair, assigned by `InstrumentTable`.
using InstrumentId = std::uint32_t;
inline constexpr InstrumentId kNoInstrument = UINT32_MAX;

enum class TickKind : std::uint8_t {
  mark,   ///< price = mark price
  trade,  ///< price = trade price, size = trade size
  bbo,    ///< price = best bid, ask = best ask
};

/// Trivially copyable, 48 bytes: fits a cache line with room to spare. Prices and sizes are raw
/// fixed-point (1e-9 units, see fixed.h); times are ns since the epoch.
struct Tick {
  TimeNs exch_ts = 0;           ///< exchange event time: the "tick time" of every rule
  TimeNs recv_ts = 0;           ///< local receive time (0 when unknown, e.g. replay)
  std::int64_t price = 0;       ///< mark / trade price / best bid
  std::int64_t size = 0;        ///< trade size (trade only)
  std::int64_t ask = 0;         ///< best ask (bbo only)
  std::uint32_t venue_seq = 0;  ///< low 32 bits of the venue's sequence (diagnostics only)
  InstrumentId instrument = kNoInstrument;
  TickKind kind = TickKind::mark;
  std::uint8_t flags = 0;
};
static_assert(std::is_trivially_copyable_v<Tick>);
static_assert(sizeof(Tick) <= 64, "queue payloads must fit one cache line");

}  // namespace lam
