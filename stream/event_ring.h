#pragma once
/// The stream server's memory of recent events: contiguous by seq, bounded, indexed by seq.
/// Pure (no I/O); owned and used by the server thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "stream/stream_filter.h"

namespace lam::daemon {

/// An event as the server keeps it: what filters need plus the JSON, shared by every subscriber.
struct Entry {
  EventMeta meta;
  std::shared_ptr<const std::string> json;
};

class EventRing {
 public:
  /// `head`: the last seq published before this ring starts (the next push must be head + 1).
  EventRing(std::size_t capacity, std::uint64_t head)
      : cap_(capacity == 0 ? 1 : capacity), head_(head) {}

  /// Appends the next event. False on a gap (seq != head + 1): the ring then holds only `e`, and
  /// whoever relied on contiguity (live subscribers) must be cut to resume from the journal.
  bool push(Entry e) {
    const bool contiguous = e.meta.seq == head_ + 1;
    if (!contiguous) ring_.clear();
    head_ = e.meta.seq;
    ring_.push_back(std::move(e));
    if (ring_.size() > cap_) ring_.pop_front();
    return contiguous;
  }

  /// Highest seq published (0: none ever).
  [[nodiscard]] std::uint64_t head() const noexcept { return head_; }
  /// Lowest seq held; head() + 1 when empty.
  [[nodiscard]] std::uint64_t first() const noexcept {
    return ring_.empty() ? head_ + 1 : ring_.front().meta.seq;
  }
  /// The entry for `seq`, or null when it is not held.
  [[nodiscard]] const Entry* find(std::uint64_t seq) const noexcept {
    if (ring_.empty() || seq < first() || seq > head_) return nullptr;
    return &ring_[static_cast<std::size_t>(seq - first())];
  }
  [[nodiscard]] std::size_t size() const noexcept { return ring_.size(); }

 private:
  std::size_t cap_;
  std::uint64_t head_;
  std::deque<Entry> ring_;
};

}  // namespace lam::daemon
