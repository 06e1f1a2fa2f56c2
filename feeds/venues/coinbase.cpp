// Coinbase Advanced Trade: `market_trades` (every trade, with its size), `ticker` (best bid/ask),
// `heartbeats`, `subscriptions` acks and errors. `sequence_num` counts every message of the
// connection, so a jump is a gap for every symbol on it. Trade ids are per product and consecutive;
// they are kept across connections, because the snapshot a `market_trades` subscribe answers with
// re-sends the latest trades: each trade is emitted once, and trades missed while disconnected are
// a gap.
#include <algorithm>

#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

class CoinbaseDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  // The connection's sequence restarts; trade ids (keyed by instrument) are the venue's and stay.
  void reset() override { seq_.erase(kConnectionSeq); }

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
    seq_gap_ = false;
    if (auto s = json::u64(seq)) {
      const std::optional<std::uint64_t> last = seq_.get(kConnectionSeq);
      if (last && *s <= *last) {
        ++stats_.out_of_order;
        return {FrameClass::ignored, 0};
      }
      if (last && *s != *last + 1) {
        for (InstrumentId id : symbols_.instruments()) {
          emit_gap(out, id, recv_ts, *s - *last - 1);
        }
        seq_gap_ = true;
      }
      seq_.set(kConnectionSeq, *s);
    }
    if (channel.text == "subscriptions") return {FrameClass::ack, 0};
    if (channel.text == "heartbeats") return {FrameClass::heartbeat, 0};
    const bool trades = channel.text == "market_trades";
    if (!trades && channel.text != "ticker") return {FrameClass::unexpected, 0};
    if (!has_events) return {FrameClass::malformed, 0};
    od::value ev;
    od::array events;
    doc.rewind();
    if (doc.get_object().get(obj) || obj.find_field_unordered("events").get(ev) ||
        ev.get_array().get(events)) {
      return {FrameClass::malformed, 0};
    }
    if (trades) return market_trades(events, timestamp, recv_ts, out);
    const auto exch = timestamp.has_value() ? parse_iso8601(timestamp.text) : std::nullopt;
    if (!exch) {
      ++stats_.bad_values;
      return {FrameClass::data, 0};
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
  /// One `ticker` item: the best bid and ask. Its `price` is the last trade's, which
  /// `market_trades` delivers with the size (emitting it here too would count each trade twice).
  bool ticker(od::object o, TimeNs exch, TimeNs recv_ts, std::vector<FeedEvent>& out,
              DecodeResult& r) {
    Tok product, bid, ask;
    if (!json::for_each_field(o, [&](std::string_view key, od::value v) {
          if (key == "product_id")
            product = json::token(v);
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
    auto b = json::price(bid);
    auto a = json::price(ask);
    if (!b || !a) {
      if (bid.has_value() || ask.has_value()) ++stats_.bad_values;
      return true;  // `ticker_batch` items have no book
    }
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = exch;
    t.instrument = sym->id;
    t.kind = TickKind::bbo;
    t.price = *b;
    t.ask = *a;
    emit_tick(out, t, r);
    return true;
  }

  struct Trade {
    std::uint64_t id = 0;
    InstrumentId instrument = kNoInstrument;
    Tick tick;
  };

  /// `market_trades`: events of `trades`, each item `{trade_id, product_id, price, size, side,
  /// time}` (strings). A `snapshot` event (the subscribe's answer) holds the latest trades: with no
  /// trade of the product seen yet, they happened before we were watching and only set the
  /// baseline; after a reconnect, those newer than the last one seen are emitted. Items are taken
  /// in trade-id order per product whatever order the venue lists them in.
  DecodeResult market_trades(od::array events, const Tok& envelope_ts, TimeNs recv_ts,
                             std::vector<FeedEvent>& out) {
    DecodeResult r{FrameClass::data, 0};
    for (auto e : events) {
      od::object eo;
      if (e.get_object().get(eo)) return {FrameClass::malformed, 0};
      Tok type;
      batch_.clear();
      const bool ok = json::for_each_field(eo, [&](std::string_view key, od::value v) {
        if (key == "type") {
          type = json::token(v);
          return true;
        }
        if (key != "trades") return true;
        od::array items;
        if (v.get_array().get(items)) return false;
        for (auto it : items) {
          od::object io;
          if (it.get_object().get(io) || !trade_item(io, envelope_ts, recv_ts)) return false;
        }
        return true;
      });
      if (!ok) return {FrameClass::malformed, 0};
      const bool snapshot = type.text == "snapshot";
      std::sort(batch_.begin(), batch_.end(), [](const Trade& a, const Trade& b) {
        return a.instrument != b.instrument ? a.instrument < b.instrument : a.id < b.id;
      });
      bool had_baseline = false;
      for (std::size_t i = 0; i < batch_.size(); ++i) {
        const Trade& tr = batch_[i];
        const std::uint64_t key = trade_key(tr.instrument);
        const std::optional<std::uint64_t> last = seq_.get(key);
        if (i == 0 || batch_[i - 1].instrument != tr.instrument) had_baseline = last.has_value();
        if (last && tr.id <= *last) {
          ++stats_.out_of_order;  // the snapshot's re-send, or a duplicate
          continue;
        }
        seq_.set(key, tr.id);
        if (snapshot && !had_baseline) continue;  // traded before we were watching
        // The trades a lost message held: one loss, already reported for every symbol when this
        // frame's sequence_num jumped (issue 33: it was two gaps).
        if (last && tr.id > *last + 1 && !seq_gap_)
          emit_gap(out, tr.instrument, recv_ts, tr.id - *last - 1);
        emit_tick(out, tr.tick, r);
      }
    }
    return r;
  }

  /// Parses one trade into batch_; false only when the item is structurally broken.
  bool trade_item(od::object o, const Tok& envelope_ts, TimeNs recv_ts) {
    Tok id, product, price, size, side, time;
    if (!json::for_each_field(o, [&](std::string_view key, od::value v) {
          if (key == "trade_id")
            id = json::token(v);
          else if (key == "product_id")
            product = json::token(v);
          else if (key == "price")
            price = json::token(v);
          else if (key == "size")
            size = json::token(v);
          else if (key == "side")
            side = json::token(v);
          else if (key == "time")
            time = json::token(v);
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(product.value());
    if (sym == nullptr) return true;
    const auto tid = json::u64(id);
    const auto p = json::price(price);
    const auto q = json::size(size);
    // The trade's own time; the envelope's only for an item without one.
    const Tok& when = time.has_value() ? time : envelope_ts;
    const auto ts = when.has_value() ? parse_iso8601(when.text) : std::nullopt;
    if (!tid || !p || !q || !ts) return skip_bad();
    Trade tr;
    tr.id = *tid;
    tr.instrument = sym->id;
    tr.tick.recv_ts = recv_ts;
    tr.tick.exch_ts = *ts;
    tr.tick.instrument = sym->id;
    tr.tick.kind = TickKind::trade;
    tr.tick.price = *p;
    tr.tick.size = *q;
    tr.tick.venue_seq = static_cast<std::uint32_t>(*tid);
    // `side` is the maker's (the resting order's), not the taker's: in captured pairs a SELL prints
    // above the BUY before it, and Coinbase's Exchange API documents its trades' side as "maker
    // order side" (nautilus_trader's Coinbase adapter reads it so too). The taker sold when the
    // maker bought.
    if (side.text == "BUY") tr.tick.flags |= kTickTakerSell;
    batch_.push_back(tr);
    return true;
  }

  bool seq_gap_ = false;  ///< this frame's sequence_num jumped (its gap is reported)
  static constexpr std::uint64_t kConnectionSeq = ~std::uint64_t{0};
  static std::uint64_t trade_key(InstrumentId id) { return id; }

  std::vector<Trade> batch_;
  od::parser parser_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  return {{"advanced", "wss://advanced-trade-ws.coinbase.com",
           static_cast<std::uint8_t>(kind_bit(TickKind::trade) | kind_bit(TickKind::bbo))}};
}

VenueRules rules() {
  // 1 Hz heartbeats keep the link and give a floor on traffic.
  VenueRules r;
  r.idle_budget = Millis{5'000};
  r.stale_budget = Millis{60'000};  // ticker is emitted on matches only
  r.max_msgs_per_s = 4;             // 8 unauthenticated msgs/s per IP
  r.topics_per_msg = 100;
  return r;
}

std::vector<std::string> sample_symbols() {
  return {"BTC-USD", "ETH-USD"};
}

std::vector<std::string> subscribe(std::string_view /*route*/,
                                   const std::vector<std::string>& symbols, std::size_t per_msg) {
  // Heartbeats first: without them quiet channels are closed after 60-90 s.
  std::vector<std::string> msgs{R"({"type":"subscribe","channel":"heartbeats"})"};
  std::vector<std::string> products;
  for (const std::string& s : symbols) products.push_back(json_quoted(s));
  for (std::string& m : chunked(products, per_msg, [](const std::string&list, std::size_t) {
         return R"({"type":"subscribe","product_ids":[)" + list + R"(],"channel":"ticker"})";
       })) {
    msgs.push_back(std::move(m));
  }
  // Trades with their sizes (the ticker has none); one channel per message.
  for (std::string& m : chunked(products, per_msg, [](const std::string&list, std::size_t) {
         return R"({"type":"subscribe","product_ids":[)" + list + R"(],"channel":"market_trades"})";
       })) {
    msgs.push_back(std::move(m));
  }
  return msgs;
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<CoinbaseDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kCoinbase{Venue::coinbase, "coinbase", routes,     rules,
                                sample_symbols,  subscribe,  new_decoder};

}  // namespace lam::feeds
