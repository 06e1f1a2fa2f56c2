#include "engine/uuid.h"

namespace lam {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::optional<Uuid> Uuid::parse(std::string_view s) noexcept {
  const bool dashed = s.size() == 36;
  if (!dashed && s.size() != 32) return std::nullopt;
  Uuid u;
  int nibbles = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return std::nullopt;
      continue;
    }
    const int v = hex_value(s[i]);
    if (v < 0) return std::nullopt;
    std::uint64_t& word = nibbles < 16 ? u.hi : u.lo;
    word = (word << 4) | static_cast<std::uint64_t>(v);
    ++nibbles;
  }
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
