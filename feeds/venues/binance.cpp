// Binance USD-M: markPriceUpdate, aggTrade and bookTicker payloads, bare or in the combined-stream
// wrapper {"stream":..,"data":..}, arrays of them (!markPrice@arr), and SUBSCRIBE acks.
#include <unordered_map>

#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

enum class Payload : std::uint8_t { unknown, mark, agg_trade, book_ticker };

Payload payload_kind(std::string_view e) noexcept {
  if (e == "markPriceUpdate") return Payload::mark;
  if (e == "aggTrade") return Payload::agg_trade;
  if (e == "bookTicker") return Payload::book_ticker;
  return Payload::unknown;
}

class BinanceDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  void reset() override { seq_.clear(); }

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    od::document doc;
    if (parser_.iterate(data, len, capacity).get(doc)) return {FrameClass::malformed, 0};
    od::json_type type;
    if (doc.type().get(type)) return {FrameClass::malformed, 0};
    DecodeResult r{FrameClass::data, 0};
    foreign_ = false;
    if (type == od::json_type::array) {
      od::array arr;
      if (doc.get_array().get(arr)) return {FrameClass::malformed, 0};
      if (!payload_array(arr, recv_ts, out, r)) return {FrameClass::malformed, 0};
      return json::at_end(doc) ? r : DecodeResult{FrameClass::malformed, 0};
    }
    od::object obj;
    if (doc.get_object().get(obj)) return {FrameClass::malformed, 0};
    // One pass: the wrapper's "data" is parsed where it appears; a bare payload's fields are
    // collected. Key order is never relied on.
    Fields f;
    bool wrapped = false, single = false, has_result = false, has_error = false, ok = true;
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "data") {
        wrapped = true;
        od::json_type t;
        if (v.type().get(t)) return false;
        if (t == od::json_type::array) {
          od::array arr;
          return !v.get_array().get(arr) && payload_array(arr, recv_ts, out, r);
        }
        od::object p;
        if (v.get_object().get(p)) return false;
        ok = payload(p, recv_ts, out, r);
        single = true;
        return ok;
      }
      if (key == "result") {
        has_result = true;
      } else if (key == "error") {
        has_error = true;
      } else if (key != "stream" && key != "id") {
        f.set(key, v);
      }
      return true;
    });
    if (!good || !ok || !json::at_end(doc)) return {FrameClass::malformed, 0};
    // One stream's payload of an event or a symbol we never subscribed to (we subscribe per
    // symbol and event): a stream that is not ours, counted as unexpected (issue 33). In an array
    // (`!markPrice@arr`) other symbols are the stream's normal content.
    if (wrapped) return single && foreign_ ? DecodeResult{FrameClass::unexpected, 0} : r;
    if (has_error) return {FrameClass::rejected, 0};
    if (has_result) return {FrameClass::ack, 0};
    if (!f.e.present) return {FrameClass::unexpected, 0};
    if (!apply(f, recv_ts, out, r)) return {FrameClass::malformed, 0};
    return foreign_ ? DecodeResult{FrameClass::unexpected, 0} : r;
  }

 private:
  struct Fields {
    Tok e, E, s, p, q, a, b, T, u, m, r;
    void set(std::string_view key, od::value v) noexcept {
      if (key.size() != 1) return;
      switch (key[0]) {
        case 'e':
          e = json::token(v);
          break;
        case 'E':
          E = json::token(v);
          break;
        case 's':
          s = json::token(v);
          break;
        case 'p':
          p = json::token(v);
          break;
        case 'q':
          q = json::token(v);
          break;
        case 'a':
          a = json::token(v);
          break;
        case 'b':
          b = json::token(v);
          break;
        case 'T':
          T = json::token(v);
          break;
        case 'u':
          u = json::token(v);
          break;
        case 'm':
          m = json::token(v);
          break;
        case 'r':
          r = json::token(v);
          break;
        default:
          break;
      }
    }
  };

  bool payload_array(od::array arr, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    for (auto item : arr) {
      od::object o;
      if (item.get_object().get(o)) return false;
      if (!payload(o, recv_ts, out, r)) return false;
    }
    return true;
  }

  bool payload(od::object obj, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    Fields f;
    if (!json::for_each_field(obj, [&](std::string_view key, od::value v) {
          f.set(key, v);
          return true;
        })) {
      return false;
    }
    return apply(f, recv_ts, out, r);
  }

  /// Turns one payload into a tick. False only for a structurally unusable payload; a bad value
  /// or an unknown symbol is counted and skipped.
  bool apply(const Fields& f, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    const Payload kind = payload_kind(f.e.text);
    if (kind == Payload::unknown) {  // another event type: skipped, the caller judges the frame
      foreign_ = true;
      return true;
    }
    const SymbolInfo* sym = lookup(f.s.value());
    if (sym == nullptr) {
      foreign_ = true;
      return true;
    }
    Tick t;
    t.recv_ts = recv_ts;
    t.instrument = sym->id;
    switch (kind) {
      case Payload::mark: {
        auto px = json::price(f.p);
        auto ts = json::ms_time(f.E);
        if (!px || !ts) return skip_bad();
        t.kind = TickKind::mark;
        t.price = *px;
        t.exch_ts = *ts;
        emit_tick(out, t, r);
        funding(f, t, out, r);
        return true;
      }
      case Payload::agg_trade: {
        auto px = json::price(f.p);
        auto qty = json::size(f.q);
        auto ts = json::ms_time(f.T.present ? f.T : f.E);
        auto id = json::u64(f.a);
        if (!px || !qty || !ts || !id) return skip_bad();
        // Aggregate trade ids are contiguous per symbol.
        const std::optional<std::uint64_t> last = seq_.get(sym->id);
        if (last && *id <= *last) {
          ++stats_.out_of_order;
          return true;
        }
        if (last && *id != *last + 1) emit_gap(out, sym->id, recv_ts, *id - *last - 1);
        seq_.set(sym->id, *id);
        t.kind = TickKind::trade;
        t.price = *px;
        t.size = *qty;
        t.exch_ts = *ts;
        t.venue_seq = static_cast<std::uint32_t>(*id);
        if (f.m.text == "true") t.flags |= kTickTakerSell;
        break;
      }
      case Payload::book_ticker: {
        auto bid = json::price(f.b);
        auto ask = json::price(f.a);
        auto ts = json::ms_time(f.T.present ? f.T : f.E);
        auto id = json::u64(f.u);
        if (!bid || !ask || !ts || !id) return skip_bad();
        // `u` is shared with depth updates: monotonic, not contiguous. Drop stale frames only.
        const std::optional<std::uint64_t> last = seq_.get(sym->id | kBookKey);
        if (last && *id <= *last) {
          ++stats_.out_of_order;
          return true;
        }
        seq_.set(sym->id | kBookKey, *id);
        t.kind = TickKind::bbo;
        t.price = *bid;
        t.ask = *ask;
        t.exch_ts = *ts;
        t.venue_seq = static_cast<std::uint32_t>(*id);
        break;
      }
      case Payload::unknown:
        return true;
    }
    emit_tick(out, t, r);
    return true;
  }

  /// The funding rate markPriceUpdate carries beside the mark: `r` for the settlement at `T` (ms).
  /// A delivery contract sends `"r":""` and `"T":0`: no funding, not a bad value.
  void funding(const Fields& f, Tick t, std::vector<FeedEvent>& out, DecodeResult& r) {
    if (!f.r.has_value() || f.T.text == "0") return;
    const auto rate = json::rate(f.r);
    const auto at = json::ms_time(f.T);
    if (!rate || !at || *at <= 0) {
      skip_bad();
      return;
    }
    t.kind = TickKind::funding;
    t.price = *rate;
    t.size = *at;
    t.ask = 0;  // paid at the mark
    emit_tick(out, t, r);
  }

  static constexpr std::uint64_t kBookKey = std::uint64_t{1} << 32;  // seq_: instrument | this
  bool foreign_ = false;  ///< the frame held a payload of an event or symbol not ours
  od::parser parser_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  // Since 2026-04 markPrice/aggTrade live on /market and bookTicker on /public only.
  return {{"market", "wss://fstream.binance.com/market/stream",
           static_cast<std::uint8_t>(kind_bit(TickKind::mark) | kind_bit(TickKind::trade) |
                                     kind_bit(TickKind::funding))},
          {"public", "wss://fstream.binance.com/public/stream", kind_bit(TickKind::bbo)}};
}

