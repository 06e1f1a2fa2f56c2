// Pyth Hermes (WebSocket, `verbose`): `price_update` -> a mark tick of the feed's price, exact for
// any `expo` (integer arithmetic, never `double`); `response` acks and errors, including the
// 24-hour cut-off notice and the rate-limit frame that has no `type`.
//
// An oracle is only as good as it is fresh and tight: an update published longer ago than
// OracleLimits::max_age (publish_time to receive time), or whose confidence interval is wider than
// max_conf_bps of the price, prices nothing: it becomes a `stale` state event for its market
// (reason oracle_stale / oracle_uncertain), so the engine holds the market as for a silent feed.
// `metadata.prev_publish_time` must equal the last `publish_time` seen for the feed; publish
// times are the network's, so they are kept across reconnects: updates missed while away are a gap.
#include "feeds/venues/json.h"
#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

using json::Tok;
namespace od = json::od;

constexpr std::int64_t kMaxPublishTimeS = 9'000'000'000;  // 2255: ns fit an int64

/// `mantissa x 10^expo` as raw fixed-point (1e-9 units), exactly when the grid holds it and
/// rounded half away from zero when it is finer (`rounded` set); nullopt on int64 overflow.
std::optional<std::int64_t> scaled(std::int64_t mantissa, int expo, bool& rounded) {
  const int k = expo + kScaleDigits;
  if (k >= 0) {
    if (k > 18) return mantissa == 0 ? std::optional<std::int64_t>(0) : std::nullopt;
    std::int64_t p = 1, out = 0;
    for (int i = 0; i < k; ++i) p *= 10;
    if (__builtin_mul_overflow(mantissa, p, &out)) return std::nullopt;
    return out;
  }
  if (-k > 19) {  // every int64 is below half of 10^19: rounds to 0
    rounded = rounded || mantissa != 0;
    return 0;
  }
  Wide d = 1;
  for (int i = 0; i < -k; ++i) d *= 10;
  const Wide m = mantissa;
  Wide q = m / d;
  const Wide r = m % d;
  if (r != 0) {
    rounded = true;
    if (2 * (r < 0 ? -r : r) >= d) q += m < 0 ? -1 : 1;
  }
  return static_cast<std::int64_t>(q);
}

class PythDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  // Publish times are the oracle network's, not the connection's: kept, so an outage is a gap.
  void reset() override {}
  void set_oracle_limits(const OracleLimits& limits) override { limits_ = limits; }

 protected:
  DecodeResult do_decode(const char* data, std::size_t len, std::size_t capacity, TimeNs recv_ts,
                         std::vector<FeedEvent>& out) override {
    od::document doc;
    od::object obj;
    if (parser_.iterate(data, len, capacity).get(doc) || doc.get_object().get(obj)) {
      return {FrameClass::malformed, 0};
    }
    Tok type, status, error;
    bool has_feed = false, fed = false;
    DecodeResult r{FrameClass::data, 0};
    const bool good = json::for_each_field(obj, [&](std::string_view key, od::value v) {
      if (key == "type") {
        type = json::token(v);
      } else if (key == "price_feed" && type.text == "price_update") {
        // Hermes sends `type` first: the feed is read in this one pass (else after a rewind).
        od::object fo;
        has_feed = fed = true;
        return !v.get_object().get(fo) && price_feed(fo, recv_ts, out, r);
      } else if (key == "status") {
        status = json::token(v);
      } else if (key == "error") {
        // The text may carry escapes (quoted ids): only whether it names the 24 h cut-off matters.
        std::string_view raw = v.raw_json_token();
        error.text = raw;
        error.present = true;
      } else if (key == "price_feed") {
        has_feed = true;
      }
      return true;
    });
    if (!good || !json::at_end(doc)) return {FrameClass::malformed, 0};
    if (type.text == "price_update") {
      if (!has_feed) return {FrameClass::malformed, 0};
      if (fed) return r;
      od::value feed;
      od::object fo;
      doc.rewind();
      if (doc.get_object().get(obj) || obj.find_field_unordered("price_feed").get(feed) ||
          feed.get_object().get(fo)) {
        return {FrameClass::malformed, 0};
      }
      if (!price_feed(fo, recv_ts, out, r)) return {FrameClass::malformed, 0};
      return r;
    }
    if (type.text == "response" || (!type.present && status.present)) {
      if (status.text == "success") return {FrameClass::ack, 0};
      // The server says it is about to close: its 24 h lifetime is up (reconnect at once).
      if (error.text.find("Connection timeout reached") != std::string_view::npos) {
        return {FrameClass::notice, 0};
      }
      // Unknown ids, or the 256 KiB/s rate limit (a frame without `type`, then a close).
      return {FrameClass::rejected, 0};
    }
    return {FrameClass::unexpected, 0};
  }

 private:
  struct Quote {
    Tok price, conf, expo, publish_time;
  };

  static bool read_quote(od::value v, Quote& q) {
    od::object o;
    if (v.get_object().get(o)) return false;
    return json::for_each_field(o, [&](std::string_view key, od::value f) {
      if (key == "price")
        q.price = json::token(f);
      else if (key == "conf")
        q.conf = json::token(f);
      else if (key == "expo")
        q.expo = json::token(f);
      else if (key == "publish_time")
        q.publish_time = json::token(f);
      return true;
    });
  }

  bool price_feed(od::object fo, TimeNs recv_ts, std::vector<FeedEvent>& out, DecodeResult& r) {
    Tok id, slot, prev;
    Quote q;
    bool has_price = false;
    const bool ok = json::for_each_field(fo, [&](std::string_view key, od::value v) {
      if (key == "id") {
        id = json::token(v);
      } else if (key == "price") {
        has_price = true;
        return read_quote(v, q);
      } else if (key == "metadata") {
        od::object mo;
        if (v.type().value_unsafe() == od::json_type::null) return true;  // fields are Options
        if (v.get_object().get(mo)) return false;
        return json::for_each_field(mo, [&](std::string_view k, od::value f) {
          if (k == "slot")
            slot = json::token(f);
          else if (k == "prev_publish_time")
            prev = json::token(f);
          return true;
        });
      }
      return true;
    });
    if (!ok) return false;
    std::string_view feed = id.value();
    if (feed.starts_with("0x")) feed.remove_prefix(2);
    const SymbolInfo* sym = lookup(feed);
    if (sym == nullptr) return true;
    const auto mantissa = json::i64(q.price);
    const auto conf_m = json::u64(q.conf);
    const auto expo = json::i64(q.expo);
    const auto published = json::i64(q.publish_time);
    if (!has_price || !mantissa || !conf_m || !expo || !published || *expo < -64 || *expo > 64 ||
        *published <= 0 || *published > kMaxPublishTimeS ||
        *conf_m > static_cast<std::uint64_t>(INT64_MAX)) {
      return skip_bad();
    }
    bool rounded = false;
    const auto price = scaled(*mantissa, static_cast<int>(*expo), rounded);
    const auto conf = scaled(static_cast<std::int64_t>(*conf_m), static_cast<int>(*expo), rounded);
    // A non-positive price marks nothing; the engine's range is +-kMaxRaw (as for every venue).
    if (!price || !conf || *price <= 0 || *price > kMaxRaw || *conf > kMaxRaw) return skip_bad();
    if (rounded) ++stats_.rounded;
    const std::uint64_t pt = static_cast<std::uint64_t>(*published);
    // Order: by slot when the update has one (two updates may share a publish second), else by
    // publish time. Not newer: a duplicate or late update, dropped.
    const auto sl = json::u64(slot);
    const std::uint64_t order_key = 2 * std::uint64_t{sym->id}, time_key = order_key + 1;
    const std::optional<std::uint64_t> last_order = seq_.get(order_key);
    const std::optional<std::uint64_t> last_time = seq_.get(time_key);
    if ((sl && last_order && *sl <= *last_order) || (last_time && pt < *last_time) ||
        (!sl && last_time && pt == *last_time)) {
      ++stats_.out_of_order;
      return true;
    }
    // Gap: the update before this one was published after the last one we saw.
    if (last_time) {
      const auto p = json::u64(prev);
      if (p && *p > *last_time) emit_gap(out, sym->id, recv_ts, 1);
    }
    if (sl) seq_.set(order_key, *sl);
    seq_.set(time_key, pt);
    Tick t;
    t.recv_ts = recv_ts;
    t.exch_ts = static_cast<TimeNs>(*published) * 1'000'000'000;
    t.instrument = sym->id;
    t.kind = TickKind::mark;
    t.price = *price;
    t.size = *conf;  // an oracle mark carries its confidence interval (same units as the price)
    if (sl) t.venue_seq = static_cast<std::uint32_t>(*sl);
    // Quality: too old, or too uncertain, to price anything.
    const FeedReason hold =
        recv_ts - t.exch_ts > limits_.max_age.count() * 1'000'000 ? FeedReason::oracle_stale
        : static_cast<Wide>(*conf) * 10'000 > static_cast<Wide>(*price) * limits_.max_conf_bps
            ? FeedReason::oracle_uncertain
            : FeedReason::none;
    if (hold != FeedReason::none) {
      ++(hold == FeedReason::oracle_stale ? stats_.oracle_stale : stats_.oracle_uncertain);
      FeedEvent e;
      e.kind = FeedEventKind::state;
      e.venue = venue();
      e.state = FeedState::stale;
      e.reason = hold;
      e.tick = t;
      out.push_back(e);
      return true;
    }
    emit_tick(out, t, r);
    return true;
  }

  od::parser parser_;
  OracleLimits limits_;
};

}  // namespace

