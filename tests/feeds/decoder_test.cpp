// Every venue's parser on the fixture frames of ../shared/venues.md, plus the edge cases each venue
// is known for: numbers as strings or JSON numbers, "" meaning absent, exponents, key order,
// non-JSON frames, partial deltas, and sequence gaps.
#include "feeds/decoder.h"

#include <gtest/gtest.h>

#include "engine/fixed.h"
#include "tests/feeds/frames.h"

namespace lam::feeds {
namespace {

using test::decode;
using test::funding_ticks_of;
using test::load_frames;
using test::price_ticks_of;
using test::ticks_of;

constexpr TimeNs kRecv = 1'788'658'200'500'000'000;
constexpr TimeNs kMs = 1'000'000;

std::int64_t raw(std::string_view s) {
  return *parse_raw(s);
}

struct Fixture {
  InstrumentTable table;
  std::unique_ptr<Decoder> dec;
  InstrumentId id = kNoInstrument;
  std::vector<FeedEvent> out;

  Fixture(Venue v, std::vector<std::string> symbols, std::int64_t contract = kScale) {
    SymbolMap map(v, nullptr);
    for (const std::string& s : symbols) {
      const InstrumentId i = map.add(table, s, contract);
      if (id == kNoInstrument) id = i;
    }
    dec = make_decoder(v, std::move(map));
  }
  DecodeResult run(std::string_view frame) { return decode(*dec, frame, kRecv, out); }
};

TEST(BinanceDecoder, FixtureFramesBecomeMarkBboAndTrade) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  for (const std::string& fr : load_frames("binance")) {
    EXPECT_EQ(f.run(fr).cls, FrameClass::data) << fr;
  }
  const auto t = price_ticks_of(f.out);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].kind, TickKind::mark);
  EXPECT_EQ(t[0].price, raw("79893.418125"));
  EXPECT_EQ(t[0].exch_ts, 1'788'658'200'000 * kMs);
  EXPECT_EQ(t[0].recv_ts, kRecv);
  EXPECT_EQ(t[0].instrument, f.id);
  EXPECT_EQ(t[1].kind, TickKind::bbo);
  EXPECT_EQ(t[1].price, raw("79893.40"));
  EXPECT_EQ(t[1].ask, raw("79893.50"));
  EXPECT_EQ(t[1].exch_ts, 1'788'658'200'123 * kMs);
  EXPECT_EQ(t[2].kind, TickKind::trade);
  EXPECT_EQ(t[2].price, raw("79893.50"));
  EXPECT_EQ(t[2].size, raw("0.137"));
  EXPECT_EQ(t[2].exch_ts, 1'788'658'200'041 * kMs);
  EXPECT_EQ(t[2].flags & kTickTakerSell, 0);
  EXPECT_EQ(f.dec->stats().malformed, 0u);
}

TEST(BinanceDecoder, BarePayloadAnyKeyOrderNumbersAndExponents) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  // Bare (raw stream), keys reordered, price as a JSON number with an exponent.
  EXPECT_EQ(
      f.run(R"({"p":7.98934181250E4,"s":"BTCUSDT","E":"1788658200000","e":"markPriceUpdate"})").cls,
      FrameClass::data);
  // Array form (!markPrice@arr), and an empty funding rate for a delivery contract.
  EXPECT_EQ(
      f.run(R"([{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1.000000001","r":"","T":0}])").cls,
      FrameClass::data);
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].price, raw("79893.418125"));
  EXPECT_EQ(t[1].price, 1'000'000'001);
}

TEST(BinanceDecoder, AcksErrorsAndUnknownEvents) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  EXPECT_EQ(f.run(R"({"result":null,"id":1})").cls, FrameClass::ack);
  EXPECT_EQ(f.run(R"({"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1})").cls,
            FrameClass::rejected);
  // Streams we never subscribed to (we subscribe per symbol and event): unexpected, not data
  // (issue 33), wrapped or bare; in an array stream other symbols are its normal content.
  EXPECT_EQ(f.run(R"({"stream":"x","data":{"e":"kline","s":"BTCUSDT"}})").cls,
            FrameClass::unexpected);
  EXPECT_EQ(f.run(R"({"e":"markPriceUpdate","E":1,"s":"ETHUSDT","p":"1"})").cls,
            FrameClass::unexpected);
  EXPECT_EQ(
      f.run(
           R"({"stream":"ethusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"ETHUSDT","a":5,"p":"1","q":"1","T":1,"m":true}})")
          .cls,
      FrameClass::unexpected);
  EXPECT_EQ(f.dec->stats().unknown_symbol, 2u);
  EXPECT_EQ(f.dec->stats().unexpected, 3u);
  EXPECT_EQ(
      f.run(
           R"({"stream":"!markPrice@arr","data":[{"e":"markPriceUpdate","E":1,"s":"ETHUSDT","p":"1"},{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"2"}]})")
          .cls,
      FrameClass::data);
  EXPECT_EQ(f.dec->stats().unexpected, 3u);
  ASSERT_EQ(f.out.size(), 1u);  // BTCUSDT's mark from the array
  EXPECT_EQ(f.out[0].tick.price, raw("2"));
}

TEST(BinanceDecoder, AggTradeGapIsReportedAndStaleIdsDropped) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  auto trade = [](std::uint64_t id) {
    return R"({"e":"aggTrade","E":2,"a":)" + std::to_string(id) +
           R"(,"s":"BTCUSDT","p":"10","q":"1","T":1,"m":true})";
  };
  f.run(trade(100));
  f.run(trade(101));
  f.run(trade(105));  // 102..104 missed
  f.run(trade(103));  // late: dropped
  ASSERT_EQ(f.out.size(), 4u);
  EXPECT_EQ(f.out[2].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[2].count, 3u);
  EXPECT_EQ(f.out[2].tick.instrument, f.id);
  EXPECT_EQ(f.out[3].tick.venue_seq, 105u);
  EXPECT_NE(f.out[3].tick.flags & kTickTakerSell, 0);
  EXPECT_EQ(f.dec->stats().out_of_order, 1u);
  EXPECT_EQ(f.dec->stats().gaps, 1u);
  // A new connection starts a new sequence: no false gap.
  f.dec->reset();
  f.out.clear();
  f.run(trade(900));
  EXPECT_EQ(f.out.size(), 1u);
}

