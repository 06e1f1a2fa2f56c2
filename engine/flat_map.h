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
  /// Empties the map, keeping its capacity (no allocation when it fills again).
  void clear() noexcept {
    for (Slot& s : slots_) s.used = false;
    size_ = 0;
  }

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

/// An index of slots by key, where the key is stored with its owner, not in the index: 8 bytes a
/// slot (the owner's slot and the top 32 bits of the key's hash), against FlatMap's key, value and
/// flag. A lookup probes tags, and only a matching tag reads the owner's key through `key_of(slot)`
/// (one cache line the caller is about to touch anyway). Home slots are taken from the tag, so a
/// rehash or an erasure's backward shift reads no owner.
///
/// `insert` takes a key known to be absent (find first). The owner's key must be readable through
/// key_of for as long as it is indexed: erase before the owner's record is cleared.
template <class K, class Hash>
class SlotIndex {
 public:
  static constexpr std::uint32_t kNone = 0xFFFFFFFFU;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap * kLoadNum < n * kLoadDen) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }

  /// The slot indexed under k, or kNone.
  template <class KeyOf>
  [[nodiscard]] std::uint32_t find(const K& k, const KeyOf& key_of) const {
    if (size_ == 0) return kNone;
    const std::uint32_t t = tag(k);
    for (std::size_t i = home_of(t);; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.slot == kNone) return kNone;
      if (e.tag == t && key_of(e.slot) == k) return e.slot;
    }
  }
  void prefetch(const K& k) const noexcept {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home_of(tag(k))]);
  }
  /// Indexes slot under k, which must not be there.
  void insert(const K& k, std::uint32_t slot) {
    if ((size_ + 1) * kLoadDen > slots_.size() * kLoadNum)
      rehash(slots_.empty() ? 16 : slots_.size() * 2);
    place({tag(k), slot});
    ++size_;
  }
  /// Removes k's entry; returns its slot, or kNone if k was not there.
  template <class KeyOf>
  std::uint32_t erase(const K& k, const KeyOf& key_of) {
    if (size_ == 0) return kNone;
    const std::uint32_t t = tag(k);
    std::size_t hole = home_of(t);
    for (;; hole = (hole + 1) & mask_) {
      const Entry& e = slots_[hole];
      if (e.slot == kNone) return kNone;
      if (e.tag == t && key_of(e.slot) == k) break;
    }
    const std::uint32_t slot = slots_[hole].slot;
    // Backward shift, as in FlatMap::erase, with homes read from the tags.
    for (std::size_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      const Entry& e = slots_[j];
      if (e.slot == kNone) break;
      const std::size_t h = home_of(e.tag);
      if (((j - h) & mask_) < ((j - hole) & mask_)) continue;
      slots_[hole] = e;
      hole = j;
    }
    slots_[hole].slot = kNone;
    --size_;
    return slot;
  }
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : slots_)
      if (e.slot != kNone) f(e.slot);
  }
  [[nodiscard]] std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    std::uint32_t tag = 0;
    std::uint32_t slot = kNone;
  };
  static constexpr std::size_t kLoadNum = 3, kLoadDen = 4;  // as FlatMap's
  [[nodiscard]] static std::uint32_t tag(const K& k) noexcept {
    return static_cast<std::uint32_t>(
        (static_cast<std::uint64_t>(Hash{}(k)) * 0x9E3779B97F4A7C15ULL) >> 32);
  }
  /// The top log2(capacity) bits of the tag: Fibonacci hashing, as FlatMap's home.
  [[nodiscard]] std::size_t home_of(std::uint32_t t) const noexcept {
    return static_cast<std::size_t>(t) >> shift_;
  }
  void place(Entry x) noexcept {
    std::size_t i = home_of(x.tag);
    while (slots_[i].slot != kNone) i = (i + 1) & mask_;
    slots_[i] = x;
  }
  void rehash(std::size_t cap) {
    if (cap > (std::size_t{1} << 32)) throw std::length_error("SlotIndex: over 2^32 slots");
    std::vector<Entry> old;
    old.swap(slots_);
    slots_.assign(cap, Entry{});
    mask_ = cap - 1;
    shift_ = 32;
    for (std::size_t c = cap; c > 1; c >>= 1) --shift_;
    for (const Entry& e : old)
      if (e.slot != kNone) place(e);
  }
  std::vector<Entry> slots_;
  std::size_t mask_ = 0;
  unsigned shift_ = 32;
  std::size_t size_ = 0;
};

}  // namespace lam
