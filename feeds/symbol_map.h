#pragma once
/// A venue's symbol spellings ("BTCUSDT", "BTC-USDT-SWAP", "BTC") mapped to interned instruments.
/// Owned by one decoder, read on every frame; built before the connection starts.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/fixed.h"
#include "engine/instruments.h"
#include "feeds/venue.h"

namespace lam::feeds {

/// SymbolInfo::contract_size when it is not known: trades keep their price, carry no size
/// (`kTickNoSize`) and are counted (`unsized`), never sized wrongly.
inline constexpr std::int64_t kUnknownContractSize = 0;

struct SymbolInfo {
  InstrumentId id = kNoInstrument;
  /// Base units per contract as raw fixed-point: sizes on the wire are multiplied by it
  /// (OKX SWAP and FUTURES sizes are in contracts; 1.0 everywhere else), or kUnknownContractSize.
  std::int64_t contract_size = kScale;
};

/// How a venue's sizes for a symbol are counted.
enum class SizeUnit : std::uint8_t {
  base,       ///< in the base asset (every venue's spot and linear perps but OKX's derivatives)
  contracts,  ///< in contracts of a fixed base amount (OKX linear SWAP / FUTURES): x contract size
  inverse,    ///< in contracts worth a fixed quote amount (OKX `BTC-USD-SWAP`): not supported
};
[[nodiscard]] SizeUnit size_unit(Venue venue, std::string_view symbol) noexcept;
/// The contract size a symbol has without configuration: 1.0 when sizes are in base units, else
/// kUnknownContractSize.
[[nodiscard]] std::int64_t default_contract_size(Venue venue, std::string_view symbol) noexcept;

class SymbolMap {
 public:
  SymbolMap() = default;
  /// `intern_into`: when set, symbols not yet known are interned into that table on first sight
  /// (replay of captures); otherwise they are unknown and their frames are counted and skipped.
  SymbolMap(Venue venue, InstrumentTable* intern_into) : venue_(venue), table_(intern_into) {}

  /// Adds (or replaces) a symbol.
  void add(std::string_view symbol, SymbolInfo info);
  /// Interns (venue, symbol) in `table` and adds it.
  InstrumentId add(InstrumentTable& table, std::string_view symbol, std::int64_t contract_size);
  /// The same with default_contract_size().
  InstrumentId add(InstrumentTable& table, std::string_view symbol) {
    return add(table, symbol, default_contract_size(venue_, symbol));
  }

  /// Null when the symbol is unknown (and cannot be interned).
  [[nodiscard]] const SymbolInfo* find(std::string_view symbol);
  [[nodiscard]] Venue venue() const noexcept { return venue_; }
  [[nodiscard]] std::size_t size() const noexcept { return by_name_.size(); }
  /// Every instrument in the map, in insertion order.
  [[nodiscard]] const std::vector<InstrumentId>& instruments() const noexcept { return ids_; }
  /// Every symbol spelling, in insertion order.
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }

 private:
  struct Hash {
    using is_transparent = void;
    /// Long names (Pyth's 64-hex feed ids) by their two ends: hashing all 64 bytes cost more
    /// than the rest of the lookup, and a collision only costs a compare.
    std::size_t operator()(std::string_view s) const noexcept {
      if (s.size() < 16) return std::hash<std::string_view>{}(s);
      std::uint64_t a = 0, b = 0;
      std::memcpy(&a, s.data(), 8);
      std::memcpy(&b, s.data() + s.size() - 8, 8);
      const std::uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ULL) ^ s.size()) * 0xFF51AFD7ED558CCDULL;
      return static_cast<std::size_t>(h ^ (h >> 32));
    }
  };
  Venue venue_ = Venue::binance;
  InstrumentTable* table_ = nullptr;
  std::unordered_map<std::string, SymbolInfo, Hash, std::equal_to<>> by_name_;
  std::vector<InstrumentId> ids_;
  std::vector<std::string> names_;
};

}  // namespace lam::feeds