TEST(BinanceDecoder, BookTickerOutOfOrderDropped) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  auto book = [](std::uint64_t u) {
    return R"({"e":"bookTicker","u":)" + std::to_string(u) +
           R"(,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1","T":1,"E":1})";
  };
  f.run(book(10));
  f.run(book(50));  // not contiguous: fine
  f.run(book(20));  // older: dropped
  EXPECT_EQ(ticks_of(f.out).size(), 2u);
  EXPECT_EQ(f.dec->stats().out_of_order, 1u);
  EXPECT_EQ(f.dec->stats().gaps, 0u);
}

TEST(BybitDecoder, SnapshotThenPartialDeltasMerge) {
  Fixture f(Venue::bybit, {"BTCUSDT"});
  const auto frames = load_frames("bybit");
  for (const std::string& fr : frames) EXPECT_EQ(f.run(fr).cls, FrameClass::data) << fr;
  const auto t = price_ticks_of(f.out);
  // snapshot: mark + bbo; delta 1: bbo (bid side only, ask merged); delta 2: mark; trades: 2.
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[0].kind, TickKind::mark);
  EXPECT_EQ(t[0].price, raw("79894.02"));
  EXPECT_EQ(t[1].kind, TickKind::bbo);
  EXPECT_EQ(t[1].ask, raw("79893.40"));
  EXPECT_EQ(t[2].kind, TickKind::bbo);
  EXPECT_EQ(t[2].price, raw("79893.30"));
  EXPECT_EQ(t[2].ask, raw("79893.40"));  // unchanged side kept from the snapshot
  EXPECT_EQ(t[2].exch_ts, 1'788'658'200'204 * kMs);
  EXPECT_EQ(t[3].kind, TickKind::mark);
  EXPECT_EQ(t[4].kind, TickKind::trade);
  EXPECT_EQ(t[4].size, raw("0.012"));
  EXPECT_NE(t[4].flags & kTickTakerSell, 0);
  EXPECT_EQ(t[4].exch_ts, 1'788'658'200'039 * kMs);
}

TEST(BybitDecoder, NewSnapshotResetsStateAndTypeMayFollowData) {
  Fixture f(Venue::bybit, {"BTCUSDT"});
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","bid1Price":"10","ask1Price":"11"},"cs":1,"ts":1})");
  // A re-snapshot with only a bid: the old ask must not survive it.
  f.run(
      R"({"topic":"tickers.BTCUSDT","data":{"symbol":"BTCUSDT","bid1Price":"12"},"ts":2,"type":"snapshot","cs":2})");
  // A delta with the ask completes the book again.
  f.run(
      R"({"ts":3,"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","ask1Price":"13","markPrice":""}})");
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].price, raw("10"));
  EXPECT_EQ(t[1].price, raw("12"));
  EXPECT_EQ(t[1].ask, raw("13"));
}

TEST(BybitDecoder, AcksPongsAndRejects) {
  Fixture f(Venue::bybit, {"BTCUSDT"});
  EXPECT_EQ(
      f.run(R"({"success":true,"ret_msg":"","conn_id":"c","req_id":"sub-1","op":"subscribe"})").cls,
      FrameClass::ack);
  EXPECT_EQ(f.run(R"({"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"})").cls,
            FrameClass::pong);
  EXPECT_EQ(
      f.run(R"({"success":false,"ret_msg":"Params Error","conn_id":"c","op":"subscribe"})").cls,
      FrameClass::rejected);
}

TEST(OkxDecoder, FixtureFramesWithContractSize) {
  Fixture f(Venue::okx, {"BTC-USDT-SWAP"}, raw("0.01"));
  // The subscribe's push of the latest trade (the baseline: issue 33), then the captured frames.
  f.run(
      R"({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"1883712442","px":"79893.4","sz":"1","side":"buy","ts":"1788658200000","count":"1"}]})");
  EXPECT_TRUE(f.out.empty());
  for (const std::string& fr : load_frames("okx")) EXPECT_EQ(f.run(fr).cls, FrameClass::data);
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].kind, TickKind::mark);
  EXPECT_EQ(t[0].price, raw("79893.4"));
  EXPECT_EQ(t[0].exch_ts, 1'788'658'200'200 * kMs);
  EXPECT_EQ(t[1].kind, TickKind::bbo);
  EXPECT_EQ(t[1].price, raw("79893.4"));
  EXPECT_EQ(t[1].ask, raw("79893.5"));
  EXPECT_EQ(t[2].kind, TickKind::trade);
  EXPECT_EQ(t[2].size, raw("0.25"));  // 25 contracts of 0.01 BTC
  EXPECT_NE(t[2].flags & kTickTakerSell, 0);
}

TEST(OkxDecoder, TextPongNoticeAckErrorAndTradeGap) {
  Fixture f(Venue::okx, {"BTC-USDT-SWAP"});
  EXPECT_EQ(f.run("pong").cls, FrameClass::pong);
  EXPECT_EQ(
      f.run(
           R"({"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a"})")
          .cls,
      FrameClass::notice);
  EXPECT_EQ(
      f.run(
           R"({"id":"1512","event":"subscribe","arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"connId":"a"})")
          .cls,
      FrameClass::ack);
  EXPECT_EQ(
      f.run(R"({"id":"1512","event":"error","code":"60012","msg":"Invalid request","connId":"a"})")
          .cls,
      FrameClass::rejected);
  auto trade = [](int id, int count) {
    return R"({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":")" +
           std::to_string(id) + R"(","px":"1","sz":"1","side":"buy","ts":"1","count":")" +
           std::to_string(count) + R"(","seqId":1}]})";
  };
  f.run(trade(120, 1));  // the subscribe's push: the baseline (issue 33)
  f.run(trade(123, 3));  // 121..123
  f.run(trade(125, 2));  // 124..125: contiguous
  f.run(trade(130, 1));  // 126..129 missed
  ASSERT_EQ(f.out.size(), 4u);
  EXPECT_EQ(f.out[2].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[2].count, 4u);
}

