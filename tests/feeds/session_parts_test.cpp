// The pure parts of the session machinery: backoff, per-symbol health, the padding trick, URL
// parsing, capture files (and replaying a capture through the parsers gives the live ticks back).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "feeds/backoff.h"
#include "feeds/capture.h"
#include "feeds/health.h"
#include "feeds/padded_buffer.h"
#include "feeds/tick_queue.h"
#include "feeds/ws_client.h"
#include "tests/feeds/frames.h"
#include "tests/feeds/harness.h"

namespace lam::feeds {
namespace {

TEST(Backoff, FirstRetryImmediateThenExponentialJitteredAndCapped) {
  Backoff b(Millis{100}, Millis{5'000}, 7);
  EXPECT_EQ(b.next().count(), 0);
  long long prev_cap = 0;
  for (int n = 1; n < 20; ++n) {
    const long long d = b.next().count();
    const long long cap = std::min(100LL << (n - 1), 5'000LL);
    EXPECT_GE(d, cap / 2) << n;
    EXPECT_LE(d, cap) << n;
    EXPECT_GE(cap, prev_cap);
    prev_cap = cap;
  }
  b.reset();
  EXPECT_EQ(b.next().count(), 0);
  // Different seeds spread reconnects of connections dropped together.
  Backoff a(Millis{1000}, Millis{60'000}, 1), c(Millis{1000}, Millis{60'000}, 2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) differ += a.next() != c.next();
  EXPECT_GE(differ, 8);
}

TEST(TickQueueDoorbell, APushWakesTheWaitingConsumerAndAnIdleWaitTimesOut) {
  using Clock = std::chrono::steady_clock;
  TickQueue q(1024);
  TickQueue::Producer producer(q);
  FeedEvent e;
  e.tick.instrument = 7;

  // Something queued: no sleep at all.
  ASSERT_TRUE(producer.try_push(e));
  auto t0 = Clock::now();
  q.wait(5'000'000'000);
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500));
  FeedEvent out[4];
  ASSERT_EQ(q.pop_bulk(out, 4), 1u);

  // Nothing queued: the timeout ends the wait.
  t0 = Clock::now();
  q.wait(20'000'000);
  const auto idle = Clock::now() - t0;
  EXPECT_GE(idle, std::chrono::milliseconds(15));
  EXPECT_LT(idle, std::chrono::seconds(2));

  // A push from another thread ends a long wait, many times over (a lost wake-up would cost 5 s).
  for (int round = 0; round < 50; ++round) {
    std::thread feed([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(200 + round * 20));
      EXPECT_TRUE(producer.try_push(e));
    });
    t0 = Clock::now();
    while (q.pop_bulk(out, 4) == 0) q.wait(5'000'000'000);
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2)) << "round " << round;
    feed.join();
  }
}

TEST(ConnectionHealth, StatesFollowConnectSubscribeDataAndSilence) {
  ConnectionHealth h(Venue::okx, {7, 3}, kind_bit(TickKind::mark), 1'000);
  std::vector<FeedEvent> out;
  h.set_all(FeedState::connecting, FeedReason::connect, 1, out);
  EXPECT_TRUE(out.empty());  // already connecting
  h.touch_all(0);
  h.set_all(FeedState::resyncing, FeedReason::subscribed, 2, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].state, FeedState::resyncing);
  EXPECT_EQ(out[0].tick.flags, kind_bit(TickKind::mark));
  out.clear();
  h.on_data(7, 500, 3, out);
  h.on_data(7, 600, 3, out);   // already live: no event
  h.on_data(99, 600, 3, out);  // not ours
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, FeedReason::first_data);
  out.clear();
  h.check_stale(1'200, 4, out);  // 3 never got data within the budget; 7 is fresh
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tick.instrument, 3u);
  EXPECT_EQ(out[0].state, FeedState::stale);
  out.clear();
  h.check_stale(1'700, 5, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tick.instrument, 7u);
  out.clear();
  h.on_data(7, 1'800, 6, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, FeedReason::data_resumed);
  EXPECT_EQ(h.count(FeedState::live), 1u);
  EXPECT_EQ(h.count(FeedState::stale), 1u);
}

TEST(PaddingTrick, FramesParseInPlaceAtTheEndOfBeastsBuffer) {
  // A buffer whose allocation ends exactly at the frame (ASan would flag any read past it);
  // pad_frame() must make room, and the decoder must parse the frame where it lies.
  const std::string frame = test::load_frames("binance")[0];
  for (std::size_t extra : {0u, 1u, 63u, 64u, 4096u}) {
    boost::beast::flat_buffer b(frame.size() + kFramePadding + extra);
    auto w = b.prepare(frame.size());
    std::memcpy(w.data(), frame.data(), frame.size());
    b.commit(frame.size());
    const FrameView v = pad_frame(b);
    ASSERT_EQ(v.len, frame.size());
    ASSERT_GE(b.capacity(), v.len + kFramePadding);
    EXPECT_EQ(std::string_view(v.data, v.len), frame);
    InstrumentTable table;
    auto dec = make_decoder(Venue::binance, SymbolMap(Venue::binance, &table));
    std::vector<FeedEvent> out;
    EXPECT_EQ(dec->decode(v.data, v.len, v.capacity, 1, out).cls, FrameClass::data);
    EXPECT_EQ(out.size(), 2u);  // the mark and its funding rate
  }
  // Too little room for the padding is refused, never read past.
  boost::beast::flat_buffer tight(16);
  auto w = tight.prepare(16);
  std::memset(w.data(), '{', 16);
  tight.commit(16);
  EXPECT_THROW(pad_frame(tight), std::length_error);
}

TEST(WsUrl, ParsesVenueUrls) {
  auto u = WsUrl::parse("wss://ws.okx.com:8443/ws/v5/public");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "ws.okx.com");
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->target, "/ws/v5/public");
  u = WsUrl::parse("wss://advanced-trade-ws.coinbase.com");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/");
  u = WsUrl::parse("ws://127.0.0.1:9100/market/stream?streams=a/b");
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->target, "/market/stream?streams=a/b");
  EXPECT_FALSE(WsUrl::parse("http://x"));
  EXPECT_FALSE(WsUrl::parse("ws://:80/"));
  EXPECT_FALSE(WsUrl::parse("ws://host:80a/"));
}