VenueRules rules() {
  // The server pings every 3 min (Beast answers control pings); markPrice@1s arrives every
  // second, so 10 s of silence means a dead or mis-routed link. 10 incoming msgs/s limit.
  VenueRules r;
  r.idle_budget = Millis{10'000};
  r.stale_budget = Millis{5'000};
  r.max_msgs_per_s = 4;
  r.topics_per_msg = 50;
  r.max_lifetime = Millis{23LL * 3600 * 1000 + 50 * 60 * 1000};  // 24 h cap, 10 min early
  return r;
}

std::vector<std::string> sample_symbols() {
  return {"BTCUSDT", "ETHUSDT"};
}

std::vector<std::string> subscribe(std::string_view route, const std::vector<std::string>& symbols,
                                   std::size_t per_msg) {
  std::vector<std::string> topics;
  for (const std::string& s : symbols) {
    const std::string l = ascii_lower(s);
    if (route == "public") {
      topics.push_back(json_quoted(l + "@bookTicker"));
    } else {
      topics.push_back(json_quoted(l + "@markPrice@1s"));
      topics.push_back(json_quoted(l + "@aggTrade"));
    }
  }
  return chunked(topics, per_msg, [](const std::string& list, std::size_t id) {
    return R"({"method":"SUBSCRIBE","params":[)" + list + R"(],"id":)" + std::to_string(id) + "}";
  });
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<BinanceDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kBinance{Venue::binance, "binance", routes,     rules,
                               sample_symbols, subscribe, new_decoder};

}  // namespace lam::feeds