TEST(HyperliquidDecoder, FixtureFramesBannerAndPong) {
  Fixture f(Venue::hyperliquid, {"BTC", "ETH"});
  EXPECT_EQ(f.run("Websocket connection established.").cls, FrameClass::ignored);
  for (const std::string& fr : load_frames("hyperliquid")) {
    EXPECT_EQ(f.run(fr).cls, FrameClass::data) << fr;
  }
  EXPECT_EQ(f.run(R"({"channel":"pong"})").cls, FrameClass::pong);
  EXPECT_EQ(f.run(R"({"channel":"error","data":"Already subscribed: {\"type\":\"trades\"}"})").cls,
            FrameClass::rejected);
  EXPECT_EQ(
      f.run(
           R"({"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"allMids"}}})")
          .cls,
      FrameClass::ack);
  const auto t = price_ticks_of(f.out);
  ASSERT_EQ(t.size(), 4u);  // mark, trade, and two mids (BTC, ETH; other coins skipped)
  EXPECT_EQ(t[0].kind, TickKind::mark);
  EXPECT_EQ(t[0].price, raw("79890.0"));
  EXPECT_EQ(t[0].exch_ts, kRecv);
  EXPECT_NE(t[0].flags & kTickNoExchTime, 0);
  EXPECT_EQ(t[1].kind, TickKind::trade);
  EXPECT_EQ(t[1].size, raw("0.01218"));
  EXPECT_EQ(t[1].exch_ts, 1'788'658'198'628 * kMs);
  EXPECT_NE(t[1].flags & kTickTakerSell, 0);
  EXPECT_EQ(t[2].kind, TickKind::bbo);
  EXPECT_EQ(t[2].price, raw("79889.5"));
  EXPECT_EQ(t[2].ask, raw("79889.5"));
  EXPECT_NE(t[2].flags & kTickMidOnly, 0);
  EXPECT_EQ(f.dec->stats().unknown_symbol, 0u);
}

// Found by libFuzzer: a trades push whose "data" is not an array was iterated anyway.
TEST(HyperliquidDecoder, TradesWithNonArrayDataIsMalformedNotIterated) {
  Fixture f(Venue::hyperliquid, {"BTC"});
  EXPECT_EQ(
      f.run(
           R"({"channel":"trades","data":,[{"coin":"BTC","side":"A","px":"1","sz":"1","time":1}]})")
          .cls,
      FrameClass::malformed);
  EXPECT_EQ(f.run(R"({"channel":"trades","data":{"coin":"BTC"}})").cls, FrameClass::malformed);
  EXPECT_TRUE(f.out.empty());
}

TEST(CoinbaseDecoder, TickerHeartbeatAckAndNanosecondTime) {
  Fixture f(Venue::coinbase, {"BTC-USD"});
  const auto frames = load_frames("coinbase");
  EXPECT_EQ(f.run(frames[0]).cls, FrameClass::ack);
  EXPECT_EQ(f.run(frames[1]).cls, FrameClass::data);
  EXPECT_EQ(f.run(frames[2]).cls, FrameClass::heartbeat);
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 1u);  // the ticker's last price is a trade market_trades delivers
  EXPECT_EQ(t[0].kind, TickKind::bbo);
  EXPECT_EQ(t[0].price, raw("79912.00"));
  EXPECT_EQ(t[0].ask, raw("79912.01"));
  EXPECT_EQ(t[0].exch_ts, *parse_iso8601("2026-09-06T01:30:00.512093114Z"));
  EXPECT_EQ(t[0].exch_ts % 1000, 114);  // nanoseconds kept
  EXPECT_EQ(f.dec->stats().gaps, 0u);
}

/// A Coinbase market_trades message: sequence_num `seq`, event `type`, BTC-USD trades `ids`.
std::string coinbase_trades(int seq, const char* type, std::initializer_list<int> ids) {
  std::string items;
  for (int id : ids) {
    if (!items.empty()) items += ',';
    items +=
        R"({"trade_id":")" + std::to_string(id) +
        R"(","product_id":"BTC-USD","price":"79900","size":"1","side":"BUY","time":"2026-09-06T01:31:00Z"})";
  }
  return R"({"channel":"market_trades","timestamp":"2026-09-06T01:31:00Z","sequence_num":)" +
         std::to_string(seq) + R"(,"events":[{"type":")" + type + R"(","trades":[)" + items +
         "]}]}";
}

// Issue 16: Coinbase volume alerts could never fire: trades came from `ticker`, which has no size.
// `market_trades` carries each trade with its size; the snapshot a subscribe is answered with sets
// the baseline on first sight and is deduplicated by trade id after a reconnect.
TEST(CoinbaseDecoder, MarketTradesCarrySizesOnceEachAcrossReconnects) {
  Fixture f(Venue::coinbase, {"BTC-USD"});
  const auto frames = load_frames("coinbase");
  EXPECT_EQ(f.run(frames[3]).cls, FrameClass::data);  // snapshot: before we were watching
  EXPECT_TRUE(f.out.empty());
  EXPECT_EQ(f.run(frames[4]).cls, FrameClass::data);  // update, listed newest first
  auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].kind, TickKind::trade);
  EXPECT_EQ(t[0].venue_seq, 910204282u);
  EXPECT_EQ(t[0].price, raw("79913.01"));
  EXPECT_EQ(t[0].size, raw("0.04811522"));
  // `side` is the maker's: 910204282 "BUY" at 79913.01 was a taker selling into the bid, and
  // 910204283 "SELL" 0.49 higher a taker buying from the ask (issue 33).
  EXPECT_NE(t[0].flags & kTickTakerSell, 0);
  EXPECT_EQ(t[0].exch_ts, *parse_iso8601("2026-09-06T01:30:01.391007Z"));
  EXPECT_EQ(t[1].venue_seq, 910204283u);
  EXPECT_EQ(t[1].size, raw("0.2"));
  EXPECT_EQ(t[1].flags & kTickTakerSell, 0);
  EXPECT_EQ(f.dec->stats().gaps, 0u);

  // A new connection: its sequence_num restarts, its snapshot re-sends trades already emitted.
  f.dec->reset();
  f.out.clear();
  const auto msg = coinbase_trades;
  f.run(msg(1, "snapshot", {910204283, 910204282}));
  EXPECT_TRUE(f.out.empty());
  EXPECT_EQ(f.dec->stats().out_of_order, 2u);
  EXPECT_EQ(f.dec->stats().gaps, 0u) << "sequence_num restarting is not a gap";
  // After an outage the snapshot holds trades we missed: emitted, and the older ones a gap.
  f.dec->reset();
  f.run(msg(1, "snapshot", {910204290, 910204289}));
  ASSERT_EQ(f.out.size(), 3u);
  EXPECT_EQ(f.out[0].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[0].count, 5u);  // 284..288
  EXPECT_EQ(f.out[1].tick.venue_seq, 910204289u);
  EXPECT_EQ(f.out[2].tick.venue_seq, 910204290u);
  // A broken trade inside a good frame is skipped and counted; the rest of the frame stands.
  f.out.clear();
  f.run(
      R"({"channel":"market_trades","sequence_num":2,"events":[{"type":"update","trades":[{"trade_id":"910204291","product_id":"BTC-USD","price":"x","size":"1","time":"2026-09-06T01:31:00Z"},{"trade_id":"910204292","product_id":"BTC-USD","price":"1","size":"1","time":"2026-09-06T01:31:00Z"}]}]})");
  EXPECT_EQ(f.dec->stats().bad_values, 1u);
  ASSERT_EQ(f.out.size(), 2u);  // the skipped trade is a gap of one
  EXPECT_EQ(f.out[0].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[1].tick.venue_seq, 910204292u);
}

