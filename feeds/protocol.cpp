#include "feeds/protocol.h"

#include "feeds/venues/venues.h"

namespace lam::feeds {

std::vector<Route> venue_routes(Venue v) {
  return descriptor(v).routes();
}

std::vector<std::string> sample_symbols(Venue v) {
  return descriptor(v).sample_symbols();
}

VenueRules default_rules(Venue v) {
  return descriptor(v).rules();
}

std::vector<std::string> subscribe_messages(Venue v, std::string_view route,
                                            const std::vector<std::string>& symbols,
                                            std::size_t topics_per_msg) {
  return descriptor(v).subscribe(route, symbols, topics_per_msg == 0 ? 1 : topics_per_msg);
}

}  // namespace lam::feeds
