// Bybit v5 linear: `tickers.*` (a snapshot, then partial deltas merged per symbol; a new snapshot
// replaces the state), `publicTrade.*`, subscribe acks and the linear pong.
#include <unordered_map>

#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

class BybitDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  void reset() override { tickers_.clear(); }

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    od::document doc;
    od::object obj;
    if (parser_.iterate(data, len, capacity).get(doc) || doc.get_object().get(obj)) {
      return {FrameClass::malformed, 0};
    }
    // The envelope's key order varies ("ts" before or after "type"), so read the scalars in a
    // first pass and the data in a second.
    Tok topic, type, ts, cs, op, success, ret_msg;
    bool has_data = false;
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "topic")
        topic = json::token(v);
      else if (key == "type")
        type = json::token(v);
      else if (key == "ts")
        ts = json::token(v);
      else if (key == "cs")
        cs = json::token(v);
      else if (key == "op")
        op = json::token(v);
      else if (key == "success")
        success = json::token(v);
      else if (key == "ret_msg")
        ret_msg = json::token(v);
      else if (key == "data")
        has_data = true;
      return true;
    });
    if (!good || !json::at_end(doc)) return {FrameClass::malformed, 0};
    if (!topic.present) {
      if (op.text == "ping" || op.text == "pong") {
        return {
            ret_msg.text == "pong" || op.text == "pong" ? FrameClass::pong : FrameClass::ignored,
            0};
      }
      if (success.present) {
        return {success.text == "true" ? FrameClass::ack : FrameClass::rejected, 0};
      }
      return {FrameClass::unexpected, 0};
    }
    if (!has_data || topic.bad) return {FrameClass::malformed, 0};
    od::value dv;
    doc.rewind();
    if (doc.get_object().get(obj) || obj.find_field("data").get(dv)) {
      return {FrameClass::malformed, 0};
    }
    DecodeResult r{FrameClass::data, 0};
    const auto exch = json::ms_time(ts);
    if (topic.text.starts_with("tickers.")) {
      od::object d;
      if (dv.get_object().get(d)) return {FrameClass::malformed, 0};
      if (!ticker(d, type.text == "snapshot", exch, json::u64(cs), recv_ts, out, r)) {
        return {FrameClass::malformed, 0};
      }
    } else if (topic.text.starts_with("publicTrade.")) {
      od::array arr;
      if (dv.get_array().get(arr)) return {FrameClass::malformed, 0};
      for (auto item : arr) {
        od::object o;
        if (item.get_object().get(o) || !trade(o, recv_ts, out, r)) {
          return {FrameClass::malformed, 0};
        }
      }
    } else {
      return {FrameClass::unexpected, 0};  // a topic we never subscribe (v3's instrument_info...)
    }
    return r;
  }

 private:
  /// Merged ticker state of one symbol; 0 = unknown.
  struct TickerState {
    std::int64_t mark = 0, bid = 0, ask = 0;
    std::int64_t rate = 0;    ///< fundingRate (1e-18), when has_rate
    TimeNs next_funding = 0;  ///< nextFundingTime; 0 = unknown
    bool has_rate = false;
  };

  bool ticker(od::object d, bool snapshot, std::optional<TimeNs> exch,
              std::optional<std::uint64_t> cs, TimeNs recv_ts, std::vector<FeedEvent>& out,
              DecodeResult& r) {
    Tok symbol, mark, bid, ask, rate, next_funding;
    if (!json::for_each_field(d, [&](std::string_view key, od::value v) {
          if (key == "symbol")
            symbol = json::token(v);
          else if (key == "markPrice")
            mark = json::token(v);
          else if (key == "bid1Price")
            bid = json::token(v);
          else if (key == "ask1Price")
            ask = json::token(v);
          else if (key == "fundingRate")
            rate = json::token(v);
          else if (key == "nextFundingTime")
            next_funding = json::token(v);
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(symbol.value());
    if (sym == nullptr) return true;
    if (!exch) return skip_bad();
    TickerState& st = tickers_[sym->id];
    if (snapshot) st = TickerState{};
    // A field missing from a delta is unchanged; "" means "no value" and leaves it unchanged too.
    auto merge = [&](const Tok& t, std::int64_t& slot) {
      if (!t.has_value()) return false;
      auto v = json::price(t);
      if (!v) {
        ++stats_.bad_values;
        return false;
      }
      slot = *v;
      return true;
    };
    const bool mark_changed = merge(mark, st.mark);
    const bool bid_changed = merge(bid, st.bid);
    const bool ask_changed = merge(ask, st.ask);
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = *exch;
    t.instrument = sym->id;
    t.venue_seq = cs ? static_cast<std::uint32_t>(*cs) : 0;
    if (mark_changed) {
      t.kind = TickKind::mark;
      t.price = st.mark;
      emit_tick(out, t, r);
    }
    if ((bid_changed || ask_changed) && st.bid > 0 && st.ask > 0) {
      t.kind = TickKind::bbo;
      t.price = st.bid;
      t.ask = st.ask;
      emit_tick(out, t, r);
    }
    if (funding_changed(rate, next_funding, st) && st.has_rate && st.next_funding > 0) {
      t.kind = TickKind::funding;
      t.price = st.rate;
      t.size = st.next_funding;
      t.ask = 0;  // paid at the mark
      emit_tick(out, t, r);
    }
    return true;
  }

  /// Merges a ticker's funding fields (a dated future's "" is no funding, not a bad value);
  /// true when either changed.
  bool funding_changed(const Tok& rate, const Tok& next, TickerState& st) {
    bool changed = false;
    if (rate.has_value()) {
      if (const auto v = json::rate(rate)) {
        changed = !st.has_rate || st.rate != *v;
        st.rate = *v;
        st.has_rate = true;
      } else {
        ++stats_.bad_values;
      }
    }
    if (next.has_value()) {
      if (const auto at = json::ms_time(next)) {
        changed = changed || st.next_funding != *at;
        st.next_funding = *at;
      } else {
        ++stats_.bad_values;
      }
    }
    return changed;
  }

  bool trade(od::object o, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    Tok T, s, S, v, p, seq;
    if (!json::for_each_field(o, [&](std::string_view key, od::value val) {
          if (key.size() == 1) {
            switch (key[0]) {
              case 'T':
                T = json::token(val);
                break;
              case 's':
                s = json::token(val);
                break;
              case 'S':
                S = json::token(val);
                break;
              case 'v':
                v = json::token(val);
                break;
              case 'p':
                p = json::token(val);
                break;
              default:
                break;
            }
          } else if (key == "seq") {
            seq = json::token(val);
          }
          return true;
        })) {
      return false;
    }
    const SymbolInfo* sym = lookup(s.value());
    if (sym == nullptr) return true;
    auto px = json::price(p);
    auto qty = json::size(v);
    auto ts = json::ms_time(T);
    if (!px || !qty || !ts) return skip_bad();
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = *ts;
    t.instrument = sym->id;
    t.kind = TickKind::trade;
    t.price = *px;
    t.size = *qty;
    if (auto q = json::u64(seq)) t.venue_seq = static_cast<std::uint32_t>(*q);
    if (S.text == "Sell") t.flags |= kTickTakerSell;
    emit_tick(out, t, r);
    return true;
  }

  od::parser parser_;
  std::unordered_map<InstrumentId, TickerState> tickers_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  return {{"linear", "wss://stream.bybit.com/v5/public/linear",
           static_cast<std::uint8_t>(kind_bit(TickKind::mark) | kind_bit(TickKind::bbo) |
                                     kind_bit(TickKind::trade) | kind_bit(TickKind::funding))}};
}

VenueRules rules() {
  VenueRules r;
  r.idle_budget = Millis{30'000};
  r.ping_every = Millis{20'000};
  r.ping_text = R"({"req_id":"ping","op":"ping"})";
  r.stale_budget = Millis{10'000};
  r.max_msgs_per_s = 5;
  r.topics_per_msg = 10;
  return r;
}

std::vector<std::string> sample_symbols() {
  return {"BTCUSDT", "ETHUSDT"};
}

std::vector<std::string> subscribe(std::string_view /*route*/,
                                   const std::vector<std::string>& symbols, std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    topics.push_back(json_quoted("tickers." + s));
    topics.push_back(json_quoted("publicTrade." + s));
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"req_id":"sub-)" + std::to_string(id) + R"(","op":"subscribe","args":[)" + list +
           "]}";
  });
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<BybitDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kBybit{Venue::bybit,   "bybit",   routes,     rules,
                             sample_symbols, subscribe, new_decoder};

}  // namespace lam::feeds