TEST(CoinbaseDecoder, SequenceGapReportedForEverySymbol) {
  Fixture f(Venue::coinbase, {"BTC-USD", "ETH-USD"});
  auto hb = [](int seq) {
    return R"({"channel":"heartbeats","timestamp":"2026-09-06T01:30:01Z","sequence_num":)" +
           std::to_string(seq) + R"(,"events":[{"heartbeat_counter":1}]})";
  };
  f.run(hb(1));
  f.run(hb(2));
  f.run(hb(5));  // 3, 4 missed
  f.run(hb(4));  // late: ignored
  ASSERT_EQ(f.out.size(), 2u);
  EXPECT_EQ(f.out[0].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[0].count, 2u);
  EXPECT_NE(f.out[0].tick.instrument, f.out[1].tick.instrument);
  EXPECT_EQ(f.dec->stats().out_of_order, 1u);
}

// Issue 33: one lost market_trades message is one loss. Its sequence_num jump is reported for
// every symbol; the trade ids it held are not reported again by the next frame (it was two gaps).
TEST(CoinbaseDecoder, OneLostMessageIsOneGap) {
  Fixture f(Venue::coinbase, {"BTC-USD", "ETH-USD"});
  const auto msg = [](int seq, std::initializer_list<int> ids) {
    return coinbase_trades(seq, "update", ids);
  };
  f.run(msg(1, {100}));
  f.run(msg(3, {103}));  // message 2 (trades 101, 102) lost
  std::vector<FeedEvent> gaps;
  for (const FeedEvent& e : f.out)
    if (e.kind == FeedEventKind::gap) gaps.push_back(e);
  ASSERT_EQ(gaps.size(), 2u);  // one per symbol, from the sequence jump
  EXPECT_NE(gaps[0].tick.instrument, gaps[1].tick.instrument);
  EXPECT_EQ(ticks_of(f.out).size(), 2u);
  // Trades missing without a sequence jump (a reconnect, or the venue's own hole) are still a gap.
  f.out.clear();
  f.run(msg(4, {106}));
  ASSERT_EQ(f.out.size(), 2u);
  EXPECT_EQ(f.out[0].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[0].count, 2u);  // 104, 105
}

// Issue 16: a frame that fails to parse changes no state. Before, a Binance trade broken at its end
// advanced the trade-id tracking before it was dropped, so the lost trade was never reported.
TEST(BinanceDecoder, ATradeFrameBrokenAtItsEndIsReportedAsAGapNotRemembered) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  auto trade = [](std::uint64_t id) {
    return R"({"e":"aggTrade","E":2,"a":)" + std::to_string(id) +
           R"(,"s":"BTCUSDT","p":"10","q":"1","T":1,"m":true})";
  };
  f.run(trade(100));
  const DecoderStats before = f.dec->stats();
  EXPECT_EQ(f.run(trade(101) + "}").cls, FrameClass::malformed);  // broken after the payload
  EXPECT_EQ(f.run(R"({"stream":"btcusdt@aggTrade","data":)" + trade(101)).cls,
            FrameClass::malformed);  // the wrapper cut short
  EXPECT_EQ(f.dec->stats().malformed, before.malformed + 2);
  EXPECT_EQ(f.dec->stats().out_of_order, before.out_of_order);
  f.run(trade(102));
  ASSERT_EQ(f.out.size(), 3u);  // 100, the gap of 101, 102
  EXPECT_EQ(f.out[1].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[1].count, 1u);
  EXPECT_EQ(f.out[2].tick.venue_seq, 102u);
}

// Issue 16: OKX re-sends its latest trade on every subscribe; it is emitted once per trade id
// across reconnects, and trades missed while disconnected are reported as a gap. Issue 33: on the
// first subscribe too it happened before we were watching: the baseline, not a tick.
TEST(OkxDecoder, TheTradeResentOnResubscribeIsEmittedOnceAndAnOutageIsAGap) {
  Fixture f(Venue::okx, {"BTC-USDT-SWAP"});
  auto trade = [](int id) {
    return R"({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":")" +
           std::to_string(id) + R"(","px":"1","sz":"1","side":"buy","ts":"1","count":"1"}]})";
  };
  f.run(trade(499));  // the first subscribe's push: traded before we were watching
  EXPECT_TRUE(f.out.empty());
  f.run(trade(500));  // live
  f.dec->reset();     // a new connection
  f.run(trade(500));  // the subscribe's re-send
  EXPECT_EQ(ticks_of(f.out).size(), 1u);
  EXPECT_EQ(f.dec->stats().out_of_order, 1u);
  EXPECT_EQ(f.dec->stats().gaps, 0u);
  f.dec->reset();
  f.run(trade(500));
  f.run(trade(504));  // 501..503 traded while we were away
  ASSERT_EQ(f.out.size(), 3u);
  EXPECT_EQ(f.out[1].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[1].count, 3u);
  EXPECT_EQ(f.out[2].tick.venue_seq, 504u);
}

