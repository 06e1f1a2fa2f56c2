#include "engine/fixed.h"

#include <gtest/gtest.h>

#include <random>

namespace lam {
namespace {

Decimal parsed(std::string_view s) {
  DecimalParse p = parse_decimal(s);
  EXPECT_TRUE(p.ok()) << s;
  return p.value;
}

TEST(ParseDecimal, IntegersFractionsAndSigns) {
  EXPECT_EQ(parsed("0").floor, 0);
  EXPECT_EQ(parsed("65000.5").floor, static_cast<Wide>(65000'500000000));
  EXPECT_EQ(parsed("-0.25").floor, -250'000'000);
  EXPECT_EQ(parsed("+3").floor, 3 * kScale);
  EXPECT_EQ(parsed(".5").floor, 500'000'000);
  EXPECT_EQ(parsed("5.").floor, 5 * kScale);
  EXPECT_EQ(parsed("000123.000").floor, 123 * kScale);
  EXPECT_EQ(parsed("0.000000001").floor, 1);
  EXPECT_TRUE(parsed("0.123456789").exact());
}

TEST(ParseDecimal, Exponents) {
  EXPECT_EQ(parsed("1.5e-7").floor, 150);
  EXPECT_EQ(parsed("6.5E4").floor, static_cast<Wide>(65000) * kScale);
  EXPECT_EQ(parsed("1e+2").floor, 100 * kScale);
  EXPECT_EQ(parsed("12345e-9").floor, 12345);
}

TEST(ParseDecimal, DigitsBeyondTheGridAreClassified) {
  // 18-digit DECIMAL(36,18) text from PostgreSQL
  Decimal d = parsed("65000.500000000000000000");
  EXPECT_TRUE(d.exact());
  d = parsed("1.0000000001");  // 0.1 of a raw unit
  EXPECT_EQ(d.floor, kScale);
  EXPECT_EQ(d.rem, Remainder::below_half);
  EXPECT_EQ(d.ceil(), kScale + 1);
  EXPECT_EQ(d.nearest(), kScale);
  d = parsed("1.0000000005");
  EXPECT_EQ(d.rem, Remainder::half);
  EXPECT_EQ(d.nearest(), kScale + 1);
  d = parsed("1.00000000050000000000000000000000000000000000001");  // past the mantissa
  EXPECT_EQ(d.rem, Remainder::above_half);
  d = parsed("1.0000000009");
  EXPECT_EQ(d.rem, Remainder::above_half);
  // negative: floor is toward -inf, remainder mirrored
  d = parsed("-1.0000000001");
  EXPECT_EQ(d.floor, -kScale - 1);
  EXPECT_EQ(d.rem, Remainder::above_half);
  EXPECT_EQ(d.ceil(), -kScale);
  EXPECT_EQ(d.nearest(), -kScale);
  d = parsed("-1.0000000005");
  EXPECT_EQ(d.nearest(), -kScale - 1);  // half away from zero
  d = parsed("0.0000000000001");
  EXPECT_EQ(d.floor, 0);
  EXPECT_EQ(d.rem, Remainder::below_half);
}

TEST(ParseDecimal, RejectsMalformedAndHuge) {
  for (const char* bad : {"", "-", "+", ".", "abc", "1.2.3", "1e", "1e+", "--1", " 1", "1 ", "0x10",
                          "nan", "inf", "1,5"}) {
    EXPECT_FALSE(parse_decimal(bad).ok()) << bad;
  }
  EXPECT_EQ(parse_decimal("").error, DecimalError::empty);
  EXPECT_EQ(parse_decimal("1e40").error, DecimalError::out_of_range);
  EXPECT_FALSE(parse_raw("9000000001").has_value());  // beyond kMaxRaw
  EXPECT_TRUE(parse_raw("9000000000").has_value());
  EXPECT_EQ(parse_decimal("1e-400").value.floor, 0);
}

TEST(ParseRate, TheFundingGridKeepsEighteenDecimalsAndRefusesBeyondOneHundredPercent) {
  EXPECT_EQ(parse_rate("0.0001875391284828"), 187'539'128'482'800);  // OKX: every digit kept
  EXPECT_EQ(parse_rate("-0.00004532"), -45'320'000'000'000);
  EXPECT_EQ(parse_rate("1.5e-4"), 150'000'000'000'000);
  EXPECT_EQ(parse_rate("0"), 0);
  EXPECT_EQ(parse_rate("1"), kRateScale);
  EXPECT_EQ(parse_rate("-1"), -kRateScale);
  // Beyond 1e-18: to the nearest, half away from zero.
  EXPECT_EQ(parse_rate("0.0000000000000000014"), 1);
  EXPECT_EQ(parse_rate("0.0000000000000000015"), 2);
  EXPECT_EQ(parse_rate("-0.0000000000000000015"), -2);
  for (const char* bad : {"1.000000000000000001", "-2", "1e3", "", "x", "0.1.2", "nan", "inf"})
    EXPECT_FALSE(parse_rate(bad).has_value()) << bad;
  // The 1e-9 grid is unchanged by the finer one.
  EXPECT_EQ(parse_decimal("0.0001875391284828").value.floor, 187'539);
  EXPECT_EQ(parse_decimal("0.0001875391284828", 18).value.floor, 187'539'128'482'800);
}

TEST(FormatFixed, TrimsTrailingZeros) {
  EXPECT_EQ(format_fixed(65000'500000000), "65000.5");
  EXPECT_EQ(format_fixed(3 * kScale), "3");
  EXPECT_EQ(format_fixed(-250'000'000), "-0.25");
  EXPECT_EQ(format_fixed(1), "0.000000001");
  EXPECT_EQ(format_fixed(0), "0");
  EXPECT_EQ(format_fixed(static_cast<Wide>(-15) * 100'000'000'000'000'000, 18), "-1.5");
  const Wide min = static_cast<Wide>(static_cast<unsigned __int128>(1) << 127);
  EXPECT_EQ(format_fixed(min, 0), "-170141183460469231731687303715884105728");
}

TEST(FormatFixed, RoundTripsRandomValues) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const auto v = static_cast<std::int64_t>(
        static_cast<Wide>(rng() % (2 * static_cast<std::uint64_t>(kMaxRaw))) - kMaxRaw);
    const auto back = parse_raw(format_fixed(v));
    ASSERT_TRUE(back.has_value());
    ASSERT_EQ(*back, v);
  }
}

TEST(IntegerDivision, FloorAndCeilForAllSigns) {
  EXPECT_EQ(floor_div(7, 2), 3);
  EXPECT_EQ(floor_div(-7, 2), -4);
  EXPECT_EQ(floor_div(7, -2), -4);
  EXPECT_EQ(floor_div(-7, -2), 3);
  EXPECT_EQ(ceil_div(7, 2), 4);
  EXPECT_EQ(ceil_div(-7, 2), -3);
  EXPECT_EQ(ceil_div(7, -2), -3);
  EXPECT_EQ(ceil_div(-7, -2), 4);
  EXPECT_EQ(ceil_div(6, 3), 2);
}

TEST(MulDiv, WidePathAgreesWithNarrowPath) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const Wide a =
        static_cast<Wide>(static_cast<std::int64_t>(rng())) * static_cast<Wide>(rng() % 1000 + 1);
    const auto b = static_cast<std::int64_t>(rng() % 2'000'000'000) - 1'000'000'000;
    const Wide c =
        static_cast<Wide>(static_cast<std::int64_t>(rng() >> 1) | 1) * ((rng() & 1) ? 1 : -1);
    const Wide exact = a * b;  // fits: |a| < 2^73, |b| < 2^30
    EXPECT_EQ(muldiv_floor(a, b, c), floor_div(exact, c));
    EXPECT_EQ(muldiv_ceil(a, b, c), ceil_div(exact, c));
  }
}

TEST(MulDiv, OverflowingProductIsExact) {
  // (2^120 * 10^9) / 10^9 needs a 160-bit intermediate.
  const Wide a = static_cast<Wide>(1) << 120;
  EXPECT_EQ(muldiv_floor(a, kScale, kScale), a);
  EXPECT_EQ(muldiv_floor(a + 1, kScale, 2 * kScale), a / 2);
  EXPECT_EQ(muldiv_ceil(a + 1, kScale, 2 * kScale), a / 2 + 1);
  EXPECT_EQ(muldiv_floor(-(a + 1), kScale, 2 * kScale), -(a / 2) - 1);
  EXPECT_EQ(muldiv_ceil(-(a + 1), kScale, 2 * kScale), -(a / 2));
}

}  // namespace
}  // namespace lam

namespace lam {
namespace {

// parse_raw has a fast path for plain decimals; it must agree with the general parser everywhere.
TEST(ParseRaw, FastPathAgreesWithTheGeneralParser) {
  std::mt19937_64 rng(5);
  const char alphabet[] = "0123456789.";
  for (int i = 0; i < 200'000; ++i) {
    std::string s;
    const std::size_t len = 1 + rng() % 22;
    for (std::size_t k = 0; k < len; ++k) s.push_back(alphabet[rng() % 11]);
    const DecimalParse p = parse_decimal(s);
    const std::optional<std::int64_t> slow = p.ok() ? to_raw(p.value.nearest()) : std::nullopt;
    ASSERT_EQ(parse_raw(s), slow) << s;
  }
}

}  // namespace
}  // namespace lam
