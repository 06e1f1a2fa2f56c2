// Venue frame -> normalized tick, per venue and message type: our decoders (simdjson On-Demand,
// in place) against RapidJSON's DOM (the parser ccapi uses) producing the same tick from the same
// frames in the same run. Decimal text goes through the same fixed-point parser on both sides, so
// the ratio measures the JSON layer. Each benchmark checks its ticks against the other side
// before timing.
//
//   build/release/bench/feeds_parse_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "bench/ratio_report.h"
#include "engine/fixed.h"
#include "feeds/decoder.h"

namespace lam::bench {
namespace {

using feeds::Venue;
namespace rj = rapidjson;

struct Case {
  const char* name;  // venue/type
  Venue venue;
  int line;  // fixture line in tests/data/feeds/<venue>.frames
};

// One fixture frame per message type (tests/data/feeds, from ../shared/venues.md).
const Case kCases[] = {
    {"binance/markPrice", Venue::binance, 0},
    {"binance/bookTicker", Venue::binance, 1},
    {"binance/aggTrade", Venue::binance, 2},
    {"bybit/tickers", Venue::bybit, 2},
    {"bybit/publicTrade", Venue::bybit, 3},
    {"okx/mark-price", Venue::okx, 0},
    {"okx/tickers", Venue::okx, 1},
    {"okx/trades", Venue::okx, 2},
    {"hyperliquid/activeAssetCtx", Venue::hyperliquid, 0},
    {"hyperliquid/trades", Venue::hyperliquid, 1},
    {"hyperliquid/allMids", Venue::hyperliquid, 2},
    {"coinbase/ticker", Venue::coinbase, 1},
    {"coinbase/market_trades", Venue::coinbase, 4},
    {"pyth/price_update", Venue::pyth, 2},
};

std::string fixture(Venue v, int line) {
  std::ifstream in(std::string(LAMINATOR_SOURCE_DIR) + "/tests/data/feeds/" +
                   std::string(feeds::venue_name(v)) + ".frames");
  std::string s;
  for (int i = 0; i <= line; ++i) std::getline(in, s);
  return s;
}

feeds::SymbolMap symbols(Venue v, InstrumentTable& table) {
  feeds::SymbolMap m(v, nullptr);
  for (const char* s : {"BTCUSDT", "BTC-USDT-SWAP", "BTC", "ETH", "BTC-USD"})
    m.add(table, s, kScale);
  m.add(table, feeds::kPythBtcUsd, kScale);
  return m;
}

// ---- RapidJSON DOM baseline: the same fields into the same Tick ----

std::int64_t rj_raw(const rj::Value& v) {
  if (v.IsString()) return parse_raw({v.GetString(), v.GetStringLength()}).value_or(0);
  return v.IsNumber() ? parse_raw(std::to_string(v.GetDouble())).value_or(0) : 0;
}
std::int64_t rj_ms(const rj::Value& v) {
  if (v.IsInt64()) return v.GetInt64() * 1'000'000;
  return v.IsString() ? std::atoll(v.GetString()) * 1'000'000 : 0;
}
std::string_view rj_sv(const rj::Value& v) {
  return v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view{};
}
std::optional<std::int64_t> rj_rate(const rj::Value& v) {
  return v.IsString() ? parse_rate(rj_sv(v)) : std::nullopt;
}

class RapidDecoder {
 public:
  RapidDecoder(Venue v, feeds::SymbolMap m) : venue_(v), map_(std::move(m)) {}

