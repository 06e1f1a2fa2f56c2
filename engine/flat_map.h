#pragma once
/// An open-addressing hash map for the matcher's id indexes (id -> slot): keys and values inline in
/// one array, linear probing, backward-shift deletion (no tombstones). A lookup at a million keys
/// is one cache miss, where std::unordered_map chased a bucket, then a node, then the next node.
///
/// The subset of std::unordered_map the matcher uses, with one difference: `erase` and any insert
/// move entries, so an iterator is valid only until the map's next change.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace lam {

template <class K, class V, class Hash>
class FlatMap {
 public:
  struct value_type {
    K first;
    V second;
  };

 private:
  struct Slot : value_type {
    bool used = false;
  };

 public:
  using iterator = Slot*;
  using const_iterator = const Slot*;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] iterator end() noexcept { return nullptr; }
  [[nodiscard]] const_iterator end() const noexcept { return nullptr; }

  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap * kLoadNum < n * kLoadDen) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  [[nodiscard]] iterator find(const K& k) noexcept {
    if (size_ == 0) return nullptr;
    for (std::size_t i = home(k);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.first == k) return &s;
    }
  }
  [[nodiscard]] const_iterator find(const K& k) const noexcept {
    return const_cast<FlatMap*>(this)->find(k);
  }
  [[nodiscard]] bool contains(const K& k) const noexcept { return find(k) != nullptr; }

  /// Starts loading k's home slot, so that independent lookups that follow overlap their cache
  /// misses instead of taking them one after another.
  void prefetch(const K& k) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(k)]);
  }

  [[nodiscard]] const V& at(const K& k) const {
    const_iterator it = find(k);
    if (it == nullptr) throw std::out_of_range("FlatMap::at");
    return it->second;
  }

  /// Inserts (k, v) unless k is there; returns the entry and whether it was inserted.
  std::pair<iterator, bool> try_emplace(const K& k, const V& v) {
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum)
      rehash(slots_.empty() ? 16 : slots_.size() * 2);
    std::size_t i = home(k);
    for (;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) break;
      if (s.first == k) return {&s, false};
    }
    Slot& s = slots_[i];
    s.first = k;
    s.second = v;
    s.used = true;
    ++size_;
    return {&s, true};
  }

  void erase(iterator it) noexcept {
    auto hole = static_cast<std::size_t>(it - slots_.data());
    // Backward shift: pull later entries of the run into the hole while that keeps each one at or
    // after its home slot, so every lookup still finds its key before the first empty slot.
    for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      Slot& s = slots_[j];
      if (!s.used) break;
      const std::size_t h = home(s.first);
      // s may move to `hole` iff hole lies cyclically in [h, j)
      const bool movable = ((j - h) & mask_) >= ((j - hole) & mask_);
      if (!movable) continue;
      slots_[hole] = s;
      hole = j;
    }
    slots_[hole].used = false;
    --size_;
  }
  bool erase(const K& k) noexcept {
    iterator it = find(k);
    if (it == nullptr) return false;
    erase(it);
    return true;
  }

  template <class F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.used) f(s.first, s.second);
  }

  /// Bytes held by the table.
  [[nodiscard]] std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Slot); }

 private:
  // At most 3/4 full (doubling keeps it between 3/8 and 3/4): a lookup that misses probes 8.5
  // adjacent slots on average at the worst load, 2.5 at half load, one cache miss and its
  // neighbours.
  static constexpr std::size_t kLoadNum = 3, kLoadDen = 4;

  [[nodiscard]] std::size_t home(const K& k) const noexcept {
    // Fibonacci hashing: the multiply spreads whatever bits the key's hash varies in.
    return static_cast<std::size_t>(
        (static_cast<std::uint64_t>(Hash{}(k)) * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  void rehash(std::size_t cap) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    shift_ = 64;
    for (std::size_t c = cap; c > 1; c >>= 1) --shift_;
    size_ = 0;
    for (const Slot& s : old)
      if (s.used) try_emplace(s.first, s.second);
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 64;
  std::size_t size_ = 0;
};

}  // namespace lam
