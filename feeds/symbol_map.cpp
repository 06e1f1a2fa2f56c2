#include "feeds/symbol_map.h"

namespace lam::feeds {

SizeUnit size_unit(Venue venue, std::string_view symbol) noexcept {
  if (venue != Venue::okx) return SizeUnit::base;
  // OKX instrument ids: BTC-USDT (spot), BTC-USDT-SWAP, BTC-USDT-250926 (futures), BTC-USD-SWAP
  // (inverse: settled in BTC, each contract worth 100 USD), BTC-USD-250926-60000-C (options).
  const std::size_t a = symbol.find('-');
  if (a == std::string_view::npos) return SizeUnit::base;
  const std::size_t b = symbol.find('-', a + 1);
  if (b == std::string_view::npos) return SizeUnit::base;  // spot
  const std::string_view quote = symbol.substr(a + 1, b - a - 1);
  return quote == "USD" ? SizeUnit::inverse : SizeUnit::contracts;
}

std::int64_t default_contract_size(Venue venue, std::string_view symbol) noexcept {
  return size_unit(venue, symbol) == SizeUnit::base ? kScale : kUnknownContractSize;
}

void SymbolMap::add(std::string_view symbol, SymbolInfo info) {
  auto it = by_name_.find(symbol);
  if (it != by_name_.end()) {
    it->second = info;
    return;
  }
  by_name_.emplace(std::string(symbol), info);
  ids_.push_back(info.id);
  names_.emplace_back(symbol);
}

InstrumentId SymbolMap::add(InstrumentTable& table, std::string_view symbol,
                            std::int64_t contract_size) {
  const InstrumentId id = table.intern(venue_name(venue_), symbol);
  add(symbol, SymbolInfo{id, contract_size});
  return id;
}

const SymbolInfo* SymbolMap::find(std::string_view symbol) {
  auto it = by_name_.find(symbol);
  if (it != by_name_.end()) return &it->second;
  if (table_ == nullptr || symbol.empty() || symbol.size() > 64) return nullptr;
  add(*table_, symbol);
  return &by_name_.find(symbol)->second;
}

}  // namespace lam::feeds