// Issue 16: OKX SWAP sizes are in contracts. Without a known contract size a trade keeps its price
// and carries no size (flagged, counted) instead of being sized 100x wrong; inverse contracts are
// told apart (the daemon refuses them).
TEST(OkxDecoder, ContractsOfAnUnknownSizeGiveTradesWithoutASize) {
  EXPECT_EQ(size_unit(Venue::okx, "BTC-USDT-SWAP"), SizeUnit::contracts);
  EXPECT_EQ(size_unit(Venue::okx, "BTC-USDT-250926"), SizeUnit::contracts);
  EXPECT_EQ(size_unit(Venue::okx, "BTC-USD-SWAP"), SizeUnit::inverse);
  EXPECT_EQ(size_unit(Venue::okx, "BTC-USDT"), SizeUnit::base);
  EXPECT_EQ(size_unit(Venue::binance, "BTCUSDT"), SizeUnit::base);
  EXPECT_EQ(default_contract_size(Venue::okx, "BTC-USDT-SWAP"), kUnknownContractSize);
  EXPECT_EQ(default_contract_size(Venue::okx, "BTC-USDT"), kScale);

  // After the subscribe's push of trade 6 (the baseline: issue 33).
  const std::string push =
      R"({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"6","px":"80000","sz":"1","side":"buy","ts":"1","count":"1"}]})";
  const std::string frame =
      R"({"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","tradeId":"7","px":"80000","sz":"12","side":"buy","ts":"1","count":"1"}]})";
  Fixture known(Venue::okx, {"BTC-USDT-SWAP"}, raw("0.01"));
  known.run(push);
  known.run(frame);
  Fixture unknown(Venue::okx, {"BTC-USDT-SWAP"}, kUnknownContractSize);
  unknown.run(push);
  unknown.run(frame);
  // Interned on first sight, as replay does: the default is unknown, not 1.0.
  InstrumentTable table;
  auto interned = make_decoder(Venue::okx, SymbolMap(Venue::okx, &table));
  std::vector<FeedEvent> out;
  decode(*interned, push, kRecv, out);
  decode(*interned, frame, kRecv, out);
  const auto k = ticks_of(known.out), u = ticks_of(unknown.out), i = ticks_of(out);
  ASSERT_EQ(k.size(), 1u);
  ASSERT_EQ(u.size(), 1u);
  ASSERT_EQ(i.size(), 1u);
  EXPECT_EQ(k[0].size, raw("0.12"));
  EXPECT_EQ(k[0].flags & kTickNoSize, 0);
  for (const Tick& t : {u[0], i[0]}) {
    EXPECT_EQ(t.price, raw("80000"));
    EXPECT_EQ(t.size, 0);
    EXPECT_NE(t.flags & kTickNoSize, 0);
  }
  EXPECT_EQ(unknown.dec->stats().unsized, 1u);
  EXPECT_EQ(interned->stats().unsized, 1u);
  EXPECT_EQ(known.dec->stats().unsized, 0u);
}

// Bybit reads the envelope whole before it merges a ticker: a broken delta changes nothing.
TEST(BybitDecoder, ADeltaBrokenAtItsEndLeavesTheMergedTickerAsItWas) {
  Fixture f(Venue::bybit, {"BTCUSDT"});
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","bid1Price":"10","ask1Price":"11"},"cs":1,"ts":1})");
  EXPECT_EQ(
      f.run(
           R"({"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"9"},"cs":2,"ts":2}})")
          .cls,
      FrameClass::malformed);
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","ask1Price":"12"},"cs":3,"ts":3})");
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].price, raw("10")) << "the broken frame's bid was not merged";
  EXPECT_EQ(t[1].ask, raw("12"));
}

TEST(CoinbaseDecoder, ABrokenFramesSequenceNumberIsNotRemembered) {
  Fixture f(Venue::coinbase, {"BTC-USD"});
  auto hb = [](int seq) {
    return R"({"channel":"heartbeats","timestamp":"2026-09-06T01:30:01Z","sequence_num":)" +
           std::to_string(seq) + R"(,"events":[{"heartbeat_counter":1}]})";
  };
  f.run(hb(1));
  EXPECT_EQ(f.run(hb(2) + "]").cls, FrameClass::malformed);
  f.run(hb(3));
  ASSERT_EQ(f.out.size(), 1u);  // 2 was lost: a gap
  EXPECT_EQ(f.out[0].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[0].count, 1u);
}

// ---- Pyth Hermes (issue 16): an oracle, priced exactly for any expo, held when stale or wide ----

const std::string kSol(kPythSolUsd);
const std::string kBtc(kPythBtcUsd);

std::string pyth_update(const std::string& id, const std::string& price, int expo,
                        std::int64_t publish, const std::string& conf = "0",
                        const std::string& metadata = "") {
  return R"({"type":"price_update","price_feed":{"id":")" + id + R"(","price":{"price":")" + price +
         R"(","conf":")" + conf + R"(","expo":)" + std::to_string(expo) + R"(,"publish_time":)" +
         std::to_string(publish) +
         R"(},"ema_price":{"price":"1","conf":"1","expo":-8,"publish_time":1})" +
         (metadata.empty() ? "" : R"(,"metadata":)" + metadata) + "}}";
}

TEST(PythDecoder, FixtureFramesAcksErrorsAndExactOraclePrices) {
  Fixture f(Venue::pyth, {kSol, kBtc});
  const auto frames = load_frames("pyth");
  EXPECT_EQ(f.run(frames[0]).cls, FrameClass::ack);
  // Received a second after publication, within the default 10 s limit.
  f.out.clear();
  EXPECT_EQ(decode(*f.dec, frames[1], 1'783'268'434'000'000'000, f.out).cls, FrameClass::data);
  EXPECT_EQ(decode(*f.dec, frames[2], 1'788'658'200'900'000'000, f.out).cls, FrameClass::data);
  const auto t = ticks_of(f.out);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].kind, TickKind::mark);
  EXPECT_EQ(t[0].price, raw("81.12233012"));  // "8112233012" x 10^-8
  EXPECT_EQ(t[0].size, raw("0.004184"));      // the confidence interval rides along
  EXPECT_EQ(t[0].exch_ts, 1'783'268'433 * 1'000'000'000LL);
  EXPECT_EQ(t[0].venue_seq, 256310442u);
  EXPECT_EQ(t[1].price, raw("79893.418125"));
  EXPECT_EQ(f.run(frames[3]).cls, FrameClass::rejected);  // rate limit: no `type`, then a close
  EXPECT_EQ(f.run(frames[4]).cls, FrameClass::notice);    // the 24 h cut-off: reconnect now
  EXPECT_EQ(f.run(frames[5]).cls, FrameClass::rejected);  // unknown id (escaped quotes inside)
  EXPECT_EQ(f.dec->stats().malformed, 0u);
  EXPECT_EQ(f.dec->stats().bad_values, 0u);
}

