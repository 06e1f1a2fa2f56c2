#include "engine/uuid.h"

#include <array>
#include <cstdint>

namespace lam {
namespace {

/// Hex digit values, 0xFF for anything else: one load per character, no branch.
constexpr std::array<std::uint8_t, 256> kHexValue = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0xFF);
  for (int i = 0; i < 10; ++i) t[static_cast<std::size_t>('0' + i)] = static_cast<std::uint8_t>(i);
  for (int i = 0; i < 6; ++i) {
    t[static_cast<std::size_t>('a' + i)] = static_cast<std::uint8_t>(10 + i);
    t[static_cast<std::size_t>('A' + i)] = static_cast<std::uint8_t>(10 + i);
  }
  return t;
}();

/// Sixteen hex digits at the given offsets into one word; `bad` collects every digit's value, so
/// that one test at the end finds a non-digit (0xFF has bits above the low four).
inline std::uint64_t word_at(const char* s, const std::array<std::uint8_t, 16>& at,
                             std::uint8_t& bad) noexcept {
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const std::uint8_t v = kHexValue[static_cast<unsigned char>(s[at[i]])];
    bad |= v;
    w = (w << 4) | (v & 0xFU);
  }
  return w;
}

constexpr std::array<std::uint8_t, 16> kDashedHi{0, 1,  2,  3,  4,  5,  6,  7,
                                                 9, 10, 11, 12, 14, 15, 16, 17};
constexpr std::array<std::uint8_t, 16> kDashedLo{19, 20, 21, 22, 24, 25, 26, 27,
                                                 28, 29, 30, 31, 32, 33, 34, 35};
constexpr std::array<std::uint8_t, 16> kPlainHi{0, 1, 2,  3,  4,  5,  6,  7,
                                                8, 9, 10, 11, 12, 13, 14, 15};
constexpr std::array<std::uint8_t, 16> kPlainLo{16, 17, 18, 19, 20, 21, 22, 23,
                                                24, 25, 26, 27, 28, 29, 30, 31};

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::optional<Uuid> Uuid::parse(std::string_view s) noexcept {
  // The loader parses millions of these at a cold start: fixed offsets, a table per character.
  const bool dashed = s.size() == 36;
  if (!dashed && s.size() != 32) return std::nullopt;
  if (dashed && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')) return std::nullopt;
  std::uint8_t bad = 0;
  Uuid u;
  u.hi = word_at(s.data(), dashed ? kDashedHi : kPlainHi, bad);
  u.lo = word_at(s.data(), dashed ? kDashedLo : kPlainLo, bad);
  if ((bad & 0xF0U) != 0) return std::nullopt;
  return u;
}

void Uuid::append_to(std::string& out) const {
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out.push_back('-');
    const std::uint64_t word = i < 16 ? hi : lo;
    const int shift = 60 - 4 * (i % 16);
    out.push_back(kHex[(word >> shift) & 0xF]);
  }
}

std::string Uuid::str() const {
  std::string s;
  s.reserve(36);
  append_to(s);
  return s;
}

}  // namespace lam
