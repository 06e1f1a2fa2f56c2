#include "feeds/health.h"

#include <algorithm>

namespace lam::feeds {

namespace {
constexpr std::size_t npos = static_cast<std::size_t>(-1);
}

ConnectionHealth::ConnectionHealth(Venue venue, std::vector<InstrumentId> instruments,
                                   std::uint8_t kinds, std::int64_t stale_budget_ns)
    : venue_(venue),
      kinds_(kinds),
      stale_budget_ns_(stale_budget_ns),
      ids_(std::move(instruments)) {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  state_.assign(ids_.size(), FeedState::connecting);
  why_.assign(ids_.size(), FeedReason::none);
  last_ns_.assign(ids_.size(), 0);
}

std::size_t ConnectionHealth::index(InstrumentId id) const {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  return it != ids_.end() && *it == id ? static_cast<std::size_t>(it - ids_.begin()) : npos;
}

void ConnectionHealth::change(std::size_t i, FeedState s, FeedReason why, TimeNs wall,
                              std::vector<FeedEvent>& out) {
  if (state_[i] == s) return;
  state_[i] = s;
  why_[i] = why;
  FeedEvent e;
  e.kind = FeedEventKind::state;
  e.venue = venue_;
  e.state = s;
  e.reason = why;
  e.tick.instrument = ids_[i];
  e.tick.recv_ts = wall;
  e.tick.exch_ts = wall;
  e.tick.flags = kinds_;
  out.push_back(e);
}

void ConnectionHealth::set_all(FeedState s, FeedReason why, TimeNs wall,
                               std::vector<FeedEvent>& out) {
  for (std::size_t i = 0; i < ids_.size(); ++i) change(i, s, why, wall, out);
}

void ConnectionHealth::touch_all(std::int64_t steady_ns) {
  std::fill(last_ns_.begin(), last_ns_.end(), steady_ns);
}

void ConnectionHealth::on_data(InstrumentId id, std::int64_t steady_ns, TimeNs wall,
                               std::vector<FeedEvent>& out) {
  const std::size_t i = index(id);
  if (i == npos) return;
  last_ns_[i] = steady_ns;
  if (state_[i] != FeedState::live) {
    change(i, FeedState::live,
           state_[i] == FeedState::stale ? FeedReason::data_resumed : FeedReason::first_data, wall,
           out);
  }
}

void ConnectionHealth::hold(InstrumentId id, FeedReason why, TimeNs wall,
                            std::vector<FeedEvent>& out) {
  const std::size_t i = index(id);
  if (i == npos) return;
  if (state_[i] == FeedState::live || state_[i] == FeedState::resyncing) {
    change(i, FeedState::stale, why, wall, out);
  }
}

void ConnectionHealth::check_stale(std::int64_t steady_ns, TimeNs wall,
                                   std::vector<FeedEvent>& out) {
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    const FeedState s = state_[i];
    if ((s == FeedState::live || s == FeedState::resyncing) &&
        steady_ns - last_ns_[i] > stale_budget_ns_) {
      change(i, FeedState::stale, FeedReason::no_data, wall, out);
    }
  }
}

FeedState ConnectionHealth::state(InstrumentId id) const {
  const std::size_t i = index(id);
  return i == npos ? FeedState::connecting : state_[i];
}

std::size_t ConnectionHealth::count(FeedState s, FeedReason why) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < ids_.size(); ++i) n += state_[i] == s && why_[i] == why ? 1 : 0;
  return n;
}

std::size_t ConnectionHealth::count(FeedState s) const {
  return static_cast<std::size_t>(std::count(state_.begin(), state_.end(), s));
}

}  // namespace lam::feeds
