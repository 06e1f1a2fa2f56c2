// Coinbase Advanced Trade: `ticker` events (last price and best bid/ask), `heartbeats`,
// `subscriptions` acks and errors. `sequence_num` counts every message of the connection, so a jump
// is a gap for every symbol on it.
#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

class CoinbaseDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  void reset() override { seq_.clear(); }

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    od::document doc;
    od::object obj;
    if (parser_.iterate(data, len, capacity).get(doc) || doc.get_object().get(obj)) {
      return {FrameClass::malformed, 0};
    }
    Tok channel, type, timestamp, seq;
    bool has_events = false;
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "channel")
        channel = json::token(v);
      else if (key == "type")
        type = json::token(v);
      else if (key == "timestamp")
        timestamp = json::token(v);
      else if (key == "sequence_num")
        seq = json::token(v);
      else if (key == "events")
        has_events = true;
      return true;
    });
    if (!good || !json::at_end(doc)) return {FrameClass::malformed, 0};
    if (type.text == "error") return {FrameClass::rejected, 0};
    // The Exchange (Pro) protocol's frames have a "type" and no "channel".
    if (!channel.has_value()) return {FrameClass::unexpected, 0};

    // Sequence check first: every message of the connection counts, whatever its channel.
    if (auto s = json::u64(seq)) {
      const std::optional<std::uint64_t> last = seq_.get(0);  // one sequence per connection
      if (last && *s <= *last) {
        ++stats_.out_of_order;
        return {FrameClass::ignored, 0};
      }
      if (last && *s != *last + 1) {
        for (InstrumentId id : symbols_.instruments()) {
          emit_gap(out, id, recv_ts, *s - *last - 1);
        }
      }
      seq_.set(0, *s);
    }
    if (channel.text == "subscriptions") return {FrameClass::ack, 0};
    if (channel.text == "heartbeats") return {FrameClass::heartbeat, 0};
    if (channel.text != "ticker") return {FrameClass::unexpected, 0};
    if (!has_events) return {FrameClass::malformed, 0};
    const auto exch = timestamp.has_value() ? parse_iso8601(timestamp.text) : std::nullopt;
    if (!exch) {
      ++stats_.bad_values;
      return {FrameClass::data, 0};
    }
    od::value ev;
    od::array events;
    doc.rewind();
    if (doc.get_object().get(obj) || obj.find_field_unordered("events").get(ev) ||
        ev.get_array().get(events)) {
      return {FrameClass::malformed, 0};
    }
    DecodeResult r{FrameClass::data, 0};
    for (auto e : events) {
      od::object eo;
      if (e.get_object().get(eo)) return {FrameClass::malformed, 0};
      const bool ok = json::for_each_field(eo, [&](std::string_view key, od::value v) {
        if (key != "tickers") return true;
        od::array tickers;
        if (v.get_array().get(tickers)) return false;
        for (auto t : tickers) {
          od::object to;
          if (t.get_object().get(to) || !ticker(to, *exch, recv_ts, out, r)) return false;
        }
        return true;
      });
      if (!ok) return {FrameClass::malformed, 0};
    }
    return r;
  }

 private:
  bool ticker(od::object o, TimeNs exch, TimeNs recv_ts, std::vector<FeedEvent>& out,
              DecodeResult& r) {
    Tok product, price, bid, ask;
    if (!json::for_each_field(o, [&](std::string_view key, od::value v) {
          if (key == "product_id")
            product = json::token(v);
          else if (key == "price")
            price = json::token(v);
          else if (key == "best_bid")
            bid = json::token(v);
          else if (key == "best_ask")
            ask = json::token(v);
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(product.value());
    if (sym == nullptr) return true;
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = exch;
    t.instrument = sym->id;
    // The ticker is emitted on matches: `price` is the last trade price (no size on this channel).
    if (auto p = json::price(price)) {
      t.kind = TickKind::trade;
      t.price = *p;
      t.flags = kTickNoSize;
      emit_tick(out, t, r);
    } else if (price.has_value()) {
      ++stats_.bad_values;
    }
    auto b = json::price(bid);
    auto a = json::price(ask);
    if (b && a) {
      t.kind = TickKind::bbo;
      t.price = *b;
      t.ask = *a;
      t.flags = 0;
      emit_tick(out, t, r);
    } else if (bid.has_value() || ask.has_value()) {
      ++stats_.bad_values;
    }
    return true;
  }

  od::parser parser_;
};

}  // namespace

std::unique_ptr<Decoder> make_coinbase_decoder(SymbolMap symbols) {
  return std::make_unique<CoinbaseDecoder>(std::move(symbols));
}

}  // namespace lam::feeds