TEST(PythDecoder, EveryExpoConvertsExactlyOrRoundsCountedNeverThroughDouble) {
  struct Case {
    const char* mantissa;
    int expo;
    const char* want;  // decimal on the 1e-9 grid; nullptr: skipped as a bad value
    bool rounded;
  };
  const Case cases[] = {
      {"12276250", -5, "122.7625", false},  // Pyth's own AAPL example
      {"7989341812500", -8, "79893.418125", false},
      {"123456789", -9, "0.123456789", false},
      {"5", 0, "5", false},
      {"42", 3, "42000", false},
      {"9000000000", 0, "9000000000", false},             // the engine's largest price (kMaxRaw)
      {"9000000001", 0, nullptr, false},                  // beyond the engine's range
      {"1", 12, nullptr, false},                          // 10^12 x 10^9 overflows int64
      {"1234567891234", -12, "1.234567891", true},        // finer than 1e-9: rounded down
      {"1234567891500", -12, "1.234567892", true},        // half: away from zero
      {"9223372036854775807", -18, "9.223372037", true},  // int64's largest mantissa
      {"1", -30, nullptr, false},                         // rounds to 0: no price, a bad value
      {"0", -8, nullptr, false},
      {"-123", -5, nullptr, false},  // negative: valid for Pyth, not a market price
      {"12.5", -1, nullptr, false},  // not an integer string
      {"1e5", 0, nullptr, false},
  };
  std::int64_t publish = 1'800'000'000;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.mantissa) + "e" + std::to_string(c.expo));
    Fixture f(Venue::pyth, {kSol});
    ++publish;
    f.out.clear();
    decode(*f.dec, pyth_update(kSol, c.mantissa, c.expo, publish), publish * 1'000'000'000LL,
           f.out);
    const auto t = ticks_of(f.out);
    if (c.want == nullptr) {
      EXPECT_TRUE(t.empty());
      EXPECT_EQ(f.dec->stats().bad_values, 1u);
    } else {
      ASSERT_EQ(t.size(), 1u);
      EXPECT_EQ(t[0].price, raw(c.want));
    }
    EXPECT_EQ(f.dec->stats().rounded, c.rounded ? 1u : 0u);
  }
}

TEST(PythDecoder, StaleOrUncertainUpdatesHoldTheMarketInsteadOfPricingIt) {
  Fixture f(Venue::pyth, {kSol});
  f.dec->set_oracle_limits(OracleLimits{Millis{5'000}, 50});  // 5 s, 0.5 %
  const std::int64_t pub = 1'800'000'000;
  const TimeNs at = pub * 1'000'000'000LL;
  std::vector<FeedEvent> out;
  // 100.00 +- 0.40: 40 bps, fresh
  decode(*f.dec, pyth_update(kSol, "10000000000", -8, pub, "40000000"), at + 4'000'000'000, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, FeedEventKind::tick);
  // published 6 s before it arrived: too old
  decode(*f.dec, pyth_update(kSol, "10100000000", -8, pub + 1, "1"), at + 7'000'000'001, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].kind, FeedEventKind::state);
  EXPECT_EQ(out[1].state, FeedState::stale);
  EXPECT_EQ(out[1].reason, FeedReason::oracle_stale);
  EXPECT_EQ(out[1].tick.instrument, f.id);
  // fresh, but +- 0.51 on 100: wider than 50 bps
  decode(*f.dec, pyth_update(kSol, "10000000000", -8, pub + 2, "51000000"), at + 2'000'000'000,
         out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].reason, FeedReason::oracle_uncertain);
  EXPECT_EQ(f.dec->stats().oracle_stale, 1u);
  EXPECT_EQ(f.dec->stats().oracle_uncertain, 1u);
  EXPECT_EQ(ticks_of(out).size(), 1u) << "a held update prices nothing";
}

TEST(PythDecoder, SlotsDropDuplicatesAndPrevPublishTimeRevealsGapsAcrossReconnects) {
  Fixture f(Venue::pyth, {kSol});
  const std::int64_t pub = 1'800'000'000;
  auto meta = [](std::uint64_t slot, const std::string& prev) {
    return R"({"slot":)" + std::to_string(slot) +
           R"(,"emitter_chain":26,"price_service_receive_time":1,"prev_publish_time":)" + prev +
           "}";
  };
  auto run = [&](std::int64_t p, std::uint64_t slot, const std::string& prev) {
    return decode(*f.dec, pyth_update(kSol, "100", 0, p, "0", meta(slot, prev)),
                  p * 1'000'000'000LL, f.out);
  };
  run(pub, 10, std::to_string(pub - 1));
  run(pub, 11, std::to_string(pub));  // same second, next slot: a new update
  run(pub, 11, std::to_string(pub));  // the same slot again: a duplicate
  EXPECT_EQ(ticks_of(f.out).size(), 2u);
  EXPECT_EQ(f.dec->stats().out_of_order, 1u);
  f.dec->reset();                             // a reconnect keeps the network's publish times
  run(pub + 3, 20, std::to_string(pub + 2));  // pub+2 was published while we were away
  ASSERT_EQ(f.out.size(), 4u);
  EXPECT_EQ(f.out[2].kind, FeedEventKind::gap);
  EXPECT_EQ(f.out[2].count, 1u);
  // Metadata is made of Options: nulls (or none at all) are read as absent.
  run(pub + 4, 0, "null");
  f.out.clear();
  decode(
      *f.dec,
      pyth_update(
          kSol, "100", 0, pub + 5, "0",
          R"({"slot":null,"emitter_chain":null,"price_service_receive_time":null,"prev_publish_time":null})"),
      (pub + 5) * 1'000'000'000LL, f.out);
  decode(*f.dec, pyth_update(kSol, "100", 0, pub + 6, "0", "null"), (pub + 6) * 1'000'000'000LL,
         f.out);
  decode(*f.dec, pyth_update("0x" + kSol, "100", 0, pub + 7), (pub + 7) * 1'000'000'000LL, f.out);
  EXPECT_EQ(ticks_of(f.out).size(), 3u);
  EXPECT_EQ(f.dec->stats().bad_values, 0u);
  EXPECT_EQ(f.dec->stats().malformed, 0u);
}

// Issue 16: frames of a venue's older protocol (the captures of other feed handlers have them) are
// counted as unexpected, not silently ignored.
TEST(Decoders, FramesOfAnOlderProtocolAreCountedAsUnexpected) {
  const std::pair<Venue, const char*> older[] = {
      // Binance spot's bookTicker: no event type
      {Venue::binance,
       R"({"u":400900217,"s":"BTCUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66"})"},
      // Bybit v3 / contract v2
      {Venue::bybit,
       R"({"topic":"instrument_info.100ms.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","last_price":"10"},"cross_seq":1,"timestamp_e6":1})"},
      // OKX v3
      {Venue::okx,
       R"({"table":"swap/ticker","data":[{"instrument_id":"BTC-USD-SWAP","last":"10","best_bid":"9","best_ask":"11"}]})"},
      // Coinbase Exchange (Pro)
      {Venue::coinbase,
       R"({"type":"ticker","sequence":1,"product_id":"BTC-USD","price":"10","best_bid":"9","best_ask":"11"})"},
      // a Hyperliquid channel we never subscribe
      {Venue::hyperliquid, R"({"channel":"webData2","data":{"user":"0x0"}})"},
  };
  for (const auto& [venue, frame] : older) {
    SCOPED_TRACE(std::string(venue_name(venue)));
    Fixture f(venue, {"BTCUSDT", "BTC-USDT-SWAP", "BTC", "BTC-USD"});
    EXPECT_EQ(f.run(frame).cls, FrameClass::unexpected);
    EXPECT_EQ(f.dec->stats().unexpected, 1u);
    EXPECT_EQ(f.dec->stats().malformed, 0u);
    EXPECT_TRUE(f.out.empty());
  }
}

TEST(Decoders, MalformedFramesAreCountedAndYieldNothing) {
  for (Venue v : kAllVenues) {
    Fixture f(v, {"BTCUSDT", "BTC-USDT-SWAP", "BTC", "BTC-USD"});
    const auto frames = load_frames(std::string(venue_name(v)));
    const std::string& good = frames.back();
    for (std::size_t cut = 1; cut < good.size(); cut += 7) {
      f.run(std::string_view(good).substr(0, cut));  // truncated
    }
    f.run("{\"garbage\": [1,2,");
    f.run("\xff\xfe\x00binary");
    f.run(good + "}}");
    f.run(std::string(kMaxFrameBytes + 1, ' '));
    EXPECT_TRUE(ticks_of(f.out).empty()) << venue_name(v);
    EXPECT_GT(f.dec->stats().malformed, 10u) << venue_name(v);
  }
}

TEST(Decoders, EmptyAndBadNumbersAreAbsentNotZero) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":""})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"abc"})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"-5"})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1e400"})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":null})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":{"x":1}})");
  EXPECT_TRUE(f.out.empty());
  EXPECT_EQ(f.dec->stats().bad_values, 6u);
  // Long decimals keep 9 digits, rounded to nearest.
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"0.0001875391284828"})");
  ASSERT_EQ(f.out.size(), 1u);
  EXPECT_EQ(f.out[0].tick.price, 187'539);
}

// ---- funding (issue 33 §1; docs/feeds.md "Funding") -------------------------------------------

TEST(Funding, BinanceMarkPriceCarriesTheRateForTheNextSettlement) {
  Fixture f(Venue::binance, {"BTCUSDT"});
  f.run(load_frames("binance")[0]);
  const auto fu = funding_ticks_of(f.out);
  ASSERT_EQ(fu.size(), 1u);
  EXPECT_EQ(fu[0].price, 45'320'000'000'000);      // "0.00004532" on the 1e-18 grid
  EXPECT_EQ(fu[0].size, 1'788'681'600'000 * kMs);  // T
  EXPECT_EQ(fu[0].ask, 0);                         // paid at the mark
  EXPECT_EQ(fu[0].exch_ts, 1'788'658'200'000 * kMs);
  EXPECT_EQ(fu[0].instrument, f.id);
  // A delivery contract: "r":"" and "T":0 are no funding, not a bad value.
  f.out.clear();
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"","T":0})");
  EXPECT_EQ(ticks_of(f.out).size(), 1u);
  EXPECT_EQ(f.dec->stats().bad_values, 0u);
  // Negative rates, exponents; a rate beyond 100 % or garbage is a bad value, the mark stands.
  f.out.clear();
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"-0.00012","T":1000})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"1.5e-4","T":1000})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"1.01","T":1000})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"x","T":1000})");
  f.run(R"({"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"5","r":"0.0001","T":"soon"})");
  EXPECT_EQ(price_ticks_of(f.out).size(), 5u);
  const auto rates = funding_ticks_of(f.out);
  ASSERT_EQ(rates.size(), 2u);
  EXPECT_EQ(rates[0].price, -120'000'000'000'000);
  EXPECT_EQ(rates[1].price, 150'000'000'000'000);
  EXPECT_EQ(f.dec->stats().bad_values, 3u);
}

