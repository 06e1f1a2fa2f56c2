#pragma once
/// The per-venue table behind `venue_name`, the protocol rules (protocol.h) and `make_decoder`.
/// Internal to feeds/.
///
/// A venue is one file, `venues/<venue>.cpp`: its decoder, its subscribe messages and its
/// descriptor (name, routes and default URLs, timing and rate rules, sample symbols). Adding one:
/// that file, its enumerator in venue.h, its line in `venues/table.cpp` (and the CMake source
/// list); docs/architecture.md, "Where to make a change".

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "feeds/decoder.h"
#include "feeds/protocol.h"
#include "feeds/venue.h"

namespace lam::feeds {

struct VenueDescriptor {
  Venue venue;
  std::string_view name;  ///< config, `markets.dex_name`, captures
  std::vector<Route> (*routes)();
  VenueRules (*rules)();
  /// BTC and ETH perpetuals in the venue's spelling.
  std::vector<std::string> (*sample_symbols)();
  /// The subscribe messages for `symbols` on `route`, at most `per_msg` (>= 1) topics each.
  std::vector<std::string> (*subscribe)(std::string_view route,
                                        const std::vector<std::string>& symbols,
                                        std::size_t per_msg);
  std::unique_ptr<Decoder> (*make_decoder)(SymbolMap symbols);
};

extern const VenueDescriptor kBinance;
extern const VenueDescriptor kBybit;
extern const VenueDescriptor kOkx;
extern const VenueDescriptor kHyperliquid;
extern const VenueDescriptor kCoinbase;
extern const VenueDescriptor kPyth;

/// The descriptor of `v` (venues/table.cpp).
[[nodiscard]] const VenueDescriptor& descriptor(Venue v) noexcept;

// Shared by the subscribe builders (venues/messages.cpp). Symbols come from config and are plain
// [A-Za-z0-9@:/._-] spellings; anything else is escaped so a message is always valid JSON.

/// `s` as a JSON string literal.
[[nodiscard]] std::string json_quoted(std::string_view s);
/// ASCII lower case.
[[nodiscard]] std::string ascii_lower(std::string_view s);
/// Splits `topics` (JSON values) into comma-joined lists of at most `per`, each wrapped by
/// `wrap(list, 1-based message number)`.
template <class Wrap>
std::vector<std::string> chunked(const std::vector<std::string>& topics, std::size_t per,
                                 Wrap wrap) {
  std::vector<std::string> msgs;
  if (per == 0) per = 1;
  for (std::size_t i = 0; i < topics.size(); i += per) {
    std::string list;
    for (std::size_t j = i; j < topics.size() && j < i + per; ++j) {
      if (j > i) list.push_back(',');
      list += topics[j];
    }
    msgs.push_back(wrap(list, msgs.size() + 1));
  }
  return msgs;
}

}  // namespace lam::feeds
