#include "daemon/transition_book.h"

#include <algorithm>

namespace lam::daemon {

void TransitionBook::published(const Uuid& id, std::uint64_t seq) {
  unconfirmed_fifo_.emplace_back(seq, id);
  unconfirmed_[id] = seq;
}

std::vector<Uuid> TransitionBook::confirm(std::uint64_t journaled, Clock::time_point now) {
  while (!unconfirmed_fifo_.empty() && unconfirmed_fifo_.front().first <= journaled) {
    const auto [seq, id] = unconfirmed_fifo_.front();
    unconfirmed_fifo_.pop_front();
    auto it = unconfirmed_.find(id);
    if (it != unconfirmed_.end() && it->second == seq) {  // not re-published since
      unconfirmed_.erase(it);
      finished_[id] = now;
      finished_fifo_.emplace_back(now, id);
    }
  }
  std::vector<Uuid> released;
  while (!finished_fifo_.empty() && now - finished_fifo_.front().first > memory_) {
    const Uuid id = finished_fifo_.front().second;
    finished_fifo_.pop_front();
    auto it = finished_.find(id);
    // a later entry for the same id (finished again) keeps it
    if (it != finished_.end() && now - it->second > memory_) {
      finished_.erase(it);
      released.push_back(id);
    }
  }
  return released;
}

bool TransitionBook::stale_read(const Uuid& id, Clock::time_point noticed) const {
  if (unconfirmed_.count(id) > 0) return true;
  const auto it = finished_.find(id);
  return it != finished_.end() && noticed < it->second;
}

void ResyncBook::begin(std::chrono::steady_clock::time_point noticed) {
  active_ = true;
  began_ = noticed;
  alerts_.clear();
  positions_.clear();
  settings_.clear();
}

void ResyncBook::saw_alert(const Uuid& id) {
  if (active_) alerts_.insert(id);
}

void ResyncBook::saw_position(const Uuid& id) {
  if (active_) positions_.insert(id);
}

void ResyncBook::saw_setting(const Uuid& id) {
  if (active_) settings_.insert(id);
}

MarketCoverage::MarketCoverage(std::vector<bool> served, std::vector<std::string> disabled)
    : served_(std::move(served)), disabled_(std::move(disabled)) {}

MarketCoverage::Change MarketCoverage::update(const Uuid& market, InstrumentId instrument,
                                              std::string_view dex_name) {
  const bool served =
      instrument != kNoInstrument && instrument < served_.size() && served_[instrument];
  const bool off =
      !served && std::find(disabled_.begin(), disabled_.end(), dex_name) != disabled_.end();
  if (off) {
    disabled_markets_.insert(market);
  } else {
    disabled_markets_.erase(market);
  }
  const bool was_unserved = unserved_.count(market) > 0;
  const bool unserved = !served && !off;
  if (unserved == was_unserved) return Change::none;
  if (unserved) {
    unserved_.insert(market);
    return Change::became_unserved;
  }
  unserved_.erase(market);
  return Change::became_served;
}

}  // namespace lam::daemon
