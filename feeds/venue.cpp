#include "feeds/venue.h"

#include "feeds/venues/venues.h"

namespace lam::feeds {

std::string_view venue_name(Venue v) noexcept {
  return static_cast<std::size_t>(v) < kVenueCount ? descriptor(v).name : "?";
}

std::optional<Venue> parse_venue(std::string_view name) noexcept {
  for (Venue v : kAllVenues) {
    if (venue_name(v) == name) return v;
  }
  return std::nullopt;
}

}  // namespace lam::feeds
