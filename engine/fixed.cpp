#include "engine/fixed.h"

#include <array>
#include <limits>

namespace lam {
namespace {

constexpr Wide kWideMax = static_cast<Wide>((static_cast<unsigned __int128>(1) << 127) - 1);

constexpr Wide pow10_wide(int n) noexcept {
  Wide r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// Significant digits beyond what an unsigned 128-bit mantissa holds only matter as "non-zero tail".
constexpr int kMaxMantissaDigits = 37;

}  // namespace

Wide Decimal::nearest() const noexcept {
  // floor is toward -inf, so "half" here rounds toward +inf; make it away from zero for negatives.
  switch (rem) {
    case Remainder::zero:
    case Remainder::below_half:
      return floor;
    case Remainder::above_half:
      return floor + 1;
    case Remainder::half:
      return floor < 0 ? floor : floor + 1;
  }
  return floor;
}

DecimalParse parse_decimal(std::string_view s) noexcept {
  return parse_decimal(s, kScaleDigits);
}

DecimalParse parse_decimal(std::string_view s, int digits) noexcept {
  // Long: a one-pass decimal parser (sign, digits, point, exponent, rounding, range checks) on the
  // hot path; split, its state would travel through parameters.
  DecimalParse out;
  if (s.empty()) {
    out.error = DecimalError::empty;
    return out;
  }
  std::size_t i = 0;
  bool negative = false;
  if (s[i] == '+' || s[i] == '-') {
    negative = s[i] == '-';
    ++i;
  }
  unsigned __int128 mant = 0;
  int mant_digits = 0;  // significant digits kept in mant
  int exp10 = 0;        // value = mant * 10^exp10 (+ tail)
  bool tail_nonzero = false;
  bool any_digit = false;
  auto take = [&](char c, bool fractional) {
    any_digit = true;
    const int d = c - '0';
    if (mant_digits < kMaxMantissaDigits) {
      if (mant != 0 || d != 0) {
        mant = mant * 10 + static_cast<unsigned>(d);
        ++mant_digits;
      }
      if (fractional) --exp10;
    } else {
      if (d != 0) tail_nonzero = true;
      if (!fractional) ++exp10;
    }
  };
  while (i < s.size() && is_digit(s[i])) take(s[i++], false);
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) take(s[i++], true);
  }
  if (!any_digit) {
    out.error = DecimalError::syntax;
    return out;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
    if (i == s.size() || !is_digit(s[i])) {
      out.error = DecimalError::syntax;
      return out;
    }
    int e = 0;
    while (i < s.size() && is_digit(s[i])) {
      if (e < 100000) e = e * 10 + (s[i] - '0');
      ++i;
    }
    exp10 += eneg ? -e : e;
  }
  if (i != s.size()) {
    out.error = DecimalError::syntax;
    return out;
  }

  // Scale to the grid: magnitude = mant * 10^(exp10 + digits).
  const int shift = exp10 + digits;
  unsigned __int128 mag = 0;
  Remainder rem = Remainder::zero;
  if (mant == 0) {
    mag = 0;
  } else if (shift >= 0) {
    if (shift > 38) {
      out.error = DecimalError::out_of_range;
      return out;
    }
    mag = mant;
    for (int k = 0; k < shift; ++k) {
      if (mag > static_cast<unsigned __int128>(kWideMax) / 10) {
        out.error = DecimalError::out_of_range;
        return out;
      }
      mag *= 10;
    }
    if (mag > static_cast<unsigned __int128>(kWideMax)) {
      out.error = DecimalError::out_of_range;
      return out;
    }
  } else {
    const int drop = -shift;
    if (drop > 38) {
      mag = 0;
      rem = Remainder::below_half;  // a non-zero mantissa far below the grid
    } else {
      const auto div = static_cast<unsigned __int128>(pow10_wide(drop));
      mag = mant / div;
      const unsigned __int128 r = mant % div;
      const unsigned __int128 half = div / 2;  // div is even for drop >= 1
      if (r == 0) {
        rem = tail_nonzero ? Remainder::below_half : Remainder::zero;
      } else if (r < half) {
        rem = Remainder::below_half;
      } else if (r == half) {
        rem = tail_nonzero ? Remainder::above_half : Remainder::half;
      } else {
        rem = Remainder::above_half;
      }
    }
  }
  if (shift >= 0 && tail_nonzero) rem = Remainder::below_half;

  Wide v = static_cast<Wide>(mag);
  if (negative && (v != 0 || rem != Remainder::zero)) {
    // -(mag + f) with f in (0,1): floor is -mag-1, and the remainder mirrors.
    if (rem == Remainder::zero) {
      v = -v;
    } else {
      v = -v - 1;
      if (rem == Remainder::below_half) {
        rem = Remainder::above_half;
      } else if (rem == Remainder::above_half) {
        rem = Remainder::below_half;
      }
    }
  }
  out.value = Decimal{v, rem};
  return out;
}