  /// Appends ticks; returns how many.
  std::size_t decode(const std::string& frame, TimeNs recv, std::vector<Tick>& out) {
    doc_.Parse(frame.c_str(), frame.size());
    if (doc_.HasParseError() || !doc_.IsObject()) return 0;
    const std::size_t before = out.size();
    auto emit = [&](std::string_view sym, TickKind k, std::int64_t px, std::int64_t size_or_ask,
                    TimeNs ts) {
      const feeds::SymbolInfo* s = map_.find(sym);
      if (s == nullptr || px <= 0) return;
      Tick t;
      t.recv_ts = recv;
      t.exch_ts = ts;
      t.instrument = s->id;
      t.kind = k;
      t.price = px;
      if (k == TickKind::trade) t.size = size_or_ask;
      if (k == TickKind::bbo) t.ask = size_or_ask;
      out.push_back(t);
    };
    // A funding announcement: the rate (1e-18), the settlement (ns), the price paid at (0: mark).
    auto funding = [&](std::string_view sym, std::optional<std::int64_t> rate, TimeNs at,
                       std::int64_t pay, TimeNs ts) {
      const feeds::SymbolInfo* s = map_.find(sym);
      if (s == nullptr || !rate || at <= 0) return;
      Tick t;
      t.recv_ts = recv;
      t.exch_ts = ts;
      t.instrument = s->id;
      t.kind = TickKind::funding;
      t.price = *rate;
      t.size = at;
      t.ask = pay;
      out.push_back(t);
    };
    switch (venue_) {
      case Venue::binance: {
        const rj::Value& d = doc_.HasMember("data") ? doc_["data"] : doc_;
        const std::string_view e = rj_sv(d["e"]);
        if (e == "markPriceUpdate") {
          emit(rj_sv(d["s"]), TickKind::mark, rj_raw(d["p"]), 0, rj_ms(d["E"]));
          funding(rj_sv(d["s"]), rj_rate(d["r"]), rj_ms(d["T"]), 0, rj_ms(d["E"]));
        } else if (e == "bookTicker") {
          emit(rj_sv(d["s"]), TickKind::bbo, rj_raw(d["b"]), rj_raw(d["a"]), rj_ms(d["T"]));
        } else if (e == "aggTrade") {
          emit(rj_sv(d["s"]), TickKind::trade, rj_raw(d["p"]), rj_raw(d["q"]), rj_ms(d["T"]));
        }
        break;
      }
      case Venue::bybit: {
        const std::string_view topic = rj_sv(doc_["topic"]);
        const rj::Value& d = doc_["data"];
        if (topic.starts_with("tickers.")) {
          const TimeNs ts = rj_ms(doc_["ts"]);
          if (d.HasMember("markPrice")) {
            emit(rj_sv(d["symbol"]), TickKind::mark, rj_raw(d["markPrice"]), 0, ts);
          }
          if (d.HasMember("bid1Price") && d.HasMember("ask1Price")) {
            emit(rj_sv(d["symbol"]), TickKind::bbo, rj_raw(d["bid1Price"]), rj_raw(d["ask1Price"]),
                 ts);
          }
          if (d.HasMember("fundingRate") && d.HasMember("nextFundingTime")) {
            funding(rj_sv(d["symbol"]), rj_rate(d["fundingRate"]), rj_ms(d["nextFundingTime"]), 0,
                    ts);
          }
        } else {
          for (const auto& t : d.GetArray()) {
            emit(rj_sv(t["s"]), TickKind::trade, rj_raw(t["p"]), rj_raw(t["v"]), rj_ms(t["T"]));
          }
        }
        break;
      }
      case Venue::okx: {
        const std::string_view ch = rj_sv(doc_["arg"]["channel"]);
        for (const auto& r : doc_["data"].GetArray()) {
          const TimeNs ts = rj_ms(r["ts"]);
          if (ch == "mark-price") {
            emit(rj_sv(r["instId"]), TickKind::mark, rj_raw(r["markPx"]), 0, ts);
          } else if (ch == "tickers") {
            emit(rj_sv(r["instId"]), TickKind::bbo, rj_raw(r["bidPx"]), rj_raw(r["askPx"]), ts);
          } else {
            emit(rj_sv(r["instId"]), TickKind::trade, rj_raw(r["px"]), rj_raw(r["sz"]), ts);
          }
        }
        break;
      }
      case Venue::hyperliquid: {
        const std::string_view ch = rj_sv(doc_["channel"]);
        const rj::Value& d = doc_["data"];
        if (ch == "activeAssetCtx") {
          emit(rj_sv(d["coin"]), TickKind::mark, rj_raw(d["ctx"]["markPx"]), 0, recv);
          constexpr TimeNs kHour = 3'600'000'000'000;
          if (d["ctx"].HasMember("funding")) {
            funding(rj_sv(d["coin"]), rj_rate(d["ctx"]["funding"]), (recv / kHour + 1) * kHour,
                    rj_raw(d["ctx"]["oraclePx"]), recv);
          }
        } else if (ch == "trades") {
          for (const auto& t : d.GetArray()) {
            emit(rj_sv(t["coin"]), TickKind::trade, rj_raw(t["px"]), rj_raw(t["sz"]),
                 rj_ms(t["time"]));
          }
        } else if (ch == "allMids") {
          for (const auto& m : d["mids"].GetObject()) {
            const std::string_view coin(m.name.GetString(), m.name.GetStringLength());
            if (map_.find(coin) == nullptr) continue;
            const std::int64_t px = rj_raw(m.value);
            emit(coin, TickKind::bbo, px, px, recv);
          }
        }
        break;
      }
      case Venue::pyth: {
        if (rj_sv(doc_["type"]) != "price_update") break;
        const rj::Value& f = doc_["price_feed"];
        const rj::Value& p = f["price"];
        // price x 10^expo on the 1e-9 grid, integers only (as ours; expo >= -9 here).
        std::int64_t v = std::strtoll(p["price"].GetString(), nullptr, 10);
        for (int k = p["expo"].GetInt() + 9; k > 0; --k) v *= 10;
        const std::int64_t pub = p["publish_time"].GetInt64();
        emit(rj_sv(f["id"]), TickKind::mark, v, 0, pub * 1'000'000'000);
        break;
      }
      case Venue::coinbase: {
        const TimeNs ts = parse_iso8601(rj_sv(doc_["timestamp"])).value_or(0);
        if (rj_sv(doc_["channel"]) == "market_trades") {
          // Taken in trade-id order, as ours does.
          std::vector<std::pair<std::uint64_t, const rj::Value*>> trades;
          for (const auto& e : doc_["events"].GetArray()) {
            for (const auto& t : e["trades"].GetArray()) {
              trades.emplace_back(std::strtoull(t["trade_id"].GetString(), nullptr, 10), &t);
            }
          }
          std::sort(trades.begin(), trades.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
          for (const auto& [id, t] : trades) {
            emit(rj_sv((*t)["product_id"]), TickKind::trade, rj_raw((*t)["price"]),
                 rj_raw((*t)["size"]), parse_iso8601(rj_sv((*t)["time"])).value_or(0));
          }
          break;
        }
        for (const auto& e : doc_["events"].GetArray()) {
          for (const auto& t : e["tickers"].GetArray()) {
            emit(rj_sv(t["product_id"]), TickKind::bbo, rj_raw(t["best_bid"]),
                 rj_raw(t["best_ask"]), ts);
          }
        }
        break;
      }
    }
    return out.size() - before;
  }

 private:
  Venue venue_;
  feeds::SymbolMap map_;
  rj::Document doc_;
};

// Both sides must agree on kind, instrument, price, size/ask and exchange time.
bool same_ticks(const std::vector<Tick>& a, const std::vector<Tick>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].instrument != b[i].instrument || a[i].price != b[i].price ||
        a[i].exch_ts != b[i].exch_ts ||
        (a[i].kind == TickKind::trade && a[i].size != b[i].size && b[i].size != 0) ||
        (a[i].kind == TickKind::bbo && a[i].ask != b[i].ask) ||
        (a[i].kind == TickKind::funding && (a[i].size != b[i].size || a[i].ask != b[i].ask))) {
      return false;
    }
  }
  return true;
}

struct Prepared {
  std::string frame;
  std::string padded;
  InstrumentTable table;
  std::unique_ptr<feeds::Decoder> ours;
  std::unique_ptr<RapidDecoder> rapid;
  bool agree = false;

