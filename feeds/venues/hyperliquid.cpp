// Hyperliquid: `activeAssetCtx` (markPx), `trades`, `allMids`, subscription responses, error
// strings, `{"channel":"pong"}` and the plain-text connection banner.
#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

enum class Channel : std::uint8_t { other, ctx, trades, mids, pong, ack, error };

Channel channel_of(std::string_view c) noexcept {
  if (c == "activeAssetCtx") return Channel::ctx;
  if (c == "trades") return Channel::trades;
  if (c == "allMids") return Channel::mids;
  if (c == "pong") return Channel::pong;
  if (c == "subscriptionResponse") return Channel::ack;
  if (c == "error") return Channel::error;
  return Channel::other;
}

class HyperliquidDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  void reset() override {}

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    if (data[0] != '{' && data[0] != '[') {
      // The banner ("Websocket connection established.") and any other plain text.
      return {FrameClass::ignored, 0};
    }
    od::document doc;
    od::object obj;
    if (parser_.iterate(data, len, capacity).get(doc) || doc.get_object().get(obj)) {
      return {FrameClass::malformed, 0};
    }
    Channel channel = Channel::other;
    bool has_channel = false, has_data = false;
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "channel") {
        has_channel = true;
        channel = channel_of(json::token(v).text);
      } else if (key == "data") {
        has_data = true;
      }
      return true;
    });
    if (!good || !json::at_end(doc) || !has_channel) return {FrameClass::malformed, 0};
    switch (channel) {
      case Channel::pong:
        return {FrameClass::pong, 0};
      case Channel::ack:
        return {FrameClass::ack, 0};
      case Channel::error:
        return {FrameClass::rejected, 0};
      case Channel::other:
        return {FrameClass::unexpected, 0};
      default:
        break;
    }
    if (!has_data) return {FrameClass::malformed, 0};
    od::value dv;
    doc.rewind();
    if (doc.get_object().get(obj) || obj.find_field_unordered("data").get(dv)) {
      return {FrameClass::malformed, 0};
    }
    DecodeResult r{FrameClass::data, 0};
    bool ok = false;
    if (channel == Channel::ctx) {
      ok = ctx(dv, recv_ts, out, r);
    } else if (channel == Channel::trades) {
      od::array arr;
      if (dv.get_array().get(arr)) return {FrameClass::malformed, 0};
      ok = true;
      for (auto item : arr) {
        od::object o;
        if (item.get_object().get(o) || !trade(o, recv_ts, out, r)) {
          return {FrameClass::malformed, 0};
        }
      }
    } else {
      ok = mids(dv, recv_ts, out, r);
    }
    return ok ? r : DecodeResult{FrameClass::malformed, 0};
  }

 private:
  // {"coin":"BTC","ctx":{"markPx":"79890.0",...}}: no timestamp on the wire.
  bool ctx(od::value dv, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    od::object d;
    if (dv.get_object().get(d)) return false;
    Tok coin, mark, rate, oracle;
    if (!json::for_each_field(d, [&](std::string_view key, od::value v) {
          if (key == "coin") {
            coin = json::token(v);
          } else if (key == "ctx") {
            od::object c;
            if (v.get_object().get(c)) return false;
            return json::for_each_field(c, [&](std::string_view k, od::value cv) {
              if (k == "markPx")
                mark = json::token(cv);
              else if (k == "funding")
                rate = json::token(cv);
              else if (k == "oraclePx")
                oracle = json::token(cv);
              return true;
            });
          }
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(coin.value());
    if (sym == nullptr) return true;
    auto px = json::price(mark);
    if (!px) return skip_bad();
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = recv_ts;
    t.instrument = sym->id;
    t.kind = TickKind::mark;
    t.price = *px;
    t.flags = kTickNoExchTime;
    emit_tick(out, t, r);
    if (!rate.has_value()) return true;  // a spot coin's context has no funding
    // The current hourly rate, paid on the hour (no time on the wire: the next whole hour after
    // the receive time) at the oracle price, not the mark.
    const auto fr = json::rate(rate);
    const auto at = json::price(oracle);
    if (!fr || !at) return skip_bad();
    constexpr TimeNs kHour = 3'600'000'000'000;
    t.kind = TickKind::funding;
    t.price = *fr;
    t.size = (recv_ts / kHour + 1) * kHour;
    t.ask = *at;
    emit_tick(out, t, r);
    return true;
  }

  bool trade(od::object o, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    Tok coin, side, px, sz, time, tid;
    if (!json::for_each_field(o, [&](std::string_view key, od::value v) {
          if (key == "coin")
            coin = json::token(v);
          else if (key == "side")
            side = json::token(v);
          else if (key == "px")
            px = json::token(v);
          else if (key == "sz")
            sz = json::token(v);
          else if (key == "time")
            time = json::token(v);
          else if (key == "tid")
            tid = json::token(v);
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(coin.value());
    if (sym == nullptr) return true;
    auto p = json::price(px);
    auto q = json::size(sz);
    auto ts = json::ms_time(time);
    if (!p || !q || !ts) return skip_bad();
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = *ts;
    t.instrument = sym->id;
    t.kind = TickKind::trade;
    t.price = *p;
    t.size = *q;
    if (auto id = json::u64(tid)) t.venue_seq = static_cast<std::uint32_t>(*id);
    if (side.text == "A") t.flags |= kTickTakerSell;
    emit_tick(out, t, r);
    return true;
  }

  // {"mids":{"BTC":"79889.5",...}}: hundreds of coins; only ours become ticks, the rest are not
  // counted as unknown (allMids is not per-symbol).
  bool mids(od::value dv, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    od::object d;
    if (dv.get_object().get(d)) return false;
    return json::for_each_field(d, [&](std::string_view key, od::value v) {
      if (key != "mids") return true;
      od::object m;
      if (v.get_object().get(m)) return false;
      return json::for_each_field(m, [&](std::string_view coin, od::value pv) {
        const SymbolInfo* sym = symbols_.find(coin);
        if (sym == nullptr) return true;
        auto px = json::price(json::token(pv));
        if (!px) return skip_bad();
        Tick t;
        t.recv_ts = recv_ts;
        t.exch_ts = recv_ts;
        t.instrument = sym->id;
        t.kind = TickKind::bbo;
        t.price = *px;
        t.ask = *px;
        t.flags = kTickNoExchTime | kTickMidOnly;
        emit_tick(out, t, r);
        return true;
      });
    });
  }

  od::parser parser_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  return {{"ws", "wss://api.hyperliquid.xyz/ws",
           static_cast<std::uint8_t>(kind_bit(TickKind::mark) | kind_bit(TickKind::bbo) |
                                     kind_bit(TickKind::trade) | kind_bit(TickKind::funding))}};
}

VenueRules rules() {
  VenueRules r;
  r.idle_budget = Millis{60'000};
  r.ping_every = Millis{50'000};
  r.ping_text = R"({"method":"ping"})";
  r.stale_budget = Millis{15'000};
  r.max_msgs_per_s = 20;  // 2000 messages/min
  r.topics_per_msg = 1;   // one subscription per message
  return r;
}

std::vector<std::string> sample_symbols() {
  return {"BTC", "ETH"};
}

std::vector<std::string> subscribe(std::string_view /*route*/,
                                   const std::vector<std::string>& symbols,
                                   std::size_t /*per_msg: one subscription per message*/) {
  std::vector<std::string> msgs;
  msgs.emplace_back(R"({"method":"subscribe","subscription":{"type":"allMids"}})");
  for (const std::string& s : symbols) {
    for (const char* type : {"activeAssetCtx", "trades"}) {
      msgs.push_back(std::string(R"({"method":"subscribe","subscription":{"type":")") + type +
                     R"(","coin":)" + json_quoted(s) + "}}");
    }
  }
  return msgs;
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<HyperliquidDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kHyperliquid{Venue::hyperliquid, "hyperliquid", routes,     rules,
                                   sample_symbols,     subscribe,     new_decoder};

}  // namespace lam::feeds