TEST(Funding, BybitTickersMergeRateAndTimeAndSayOnlyChanges) {
  Fixture f(Venue::bybit, {"BTCUSDT"});
  for (const std::string& fr : load_frames("bybit")) f.run(fr);
  // The snapshot's rate and nextFundingTime (a string of ms); the delta repeating the same rate
  // says nothing new.
  auto fu = funding_ticks_of(f.out);
  ASSERT_EQ(fu.size(), 1u);
  EXPECT_EQ(fu[0].price, 45'500'000'000'000);  // "0.0000455"
  EXPECT_EQ(fu[0].size, 1'788'681'600'000 * kMs);
  EXPECT_EQ(fu[0].ask, 0);
  // A delta with a new rate alone keeps the time; one with a new time alone keeps the rate.
  f.out.clear();
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","fundingRate":"-0.0001"},"cs":2,"ts":1788658201000})");
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","nextFundingTime":"1788710400000"},"cs":3,"ts":1788681600100})");
  fu = funding_ticks_of(f.out);
  ASSERT_EQ(fu.size(), 2u);
  EXPECT_EQ(fu[0].price, -100'000'000'000'000);
  EXPECT_EQ(fu[0].size, 1'788'681'600'000 * kMs);
  EXPECT_EQ(fu[1].price, -100'000'000'000'000);
  EXPECT_EQ(fu[1].size, 1'788'710'400'000 * kMs);
  // A dated future: "" for both, no funding and nothing bad; a new snapshot forgets the old rate.
  f.out.clear();
  f.run(
      R"({"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","markPrice":"5","fundingRate":"","nextFundingTime":""},"cs":4,"ts":1788681600200})");
  EXPECT_TRUE(funding_ticks_of(f.out).empty());
  EXPECT_EQ(f.dec->stats().bad_values, 0u);
}

TEST(Funding, OkxFundingRateChannelKeepsSixteenDecimals) {
  Fixture f(Venue::okx, {"BTC-USDT-SWAP"}, raw("0.01"));
  EXPECT_EQ(
      f.run(
           R"({"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"formulaType":"withRate","fundingRate":"0.0001875391284828","fundingTime":"1788681600000","impactValue":"","instId":"BTC-USDT-SWAP","instType":"SWAP","interestRate":"0.0001","maxFundingRate":"0.0075","method":"current_period","minFundingRate":"-0.0075","nextFundingRate":"","nextFundingTime":"1788710400000","premium":"0.0001","settFundingRate":"0.0001","settState":"settled","ts":"1788658200000"}]})")
          .cls,
      FrameClass::data);
  const auto fu = funding_ticks_of(f.out);
  ASSERT_EQ(fu.size(), 1u);
  EXPECT_EQ(fu[0].price, 187'539'128'482'800);  // 0.0001875391284828, every digit
  EXPECT_EQ(fu[0].size, 1'788'681'600'000 * kMs);
  EXPECT_EQ(fu[0].exch_ts, 1'788'658'200'000 * kMs);
  EXPECT_EQ(fu[0].ask, 0);
  // Without its time the rate names no settlement: a bad value.
  f.run(
      R"({"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","fundingRate":"0.0001","fundingTime":"","ts":"1788658200000"}]})");
  EXPECT_EQ(funding_ticks_of(f.out).size(), 1u);
  EXPECT_EQ(f.dec->stats().bad_values, 1u);
}

