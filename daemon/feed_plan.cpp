#include "daemon/feed_plan.h"

#include "engine/fixed.h"
#include "feeds/protocol.h"
#include "feeds/symbol_map.h"

namespace lam::daemon {

FeedSubscriptions::Added FeedSubscriptions::add(const Uuid& market, std::string_view venue,
                                                std::string_view symbol) {
  std::string feed = std::string(venue).append(1, '/').append(symbol);
  const auto [it, fresh] = first_.try_emplace(feed, market);
  if (fresh) {
    if (const auto v = feeds::parse_venue(venue)) symbols_[*v].emplace_back(symbol);
  }
  return {fresh, it->second, std::move(feed)};
}

FeedPlan plan_feeds(const FeedsSection& feeds,
                    const std::map<feeds::Venue, std::vector<std::string>>& symbols) {
  FeedPlan plan;
  auto note = [&](PlanNote::Level level, std::string text) {
    plan.notes.push_back({level, std::move(text)});
  };
  for (feeds::Venue v : feeds::kAllVenues) {
    const VenueSection& vs = feeds.venues[static_cast<std::size_t>(v)];
    const std::string venue(feeds::venue_name(v));
    if (!vs.enabled) plan.disabled_venues.push_back(venue);
    const auto it = symbols.find(v);
    if (!vs.enabled || it == symbols.end() || it->second.empty()) continue;

    // The venue's symbols and their sizes, the same for each of its routes.
    std::vector<PlannedSymbol> sized;
    for (const std::string& s : it->second) {
      const feeds::SizeUnit unit = feeds::size_unit(v, s);
      if (unit == feeds::SizeUnit::inverse) {
        // Each contract is worth a fixed quote amount: base size = contracts x value / price, not
        // exact in fixed point. Refused rather than sized wrongly.
        note(PlanNote::Level::error,
             "market " + venue + "/" + s +
                 ": an inverse contract (sizes in contracts of a quote value) is not supported; "
                 "not subscribed, its alerts and positions hold");
        continue;
      }
      std::int64_t size = feeds::default_contract_size(v, s);
      if (const auto cs = vs.contract_sizes.find(s); cs != vs.contract_sizes.end()) {
        size = parse_raw(cs->second).value_or(size);  // validated by load_config
      } else if (unit == feeds::SizeUnit::contracts) {
        note(PlanNote::Level::warn,
             "market " + venue + "/" + s + ": sizes are in contracts and [feeds." + venue +
                 ".contract_sizes] has no entry for it: its trades carry no size (volume alerts "
                 "on it cannot fire)");
      }
      sized.push_back({s, size});
    }
    if (sized.empty()) continue;  // every market of the venue refused

    for (const feeds::Route& r : feeds::venue_routes(v)) {
      feeds::ConnectionConfig c = feeds.connection;
      c.venue = v;
      c.route = r.name;
      c.kinds = r.kinds;
      c.rules = vs.rules;
      c.oracle = vs.oracle;
      const auto url = vs.urls.find(r.name);
      c.url = url != vs.urls.end() ? url->second : r.default_url;
      if (!vs.api_key.empty()) c.client.authorization = "Bearer " + vs.api_key;
      if (v == feeds::Venue::pyth && vs.api_key.empty() && url == vs.urls.end()) {
        note(PlanNote::Level::warn, "feed pyth/" + r.name +
                                        ": public Hermes requires an API key since 2026-08-18; "
                                        "set [feeds.pyth] api_key_env");
      }
      plan.connections.push_back({std::move(c), sized});
    }
  }
  return plan;
}

}  // namespace lam::daemon
