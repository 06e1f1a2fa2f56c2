#pragma once
/// Interns (venue, symbol) pairs into dense `InstrumentId`s. Built once at start-up (or by replay)
/// and then read-only; a thread that interns new pairs must own the table.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tick.h"

namespace lam {

class InstrumentTable {
 public:
  /// Returns the id of (venue, symbol), assigning the next one if it is new.
  InstrumentId intern(std::string_view venue, std::string_view symbol);
  /// Looks up without assigning; no allocation once the scratch key has grown.
  [[nodiscard]] std::optional<InstrumentId> find(std::string_view venue,
                                                 std::string_view symbol) const;
  [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
  [[nodiscard]] const std::string& venue(InstrumentId id) const { return names_.at(id).first; }
  [[nodiscard]] const std::string& symbol(InstrumentId id) const { return names_.at(id).second; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  static void make_key(std::string& key, std::string_view venue, std::string_view symbol);

  std::unordered_map<std::string, InstrumentId, Hash, std::equal_to<>> ids_;
  std::vector<std::pair<std::string, std::string>> names_;
  mutable std::string scratch_;
};

}  // namespace lam
