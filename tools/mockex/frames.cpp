#include "tools/mockex/frames.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "engine/timefmt.h"
#include "feeds/protocol.h"

namespace lam::mockex {

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

std::int64_t start_price(std::string_view symbol) {
  // Pyth feeds are named by id.
  if (symbol == feeds::kPythBtcUsd) return 7'989'341;
  if (symbol == feeds::kPythEthUsd) return 315'285;
  if (symbol == feeds::kPythSolUsd) return 18'341;
  if (symbol.starts_with("BTC") || symbol.starts_with("btc")) return 7'989'341;
  if (symbol.starts_with("ETH") || symbol.starts_with("eth")) return 315'285;
  if (symbol.starts_with("SOL") || symbol.starts_with("sol")) return 18'341;
  return 10'000 + static_cast<std::int64_t>(std::hash<std::string_view>{}(symbol) % 90'000);
}

/// "2026-09-06T01:30:00.512093114Z": Coinbase's 9 fractional digits, from a time in ms with
/// `ns_tail` supplying the digits below the millisecond.
std::string rfc3339(std::int64_t ms, std::uint64_t ns_tail) {
  std::string s = format_iso8601_ms(ms * 1'000'000);  // "...T01:30:00.512Z"
  char tail[8];
  std::snprintf(tail, sizeof tail, "%06llu", static_cast<unsigned long long>(ns_tail % 1'000'000));
  s.insert(s.size() - 1, tail);
  return s;
}

}  // namespace

FrameGenerator::FrameGenerator(Venue venue, std::uint64_t seed) : venue_(venue), rng_(seed) {}

FrameGenerator::SymbolState& FrameGenerator::state(const std::string& symbol) {
  auto it = symbols_.find(symbol);
  if (it == symbols_.end()) {
    it = symbols_.emplace(symbol, SymbolState{}).first;
    it->second.px = start_price(symbol);
  }
  return it->second;
}

std::uint64_t& FrameGenerator::trade_id(SymbolState& s, const std::string& symbol) {
  if (shared_ids_ == nullptr) return s.trade_id;
  return shared_ids_->try_emplace(symbol, s.trade_id).first->second;
}

std::string FrameGenerator::trades_snapshot(const std::vector<std::string>& products,
                                            std::int64_t now_ms) {
  std::string items;
  for (const std::string& p : products) {
    SymbolState& s = state(p);
    const std::uint64_t last = trade_id(s, p);
    constexpr std::uint64_t kSnapshotTrades = 5;
    for (std::uint64_t id = last; id + kSnapshotTrades > last && id > 0; --id) {
      if (!items.empty()) items += ',';
      items += R"({"trade_id":")" + std::to_string(id) + R"(","product_id":")" + p +
               R"(","price":")" + price(s) + R"(","size":"0.01000000","side":"BUY","time":")" +
               rfc3339(now_ms - 1000, 0) + R"("})";
    }
  }
  const std::uint64_t seq = ++seq_;
  return R"({"channel":"market_trades","client_id":"","timestamp":")" + rfc3339(now_ms, seq) +
         R"(","sequence_num":)" + std::to_string(seq) +
         R"(,"events":[{"type":"snapshot","trades":[)" + items + "]}]}";
}

std::string FrameGenerator::okx_latest_trade(const std::string& symbol, std::int64_t now_ms) {
  SymbolState& s = state(symbol);
  const std::uint64_t id = trade_id(s, symbol);
  return R"({"arg":{"channel":"trades","instId":")" + symbol + R"("},"data":[{"instId":")" +
         symbol + R"(","tradeId":")" + std::to_string(id) + R"(","px":")" + price(s) +
         R"(","sz":"1","side":"buy","ts":")" + std::to_string(now_ms - 1000) +
         R"(","count":"1","source":"0","seqId":)" + std::to_string(s.book_id) + "}]}";
}

std::string FrameGenerator::price(const SymbolState& s, int offset_cents) const {
  const std::int64_t v = s.px + offset_cents;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(v / 100),
                static_cast<long long>(v % 100));
  return buf;
}

void FrameGenerator::pin_price(const std::string& symbol, std::int64_t cents) {
  SymbolState& s = state(symbol);
  s.pinned = cents > 0;
  if (cents > 0) s.px = cents;
}

void FrameGenerator::pin_funding(const std::string& symbol, std::string rate) {
  state(symbol).funding = std::move(rate);
}

std::int64_t FrameGenerator::next_funding_ms(std::int64_t now_ms, int hours) {
  const std::int64_t grid = std::int64_t{hours} * 3'600'000;
  return (now_ms / grid + 1) * grid;
}

