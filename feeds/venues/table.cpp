// The venues, indexed by their enumerator (venues.h).
#include <array>

#include "feeds/venues/venues.h"

namespace lam::feeds {
namespace {

constexpr std::array<const VenueDescriptor*, kVenueCount> kTable{&kBinance,     &kBybit,    &kOkx,
                                                                 &kHyperliquid, &kCoinbase, &kPyth};

}  // namespace

const VenueDescriptor& descriptor(Venue v) noexcept {
  return *kTable[static_cast<std::size_t>(v)];  // (the table's order is checked by a test)
}

}  // namespace lam::feeds
