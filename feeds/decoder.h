#pragma once
/// Venue decoders: one frame of venue JSON in, normalized `FeedEvent`s out.
///
/// Deterministic: a decoder never reads the clock (the receive time is a parameter) and holds only
/// protocol state (last sequence ids, Bybit's merged tickers), which `reset()` clears when a new
/// connection starts where the venue's ids restart (OKX's trade ids do not: they are kept, so the
/// trade a subscribe re-sends is not emitted twice). A frame is all or nothing: a frame that fails
/// to parse changes no state and no counter but `malformed`. One decoder per connection; not
/// thread-safe. simdjson stays inside the venue .cpp files.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/flat_map.h"
#include "feeds/feed_event.h"
#include "feeds/protocol.h"
#include "feeds/symbol_map.h"

namespace lam::feeds {

/// Bytes that must be readable (not meaningful) after the end of every frame: simdjson's padding.
inline constexpr std::size_t kFramePadding = 64;
/// Frames longer than this are rejected unparsed (the WebSocket layer also caps messages).
inline constexpr std::size_t kMaxFrameBytes = 1 << 20;

/// What a frame was, as far as the connection's protocol logic is concerned.
enum class FrameClass : std::uint8_t {
  data,       ///< market data (it may still have yielded no tick, e.g. an unknown symbol)
  ack,        ///< subscription acknowledged
  rejected,   ///< subscription or request refused by the venue
  pong,       ///< answer to our ping
  heartbeat,  ///< venue heartbeat (Coinbase `heartbeats`)
  notice,     ///< the venue will close this connection soon (OKX 64008)
  ignored,    ///< well-formed but of no interest (a banner, a duplicate, an event we do not act on)
  /// well-formed, but of a shape the protocol version we speak never sends: a frame of the venue's
  /// older protocol, or of a channel we never subscribed to (counted and logged, never silent)
  unexpected,
  malformed,  ///< not parseable, truncated, oversized or of an unexpected shape
};

struct DecodeResult {
  FrameClass cls = FrameClass::ignored;
  std::uint32_t ticks = 0;  ///< ticks appended to the output
};

/// Last-seen sequence ids by key, changed by a frame only once the frame has parsed whole: reads
/// see the frame's own changes, and Decoder::decode keeps them with the frame or drops them with
/// it.
class SeqBook {
 public:
  [[nodiscard]] std::optional<std::uint64_t> get(std::uint64_t key) const {
    for (auto it = pending_.rbegin(); it != pending_.rend(); ++it)
      if (it->first == key) return it->second;
    const auto it = committed_.find(key);
    if (it == committed_.end()) return std::nullopt;
    return it->second;
  }
  void set(std::uint64_t key, std::uint64_t id) { pending_.emplace_back(key, id); }
  /// Forgets one key (reset() of a per-connection sequence beside ids kept across connections).
  void erase(std::uint64_t key) {
    (void)committed_.erase(key);
    std::erase_if(pending_, [key](const auto& p) { return p.first == key; });
  }
  void commit() {
    for (const auto& [key, id] : pending_) committed_.try_emplace(key, id).first->second = id;
    pending_.clear();
  }
  void rollback() noexcept { pending_.clear(); }
  void clear() noexcept {
    committed_.clear();
    pending_.clear();
  }

