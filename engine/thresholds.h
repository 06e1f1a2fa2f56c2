#pragma once
/// Compiles alert conditions and liquidation prices into ladder keys on the 1e-9 price grid.
///
/// Every condition becomes "fires when p >= up" and/or "fires when p <= down", with the key rounded
/// in the direction that keeps the comparison exact for any price on the grid (see
/// docs/semantics.md).

#include <cstdint>
#include <limits>
#include <optional>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"

namespace lam {

/// Key of an "always crossed" up entry (a position_pnl condition that is constant and true).
inline constexpr std::int64_t kAlwaysUp = std::numeric_limits<std::int64_t>::min();

struct Keys {
  std::optional<std::int64_t> up;    ///< fires when p >= up
  std::optional<std::int64_t> down;  ///< fires when p <= down
};

/// Aggregate of one user's open positions in one market: total uPnL(p) = a * p - b.
struct PnlAggregate {
  Wide a = 0;       ///< sum of signed sizes (raw, 1e-9)
  Wide b = 0;       ///< sum of signed size * entry (1e-18 units)
  Wide margin = 0;  ///< sum of margins (raw)
  std::uint32_t open = 0;

  void add(Side side, std::int64_t size, std::int64_t entry, std::int64_t margin_raw) noexcept;
  void remove(Side side, std::int64_t size, std::int64_t entry, std::int64_t margin_raw) noexcept;
  /// Total uPnL at price p, in 1e-18 units.
  [[nodiscard]] Wide upnl(std::int64_t p) const noexcept { return a * p - b; }
};

/// Structural validation of an active alert (not whether its market exists).
[[nodiscard]] RejectReason validate_alert(const AlertSpec& a) noexcept;

/// The longest volume window: seconds whose nanoseconds still fit int64 (about 292 years).
inline constexpr std::int64_t kMaxWindowSec = INT64_MAX / kNsPerSec;

/// price_above / price_below keys.
[[nodiscard]] Keys price_keys(AlertType type, ConditionType cond, const Decimal& target) noexcept;
/// price_change keys for a known anchor (raw) and percentage.
[[nodiscard]] Keys change_keys(ConditionType cond, std::int64_t anchor,
                               const Decimal& pct) noexcept;
/// position_pnl keys for the current aggregate; empty when no position is open or the
/// condition is constant and false.
[[nodiscard]] Keys pnl_keys(ConditionType cond, const PnlAggregate& agg,
                            const std::optional<Decimal>& target_value,
                            const std::optional<Decimal>& target_pct) noexcept;
/// Volume threshold on the rolling sum of trade sizes (raw): fires when sum >= key.
[[nodiscard]] Wide volume_key(const Decimal& target_value) noexcept;

/// Liquidation key of an open position: a down key for longs, an up key for shorts;
/// nullopt when the position cannot be liquidated (long with margin >= notional).
[[nodiscard]] std::optional<std::int64_t> liquidation_key(Side side, std::int64_t size,
                                                          std::int64_t entry, std::int64_t margin,
                                                          std::int64_t mmr) noexcept;

}  // namespace lam
