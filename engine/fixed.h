#pragma once
/// Fixed-point decimals: every price, size and amount in the engine is an integer count of 1e-9
/// units.
///
/// Parsing never goes through `double`. A decimal with more than 9 fractional digits is not rounded
/// silently: `Decimal` keeps the floor on the 1e-9 grid plus a classification of what was dropped,
/// so a caller can take the floor, the ceiling or the nearest value, whichever keeps its comparison
/// exact.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lam {

using Wide = __int128;

inline constexpr int kScaleDigits = 9;
inline constexpr std::int64_t kScale = 1'000'000'000;
/// Largest magnitude a price, size or margin may have, in raw units (9e9 whole units).
inline constexpr std::int64_t kMaxRaw = 9'000'000'000'000'000'000;

/// What a parse dropped below the 1e-9 grid, as a fraction of one raw unit.
enum class Remainder : std::uint8_t { zero, below_half, half, above_half };

/// A decimal as floor-on-the-grid plus remainder; exact when `rem == Remainder::zero`.
struct Decimal {
  Wide floor = 0;  ///< floor(value * 1e9)
  Remainder rem = Remainder::zero;

  [[nodiscard]] bool exact() const noexcept { return rem == Remainder::zero; }
  [[nodiscard]] Wide ceil() const noexcept { return exact() ? floor : floor + 1; }
  /// Round half away from zero on the grid.
  [[nodiscard]] Wide nearest() const noexcept;
  friend bool operator==(const Decimal&, const Decimal&) = default;
};

enum class DecimalError : std::uint8_t { none, empty, syntax, out_of_range };

struct DecimalParse {
  Decimal value;
  DecimalError error = DecimalError::none;
  [[nodiscard]] bool ok() const noexcept { return error == DecimalError::none; }
};

/// Parses `[+-]digits[.digits][(e|E)[+-]digits]` (also `.5`, `5.`); no spaces, no hex, no inf/nan.
/// Magnitudes up to ~1.7e29 are representable; larger ones give `out_of_range`.
[[nodiscard]] DecimalParse parse_decimal(std::string_view text) noexcept;
/// The same on the grid of 10^-digits (digits in [0, 18]): `floor` counts units of 10^-digits.
[[nodiscard]] DecimalParse parse_decimal(std::string_view text, int digits) noexcept;

/// Funding rates live on a finer grid than prices (OKX sends 16 decimals): 1e-18.
inline constexpr int kRateDigits = 18;
inline constexpr std::int64_t kRateScale = 1'000'000'000'000'000'000;
/// Largest magnitude of a rate per settlement: 100 % (venues cap funding at a few percent; a
/// larger value is a bad value, never a payment).
inline constexpr std::int64_t kMaxRate = kRateScale;
/// A rate rounded to the nearest 1e-18; nullopt when malformed or beyond +-kMaxRate.
[[nodiscard]] std::optional<std::int64_t> parse_rate(std::string_view text) noexcept;

/// Parses and rounds to the nearest raw value that fits in [-kMaxRaw, kMaxRaw]; nullopt otherwise.
[[nodiscard]] std::optional<std::int64_t> parse_raw(std::string_view text) noexcept;

/// Narrowing with a range check against +-kMaxRaw.
[[nodiscard]] std::optional<std::int64_t> to_raw(Wide v) noexcept;

/// Formats `raw / 10^digits` with no trailing zeros ("65000.5", "-0.25", "3"). digits in [0, 36].
[[nodiscard]] std::string format_fixed(Wide raw, int digits = kScaleDigits);
/// Appends the same text to `out` (no allocation when `out` has capacity).
void append_fixed(std::string& out, Wide raw, int digits = kScaleDigits);

/// Integer division rounding toward -inf / +inf. `b != 0`.
[[nodiscard]] constexpr Wide floor_div(Wide a, Wide b) noexcept {
  Wide q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
[[nodiscard]] constexpr Wide ceil_div(Wide a, Wide b) noexcept {
  Wide q = a / b;
  if ((a % b != 0) && ((a < 0) == (b < 0))) ++q;
  return q;
}

/// floor(a * b / c) and ceil(a * b / c), exact for any a, b, c with |a| < 2^127, |b| < 2^63, c != 0
/// and a result that fits in 128 bits (a 192-bit intermediate is used when a * b overflows).
[[nodiscard]] Wide muldiv_floor(Wide a, std::int64_t b, Wide c) noexcept;
[[nodiscard]] Wide muldiv_ceil(Wide a, std::int64_t b, Wide c) noexcept;

}  // namespace lam
