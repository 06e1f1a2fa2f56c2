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
  /// The venue's funding rate for its next settlement (issue 33 §1): price = the rate on the 1e-18
  /// grid (`kRateScale`, fixed.h), size = the settlement time (ns), ask = the price the venue pays
  /// at when it is not the mark (Hyperliquid's oracle), else 0. Never a price: the matcher diverts
  /// it before the price path.
  funding,
};

/// Trivially copyable, 48 bytes: fits a cache line with room to spare. Prices and sizes are raw
/// fixed-point (1e-9 units, see fixed.h); times are ns since the epoch.
struct Tick {
  TimeNs exch_ts = 0;           ///< exchange event time: the "tick time" of every rule
  TimeNs recv_ts = 0;           ///< local receive time (0 when unknown, e.g. replay)
  std::int64_t price = 0;       ///< mark / trade price / best bid / funding rate
  std::int64_t size = 0;        ///< trade size (trade) / settlement time (funding)
  std::int64_t ask = 0;         ///< best ask (bbo) / the price funding pays at (funding)
  std::uint32_t venue_seq = 0;  ///< low 32 bits of the venue's sequence (diagnostics only)
  InstrumentId instrument = kNoInstrument;
  TickKind kind = TickKind::mark;
  std::uint8_t flags = 0;
};
static_assert(std::is_trivially_copyable_v<Tick>);
static_assert(sizeof(Tick) <= 64, "queue payloads must fit one cache line");

}  // namespace lam
