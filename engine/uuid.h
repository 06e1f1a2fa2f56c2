#pragma once
/// 128-bit identifiers (PostgreSQL `uuid`), ordered like their canonical text.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lam {

struct Uuid {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;

  /// Accepts the canonical 8-4-4-4-12 form (either case) and 32 hex digits without dashes.
  [[nodiscard]] static std::optional<Uuid> parse(std::string_view text) noexcept;
  /// Lower-case canonical text.
  [[nodiscard]] std::string str() const;
  void append_to(std::string& out) const;
  [[nodiscard]] bool is_nil() const noexcept { return hi == 0 && lo == 0; }

  friend constexpr auto operator<=>(const Uuid&, const Uuid&) = default;
};

struct UuidHash {
  std::size_t operator()(const Uuid& u) const noexcept {
    // ids are random (v4) or sequential; mix both halves so either kind spreads.
    std::uint64_t x = u.hi ^ (u.lo * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 31;
    return static_cast<std::size_t>(x * 0xBF58476D1CE4E5B9ULL);
  }
};

}  // namespace lam
