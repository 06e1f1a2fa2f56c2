#include <gtest/gtest.h>

#include <cctype>

#include "engine/event_json.h"
#include "engine/instruments.h"
#include "engine/timefmt.h"
#include "engine/uuid.h"

namespace lam {
namespace {

TEST(Uuid, ParsesAndFormatsCanonicalText) {
  auto u = Uuid::parse("123E4567-e89b-12d3-a456-426614174000");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->str(), "123e4567-e89b-12d3-a456-426614174000");
  EXPECT_EQ(Uuid::parse("123e4567e89b12d3a456426614174000"), u);
  EXPECT_FALSE(Uuid::parse("123e4567-e89b-12d3-a456-42661417400"));
  EXPECT_FALSE(Uuid::parse("123e4567-e89b-12d3-a456_426614174000"));
  EXPECT_FALSE(Uuid::parse("g23e4567-e89b-12d3-a456-426614174000"));
  // Ordered like the text
  EXPECT_LT(*Uuid::parse("00000000-0000-0000-0000-0000000000ff"),
            *Uuid::parse("00000000-0000-0000-0000-000000000100"));
  EXPECT_LT(*Uuid::parse("0fffffff-ffff-ffff-ffff-ffffffffffff"),
            *Uuid::parse("10000000-0000-0000-0000-000000000000"));
}

TEST(Uuid, EveryPositionRefusesEveryNonDigitAndRandomIdsRoundTrip) {
  const std::string good = "0123abcd-EF45-6789-aBcD-ef0123456789";
  ASSERT_TRUE(Uuid::parse(good));
  for (std::size_t i = 0; i < good.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    for (int c = 0; c < 256; ++c) {
      std::string t = good;
      t[i] = static_cast<char>(c);
      const bool ok = dash ? c == '-' : std::isxdigit(c) != 0;
      ASSERT_EQ(Uuid::parse(t).has_value(), ok) << i << " " << c;
    }
  }
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 10'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const Uuid u{x, x * 0x2545F4914F6CDD1DULL};
    EXPECT_EQ(Uuid::parse(u.str()), u);
    std::string plain = u.str();
    std::erase(plain, '-');
    EXPECT_EQ(Uuid::parse(plain), u);
  }
}

TEST(Iso8601, ParsesPostgresAndRfc3339Forms) {
  const TimeNs base = 1767225600LL * kNsPerSec;  // 2026-01-01T00:00:00Z
  EXPECT_EQ(parse_iso8601("2026-01-01T00:00:00Z"), base);
  // Found by libFuzzer through Coinbase timestamps: years outside int64 ns overflowed.
  EXPECT_FALSE(parse_iso8601("1013-09-06T01:30:00.512093114Z"));
  EXPECT_FALSE(parse_iso8601("9999-12-31T23:59:59Z"));
  EXPECT_TRUE(parse_iso8601("1700-01-01T00:00:00Z"));
  EXPECT_TRUE(parse_iso8601("2262-01-01T00:00:00Z"));
  EXPECT_EQ(parse_iso8601("2026-01-01 00:00:00+00"), base);
  EXPECT_EQ(parse_iso8601("2026-01-01T02:00:00+02:00"), base);
  EXPECT_EQ(parse_iso8601("2025-12-31T19:00:00-0500"), base);
  EXPECT_EQ(parse_iso8601("2026-01-01T00:00:00.123456789Z"), base + 123456789);
  EXPECT_EQ(parse_iso8601("2026-01-01T00:00:00.5Z"), base + 500'000'000);
  EXPECT_EQ(parse_iso8601("2026-01-01T00:00"), base);
  EXPECT_EQ(parse_iso8601("2024-02-29T00:00:00Z"), 1709164800LL * kNsPerSec);
  for (const char* bad :
       {"", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-01-01", "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:00Q", "2026-01-01T00:00:00.Z", "2026/01/01T00:00:00Z"}) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
}

TEST(Iso8601, FormatsMilliseconds) {
  EXPECT_EQ(format_iso8601_ms(1767225600123456789LL), "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(format_iso8601_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
  for (TimeNs t : {1709164800LL * kNsPerSec, 951782400LL * kNsPerSec + 7 * kNsPerMs}) {
    EXPECT_EQ(parse_iso8601(format_iso8601_ms(t)), t);
  }
}

TEST(EventJson, MatchesTheDocumentedSchema) {
  Event e;
  e.seq = 1;
  e.type = EventType::alert_triggered;
  e.ts = 1767225600000LL * kNsPerMs;
  e.subject = *Uuid::parse("00000000-0000-0000-0000-0000000000d1");
  e.user_id = *Uuid::parse("00000000-0000-0000-0000-0000000000c1");
  e.market_id = *Uuid::parse("00000000-0000-0000-0000-0000000000a1");
  e.has_market = true;
  e.price = 65000'500000000;
  e.has_price = true;
  std::string s;
  append_event_json(s, e);
  EXPECT_EQ(
      s,
      R"({"seq":1,"type":"alert.triggered","ts":1767225600000,"alert_id":"00000000-0000-0000-0000-0000000000d1",)"
      R"("user_id":"00000000-0000-0000-0000-0000000000c1","market_id":"00000000-0000-0000-0000-0000000000a1",)"
      R"("price":"65000.5"})");
  e.type = EventType::position_liquidated;
  s.clear();
  append_event_json(s, e);
  EXPECT_NE(s.find(R"("position_id":"00000000-0000-0000-0000-0000000000d1")"), std::string::npos);
  e.type = EventType::alert_rejected;
  e.reason = RejectReason::missing_market;
  e.has_market = false;
  e.has_price = false;
  s.clear();
  append_event_json(s, e);
  EXPECT_NE(s.find(R"("market_id":null,"reason":"missing_market")"), std::string::npos);
}

TEST(InstrumentTable, InternsDensely) {
  InstrumentTable t;
  EXPECT_EQ(t.intern("binance", "BTCUSDT"), 0u);
  EXPECT_EQ(t.intern("bybit", "BTCUSDT"), 1u);
  EXPECT_EQ(t.intern("binance", "BTCUSDT"), 0u);
  EXPECT_EQ(t.find("bybit", "BTCUSDT"), 1u);
  EXPECT_FALSE(t.find("binance", "ETHUSDT"));
  EXPECT_FALSE(t.find("binanceB", "TCUSDT"));
  EXPECT_EQ(t.symbol(1), "BTCUSDT");
}

}  // namespace
}  // namespace lam
