#pragma once
/// The gateway's decision for each message its consumer fetches (scaleout/gateway_source.cpp does
/// the nats.c calls and what this says). Pure: string views in, a decision out.
///
/// - A stream seq at or below the last one handed to the server is a redelivery: skipped.
/// - A message that is not a Laminator event (no or a malformed Nats-Msg-Id, a subject its id does
///   not name, a body without a known type or valid ids, no leading seq) or an event of a shard not
///   in `[gateway] shards` is passed over as a hole: the server's seq still advances, nobody is cut
///   for someone else's message, and it is counted (malformed or unknown shard).
/// - Otherwise the event is handed on, rendered with the stream seq, with the shard order's verdict
///   (in order, a repeat, a jump, or a restore's declared jump: scaleout/shard_order.h).

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scaleout/gateway_event.h"
#include "scaleout/shard_order.h"
#include "stream/event_ring.h"

namespace lam::daemon {

/// What a fetched message carries, as the gateway reads it (null views: absent).
struct StreamMessage {
  std::uint64_t stream_seq = 0;
  std::string_view subject;
  const char* msg_id = nullptr;  ///< the Nats-Msg-Id header
  const char* gap = nullptr;     ///< the Laminator-Gap header
  std::string_view body;
};

/// A message of the stream as the gateway serves it: its JSON re-rendered with the stream seq.
struct Decoded {
  Entry entry;
  std::string shard;
  std::uint64_t shard_seq = 0;
  std::optional<ShardOrder::Declared> gap;  ///< the Laminator-Gap header: seqs declared skipped
};

/// Nullopt when `m` is not one of ours. `scratch` is reused between calls.
[[nodiscard]] inline std::optional<Decoded> decode_message(const StreamMessage& m,
                                                           std::string_view prefix,
                                                           std::string& scratch) {
  if (m.msg_id == nullptr) return std::nullopt;
  const auto ss = parse_msg_id(m.msg_id);
  if (!ss) return std::nullopt;
  // A shard publishes on its own subject only: an id naming another shard is not its message.
  const std::string_view sv = m.subject;
  if (sv.size() != prefix.size() + 1 + ss->shard.size() || sv.substr(0, prefix.size()) != prefix ||
      sv[prefix.size()] != '.' || sv.substr(prefix.size() + 1) != ss->shard)
    return std::nullopt;
  auto meta = parse_event_meta(m.body);
  if (!meta) return std::nullopt;
  Decoded d;
  d.entry.meta = *meta;
  d.entry.meta.seq = m.stream_seq;
  if (!render_gateway_event(scratch, m.body, m.stream_seq, ss->shard)) return std::nullopt;
  d.entry.json = std::make_shared<const std::string>(scratch);
  d.shard = std::string(ss->shard);
  d.shard_seq = ss->seq;
  if (m.gap != nullptr) d.gap = parse_gap(m.gap);
  return d;
}

/// `shard` is one the gateway serves (`allowed` empty: any).
[[nodiscard]] inline bool trusted_shard(const std::vector<std::string>& allowed,
                                        std::string_view shard) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), shard) != allowed.end();
}

class GatewayIntake {
 public:
  enum class Kind : std::uint8_t { redelivery, malformed, unknown_shard, event };
  struct Decision {
    Kind kind = Kind::redelivery;
    /// event, unknown_shard: the decoded event; for an event, what to hand on.
    std::optional<Decoded> decoded;
    ShardOrder::Verdict order = ShardOrder::Verdict::in_order;  ///< event
    std::uint64_t shard_last = 0;  ///< event: the shard's seq seen before this one (0: none)
    /// What the server gets (event, or a hole for malformed/unknown_shard); none for a redelivery.
    [[nodiscard]] Entry entry(std::uint64_t stream_seq) && {
      if (kind == Kind::event) return std::move(decoded->entry);
      Entry hole;
      hole.meta.seq = stream_seq;
      hole.meta.hole = true;
      return hole;
    }
  };

  /// `shards`: [gateway] shards (empty: any shard is served).
  GatewayIntake(std::vector<std::string> shards, std::string prefix)
      : shards_(std::move(shards)), prefix_(std::move(prefix)) {}

  /// `m` arrives. Every decision but a redelivery is handed on (handed() moves to its seq).
  Decision take(const StreamMessage& m) {
    Decision d;
    if (m.stream_seq <= handed_) return d;  // a redelivery
    handed_ = m.stream_seq;
    d.decoded = decode_message(m, prefix_, scratch_);
    if (!d.decoded) {
      d.kind = Kind::malformed;
      return d;
    }
    if (!trusted(d.decoded->shard)) {
      d.kind = Kind::unknown_shard;
      return d;
    }
    d.kind = Kind::event;
    d.shard_last = order_.last(d.decoded->shard);
    d.order = order_.observe(d.decoded->shard, d.decoded->shard_seq, d.decoded->gap);
    return d;
  }

  /// The consumer was opened again and starts after `acked`: what was handed before stays handed
  /// (the server has it; redeliveries below are skipped).
  void reopened(std::uint64_t acked) { handed_ = std::max(handed_, acked); }
  /// The highest stream seq handed to the server.
  [[nodiscard]] std::uint64_t handed() const noexcept { return handed_; }
  [[nodiscard]] bool trusted(std::string_view shard) const { return trusted_shard(shards_, shard); }

 private:
  std::vector<std::string> shards_;
  std::string prefix_;
  std::string scratch_;
  std::uint64_t handed_ = 0;
  ShardOrder order_;
};

}  // namespace lam::daemon
