#pragma once
/// How an event travels through JetStream, and how the gateway renders it (docs/events.md,
/// "Through JetStream"). Pure string work, shared by the shard's publisher, the gateway and tests.
///
/// A shard publishes each event's JSON, unchanged, on `<prefix>.<shard>` with one header,
///   Nats-Msg-Id: <shard>:<seq>   (the server drops a re-publication inside its duplicate window);
/// the gateway reads type, user and market from the body (per-message headers cost nats.c a hash
/// table each way: measured, docs/performance.md "Scale-out").
/// The gateway's subscribers see `"seq"` become the JetStream stream sequence, followed by
/// `"shard"` and `"shard_seq"` (the shard's own seq): {"seq":S,"shard":"a","shard_seq":N,...}.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "stream/stream_filter.h"

namespace lam::daemon {

inline constexpr const char* kMsgIdHeader = "Nats-Msg-Id";
/// On the first event a shard publishes after seqs it declared skipped (a restore's gap):
/// "<first>-<last>".
inline constexpr const char* kGapHeader = "Laminator-Gap";

/// "<shard>:<seq>".
[[nodiscard]] inline std::string msg_id(std::string_view shard, std::uint64_t seq) {
  std::string out(shard);
  out.push_back(':');
  out.append(std::to_string(seq));
  return out;
}

struct ShardSeq {
  std::string_view shard;
  std::uint64_t seq = 0;
};
/// Parses "<shard>:<seq>"; nullopt when malformed.
[[nodiscard]] inline std::optional<ShardSeq> parse_msg_id(std::string_view id) noexcept {
  const std::size_t colon = id.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= id.size()) return std::nullopt;
  std::uint64_t seq = 0;
  const char* end = id.data() + id.size();
  const auto [p, ec] = std::from_chars(id.data() + colon + 1, end, seq);
  if (ec != std::errc() || p != end || seq == 0) return std::nullopt;
  return ShardSeq{id.substr(0, colon), seq};
}

/// Parses a Laminator-Gap header ("<first>-<last>", first <= last, both > 0).
[[nodiscard]] inline std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_gap(
    std::string_view v) noexcept {
  const std::size_t dash = v.find('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  std::uint64_t a = 0, b = 0;
  const char* end = v.data() + v.size();
  auto r1 = std::from_chars(v.data(), v.data() + dash, a);
  auto r2 = std::from_chars(v.data() + dash + 1, end, b);
  if (r1.ec != std::errc() || r1.ptr != v.data() + dash || r2.ec != std::errc() || r2.ptr != end ||
      a == 0 || b < a)
    return std::nullopt;
  return std::pair{a, b};
}

/// The seq an event's JSON starts with (`{"seq":N,...`); 0 when it does not.
[[nodiscard]] inline std::uint64_t leading_seq(std::string_view json) noexcept {
  constexpr std::string_view kHead = "{\"seq\":";
  if (!json.starts_with(kHead)) return 0;
  std::uint64_t seq = 0;
  const char* first = json.data() + kHead.size();
  const auto [p, ec] = std::from_chars(first, json.data() + json.size(), seq);
  return ec == std::errc() && p != first ? seq : 0;
}

/// The filter fields of an event from its JSON as append_event_json() writes it (the gateway reads
/// the body, not the headers: one scan, no allocation). `user_id` absent (market.unserved) is the
/// nil id; `market_id` null or absent is no market. Nullopt when the type is missing or unknown or
/// an id does not parse.
[[nodiscard]] inline std::optional<EventMeta> parse_event_meta(std::string_view json) noexcept {
  const auto field = [&](std::string_view key) -> std::optional<std::string_view> {
    const std::size_t at = json.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    const std::size_t from = at + key.size();
    const std::size_t end = json.find('"', from);
    if (end == std::string_view::npos) return std::nullopt;
    return json.substr(from, end - from);
  };
  const auto type_name = field("\"type\":\"");
  if (!type_name) return std::nullopt;
  const auto type = parse_event_type(*type_name);
  if (!type) return std::nullopt;
  EventMeta m;
  m.type = *type;
  if (const auto u = field("\"user_id\":\"")) {
    const auto id = Uuid::parse(*u);
    if (!id) return std::nullopt;
    m.user_id = *id;
  }
  if (const auto mk = field("\"market_id\":\"")) {
    const auto id = Uuid::parse(*mk);
    if (!id) return std::nullopt;
    m.market_id = *id;
    m.has_market = true;
  }
  return m;
}

/// The shard's event JSON with its seq replaced by the stream sequence and the shard's own kept:
/// `{"seq":N,REST` -> `{"seq":S,"shard":"<shard>","shard_seq":N,REST`. False (and `out`
/// untouched) when `json` does not start with a seq.
[[nodiscard]] inline bool render_gateway_event(std::string& out, std::string_view json,
                                               std::uint64_t stream_seq, std::string_view shard) {
  constexpr std::string_view kHead = "{\"seq\":";
  if (!json.starts_with(kHead)) return false;
  std::size_t i = kHead.size();
  while (i < json.size() && json[i] >= '0' && json[i] <= '9') ++i;
  if (i == kHead.size() || i >= json.size() || (json[i] != ',' && json[i] != '}')) return false;
  const std::string_view shard_seq = json.substr(kHead.size(), i - kHead.size());
  out.clear();
  out.reserve(json.size() + shard.size() + 48);
  out.append(kHead).append(std::to_string(stream_seq)).append(",\"shard\":\"");
  out.append(shard).append("\",\"shard_seq\":").append(shard_seq);
  out.append(json.substr(i));
  return true;
}

}  // namespace lam::daemon