std::string FrameGenerator::next(const Topic& t, std::int64_t now_ms, bool skip_seq) {
  // Long: the mock's frame templates, one case per venue and topic kind (the venues' own formats,
  // ../shared/venues.md).
  const std::string ms = std::to_string(now_ms);
  std::string out;
  if (t.stream == Stream::heartbeat) {
    ++seq_;
    if (skip_seq) ++seq_;
    return R"({"channel":"heartbeats","client_id":"","timestamp":")" + rfc3339(now_ms, seq_) +
           R"(","sequence_num":)" + std::to_string(seq_) +
           R"(,"events":[{"current_time":"2026-09-06 01:30:01.1219 +0000 UTC m=+91717.52","heartbeat_counter":)" +
           std::to_string(++heartbeat_) + "}]}";
  }
  SymbolState& s = state(t.symbol);
  // Random walk in cents, never below 1.00 (unless pinned).
  if (walk_bps_ > 0 && shared_px_ != nullptr) {
    // One market per venue: start from where the venue's other connections left it.
    const auto [it, fresh] = shared_px_->try_emplace(t.symbol, s.px);
    if (!s.pinned) s.px = it->second;
    // BTC quotes in 0.1 on the venues we mimic; the rest in 0.01.
    const std::int64_t tick =
        t.symbol.find("BTC") != std::string::npos || t.symbol == feeds::kPythBtcUsd ? 10 : 1;
    const double u = static_cast<double>(rng_() % 2001) / 1000.0 - 1.0;  // [-1, 1]
    const double amp = static_cast<double>(s.px) * walk_bps_ / 10'000.0;
    const std::int64_t step = static_cast<std::int64_t>(amp * u / static_cast<double>(tick)) * tick;
    if (!s.pinned && s.px + step > 100) s.px += step;
    it->second = s.px;
  } else {
    const int step = static_cast<int>(rng_() % 5) - 2;
    if (!s.pinned && s.px + step > 100) s.px += step;
  }
  const std::string px = price(s);
  const std::string bid = price(s, -1);
  const std::string ask = price(s, 1);
  const bool sell = (rng_() & 1) != 0;
  const std::string qty = "0." + std::to_string(100 + rng_() % 900);
  switch (venue_) {
    case Venue::binance: {
      const std::string l = lower(t.symbol), u = upper(t.symbol);
      if (t.stream == Stream::mark) {
        return R"({"stream":")" + l + R"(@markPrice@1s","data":{"e":"markPriceUpdate","E":)" + ms +
               R"(,"s":")" + u + R"(","p":")" + px + R"(000000","P":")" + px + R"(000000","i":")" +
               px + R"(000000","r":")" + s.funding + R"(","T":)" +
               std::to_string(next_funding_ms(now_ms)) + "}}";
      }
      if (t.stream == Stream::trade) {
        std::uint64_t& tid = trade_id(s, t.symbol);
        tid += skip_seq ? 2 : 1;
        return R"({"stream":")" + l + R"(@aggTrade","data":{"e":"aggTrade","E":)" + ms +
               R"(,"a":)" + std::to_string(tid) + R"(,"s":")" + u + R"(","p":")" + px +
               R"(","q":")" + qty + R"(","nq":")" + qty +
               R"(","f":7297376181,"l":7297376185,"T":)" + ms + R"(,"m":)" +
               (sell ? "true" : "false") + "}}";
      }
      s.book_id += 1 + rng_() % 3;
      return R"({"stream":")" + l + R"(@bookTicker","data":{"e":"bookTicker","u":)" +
             std::to_string(s.book_id) + R"(,"s":")" + u + R"(","b":")" + bid +
             R"(","B":"5.118","a":")" + ask + R"(","A":"0.212","T":)" + ms + R"(,"E":)" + ms + "}}";
    }
    case Venue::bybit: {
      if (t.stream == Stream::trade) {
        return R"({"topic":"publicTrade.)" + t.symbol + R"(","type":"snapshot","ts":)" + ms +
               R"(,"data":[{"T":)" + ms + R"(,"s":")" + t.symbol + R"(","S":")" +
               (sell ? "Sell" : "Buy") + R"(","v":")" + qty + R"(","p":")" + px +
               R"(","L":"PlusTick","i":"6b9e2f1c-8d4a-5c3e-9f71-0a2b4c6d8e10","BT":false,"RPI":false,"seq":)" +
               std::to_string(++s.book_id) + "}]}";
      }
      const bool snapshot =
          s.tickers++ == 0 || (snapshot_every_ != 0 && s.tickers % snapshot_every_ == 0);
      const std::string head = R"({"topic":"tickers.)" + t.symbol + R"(","type":")" +
                               (snapshot ? "snapshot" : "delta") + R"(","data":{"symbol":")" +
                               t.symbol + "\"";
      const std::string tail = R"(},"cs":)" + std::to_string(++s.book_id) + R"(,"ts":)" + ms + "}";
      if (snapshot) {
        return head + R"(,"tickDirection":"PlusTick","lastPrice":")" + px + R"(","markPrice":")" +
               px + R"(","indexPrice":")" + px + R"(","bid1Price":")" + bid +
               R"(","bid1Size":"1.496","ask1Price":")" + ask +
               R"(","ask1Size":"3.112","fundingIntervalHour":"8","fundingCap":"0.005",)" +
               R"("nextFundingTime":")" + std::to_string(next_funding_ms(now_ms)) +
               R"(","fundingRate":")" + s.funding + R"(","preOpenPrice":"","preQty":"")" + tail;
      }
      // Partial deltas, as the venue sends them: one side of the book, or the mark alone.
      switch (rng_() % 3) {
        case 0:
          return head + R"(,"bid1Price":")" + bid + R"(","bid1Size":"1.2")" + tail;
        case 1:
          return head + R"(,"ask1Price":")" + ask + R"(","ask1Size":"0.7")" + tail;
        default:
          return head + R"(,"markPrice":")" + px + R"(","indexPrice":")" + px +
                 R"(","fundingRate":")" + s.funding + "\"" + tail;
      }
    }
    case Venue::okx: {
      const std::string arg = R"({"arg":{"channel":")";
      const std::string inst = R"(","instId":")" + t.symbol + R"("},"data":[{)";
      if (t.stream == Stream::mark) {
        return arg + "mark-price" + inst + R"("instType":"SWAP","instId":")" + t.symbol +
               R"(","markPx":")" + px + R"(","ts":")" + ms + R"("}]})";
      }
      if (t.stream == Stream::funding) {
        const std::int64_t at = next_funding_ms(now_ms);
        return arg + "funding-rate" + inst + R"("instType":"SWAP","instId":")" + t.symbol +
               R"(","method":"current_period","formulaType":"withRate","fundingRate":")" +
               s.funding + R"(","nextFundingRate":"","fundingTime":")" + std::to_string(at) +
               R"(","nextFundingTime":")" + std::to_string(at + 8 * 3'600'000) +
               R"(","minFundingRate":"-0.0075","maxFundingRate":"0.0075","interestRate":"0.0001",)" +
               R"("impactValue":"20000","settState":"processing","settFundingRate":")" + s.funding +
               R"(","premium":"0.0001","ts":")" + ms + R"("}]})";
      }
      if (t.stream == Stream::book) {
        return arg + "tickers" + inst + R"("instType":"SWAP","instId":")" + t.symbol +
               R"(","last":")" + px + R"(","lastSz":"12","askPx":")" + ask +
               R"(","askSz":"318","bidPx":")" + bid + R"(","bidSz":"94","ts":")" + ms + R"("}]})";
      }
      const std::uint64_t count = 1 + rng_() % 3;
      std::uint64_t& tid = trade_id(s, t.symbol);
      tid += count + (skip_seq ? 1 : 0);
      return arg + "trades" + inst + R"("instId":")" + t.symbol + R"(","tradeId":")" +
             std::to_string(tid) + R"(","px":")" + px + R"(","sz":")" +
             std::to_string(1 + rng_() % 50) + R"(","side":")" + (sell ? "sell" : "buy") +
             R"(","ts":")" + ms + R"(","count":")" + std::to_string(count) +
             R"(","source":"0","seqId":)" + std::to_string(++s.book_id) + "}]}";
    }
    case Venue::hyperliquid: {
      if (t.stream == Stream::mark) {
        return R"({"channel":"activeAssetCtx","data":{"coin":")" + t.symbol +
               R"(","ctx":{"funding":")" + s.funding +
               R"(","openInterest":"35409.41702","prevDayPx":")" + px +
               R"(","dayNtlVlm":"845822222.7523186","premium":"-0.0004003904","oraclePx":")" + px +
               R"(","markPx":")" + px + R"(","midPx":")" + px + R"(","impactPxs":[")" + bid +
               R"(",")" + ask + R"("],"dayBaseVlm":"10601.61339"}}})";
      }
      if (t.stream == Stream::trade) {
        return R"({"channel":"trades","data":[{"coin":")" + t.symbol + R"(","side":")" +
               (sell ? "A" : "B") + R"(","px":")" + px + R"(","sz":")" + qty +
               R"(","hash":"0x176d4acec02dfa3c18e70443c6e66601ac0062b45b21190ebb35f6217f21d426","time":)" +
               ms + R"(,"tid":)" + std::to_string(++trade_id(s, t.symbol)) +
               R"(,"users":["0xecb63caa47c7c4e77f60f1ce858cf28dc2b82b00","0x4d2a7e458a9091cf678b3a4a21d4be019870ebaa"]}]})";
      }
      return R"({"channel":"allMids","data":{"mids":{")" + t.symbol + R"(":")" + px +
             R"(","@1":"12.503","PURR/USDC":"0.18422"}}})";
    }
    case Venue::pyth: {
      // Hermes verbose price_update: price and conf as integer strings with expo -8, publish
      // times in seconds, a slot per update (venue-wide, like trade ids). `skip_seq` makes the
      // update's prev_publish_time name an update this connection never sent (a gap).
      const std::int64_t now_s = now_ms / 1000 - publish_lag_s_;
      std::int64_t prev = s.last_publish == 0 ? now_s : s.last_publish;
      std::int64_t pub = std::max(now_s, s.last_publish);
      if (skip_seq && s.last_publish != 0) {
        prev = s.last_publish + 1;
        pub = std::max(pub, prev + 1);
      }
      s.last_publish = pub;
      const std::uint64_t slot = ++trade_id(s, t.symbol);
      const std::string mantissa = std::to_string(s.px) + "000000";
      const std::string conf = std::to_string(s.px * 1'000'000 / 2'000);  // 5 bps
      const bool null_meta = slot % 97 == 0;  // metadata fields are Options: sometimes null
      return R"({"type":"price_update","price_feed":{"id":")" + t.symbol +
             R"(","price":{"price":")" + mantissa + R"(","conf":")" + conf +
             R"(","expo":-8,"publish_time":)" + std::to_string(pub) +
             R"(},"ema_price":{"price":")" + mantissa + R"(","conf":")" + conf +
             R"(","expo":-8,"publish_time":)" + std::to_string(pub) + R"(},"metadata":{"slot":)" +
             (null_meta ? std::string("null") : std::to_string(slot)) +
             R"(,"emitter_chain":26,"price_service_receive_time":)" + std::to_string(pub) +
             R"(,"prev_publish_time":)" + (null_meta ? std::string("null") : std::to_string(prev)) +
             "}}}";
    }
    case Venue::coinbase: {
      ++seq_;
      if (skip_seq) ++seq_;
      if (t.stream == Stream::trade) {
        const std::uint64_t id = ++trade_id(s, t.symbol);
        return R"({"channel":"market_trades","client_id":"","timestamp":")" +
               rfc3339(now_ms, seq_) + R"(","sequence_num":)" + std::to_string(seq_) +
               R"(,"events":[{"type":"update","trades":[{"trade_id":")" + std::to_string(id) +
               R"(","product_id":")" + t.symbol + R"(","price":")" + px + R"(","size":")" + qty +
               // Coinbase prints the maker's side: a taker sell is a "BUY".
               R"(","side":")" + (sell ? "BUY" : "SELL") + R"(","time":")" + rfc3339(now_ms, id) +
               R"("}]}]})";
      }
      return R"({"channel":"ticker","client_id":"","timestamp":")" + rfc3339(now_ms, seq_) +
             R"(","sequence_num":)" + std::to_string(seq_) +
             R"(,"events":[{"type":"update","tickers":[{"type":"ticker","product_id":")" +
             t.symbol + R"(","price":")" + px +
             R"(","volume_24_h":"8123.41877212","low_24_h":"78950","high_24_h":"80455.55","low_52_w":"49000.01","high_52_w":"126272.76","price_percent_chg_24_h":"0.62141877","best_bid":")" +
             bid + R"(","best_bid_quantity":"0.31250000","best_ask":")" + ask +
             R"(","best_ask_quantity":"0.04811522"}]}]})";
    }
  }
  return out;
}

