#pragma once
/// The mock exchange's frame generator: venue-shaped market-data frames for a set of topics, with
/// a deterministic random walk per symbol and per-venue sequence counters. Pure (no I/O, no clock:
/// the caller passes the time), so tests and benchmarks can use the same frames.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "feeds/venue.h"

namespace lam::mockex {

using feeds::Venue;

/// What a topic streams.
enum class Stream : std::uint8_t { mark, trade, book, mids, heartbeat, funding };

struct Topic {
  Stream stream = Stream::mark;
  std::string symbol;  ///< venue spelling ("BTCUSDT", "BTC-USDT-SWAP", "BTC", "BTC-USD")
};

class FrameGenerator {
 public:
  FrameGenerator(Venue venue, std::uint64_t seed);

  /// The next frame for `t` at `now_ms`. `skip_seq` makes this frame's sequence jump (a gap).
  std::string next(const Topic& t, std::int64_t now_ms, bool skip_seq = false);
  /// Bybit: send a full ticker snapshot every `n` ticker frames per symbol (0: only the first).
  void set_snapshot_every(std::uint32_t n) { snapshot_every_ = n; }
  /// Pyth: publish times this many seconds behind the clock (a lagging oracle network); they
  /// never go back, so a lag freezes them until the clock catches up.
  void set_publish_lag_s(std::int64_t s) { publish_lag_s_ = s; }
  /// Fixes a symbol's price (in 1e-2 units) from the next frame on; the random walk stops while a
  /// price is pinned. `cents` <= 0 releases the pin. (Tests drive exact prices with it.)
  void pin_price(const std::string& symbol, std::int64_t cents);
  /// A symbol's funding rate (decimal text, e.g. "-0.0003") from the next frame on; the default
  /// is "0.0001". Binance's markPrice, Bybit's tickers, OKX's funding-rate and Hyperliquid's
  /// asset context carry it, with the venue's next settlement time (8 h grid; Hyperliquid hourly,
  /// no time on its wire).
  void pin_funding(const std::string& symbol, std::string rate);
  /// The next settlement after `now_ms` on a grid of `hours` (the venues' 00:00/08:00/16:00 UTC).
  [[nodiscard]] static std::int64_t next_funding_ms(std::int64_t now_ms, int hours = 8);
  /// Coinbase: the connection-wide sequence_num of the last frame.
  [[nodiscard]] std::uint64_t sequence() const noexcept { return seq_; }
  /// Coinbase: takes the next sequence_num for a non-data message (acks).
  std::uint64_t bump_sequence() noexcept { return ++seq_; }
  /// Coinbase: the `market_trades` snapshot a subscribe is answered with: the latest five trades of
  /// each product (already sent, or before any connection), newest first, as the venue re-sends
  /// them.
  std::string trades_snapshot(const std::vector<std::string>& products, std::int64_t now_ms);
  /// OKX: the latest trade of `symbol` (id: the last generated, or the history before the first),
  /// which the venue pushes on every `trades` subscribe, seen or not.
  std::string okx_latest_trade(const std::string& symbol, std::int64_t now_ms);
  /// Trade ids are the venue's, not the connection's: generators sharing `ids` (symbol -> last id)
  /// continue each other's sequences across reconnects. The map must outlive the generator and be
  /// used from one thread.
  void share_trade_ids(std::unordered_map<std::string, std::uint64_t>* ids) { shared_ids_ = ids; }
  /// Random-walk mode: each frame moves the price by up to `bps` basis points either way, in the
  /// symbol's tick size (BTC 0.1, others 0.01), around a price shared through `prices` (symbol ->
  /// cents) by every connection of the venue, so routes and reconnects quote one market.
  /// 0 (default): the quiet walk of +-2 cents per frame, per connection.
  void set_walk(double bps, std::unordered_map<std::string, std::int64_t>* prices) {
    walk_bps_ = bps;
    shared_px_ = prices;
  }

 private:
  struct SymbolState {
    std::int64_t px = 0;  ///< price in 1e-2 units
    std::uint64_t trade_id = 1'000'000;
    std::uint64_t book_id = 9'000'000'000'000;
    std::uint32_t tickers = 0;
    std::int64_t last_publish = 0;   ///< Pyth: publish_time (s) of the last update
    std::string funding = "0.0001";  ///< the rate, as the venues send it
    bool pinned = false;
  };
  SymbolState& state(const std::string& symbol);
  std::uint64_t& trade_id(SymbolState& s, const std::string& symbol);
  std::string price(const SymbolState& s, int offset_cents = 0) const;

  Venue venue_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, SymbolState> symbols_;
  std::uint32_t snapshot_every_ = 100;
  std::uint64_t seq_ = 0;
  std::uint64_t heartbeat_ = 0;
  std::unordered_map<std::string, std::uint64_t>* shared_ids_ = nullptr;
  std::int64_t publish_lag_s_ = 0;
  double walk_bps_ = 0;
  std::unordered_map<std::string, std::int64_t>* shared_px_ = nullptr;
};

/// Topics a client asked for in one subscribe message (venue syntax), empty when `msg` is not a
/// subscribe request. Binance streams are mapped to their route: `wrong_route` receives those the
/// route does not serve (they are acked and then never pushed, like the real venue).
struct SubscribeRequest {
  bool is_subscribe = false;
  std::string id;  ///< request id to echo ("" when none)
  std::vector<Topic> topics;
  std::vector<Topic> wrong_route;
};
[[nodiscard]] SubscribeRequest parse_subscribe(Venue venue, std::string_view route,
                                               std::string_view msg);

}  // namespace lam::mockex
