#pragma once
/// Replay inputs: the STATE.json document and TICKS.ndjson lines, parsed without `double`.
/// simdjson stays inside replay_input.cpp; this header is cheap to include.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/domain.h"
#include "engine/orders.h"
#include "engine/tick.h"

namespace lam::app {

/// Everything in STATE.json that parsed; objects that did not are described in `errors`
/// ("alerts[3]: target_price: bad decimal 'abc'") and left out.
struct StateInput {
  std::vector<MarketRow> markets;
  std::vector<PositionSpec> positions;
  std::vector<AlertSpec> alerts;
  std::vector<OrderSpec> orders;         ///< the `orders` table (0005 columns)
  std::vector<BalanceSpec> balances;     ///< `wallet_balances`
  std::vector<UserSettingRow> settings;  ///< `user_settings` (the engine's keys)
  std::vector<std::string> errors;
};

/// Reads and parses STATE.json. Throws std::runtime_error when the file cannot be read or is not a
/// JSON object; per-object problems go to `errors`.
[[nodiscard]] StateInput load_state(const std::string& path);

struct TickLine {
  TimeNs ts = 0;
  std::string_view venue;   ///< valid until the next parse
  std::string_view symbol;  ///< valid until the next parse
  TickKind kind = TickKind::mark;
  std::int64_t price = 0;  ///< mark / trade price / bid / funding rate
  std::int64_t size = 0;
  std::int64_t ask = 0;
};

/// Parses one NDJSON tick line: {"ts":<ms>,"venue":..,"symbol":..,"kind":"mark|trade|bbo",
/// "price"|"size"|"bid"|"ask": "<decimal>"}. Decimals may be strings or JSON numbers. A
/// `"kind":"funding"` line has "rate" (1e-18 grid, into `price`), "funding_time" (ms, into `size`
/// as ns) and an optional "price" the venue pays at (into `ask`; absent: the mark).
class TickLineParser {
 public:
  /// Bytes that must be readable after the end of a line (simdjson's padding).
  static std::size_t padding() noexcept;

  TickLineParser();
  ~TickLineParser();
  TickLineParser(const TickLineParser&) = delete;
  TickLineParser& operator=(const TickLineParser&) = delete;

  /// `capacity` is how many bytes from `line` are readable (>= len + padding()). On failure returns
  /// false and sets `error` to a one-line description.
  bool parse(const char* line, std::size_t len, std::size_t capacity, TickLine& out,
             std::string& error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lam::app