namespace {

namespace dom = simdjson::dom;

std::string text_of(dom::element e) {
  std::string_view s;
  if (!e.get_string().get(s)) return std::string(s);
  std::int64_t i;
  if (!e.get_int64().get(i)) return std::to_string(i);
  return {};
}

void binance_topics(std::string_view route, dom::array params, SubscribeRequest& r) {
  for (dom::element p : params) {
    std::string_view s;
    if (p.get_string().get(s)) continue;
    const std::size_t at = s.find('@');
    if (at == std::string_view::npos) continue;
    Topic t;
    t.symbol = upper(s.substr(0, at));
    const std::string_view kind = s.substr(at + 1);
    bool market_route = true;
    if (kind.starts_with("markPrice")) {
      t.stream = Stream::mark;
    } else if (kind == "aggTrade") {
      t.stream = Stream::trade;
    } else if (kind == "bookTicker") {
      t.stream = Stream::book;
      market_route = false;
    } else {
      continue;
    }
    (market_route == (route == "market") ? r.topics : r.wrong_route).push_back(std::move(t));
  }
}

}  // namespace

SubscribeRequest parse_subscribe(Venue venue, std::string_view route, std::string_view msg) {
  // Long: the mock's reading of each venue's subscribe message, one case per venue.
  SubscribeRequest r;
  dom::parser parser;
  dom::element doc;
  if (parser.parse(msg.data(), msg.size()).get(doc)) return r;
  switch (venue) {
    case Venue::binance: {
      std::string_view method;
      dom::array params;
      if (doc["method"].get_string().get(method) || method != "SUBSCRIBE") return r;
      r.is_subscribe = true;
      dom::element id;
      if (!doc["id"].get(id)) r.id = text_of(id);
      if (!doc["params"].get_array().get(params)) binance_topics(route, params, r);
      return r;
    }
    case Venue::bybit: {
      std::string_view op;
      dom::array args;
      if (doc["op"].get_string().get(op) || op != "subscribe") return r;
      r.is_subscribe = true;
      std::string_view id;
      if (!doc["req_id"].get_string().get(id)) r.id = std::string(id);
      if (doc["args"].get_array().get(args)) return r;
      for (dom::element a : args) {
        std::string_view s;
        if (a.get_string().get(s)) continue;
        if (s.starts_with("tickers.")) {
          r.topics.push_back({Stream::mark, std::string(s.substr(8))});
        } else if (s.starts_with("publicTrade.")) {
          r.topics.push_back({Stream::trade, std::string(s.substr(12))});
        }
      }
      return r;
    }
    case Venue::okx: {
      std::string_view op;
      dom::array args;
      if (doc["op"].get_string().get(op) || op != "subscribe") return r;
      r.is_subscribe = true;
      std::string_view id;
      if (!doc["id"].get_string().get(id)) r.id = std::string(id);
      if (doc["args"].get_array().get(args)) return r;
      for (dom::element a : args) {
        std::string_view ch, inst;
        if (a["channel"].get_string().get(ch) || a["instId"].get_string().get(inst)) continue;
        const Stream st = ch == "mark-price"     ? Stream::mark
                          : ch == "tickers"      ? Stream::book
                          : ch == "funding-rate" ? Stream::funding
                                                 : Stream::trade;
        r.topics.push_back({st, std::string(inst)});
      }
      return r;
    }
    case Venue::hyperliquid: {
      std::string_view method, type, coin;
      if (doc["method"].get_string().get(method) || method != "subscribe") return r;
      r.is_subscribe = true;
      dom::element sub;
      if (doc["subscription"].get(sub) || sub["type"].get_string().get(type)) return r;
      if (type == "allMids") {
        r.topics.push_back({Stream::mids, ""});
      } else if (!sub["coin"].get_string().get(coin)) {
        r.topics.push_back({type == "trades" ? Stream::trade : Stream::mark, std::string(coin)});
      }
      return r;
    }
    case Venue::pyth: {
      std::string_view type;
      dom::array ids;
      if (doc["type"].get_string().get(type) || type != "subscribe") return r;
      r.is_subscribe = true;
      if (doc["ids"].get_array().get(ids)) return r;
      for (dom::element id : ids) {
        std::string_view s;
        if (id.get_string().get(s)) continue;
        if (s.starts_with("0x")) s.remove_prefix(2);
        r.topics.push_back({Stream::mark, std::string(s)});
      }
      return r;
    }
    case Venue::coinbase: {
      std::string_view type, channel;
      if (doc["type"].get_string().get(type) || type != "subscribe") return r;
      r.is_subscribe = true;
      if (doc["channel"].get_string().get(channel)) return r;
      if (channel == "heartbeats") {
        r.topics.push_back({Stream::heartbeat, ""});
        return r;
      }
      dom::array products;
      if ((channel != "ticker" && channel != "market_trades") ||
          doc["product_ids"].get_array().get(products)) {
        return r;
      }
      const Stream st = channel == "ticker" ? Stream::book : Stream::trade;
      for (dom::element p : products) {
        std::string_view s;
        if (!p.get_string().get(s)) r.topics.push_back({st, std::string(s)});
      }
      return r;
    }
  }
  return r;
}

}  // namespace lam::mockex