std::optional<std::int64_t> parse_rate(std::string_view text) noexcept {
  const DecimalParse p = parse_decimal(text, kRateDigits);
  if (!p.ok()) return std::nullopt;
  const Wide v = p.value.nearest();
  if (v > kMaxRate || v < -kMaxRate) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

std::optional<std::int64_t> to_raw(Wide v) noexcept {
  if (v > kMaxRaw || v < -kMaxRaw) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

std::optional<std::int64_t> parse_raw(std::string_view text) noexcept {
  // Fast path for what the venues send: up to 9 integer and 9 fractional digits, no sign, no
  // exponent. Exact; everything else takes the general parser below.
  {
    const char* c = text.data();
    const char* end = c + text.size();
    std::int64_t ip = 0;
    int nint = 0;
    while (c != end && *c >= '0' && *c <= '9' && nint < 10) {
      ip = ip * 10 + (*c++ - '0');
      ++nint;
    }
    if (nint > 0 && nint <= 9) {
      if (c == end) return ip * kScale;
      if (*c == '.') {
        ++c;
        std::int64_t frac = 0;
        int nfrac = 0;
        while (c != end && *c >= '0' && *c <= '9' && nfrac < 10) {
          frac = frac * 10 + (*c++ - '0');
          ++nfrac;
        }
        if (c == end && nfrac <= 9) {
          static constexpr std::int64_t kPow[] = {
              1'000'000'000, 100'000'000, 10'000'000, 1'000'000, 100'000,
              10'000,        1'000,       100,        10,        1};
          return ip * kScale + frac * kPow[nfrac];
        }
      }
    }
  }
  const DecimalParse p = parse_decimal(text);
  if (!p.ok()) return std::nullopt;
  return to_raw(p.value.nearest());
}

void append_fixed(std::string& out, Wide raw, int digits) {
  unsigned __int128 mag = raw < 0 ? static_cast<unsigned __int128>(-(raw + 1)) + 1
                                  : static_cast<unsigned __int128>(raw);
  std::array<char, 48> buf{};
  int n = 0;
  // Emit fractional digits, least significant first, then the integer part.
  for (int k = 0; k < digits; ++k) {
    buf[static_cast<std::size_t>(n++)] = static_cast<char>('0' + static_cast<int>(mag % 10));
    mag /= 10;
  }
  int frac_start = 0;  // skip trailing zeros of the fraction
  while (frac_start < digits && buf[static_cast<std::size_t>(frac_start)] == '0') ++frac_start;
  if (raw < 0) out.push_back('-');
  std::array<char, 48> ibuf{};
  int in = 0;
  do {
    ibuf[static_cast<std::size_t>(in++)] = static_cast<char>('0' + static_cast<int>(mag % 10));
    mag /= 10;
  } while (mag != 0);
  while (in > 0) out.push_back(ibuf[static_cast<std::size_t>(--in)]);
  if (frac_start < digits) {
    out.push_back('.');
    for (int k = digits - 1; k >= frac_start; --k) out.push_back(buf[static_cast<std::size_t>(k)]);
  }
}

std::string format_fixed(Wide raw, int digits) {
  std::string s;
  s.reserve(24);
  append_fixed(s, raw, digits);
  return s;
}

namespace {

// Unsigned 192-bit helpers for the rare products that overflow 128 bits.
struct U192 {
  std::uint64_t w[3] = {0, 0, 0};  // little-endian limbs
};

U192 mul_u128_u64(unsigned __int128 a, std::uint64_t b) noexcept {
  const auto lo = static_cast<std::uint64_t>(a);
  const auto hi = static_cast<std::uint64_t>(a >> 64);
  const unsigned __int128 p0 = static_cast<unsigned __int128>(lo) * b;
  const unsigned __int128 p1 = static_cast<unsigned __int128>(hi) * b + (p0 >> 64);
  U192 r;
  r.w[0] = static_cast<std::uint64_t>(p0);
  r.w[1] = static_cast<std::uint64_t>(p1);
  r.w[2] = static_cast<std::uint64_t>(p1 >> 64);
  return r;
}

// Returns quotient (assumed to fit in 128 bits) and whether the remainder is non-zero.
std::pair<unsigned __int128, bool> div_u192_u128(U192 n, unsigned __int128 d) noexcept {
  unsigned __int128 rem = 0;
  unsigned __int128 q = 0;
  for (int bit = 191; bit >= 0; --bit) {
    const bool top = (rem >> 127) != 0;
    rem = (rem << 1) | ((n.w[bit / 64] >> (bit % 64)) & 1U);
    q <<= 1;
    if (top || rem >= d) {
      rem -= d;
      q |= 1;
    }
  }
  return {q, rem != 0};
}

unsigned __int128 uabs(Wide v) noexcept {
  return v < 0 ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
}

Wide muldiv(Wide a, std::int64_t b, Wide c, bool round_up) noexcept {
  Wide prod = 0;
  if (!__builtin_mul_overflow(a, static_cast<Wide>(b), &prod)) {
    return round_up ? ceil_div(prod, c) : floor_div(prod, c);
  }
  const bool negative = ((a < 0) != (b < 0)) != (c < 0);
  const U192 n = mul_u128_u64(uabs(a), static_cast<std::uint64_t>(uabs(b)));
  auto [q, inexact] = div_u192_u128(n, uabs(c));
  Wide r = static_cast<Wide>(q);
  if (negative) {
    r = -r;
    if (inexact && !round_up) --r;
  } else if (inexact && round_up) {
    ++r;
  }
  return r;
}

}  // namespace

Wide muldiv_floor(Wide a, std::int64_t b, Wide c) noexcept {
  return muldiv(a, b, c, false);
}
Wide muldiv_ceil(Wide a, std::int64_t b, Wide c) noexcept {
  return muldiv(a, b, c, true);
}

}  // namespace lam