// ---- the venue's connection rules and descriptor (venues.h) ----------------------------------

namespace {

std::vector<Route> routes() {
  // Hermes (Pyth Core): oracle prices only. Since 2026-08-18 it wants an API key
  // (`[feeds.pyth] api_key_env`), sent as `Authorization: Bearer`, never in the URL.
  return {{"hermes", "wss://hermes.pyth.network/ws", kind_bit(TickKind::mark)}};
}

VenueRules rules() {
  // The server pings every 30 s (Beast answers) and pushes a feed only when it updates
  // (~400 ms for crypto); it closes after 24 h, so we reconnect 10 min earlier.
  VenueRules r;
  r.idle_budget = Millis{30'000};
  r.stale_budget = Millis{10'000};
  r.max_msgs_per_s = 2;
  r.topics_per_msg = 100;
  r.max_lifetime = Millis{23LL * 3600 * 1000 + 50 * 60 * 1000};
  return r;
}

std::vector<std::string> sample_symbols() {
  return {std::string(kPythBtcUsd), std::string(kPythEthUsd)};
}

std::vector<std::string> subscribe(std::string_view /*route*/, const std::vector<std::string>& ids,
                                   std::size_t per_msg) {
  // `verbose` for `metadata.prev_publish_time` (the gap check); no `binary` (the VAA is kilobytes
  // we never read). One unknown id fails the whole request (the venue's rule), so ids go in
  // batches and a rejected batch does not take the others with it.
  std::vector<std::string> quoted_ids;
  for (const std::string& id : ids) quoted_ids.push_back(json_quoted(id));
  return chunked(quoted_ids, per_msg, [](const std::string& list, std::size_t) {
    return R"({"type":"subscribe","ids":[)" + list + R"(],"verbose":true})";
  });
}

std::unique_ptr<Decoder> new_decoder(SymbolMap symbols) {
  return std::make_unique<PythDecoder>(std::move(symbols));
}

}  // namespace

const VenueDescriptor kPyth{Venue::pyth,    "pyth",    routes,     rules,
                            sample_symbols, subscribe, new_decoder};

}  // namespace lam::feeds
