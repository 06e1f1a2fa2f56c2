#include "engine/volume_book.h"

#include <algorithm>

namespace lam {

VolumeBook::Window* VolumeBook::find(TimeNs window) noexcept {
  for (auto& w : windows_) {
    if (w.length == window) return &w;
  }
  return nullptr;
}

void VolumeBook::add(TimeNs window, Wide target, const Uuid& id, std::uint32_t slot) {
  Window* w = find(window);
  if (w == nullptr) {
    // A new window starts from every retained trade; the next trade evicts what is too old.
    Window nw{window, 0, base_, std::pmr::set<Entry, EntryOrder>(mem_)};
    for (const Trade& t : trades_) nw.sum += t.size;
    windows_.push_back(std::move(nw));
    w = &windows_.back();
  }
  w->alerts.insert({target, id, slot});
}

bool VolumeBook::remove(TimeNs window, Wide target, const Uuid& id) {
  Window* w = find(window);
  if (w == nullptr || w->alerts.erase({target, id, 0}) == 0) return false;
  if (w->alerts.empty()) {
    windows_.erase(windows_.begin() + (w - windows_.data()));
    if (windows_.empty()) {
      trades_.clear();
      base_ = 0;
    } else {
      trim();
    }
  }
  return true;
}

void VolumeBook::trim() {
  std::uint64_t keep = base_ + trades_.size();
  for (const auto& w : windows_) keep = std::min(keep, w.head);
  while (base_ < keep) {
    trades_.pop_front();
    ++base_;
  }
}

void VolumeBook::on_trade(TimeNs t, std::int64_t size, std::vector<Crossed>& out) {
  if (windows_.empty()) return;
  const std::size_t start = out.size();
  // Trades with the same exchange time share one entry: windows only ever split between times.
  if (!trades_.empty() && trades_.back().ts == t) {
    trades_.back().size += size;
  } else {
    trades_.push_back({t, size});
  }
  const std::uint64_t end = base_ + trades_.size();
  for (auto& w : windows_) {
    w.sum += size;
    while (w.head < end && trades_[w.head - base_].ts <= t - w.length) {
      w.sum -= trades_[w.head - base_].size;
      ++w.head;
    }
  }
  trim();
  for (auto& w : windows_) {
    const std::size_t first = out.size();
    auto it = w.alerts.begin();
    while (it != w.alerts.end() && it->target <= w.sum) {
      out.push_back({static_cast<unsigned __int128>(w.sum - it->target), it->id, it->slot});
      it = w.alerts.erase(it);
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }
  // Several windows: keep the whole batch nearest first.
  if (windows_.size() > 1) {
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
              [](const Crossed& a, const Crossed& b) {
                return a.distance != b.distance ? a.distance < b.distance : a.id < b.id;
              });
  }
  // Windows whose alerts all fired stop holding history.
  std::erase_if(windows_, [](const Window& w) { return w.alerts.empty(); });
  if (windows_.empty()) {
    trades_.clear();
    base_ = 0;
  } else {
    trim();
  }
}

Wide VolumeBook::sum(TimeNs window) const noexcept {
  for (const auto& w : windows_) {
    if (w.length == window) return w.sum;
  }
  return 0;
}

}  // namespace lam
