#include "engine/instruments.h"

namespace lam {

void InstrumentTable::make_key(std::string& key, std::string_view venue, std::string_view symbol) {
  key.clear();
  key.append(venue);
  key.push_back('\x1f');  // unit separator: cannot occur in venue names or symbols
  key.append(symbol);
}

InstrumentId InstrumentTable::intern(std::string_view venue, std::string_view symbol) {
  make_key(scratch_, venue, symbol);
  auto it = ids_.find(std::string_view(scratch_));
  if (it != ids_.end()) return it->second;
  const auto id = static_cast<InstrumentId>(names_.size());
  ids_.emplace(scratch_, id);
  names_.emplace_back(std::string(venue), std::string(symbol));
  return id;
}

std::optional<InstrumentId> InstrumentTable::find(std::string_view venue,
                                                  std::string_view symbol) const {
  make_key(scratch_, venue, symbol);
  auto it = ids_.find(std::string_view(scratch_));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace lam
