#include "feeds/protocol.h"

#include "engine/tick.h"
#include "feeds/feed_event.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {

std::vector<Route> venue_routes(Venue v) {
  const std::uint8_t mark = kind_bit(TickKind::mark), trade = kind_bit(TickKind::trade),
                     bbo = kind_bit(TickKind::bbo);
  switch (v) {
    case Venue::binance:
      // Since 2026-04 markPrice/aggTrade live on /market and bookTicker on /public only.
      return {{"market", "wss://fstream.binance.com/market/stream",
               static_cast<std::uint8_t>(mark | trade)},
              {"public", "wss://fstream.binance.com/public/stream", bbo}};
    case Venue::bybit:
      return {{"linear", "wss://stream.bybit.com/v5/public/linear",
               static_cast<std::uint8_t>(mark | bbo | trade)}};
    case Venue::okx:
      return {{"public", "wss://ws.okx.com:8443/ws/v5/public",
               static_cast<std::uint8_t>(mark | bbo | trade)}};
    case Venue::hyperliquid:
      return {
          {"ws", "wss://api.hyperliquid.xyz/ws", static_cast<std::uint8_t>(mark | bbo | trade)}};
    case Venue::coinbase:
      return {{"advanced", "wss://advanced-trade-ws.coinbase.com",
               static_cast<std::uint8_t>(trade | bbo)}};
    case Venue::pyth:
      // Hermes (Pyth Core): oracle prices only. Since 2026-08-18 it wants an API key
      // (`[feeds.pyth] api_key_env`), sent as `Authorization: Bearer`, never in the URL.
      return {{"hermes", "wss://hermes.pyth.network/ws", mark}};
  }
  return {};
}

std::vector<std::string> sample_symbols(Venue v) {
  switch (v) {
    case Venue::binance:
    case Venue::bybit:
      return {"BTCUSDT", "ETHUSDT"};
    case Venue::okx:
      return {"BTC-USDT-SWAP", "ETH-USDT-SWAP"};
    case Venue::hyperliquid:
      return {"BTC", "ETH"};
    case Venue::coinbase:
      return {"BTC-USD", "ETH-USD"};
    case Venue::pyth:
      return {std::string(kPythBtcUsd), std::string(kPythEthUsd)};
  }
  return {};
}

VenueRules default_rules(Venue v) {
  VenueRules r;
  switch (v) {
    case Venue::binance:
      // The server pings every 3 min (Beast answers control pings); markPrice@1s arrives every
      // second, so 10 s of silence means a dead or mis-routed link. 10 incoming msgs/s limit.
      r.idle_budget = Millis{10'000};
      r.stale_budget = Millis{5'000};
      r.max_msgs_per_s = 4;
      r.topics_per_msg = 50;
      r.max_lifetime = Millis{23LL * 3600 * 1000 + 50 * 60 * 1000};  // 24 h cap, 10 min early
      break;
    case Venue::bybit:
      r.idle_budget = Millis{30'000};
      r.ping_every = Millis{20'000};
      r.ping_text = R"({"req_id":"ping","op":"ping"})";
      r.stale_budget = Millis{10'000};
      r.max_msgs_per_s = 5;
      r.topics_per_msg = 10;
      break;
    case Venue::okx:
      // Closed by the server after 30 s without traffic; we ping at 20 s.
      r.idle_budget = Millis{30'000};
      r.ping_every = Millis{20'000};
      r.ping_text = "ping";
      r.stale_budget = Millis{15'000};  // mark-price: every 10 s when unchanged
      r.max_msgs_per_s = 2;             // 480 requests/h per connection
      r.topics_per_msg = 30;
      break;
    case Venue::hyperliquid:
      r.idle_budget = Millis{60'000};
      r.ping_every = Millis{50'000};
      r.ping_text = R"({"method":"ping"})";
      r.stale_budget = Millis{15'000};
      r.max_msgs_per_s = 20;  // 2000 messages/min
      r.topics_per_msg = 1;   // one subscription per message
      break;
    case Venue::coinbase:
      // 1 Hz heartbeats keep the link and give a floor on traffic.
      r.idle_budget = Millis{5'000};
      r.stale_budget = Millis{60'000};  // ticker is emitted on matches only
      r.max_msgs_per_s = 4;             // 8 unauthenticated msgs/s per IP
      r.topics_per_msg = 100;
      break;
    case Venue::pyth:
      // The server pings every 30 s (Beast answers) and pushes a feed only when it updates
      // (~400 ms for crypto); it closes after 24 h, so we reconnect 10 min earlier.
      r.idle_budget = Millis{30'000};
      r.stale_budget = Millis{10'000};
      r.max_msgs_per_s = 2;
      r.topics_per_msg = 100;
      r.max_lifetime = Millis{23LL * 3600 * 1000 + 50 * 60 * 1000};
      break;
  }
  return r;
}

std::vector<std::string> subscribe_messages(Venue v, std::string_view route,
                                            const std::vector<std::string>& symbols,
                                            std::size_t topics_per_msg) {
  const std::size_t per = topics_per_msg == 0 ? 1 : topics_per_msg;
  switch (v) {
    case Venue::binance:
      return binance_subscribe(route, symbols, per);
    case Venue::bybit:
      return bybit_subscribe(symbols, per);
    case Venue::okx:
      return okx_subscribe(symbols, per);
    case Venue::hyperliquid:
      return hyperliquid_subscribe(symbols);
    case Venue::coinbase:
      return coinbase_subscribe(symbols, per);
    case Venue::pyth:
      return pyth_subscribe(symbols, per);
  }
  return {};
}

}  // namespace lam::feeds