 private:
  struct Same {  // FlatMap spreads the bits itself (Fibonacci hashing)
    std::size_t operator()(std::uint64_t k) const noexcept { return static_cast<std::size_t>(k); }
  };
  // Open addressing: no node to allocate per key, none freed by clear().
  FlatMap<std::uint64_t, std::uint64_t, Same> committed_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pending_;  // this frame's, oldest first
};

/// Per-decoder counters of bad or surprising input (all monotonic).
struct DecoderStats {
  std::uint64_t frames = 0;
  std::uint64_t ticks = 0;
  std::uint64_t malformed = 0;   ///< whole frames skipped
  std::uint64_t bad_values = 0;  ///< items skipped inside a good frame (bad number, missing field)
  std::uint64_t unknown_symbol = 0;    ///< items for symbols not in the map
  std::uint64_t out_of_order = 0;      ///< stale or duplicate sequence ids, dropped
  std::uint64_t gaps = 0;              ///< sequence gaps reported
  std::uint64_t rejected = 0;          ///< error acks
  std::uint64_t unexpected = 0;        ///< frames of FrameClass::unexpected
  std::uint64_t unsized = 0;           ///< trades emitted without a size (contract size unknown)
  std::uint64_t rounded = 0;           ///< prices finer than 1e-9, rounded (Pyth expo < -9)
  std::uint64_t oracle_stale = 0;      ///< oracle updates older than OracleLimits::max_age
  std::uint64_t oracle_uncertain = 0;  ///< oracle updates wider than OracleLimits::max_conf_bps
};

class Decoder {
 public:
  explicit Decoder(SymbolMap symbols) : symbols_(std::move(symbols)) {}
  virtual ~Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  /// Decodes `data[0, len)`; `capacity` bytes from `data` are readable and
  /// `capacity >= len + kFramePadding`. Events are appended to `out` (not cleared).
  DecodeResult decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                      std::vector<FeedEvent>& out);

  /// Forgets per-connection protocol state; called when a new connection starts.
  virtual void reset() = 0;
  /// Oracle sources only (Pyth): updates beyond these limits hold their market instead of
  /// pricing it. Others ignore it.
  virtual void set_oracle_limits(const OracleLimits& limits) { (void)limits; }
  /// Forgets every sequence id, the venue's too (OKX's and Coinbase's trade ids survive reset()),
  /// and from now on takes a symbol's first trade as live rather than as the subscribe's re-send
  /// of a trade from before (OKX): for benchmarks decoding one frame over and over, never for a
  /// live feed.
  void forget_sequences() noexcept {
    seq_.clear();
    first_trade_is_live_ = true;
  }

  [[nodiscard]] const DecoderStats& stats() const noexcept { return stats_; }
  [[nodiscard]] SymbolMap& symbols() noexcept { return symbols_; }
  [[nodiscard]] Venue venue() const noexcept { return symbols_.venue(); }

 protected:
  bool first_trade_is_live_ = false;  ///< forget_sequences() (benchmarks) only
  virtual DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity,
                                 TimeNs recv_ts, std::vector<FeedEvent>& out) = 0;

  /// Appends a tick event and counts it in `r`.
  void emit_tick(std::vector<FeedEvent>& out, const Tick& t, DecodeResult& r) {
    FeedEvent e;
    e.tick = t;
    e.venue = venue();
    out.push_back(e);
    ++r.ticks;
  }
  /// The symbol's entry; null (counted as a bad value when `symbol` is empty, else as an unknown
  /// symbol) when the item must be skipped.
  const SymbolInfo* lookup(std::string_view symbol) {
    if (symbol.empty()) {
      ++stats_.bad_values;
      return nullptr;
    }
    const SymbolInfo* s = symbols_.find(symbol);
    if (s == nullptr) ++stats_.unknown_symbol;
    return s;
  }
  /// Counts an item skipped for a bad or missing value; returns true ("frame still fine").
  bool skip_bad() {
    ++stats_.bad_values;
    return true;
  }
  /// Appends a gap event for `id` with `missing` ids (saturated).
  void emit_gap(std::vector<FeedEvent>& out, InstrumentId id, TimeNs recv_ts,
                std::uint64_t missing);
  SymbolMap symbols_;
  DecoderStats stats_;
  /// Sequence ids: kept or dropped with each frame by decode(). Other state (Bybit's merged
  /// tickers) is changed only after its frame has parsed whole (Bybit reads the envelope first).
  SeqBook seq_;
};

/// The decoder for `venue`, with its own JSON parser.
[[nodiscard]] std::unique_ptr<Decoder> make_decoder(Venue venue, SymbolMap symbols);

}  // namespace lam::feeds
