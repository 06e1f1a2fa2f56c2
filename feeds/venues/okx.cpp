// OKX v5 public: `mark-price`, `tickers`, `trades` and `funding-rate` pushes
// ({"arg":{..},"data":[..]}), per-arg acks, error events, the 64008 service-upgrade notice and the
// literal text `pong`.
#include <unordered_map>

#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

enum class Channel : std::uint8_t { other, mark_price, tickers, trades, funding_rate };

Channel channel_of(std::string_view c) noexcept {
  if (c == "mark-price") return Channel::mark_price;
  if (c == "tickers") return Channel::tickers;
  if (c == "trades") return Channel::trades;
  if (c == "funding-rate") return Channel::funding_rate;
  return Channel::other;
}

class OkxDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  /// Trade ids are the venue's, per instrument, across connections: they are kept, so the latest
  /// trade OKX pushes on every subscribe sets the baseline the first time and is dropped as a
  /// duplicate after, and trades missed while disconnected are reported as a gap.
  void reset() override {}

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    const std::string_view text(data, len);
    if (text == "pong") return {FrameClass::pong, 0};
    od::document doc;
    od::object obj;
    if (parser_.iterate(data, len, capacity).get(doc) || doc.get_object().get(obj)) {
      return {FrameClass::malformed, 0};
    }
    Tok event, code;
    Channel channel = Channel::other;
    bool has_arg = false, has_data = false;
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "event") {
        event = json::token(v);
      } else if (key == "code") {
        code = json::token(v);
      } else if (key == "arg") {
        has_arg = true;
        od::object a;
        if (v.get_object().get(a)) return false;
        return json::for_each_field(a, [&](std::string_view k, od::value av) {
          if (k == "channel") channel = channel_of(json::token(av).text);
          return true;
        });
      } else if (key == "data") {
        has_data = true;
      }
      return true;
    });
    if (!good || !json::at_end(doc)) return {FrameClass::malformed, 0};
    if (event.present) {
      if (event.text == "subscribe") return {FrameClass::ack, 0};
      if (event.text == "error") return {FrameClass::rejected, 0};
      if (event.text == "notice" && code.text == "64008") return {FrameClass::notice, 0};
      return {FrameClass::ignored, 0};
    }
    // v3's frames name a "table", not an "arg"; a channel of ours always comes with both.
    if (!has_arg || !has_data) return {FrameClass::unexpected, 0};
    if (channel == Channel::other) return {FrameClass::unexpected, 0};
    od::value dv;
    od::array arr;
    doc.rewind();
    if (doc.get_object().get(obj) || obj.find_field_unordered("data").get(dv) ||
        dv.get_array().get(arr)) {
      return {FrameClass::malformed, 0};
    }
    DecodeResult r{FrameClass::data, 0};
    for (auto item : arr) {
      od::object o;
      if (item.get_object().get(o) || !row(channel, o, recv_ts, out, r)) {
        return {FrameClass::malformed, 0};
      }
    }
    return r;
  }

 private:
  bool row(Channel channel, od::object o, TimeNs recv_ts, std::vector<FeedEvent>& out,
           DecodeResult& r) {
    Tok inst, px, ts, bid, ask, sz, side, trade_id, count, rate, funding_time;
    if (!json::for_each_field(o, [&](std::string_view key, od::value v) {
          if (key == "instId")
            inst = json::token(v);
          else if (key == "ts")
            ts = json::token(v);
          else if (key == "markPx" || key == "px")
            px = json::token(v);
          else if (key == "bidPx")
            bid = json::token(v);
          else if (key == "askPx")
            ask = json::token(v);
          else if (key == "sz")
            sz = json::token(v);
          else if (key == "side")
            side = json::token(v);
          else if (key == "tradeId")
            trade_id = json::token(v);
          else if (key == "count")
            count = json::token(v);
          else if (key == "fundingRate")
            rate = json::token(v);
          else if (key == "fundingTime")
            funding_time = json::token(v);
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(inst.value());
    if (sym == nullptr) return true;
    const auto exch = json::ms_time(ts);
    if (!exch) return skip_bad();
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = *exch;
    t.instrument = sym->id;
    switch (channel) {
      case Channel::mark_price: {
        auto p = json::price(px);
        if (!p) return skip_bad();
        t.kind = TickKind::mark;
        t.price = *p;
        break;
      }
      case Channel::tickers: {
        // Pre-open books can be one-sided or crossed; a side sent as "" is simply absent.
        auto b = json::price(bid);
        auto a = json::price(ask);
        if (!b || !a) return skip_bad();
        t.kind = TickKind::bbo;
        t.price = *b;
        t.ask = *a;
        break;
      }
      case Channel::trades: {
        auto p = json::price(px);
        auto q = json::size(sz);
        auto id = json::u64(trade_id);
        auto n = count.present ? json::u64(count) : std::optional<std::uint64_t>(1);
        if (!p || !q || !id || !n || *n == 0 || *n > *id) return skip_bad();
        std::optional<std::int64_t> base;
        if (sym->contract_size != kUnknownContractSize) {
          base = json::scale_size(*q, sym->contract_size);
          if (!base) return skip_bad();
        }
        // `tradeId` is the last id of the aggregation and `count` its length: consecutive
        // messages satisfy tradeId - count == previous tradeId.
        const std::optional<std::uint64_t> last = seq_.get(sym->id);
        if (last && *id <= *last) {
          ++stats_.out_of_order;
          return true;
        }
        if (!last && !first_trade_is_live_) {
          // The latest trade OKX pushes on a subscribe, the first time we see the symbol: it
          // happened before we were watching, so it sets the baseline only, as on every later
          // subscribe (issue 33: it was emitted, a stale trade price as fresh).
          seq_.set(sym->id, *id);
          return true;
        }
        const std::uint64_t first = *id - *n + 1;
        if (last && first > *last + 1) emit_gap(out, sym->id, recv_ts, first - *last - 1);
        seq_.set(sym->id, *id);
        t.kind = TickKind::trade;
        t.price = *p;
        t.venue_seq = static_cast<std::uint32_t>(*id);
        if (base) {
          t.size = *base;
        } else {
          // Contracts of an unknown size: the price stands, the size would be off by the
          // contract size (100x for BTC-USDT-SWAP), so there is none.
          t.flags |= kTickNoSize;
          ++stats_.unsized;
        }
        if (side.text == "sell") t.flags |= kTickTakerSell;
        break;
      }
      case Channel::funding_rate: {
        // `fundingRate` is the rate of the settlement at `fundingTime` (the interval is the
        // venue's: 8 h, some 4 h or 1 h, and it changes; never assumed), up to 16 decimals.
        auto fr = json::rate(rate);
        auto at = json::ms_time(funding_time);
        if (!fr || !at || *at <= 0) return skip_bad();
        t.kind = TickKind::funding;
        t.price = *fr;
        t.size = *at;
        t.ask = 0;  // paid at the mark
        break;
      }
      case Channel::other:
        return true;
    }
    emit_tick(out, t, r);
    return true;
  }

  od::parser parser_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  return {{"public", "wss://ws.okx.com:8443/ws/v5/public",
           static_cast<std::uint8_t>(kind_bit(TickKind::mark) | kind_bit(TickKind::bbo) |
                                     kind_bit(TickKind::trade) | kind_bit(TickKind::funding))}};
}

VenueRules rules() {
  // Closed by the server after 30 s without traffic; we ping at 20 s.
  VenueRules r;
  r.idle_budget = Millis{30'000};
  r.ping_every = Millis{20'000};
  r.ping_text = "ping";
  r.stale_budget = Millis{15'000};  // mark-price: every 10 s when unchanged
  r.max_msgs_per_s = 2;             // 480 requests/h per connection
  r.topics_per_msg = 30;
  return r;
}

std::vector<std::string> sample_symbols() {
  return {"BTC-USDT-SWAP", "ETH-USDT-SWAP"};
}

std::vector<std::string> subscribe(std::string_view /*route*/,
                                   const std::vector<std::string>& symbols, std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    for (const char* ch : {"mark-price", "tickers", "trades", "funding-rate"}) {
      topics.push_back(std::string(R"({"channel":")") + ch + R"(","instId":)" + json_quoted(s) +
                       "}");
    }
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"id":"sub)" + std::to_string(id) + R"(","op":"subscribe","args":[)" + list + "]}";
  });
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<OkxDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kOkx{Venue::okx,     "okx",     routes,     rules,
                           sample_symbols, subscribe, new_decoder};

}  // namespace lam::feeds
