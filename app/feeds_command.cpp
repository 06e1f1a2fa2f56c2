#include "app/feeds_command.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "feeds/feed_runner.h"
#include "tools/mockex/mock_exchange.h"

namespace lam::app {

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

}  // namespace

int run_feeds(const FeedsOptions& opt) {
  // Long: `laminator feeds`' steps in order (config, symbols, runner, capture, the print loop, the
  // summary).
  std::vector<feeds::Venue> venues;
  for (const std::string& name : opt.venues) {
    auto v = feeds::parse_venue(name);
    if (!v) throw std::invalid_argument("unknown venue '" + name + "'");
    venues.push_back(*v);
  }
  if (venues.empty()) {
    // Every venue; public Hermes refuses connections without an API key (401), so Pyth joins the
    // default list only with one, or with the mock.
    const char* key = std::getenv("PYTH_API_KEY");
    for (feeds::Venue v : feeds::kAllVenues) {
      if (v != feeds::Venue::pyth || opt.mock || (key != nullptr && *key != '\0'))
        venues.push_back(v);
    }
  }
  std::map<feeds::Venue, std::vector<std::string>> symbols;
  for (const std::string& vs : opt.symbols) {
    const auto colon = vs.find(':');
    auto v = colon == std::string::npos ? std::nullopt : feeds::parse_venue(vs.substr(0, colon));
    if (!v) throw std::invalid_argument("--symbol wants venue:SYMBOL, got '" + vs + "'");
    if (feeds::size_unit(*v, vs.substr(colon + 1)) == feeds::SizeUnit::inverse) {
      // Refused as the daemon refuses it (daemon/feed_plan.cpp), never sized wrongly (issue 33).
      throw std::invalid_argument(
          "--symbol " + vs +
          ": an inverse contract (contracts of a fixed quote value) is not supported, as in "
          "`laminator run`");
    }
    symbols[*v].push_back(vs.substr(colon + 1));
  }
  std::map<std::string, std::string> urls;  // "venue/route" -> URL
  for (const std::string& u : opt.urls) {
    const auto eq = u.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--url wants venue/route=URL");
    urls[u.substr(0, eq)] = u.substr(eq + 1);
  }

  std::optional<mockex::MockExchange> mock;
  if (opt.mock) {
    mockex::Options mo;
    mo.rate = opt.mock_rate;
    mock.emplace(mo);
    mock->start();
    spdlog::info("mock exchange on 127.0.0.1:{}", mock->port());
  }

  InstrumentTable table;
  feeds::TickQueue queue(1 << 16);
  feeds::RunnerOptions ro;
  ro.record_dir = opt.record_dir;
  feeds::FeedRunner runner(ro, queue);
  for (feeds::Venue v : venues) {
    const auto& syms = symbols.count(v) ? symbols[v] : feeds::sample_symbols(v);
    for (const feeds::Route& r : feeds::venue_routes(v)) {
      feeds::ConnectionConfig c;
      c.venue = v;
      c.route = r.name;
      c.kinds = r.kinds;
      c.rules = feeds::default_rules(v);
      c.client.ca_file = opt.ca_file;
      // Hermes' API key, as the daemon's [feeds.pyth] api_key_env would give it (never logged).
      if (const char* key = std::getenv("PYTH_API_KEY"); v == feeds::Venue::pyth && key && *key)
        c.client.authorization = std::string("Bearer ") + key;
      const std::string key = std::string(feeds::venue_name(v)) + "/" + r.name;
      c.url = urls.count(key) ? urls[key] : mock ? mock->url(v, r.name) : r.default_url;
      feeds::SymbolMap map(v, nullptr);
      for (const std::string& s : syms) {
        const auto cs = opt.contract_sizes.find(std::string(feeds::venue_name(v)) + ":" + s);
        if (cs != opt.contract_sizes.end()) {
          map.add(table, s, cs->second);
        } else {
          map.add(table, s);
        }
      }
      runner.add(std::move(c), std::move(map));
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  runner.start();
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  std::vector<feeds::FeedEvent> buf(4096);
  std::uint64_t ticks = 0, states = 0, gaps = 0;
  while (!g_stop) {
    const std::size_t n = queue.pop_bulk(buf.data(), buf.size());
    for (std::size_t i = 0; i < n; ++i) {
      ticks += buf[i].kind == feeds::FeedEventKind::tick;
      states += buf[i].kind == feeds::FeedEventKind::state;
      gaps += buf[i].kind == feeds::FeedEventKind::gap;
    }
    const auto now = std::chrono::steady_clock::now();
    if (opt.duration_s > 0 && now - start >= std::chrono::duration<double>(opt.duration_s)) break;
    if (now - last_report >= std::chrono::seconds(2)) {
      last_report = now;
      for (std::size_t i = 0; i < runner.size(); ++i) {
        const auto& c = runner.counters(i);
        const auto& cfg = runner.config(i);
        spdlog::info("{}/{}: {} frames, {} ticks, {} live / {} stale, {} reconnects, {} malformed",
                     feeds::venue_name(cfg.venue), cfg.route, c.frames.load(), c.ticks.load(),
                     c.live_symbols.load(), c.stale_symbols.load(),
                     c.opens.load() > 0 ? c.opens.load() - 1 : 0, c.malformed.load());
      }
    }
    if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  runner.stop();
  if (mock) mock->stop();
  std::printf("feeds: %llu ticks, %llu state changes, %llu gaps; %llu frames recorded\n",
              static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(states),
              static_cast<unsigned long long>(gaps),
              static_cast<unsigned long long>(runner.recorded_frames()));
  return 0;
}

}  // namespace lam::app