TEST(Tls, WssNeverFallsBackToPlaintext) {
  // The mock exchange speaks plain TCP; a wss:// client must fail in the TLS stage and never
  // deliver a frame.
  mockex::MockExchange ex(mockex::Options{});
  ex.start();
  InstrumentTable table;
  TickQueue q(1024);
  FeedRunner runner(test::fast_runner(), q);
  ConnectionConfig c = test::fast_config(ex, Venue::okx, venue_routes(Venue::okx)[0]);
  c.url = "wss://127.0.0.1:" + std::to_string(ex.port()) + "/ws/v5/public";
  SymbolMap map(Venue::okx, nullptr);
  map.add(table, "BTC-USDT-SWAP");
  runner.add(c, std::move(map));
  runner.start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (runner.counters(0).disconnects.load() < 2 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner.stop();
  EXPECT_GE(runner.counters(0).disconnects.load(), 2u);
  EXPECT_EQ(runner.counters(0).opens.load(), 0u);
  EXPECT_EQ(runner.counters(0).frames.load(), 0u);
}

// Real TLS: the mock exchange serves wss:// with certificates from a test CA (tests/data/tls, made
// by make-certs.sh). The client verifies the chain against the CA given as ca_file (as --ca-file
// and feeds.ca_file do) and the name against the URL's host.
struct TlsOutcome {
  std::uint64_t opens = 0, frames = 0, disconnects = 0;
};

const std::string kTlsDir = std::string(LAMINATOR_SOURCE_DIR) + "/tests/data/tls/";

/// The mock exchange serving wss:// with tests/data/tls/<cert>.pem.
mockex::Options tls_mock(const std::string& cert) {
  mockex::Options mo;
  mo.tls_cert_file = kTlsDir + cert + ".pem";
  mo.tls_key_file = kTlsDir + cert + ".key";
  return mo;
}

TlsOutcome run_tls(const std::string& cert, const std::string& ca_file) {
  const std::string& dir = kTlsDir;
  mockex::MockExchange ex(tls_mock(cert));
  ex.start();
  InstrumentTable table;
  TickQueue q(1 << 14);
  FeedRunner runner(test::fast_runner(), q);
  ConnectionConfig c = test::fast_config(ex, Venue::okx, venue_routes(Venue::okx)[0]);
  c.url = ex.url(Venue::okx, "public", true);  // wss://127.0.0.1:<tls port>/ws/v5/public
  if (!ca_file.empty()) c.client.ca_file = dir + ca_file;
  SymbolMap map(Venue::okx, nullptr);
  map.add(table, "BTC-USDT-SWAP");
  runner.add(c, std::move(map));
  runner.start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  // Either it streams, or it has been refused at least twice (a retry, refused again).
  while (std::chrono::steady_clock::now() < end && runner.counters(0).frames.load() < 20 &&
         runner.counters(0).disconnects.load() < 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner.stop();
  return {runner.counters(0).opens.load(), runner.counters(0).frames.load(),
          runner.counters(0).disconnects.load()};
}

/// One session straight through WsClient: the message it ended with ("" if it opened).
std::string tls_refusal(const std::string& cert, const std::string& ca_file, bool by_name = false) {
  const std::string& dir = kTlsDir;
  mockex::MockExchange ex(tls_mock(cert));
  ex.start();
  struct H final : WsClient::Handler {
    bool done = false, opened = false;
    std::string message;
    void on_open() override { opened = done = true; }
    void on_frame(const char*, std::size_t, std::size_t) override {}
    void on_closed(std::string_view stage, const std::string& m, int) override {
      message = std::string(stage) + ": " + m;
      done = true;
    }
  } h;
  boost::asio::io_context io;
  WsClientOptions o;
  o.ca_file = dir + ca_file;
  std::string url = ex.url(Venue::okx, "public", true);
  if (by_name) url.replace(url.find("127.0.0.1"), 9, "localhost");  // still loopback
  auto c = make_ws_client(io, *WsUrl::parse(url), o, h);
  c->start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!h.done && std::chrono::steady_clock::now() < end)
    io.run_for(std::chrono::milliseconds(10));
  c->abort();
  return h.opened ? std::string() : h.message;
}

TEST(Tls, RefusalsNameTheirReason) {
  EXPECT_EQ(tls_refusal("server", "ca.pem"), "");
  EXPECT_NE(tls_refusal("expired", "ca.pem").find("tls: certificate verify failed"),
            std::string::npos);
  EXPECT_NE(tls_refusal("expired", "ca.pem").find("certificate has expired"), std::string::npos);
  EXPECT_NE(tls_refusal("other-host", "ca.pem").find("IP address mismatch"), std::string::npos)
      << tls_refusal("other-host", "ca.pem");
  EXPECT_NE(tls_refusal("other-host", "ca.pem", true).find("hostname mismatch"), std::string::npos)
      << tls_refusal("other-host", "ca.pem", true);
  EXPECT_EQ(tls_refusal("server", "ca.pem", true), "");
  EXPECT_NE(tls_refusal("unknown-ca", "ca.pem").find("unable to get local issuer certificate"),
            std::string::npos)
      << tls_refusal("unknown-ca", "ca.pem");
}

TEST(Tls, TheRightCaAndHostConnectAndStream) {
  const TlsOutcome o = run_tls("server", "ca.pem");
  EXPECT_GE(o.opens, 1u);
  EXPECT_GE(o.frames, 20u);
}

TEST(Tls, ACertificateFromAnUnknownCaIsRefused) {
  const TlsOutcome o = run_tls("unknown-ca", "ca.pem");
  EXPECT_EQ(o.opens, 0u);
  EXPECT_EQ(o.frames, 0u);
  EXPECT_GE(o.disconnects, 2u);
  // and the test CA itself is trusted only when given: not through the system store
  const TlsOutcome untrusted = run_tls("server", "");
  EXPECT_EQ(untrusted.opens, 0u);
  EXPECT_EQ(untrusted.frames, 0u);
}

TEST(Tls, ACertificateForAnotherHostIsRefused) {
  const TlsOutcome o = run_tls("other-host", "ca.pem");
  EXPECT_EQ(o.opens, 0u);
  EXPECT_EQ(o.frames, 0u);
  EXPECT_GE(o.disconnects, 2u);
}

TEST(Tls, AnExpiredCertificateIsRefused) {
  const TlsOutcome o = run_tls("expired", "ca.pem");
  EXPECT_EQ(o.opens, 0u);
  EXPECT_EQ(o.frames, 0u);
  EXPECT_GE(o.disconnects, 2u);
}

TEST(Capture, RecordedFramesReplayToTheSameTicks) {
  const std::string dir = ::testing::TempDir() + "/lam-capture-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  mockex::MockExchange ex(mockex::Options{});
  ex.start();
  RunnerOptions ro = test::fast_runner();
  ro.record_dir = dir;
  ro.record_rotate_bytes = 20'000;  // force rotation
  test::VenueFeed f(ex, Venue::okx, 1 << 16, {}, ro);
  f.runner.start();
  ASSERT_TRUE(f.drain_until([&] { return f.count(FeedEventKind::tick) >= 300; }));
  f.runner.stop();
  f.drain_until([] { return false; }, std::chrono::milliseconds(50));
  std::vector<Tick> live;
  for (const FeedEvent& e : f.events) {
    if (e.kind == FeedEventKind::tick) live.push_back(e.tick);
  }
  std::vector<std::string> files;
  for (const auto& p : std::filesystem::directory_iterator(dir)) files.push_back(p.path());
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    return std::stoll(a.substr(a.rfind('-') + 1)) < std::stoll(b.substr(b.rfind('-') + 1));
  });
  EXPECT_GE(files.size(), 2u);
  // Replayed as `laminator replay --raw` does: a map that interns symbols on first sight, in a
  // table of the same instruments, and the contract sizes only from the capture (issue 16: replay
  // had no way to know them and emitted contracts where live emitted base units).
  InstrumentTable table;
  for (const std::string& s : sample_symbols(Venue::okx)) table.intern("okx", s);
  auto dec = make_decoder(Venue::okx, SymbolMap(Venue::okx, &table));
  std::vector<FeedEvent> out;
  CaptureRecord rec;
  std::size_t symbol_records = 0;
  for (const std::string& path : files) {
    CaptureReader r(path);
    std::size_t sizes_before_data = 0;
    bool data_seen = false;
    while (r.next(rec)) {
      if (rec.type == CaptureRecord::Type::symbol) {
        ++symbol_records;
        if (!data_seen) ++sizes_before_data;
        EXPECT_EQ(rec.contract_size, test::VenueFeed::kTestContractSize);
        dec->symbols().add(table, rec.data, rec.contract_size);
      } else if (rec.type == CaptureRecord::Type::opened) {
        dec->reset();
      } else {
        data_seen = true;
        test::decode(*dec, rec.data, rec.recv, out);
      }
    }
    // Every file, rotated ones too, starts with the sizes, so each one replays alone.
    EXPECT_EQ(sizes_before_data, 2u) << path;
  }
  EXPECT_GE(symbol_records, 2u * files.size());
  const auto replayed = test::ticks_of(out);
  ASSERT_EQ(replayed.size(), live.size());
  std::size_t trades = 0;
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(std::memcmp(&replayed[i], &live[i], sizeof(Tick)), 0) << i;
    if (live[i].kind == TickKind::trade) {
      ++trades;
      EXPECT_EQ(live[i].size % test::VenueFeed::kTestContractSize, 0) << "sized in base units";
      EXPECT_EQ(live[i].flags & kTickNoSize, 0);
    }
  }
  EXPECT_GT(trades, 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lam::feeds
