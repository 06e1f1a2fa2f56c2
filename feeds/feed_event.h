#pragma once
/// What feed threads put on the queue to the engine: ticks, and the health changes that tell the
/// engine whether it may act on a symbol's price.

#include <cstdint>
#include <string_view>
#include <type_traits>

#include "engine/tick.h"
#include "feeds/venue.h"

namespace lam::feeds {

/// Health of one symbol on one connection.
enum class FeedState : std::uint8_t {
  connecting,  ///< no usable connection: the price is not current
  resyncing,   ///< connected and subscribed, waiting for the first frame of this symbol
  live,        ///< frames arriving within the symbol's staleness budget
  stale,       ///< connected, but no frame for this symbol within its budget
};
[[nodiscard]] std::string_view state_name(FeedState s) noexcept;

/// Why a state changed or a gap was reported.
enum class FeedReason : std::uint8_t {
  none,
  connect,           ///< a connection attempt started
  subscribed,        ///< subscriptions sent on a new connection
  first_data,        ///< first frame for the symbol since (re)subscribing
  data_resumed,      ///< a stale symbol got data again
  no_data,           ///< no frame for the symbol within its staleness budget
  disconnected,      ///< the socket closed or failed
  idle_timeout,      ///< no frame at all within the venue's idle budget: reconnecting
  venue_notice,      ///< the venue announced a disconnect (OKX 64008): reconnecting early
  sequence_gap,      ///< venue sequence skipped (`count` = ids missing, saturated)
  queue_overflow,    ///< ticks of this feed were dropped because the queue was full
  lifetime,          ///< proactive reconnect before the venue's maximum connection lifetime
  oracle_stale,      ///< an oracle update published longer ago than its limit: price held
  oracle_uncertain,  ///< an oracle update whose confidence interval is wider than its limit
};
[[nodiscard]] std::string_view reason_name(FeedReason r) noexcept;

enum class FeedEventKind : std::uint8_t {
  tick,   ///< `tick` is a market-data tick
  state,  ///< `state` is the symbol's new health; `tick.flags` = mask of TickKinds this
          ///< connection supplies for it (bit 1 << TickKind)
  gap,    ///< data was missed for the symbol (`reason`, `count`); the state is unchanged
};

/// Tick flags set by the parsers.
inline constexpr std::uint8_t kTickTakerSell = 1;   ///< trade: the taker sold
inline constexpr std::uint8_t kTickNoExchTime = 2;  ///< the venue sent no time: exch_ts = recv_ts
inline constexpr std::uint8_t kTickMidOnly = 4;     ///< bbo carries a mid price (bid = ask = mid)
/// trade: its size is unknown (size = 0): an OKX contract whose contract size is not configured
inline constexpr std::uint8_t kTickNoSize = 8;

[[nodiscard]] constexpr std::uint8_t kind_bit(TickKind k) noexcept {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(k));
}

/// The queue payload: trivially copyable, 56 bytes.
struct FeedEvent {
  Tick tick;  ///< for state/gap events: instrument, recv_ts (and exch_ts = recv_ts)
  FeedEventKind kind = FeedEventKind::tick;
  Venue venue = Venue::binance;
  FeedState state = FeedState::connecting;
  FeedReason reason = FeedReason::none;
  std::uint32_t count = 0;  ///< gap: ids missed (saturated at UINT32_MAX)
};
static_assert(std::is_trivially_copyable_v<FeedEvent>);
static_assert(sizeof(FeedEvent) <= 64, "queue payloads must fit one cache line");

}  // namespace lam::feeds