  explicit Prepared(const Case& c) : frame(fixture(c.venue, c.line)) {
    padded = frame + std::string(feeds::kFramePadding, '\0');
    ours = feeds::make_decoder(c.venue, symbols(c.venue, table));
    ours->forget_sequences();  // the fixture's trade is live, as in the loop below
    rapid = std::make_unique<RapidDecoder>(c.venue, symbols(c.venue, table));
    std::vector<feeds::FeedEvent> ev;
    ours->decode(padded.data(), frame.size(), padded.size(), 7, ev);
    std::vector<Tick> a, b;
    for (const auto& e : ev) {
      if (e.kind == feeds::FeedEventKind::tick) a.push_back(e.tick);
    }
    rapid->decode(frame, 7, b);
    agree = same_ticks(a, b);
  }
};

void BM_Ours(benchmark::State& state, const Case* c) {
  Prepared p(*c);
  if (!p.agree) return state.SkipWithError("decoders disagree on the fixture");
  std::vector<feeds::FeedEvent> out;
  out.reserve(16);
  std::uint64_t ticks = 0;
  for (auto _ : state) {
    out.clear();
    // Forgetting the ids keeps sequence checks from rejecting the repeated frame as a duplicate
    // (reset() alone keeps OKX's and Coinbase's trade ids, as it must across reconnects).
    p.ours->reset();
    p.ours->forget_sequences();
    ticks += p.ours->decode(p.padded.data(), p.frame.size(), p.padded.size(), 7, out).ticks;
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns/msg"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["ticks/msg"] =
      static_cast<double>(ticks) / static_cast<double>(state.iterations());
}

void BM_RapidJson(benchmark::State& state, const Case* c) {
  Prepared p(*c);
  if (!p.agree) return state.SkipWithError("decoders disagree on the fixture");
  std::vector<Tick> out;
  out.reserve(16);
  for (auto _ : state) {
    out.clear();
    p.rapid->decode(p.frame, 7, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["ns/msg"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace
}  // namespace lam::bench

int main(int argc, char** argv) {
  using namespace lam::bench;
  std::vector<Ratio> ratios;
  for (const Case& c : kCases) {
    const std::string ours = std::string("Parse/simdjson/") + c.name;
    const std::string rapid = std::string("Parse/rapidjson/") + c.name;
    benchmark::RegisterBenchmark(ours.c_str(), BM_Ours, &c);
    benchmark::RegisterBenchmark(rapid.c_str(), BM_RapidJson, &c);
    ratios.push_back({std::string("rapidjson / simdjson, ") + c.name, rapid, ours,
                      c.venue == lam::feeds::Venue::binance && c.line == 0 ? ">= 3" : ""});
  }
  return run_with_ratios(argc, argv, ratios);
}