TEST(Funding, HyperliquidPaysHourlyAtTheOraclePrice) {
  Fixture f(Venue::hyperliquid, {"BTC"});
  f.run(load_frames("hyperliquid")[0]);
  const auto fu = funding_ticks_of(f.out);
  ASSERT_EQ(fu.size(), 1u);
  EXPECT_EQ(fu[0].price, 12'500'000'000'000);  // "0.0000125" an hour
  constexpr TimeNs kHour = 3'600'000'000'000;
  EXPECT_EQ(fu[0].size, (kRecv / kHour + 1) * kHour);  // no time on the wire: the next hour
  EXPECT_EQ(fu[0].ask, raw("79922.0"));                // oraclePx
  // A spot coin's context has no funding (nothing bad); funding without an oracle price is bad.
  f.out.clear();
  f.run(
      R"({"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"markPx":"5","circulatingSupply":"1"}}})");
  f.run(
      R"({"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"markPx":"5","funding":"0.00001"}}})");
  EXPECT_EQ(price_ticks_of(f.out).size(), 2u);
  EXPECT_TRUE(funding_ticks_of(f.out).empty());
  EXPECT_EQ(f.dec->stats().bad_values, 1u);
}

TEST(Decoders, ReplayModeInternsSymbolsOnFirstSight) {
  InstrumentTable table;
  auto dec = make_decoder(Venue::binance, SymbolMap(Venue::binance, &table));
  std::vector<FeedEvent> out;
  decode(*dec, load_frames("binance")[0], kRecv, out);
  ASSERT_EQ(out.size(), 2u);  // the mark and its funding rate
  EXPECT_EQ(table.find("binance", "BTCUSDT"), out[0].tick.instrument);
}

// ---- the venue table (feeds/venues/venues.h) --------------------------------------------------

TEST(Venues, TheTableHoldsEveryVenueInItsPlace) {
  for (Venue v : kAllVenues) {
    SCOPED_TRACE(std::string(venue_name(v)));
    EXPECT_EQ(parse_venue(venue_name(v)), v);
    EXPECT_FALSE(venue_routes(v).empty());
    EXPECT_EQ(sample_symbols(v).size(), 2u);
    EXPECT_GE(default_rules(v).max_msgs_per_s, 1);
    EXPECT_NE(make_decoder(v, SymbolMap{}), nullptr);
    for (const Route& r : venue_routes(v)) {
      EXPECT_EQ(r.default_url.rfind("wss://", 0), 0u) << r.default_url;
      EXPECT_NE(r.kinds, 0);
      EXPECT_FALSE(subscribe_messages(v, r.name, sample_symbols(v), 0).empty());
    }
  }
  EXPECT_EQ(venue_name(static_cast<Venue>(kVenueCount)), "?");
  EXPECT_FALSE(parse_venue("kraken"));
}

// The subscribe messages, byte for byte (docs/feeds.md; ../shared/venues.md): what each venue is
// sent, split at `topics_per_msg`, symbols escaped as JSON.
TEST(Venues, SubscribeMessagesAreTheVenuesOwn) {
  using V = std::vector<std::string>;
  EXPECT_EQ(
      subscribe_messages(Venue::binance, "market", {"BTCUSDT", "ETHUSDT"}, 3),
      (V{R"({"method":"SUBSCRIBE","params":["btcusdt@markPrice@1s","btcusdt@aggTrade","ethusdt@markPrice@1s"],"id":1})",
         R"({"method":"SUBSCRIBE","params":["ethusdt@aggTrade"],"id":2})"}));
  EXPECT_EQ(subscribe_messages(Venue::binance, "public", {"BTCUSDT"}, 50),
            (V{R"({"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":1})"}));
  EXPECT_EQ(
      subscribe_messages(Venue::bybit, "linear", {"BTCUSDT"}, 10),
      (V{R"({"req_id":"sub-1","op":"subscribe","args":["tickers.BTCUSDT","publicTrade.BTCUSDT"]})"}));
  EXPECT_EQ(
      subscribe_messages(Venue::okx, "public", {"BTC-USDT-SWAP"}, 2),
      (V{R"({"id":"sub1","op":"subscribe","args":[{"channel":"mark-price","instId":"BTC-USDT-SWAP"},{"channel":"tickers","instId":"BTC-USDT-SWAP"}]})",
         R"({"id":"sub2","op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT-SWAP"},{"channel":"funding-rate","instId":"BTC-USDT-SWAP"}]})"}));
  EXPECT_EQ(subscribe_messages(Venue::hyperliquid, "ws", {"BTC"}, 30),
            (V{R"({"method":"subscribe","subscription":{"type":"allMids"}})",
               R"({"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"BTC"}})",
               R"({"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}})"}));
  EXPECT_EQ(subscribe_messages(Venue::coinbase, "advanced", {"BTC-USD", "ETH-USD"}, 1),
            (V{R"({"type":"subscribe","channel":"heartbeats"})",
               R"({"type":"subscribe","product_ids":["BTC-USD"],"channel":"ticker"})",
               R"({"type":"subscribe","product_ids":["ETH-USD"],"channel":"ticker"})",
               R"({"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"})",
               R"({"type":"subscribe","product_ids":["ETH-USD"],"channel":"market_trades"})"}));
  EXPECT_EQ(subscribe_messages(Venue::pyth, "hermes", {"ab", "cd"}, 100),
            (V{R"({"type":"subscribe","ids":["ab","cd"],"verbose":true})"}));
  // A symbol from config is escaped, never spliced raw.
  EXPECT_EQ(
      subscribe_messages(Venue::bybit, "linear", {"A\"B\\\n"}, 10),
      (V{R"({"req_id":"sub-1","op":"subscribe","args":["tickers.A\"B\\\u000a","publicTrade.A\"B\\\u000a"]})"}));
}

}  // namespace
}  // namespace lam::feeds
