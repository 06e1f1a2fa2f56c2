#pragma once
/// What a subscriber asked to see, and what its token allows: parsed from the `/v1/stream` query
/// string or from a JSON message the client sends (which replaces the filter).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/event.h"
#include "engine/uuid.h"

namespace lam::daemon {

/// The fields of an event a filter looks at.
struct EventMeta {
  std::uint64_t seq = 0;
  EventType type = EventType::alert_triggered;
  Uuid user_id;
  Uuid market_id;
  bool has_market = false;
  /// A seq with nothing to send: the gateway passed over a message it cannot trust (malformed, of
  /// a shard it does not know). Kept in the ring so seqs stay contiguous (nobody is cut for it);
  /// matches no filter.
  bool hole = false;
};

struct StreamFilter {
  std::vector<Uuid> users;    ///< empty: every user (the token's scope still applies)
  std::vector<Uuid> markets;  ///< empty: every market
  std::uint32_t types = ~0u;  ///< bit per EventType (every type: no `type` filter)
  [[nodiscard]] bool matches(const EventMeta& m) const noexcept;
};

/// Parses `user_id=..&market_id=..&type=alert.triggered,position.liquidated&since=N` (repeated keys
/// and comma lists allowed). Unknown keys are errors. On error returns nullopt and sets `error`.
struct StreamQuery {
  StreamFilter filter;
  std::optional<std::uint64_t> since;
  /// `committed=1`: only events already journaled (stored with their transitions), never one the
  /// books may not hold yet; later than the default by about a writer flush.
  bool committed = false;
};
[[nodiscard]] std::optional<StreamQuery> parse_stream_query(std::string_view query,
                                                            std::string& error);
/// Parses {"user_id": "..." | [...], "market_id": ..., "type": "..." | [...]}.
[[nodiscard]] std::optional<StreamFilter> parse_filter_json(std::string_view json,
                                                            std::string& error);

/// Event type from its wire name ("alert.triggered").
[[nodiscard]] std::optional<EventType> parse_event_type(std::string_view name) noexcept;

}  // namespace lam::daemon
