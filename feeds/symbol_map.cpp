#include "feeds/symbol_map.h"

namespace lam::feeds {

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
