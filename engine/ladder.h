#pragma once
/// A sorted ladder of thresholds for one market and one direction.
///
/// `Direction::up` entries fire when the price rises to them (p >= key); `Direction::down` entries
/// when it falls to them (p <= key). The entry nearest to firing is at the front, so a tick that
/// crosses nothing costs one comparison against `front_key()` (the matcher caches it), and a tick
/// that fires k entries costs O(k) amortized plus the O(log n) of the tree.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/fixed.h"
#include "engine/uuid.h"

namespace lam {

enum class Direction : std::uint8_t { up, down };

/// 16 bytes: the key, the owner's slot, and the top 32 bits of its id. Ties on key are ordered by
/// id; the tag decides almost all of them, and the rest read the owner's id through the caller's
/// `id_of(slot)`, so the ladder does not keep a copy of each 16-byte id.
struct LadderEntry {
  std::int64_t key = 0;
  std::uint32_t slot = 0;
  std::uint32_t tag = 0;  ///< id.hi >> 32: the id's order, up to ties
};
static_assert(sizeof(LadderEntry) == 16);

[[nodiscard]] constexpr std::uint32_t ladder_tag(const Uuid& id) noexcept {
  return static_cast<std::uint32_t>(id.hi >> 32);
}

/// An entry taken off a ladder by a tick, with its distance from the price that crossed it.
struct Crossed {
  unsigned __int128 distance = 0;
  Uuid id;
  std::uint32_t slot = 0;
};

/// Entries in blocks of contiguous sorted runs (a two-level B+tree): a block holds up to kMax
/// entries, and `heads_` holds every block's first entry, so finding an entry is a binary search
/// over one small array and then over one block, a handful of cache lines, where a node-based tree
/// chased one pointer (one cache miss at a million entries) per level. An entry costs its 16 bytes
/// plus the blocks' slack (half-full at worst, after a split), against 64 bytes per tree node.
/// Stored back to front: the entry nearest to firing is the last of the last block, so arming
/// near the price appends and a crossing tick truncates, with nothing to move.
///
/// Every entry is its owner's slot; `id_of(slot)` (any callable returning the owner's `Uuid`) is
/// how the ladder breaks ties and names what a tick crosses. An owner's id must not change while
/// it is filed, and one slot is filed at most once per ladder.
template <Direction D>
class alignas(64) Ladder {
 public:
  static constexpr std::int64_t kEmpty = D == Direction::up
                                             ? std::numeric_limits<std::int64_t>::max()
                                             : std::numeric_limits<std::int64_t>::min();
  static constexpr std::size_t kMax = 64;  ///< entries per block; a full block splits in two

  template <class IdOf>
  void insert(std::int64_t key, const Uuid& id, std::uint32_t slot, const IdOf& id_of) {
    const LadderEntry x{key, slot, ladder_tag(id)};
    const Before<IdOf> before{id_of};
    if (staged()) unstage(id_of);
    if (blocks_.empty()) {
      heads_.push_back(x);
      blocks_.emplace_back().push_back(x);
      ++size_;
      front_ = key;
      return;
    }
    const std::size_t b = block_of(x, before);
    Block& blk = blocks_[b];
    prefetch_span(blk.data(), blk.size() * sizeof(LadderEntry));
    auto pos = std::lower_bound(blk.begin(), blk.end(), x, before);
    if (pos != blk.end() && pos->key == key && pos->slot == slot) return;  // already there
    if (blk.size() == blk.capacity()) {  // grow by doubling, never past one split's worth
      const auto at = pos - blk.begin();
      blk.reserve(std::min(kMax + 1, std::max<std::size_t>(4, 2 * blk.capacity())));
      pos = blk.begin() + at;
    }
    pos = blk.insert(pos, x);
    if (pos == blk.begin()) heads_[b] = x;
    ++size_;
    if (blk.size() > kMax) overflow(b);
    if (D == Direction::up ? key < front_ : key > front_) front_ = key;
  }

  /// Removes slot's entry filed under key (id: the slot's); returns whether it was there.
  template <class IdOf>
  bool erase(std::int64_t key, const Uuid& id, std::uint32_t slot, const IdOf& id_of) {
    if (staged()) unstage(id_of);
    if (blocks_.empty()) return false;
    const LadderEntry x{key, slot, ladder_tag(id)};
    const Before<IdOf> before{id_of};
    const std::size_t b = block_of(x, before);
    Block& blk = blocks_[b];
    auto pos = std::lower_bound(blk.begin(), blk.end(), x, before);
    if (pos == blk.end() || pos->key != key || pos->slot != slot) return false;
    blk.erase(pos);
    --size_;
    settle(b);
    if (key == front_) sync_front();
    return true;
  }

  [[nodiscard]] std::int64_t front_key() const noexcept {
    return front_;  // kept in the ladder itself: reading it touches no block
  }
  [[nodiscard]] static bool crosses(std::int64_t key, std::int64_t p) noexcept {
    return D == Direction::up ? p >= key : p <= key;
  }
  /// Starts loading what an insert or erase searches first (the block heads), for a caller that
  /// knows it is about to.
  void prefetch() const noexcept {
    if (staged()) return;
    prefetch_span(heads_.data(), heads_.size() * sizeof(LadderEntry));
    prefetch_span(blocks_.data(), blocks_.size() * sizeof(Block));
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  /// Bulk loading (a cold start): stage() appends in any order in O(1); the ladder is sorted once,
  /// into blocks three quarters full, by unstage() (or by the first insert, erase or crossing that
  /// needs it), O(n log n) for the run instead of a search and a shift per entry. front_key() stays
  /// exact while staged; an entry staged twice (same key and slot) is kept once when built, and
  /// size() counts it twice until then.
  void stage(std::int64_t key, const Uuid& id, std::uint32_t slot) {
    if (!staged()) {  // flatten what is there into the staging run (a ladder is staged when its
      Block run;      // blocks outnumber its heads: all entries in blocks_[0], unsorted)
      run.reserve(size_ + 1);
      for (const Block& b : blocks_) run.insert(run.end(), b.begin(), b.end());
      blocks_.clear();
      blocks_.push_back(std::move(run));
      heads_.clear();
    }
    blocks_[0].push_back({key, slot, ladder_tag(id)});
    ++size_;
    if (D == Direction::up ? key < front_ : key > front_) front_ = key;
  }
  [[nodiscard]] bool staged() const noexcept { return blocks_.size() != heads_.size(); }
  template <class IdOf>
  void unstage(const IdOf& id_of) {
    if (!staged()) return;
    Block run = std::move(blocks_[0]);
    blocks_.clear();
    std::sort(run.begin(), run.end(), Before<IdOf>{id_of});
    run.erase(std::unique(run.begin(), run.end(),
                          [](const LadderEntry& a, const LadderEntry& b) {
                            return a.key == b.key && a.slot == b.slot;
                          }),
              run.end());
    size_ = run.size();
    const std::size_t per = kMax * 3 / 4;
    const std::size_t blocks = (run.size() + per - 1) / per;
    heads_.reserve(blocks);
    blocks_.reserve(blocks);
    for (std::size_t i = 0; i < run.size(); i += per) {
      Block& b = blocks_.emplace_back();  // room to grow comes with the first insert
      b.assign(run.begin() + static_cast<std::ptrdiff_t>(i),
               run.begin() + static_cast<std::ptrdiff_t>(std::min(run.size(), i + per)));
      heads_.push_back(b.front());
    }
    sync_front();
  }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  /// Removes every entry that price p crosses and appends them to `out`, nearest first, ties by id.
  template <class IdOf>
  void pop_crossed(std::int64_t p, std::vector<Crossed>& out, const IdOf& id_of) {
    if (!crosses(front_, p) || blocks_.empty()) return;  // the usual case: one compare
    if (staged()) unstage(id_of);
    const std::size_t first = out.size();
    while (!blocks_.empty()) {
      Block& blk = blocks_.back();
      std::size_t k = blk.size();
      for (; k > 0 && crosses(blk[k - 1].key, p); --k) {
        const LadderEntry& e = blk[k - 1];
        const Wide d =
            D == Direction::up ? static_cast<Wide>(p) - e.key : static_cast<Wide>(e.key) - p;
        out.push_back({static_cast<unsigned __int128>(d), id_of(e.slot), e.slot});
      }
      size_ -= blk.size() - k;
      blk.resize(k);
      if (k > 0) {
        settle(blocks_.size() - 1);
        break;
      }
      heads_.pop_back();
      blocks_.pop_back();
    }
    sync_front();
    // Taken in firing order (ties by id descending); reversed, nearest first with ties by id.
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }

 private:
  using Block = std::vector<LadderEntry>;

  void sync_front() noexcept { front_ = blocks_.empty() ? kEmpty : blocks_.back().back().key; }

  /// Asks for every cache line of [p, p + bytes) at once, so that a binary search waits for one
  /// memory round trip instead of one per probe. Only for spans of a few lines (a block, or the
  /// heads of a ladder of up to ~1,500 entries): past that, the prefetches would cost more than the
  /// probes they save, and a huge ladder's search is left to the hardware.
  static void prefetch_span(const void* p, std::size_t bytes) noexcept {
    if (bytes > kPrefetchMax) return;
    const char* c = static_cast<const char*>(p);
    for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off);
  }
  static constexpr std::size_t kPrefetchMax = 32 * 64;  // 32 cache lines: one full block

  /// The block an entry belongs in: the last whose head is not after it (the first if none).
  template <class Cmp>
  [[nodiscard]] std::size_t block_of(const LadderEntry& x, const Cmp& before) const {
    prefetch_span(heads_.data(), heads_.size() * sizeof(LadderEntry));
    const auto it = std::upper_bound(heads_.begin(), heads_.end(), x, before);
    return it == heads_.begin() ? 0 : static_cast<std::size_t>(it - heads_.begin()) - 1;
  }

  /// A block one past full: one entry moves to a neighbour with room, as a B*-tree does, and the
  /// block splits only when neither has any. Blocks then run about four fifths full instead of
  /// two thirds, so an entry costs about 20 bytes instead of 23.
  void overflow(std::size_t b) {
    Block& blk = blocks_[b];
    if (b > 0 && blocks_[b - 1].size() < kMax) {  // its first entry becomes the previous one's last
      Block& prev = blocks_[b - 1];
      if (prev.size() == prev.capacity()) prev.reserve(kMax + 1);
      prev.push_back(blk.front());
      blk.erase(blk.begin());
      heads_[b] = blk.front();
      return;
    }
    if (b + 1 < blocks_.size() && blocks_[b + 1].size() < kMax) {  // its last, the next's first
      Block& next = blocks_[b + 1];
      if (next.size() == next.capacity()) next.reserve(kMax + 1);
      next.insert(next.begin(), blk.back());
      blk.pop_back();
      heads_[b + 1] = next.front();
      return;
    }
    split(b);
  }

  void split(std::size_t b) {
    Block& blk = blocks_[b];  // kMax + 1 entries: two halves
    const auto half = static_cast<std::ptrdiff_t>(blk.size() / 2);
    Block upper;
    upper.reserve(kMax + 1);
    upper.assign(blk.begin() + half, blk.end());
    blk.erase(blk.begin() + half, blk.end());
    heads_.insert(heads_.begin() + static_cast<std::ptrdiff_t>(b) + 1, upper.front());
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1, std::move(upper));
  }

  /// After entries left block b: drop it if empty, refresh its head, merge it into a neighbour
  /// when both fit one block (so erasures never leave a trail of near-empty blocks).
  void settle(std::size_t b) {
    Block& blk = blocks_[b];
    if (blk.empty()) {
      heads_.erase(heads_.begin() + static_cast<std::ptrdiff_t>(b));
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
      return;
    }
    heads_[b] = blk.front();
    if (blk.size() >= kMax / 4) return;
    if (b + 1 < blocks_.size() && blk.size() + blocks_[b + 1].size() <= kMax) {
      Block& next = blocks_[b + 1];
      blk.reserve(kMax + 1);
      blk.insert(blk.end(), next.begin(), next.end());
      heads_.erase(heads_.begin() + static_cast<std::ptrdiff_t>(b) + 1);
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1);
    } else if (b > 0 && blk.size() + blocks_[b - 1].size() <= kMax) {
      Block& prev = blocks_[b - 1];
      prev.reserve(kMax + 1);
      prev.insert(prev.end(), blk.begin(), blk.end());
      heads_.erase(heads_.begin() + static_cast<std::ptrdiff_t>(b));
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
    }
  }

  /// Storage order: the reverse of the firing order. Firing order: nearest to firing first, ties
  /// on key by id descending, so that a crossed run, once reversed, comes out nearest-first with
  /// ties by ascending id.
  template <class IdOf>
  struct Before {
    const IdOf& id_of;
    bool operator()(const LadderEntry& a, const LadderEntry& b) const {
      if (a.key != b.key) return D == Direction::up ? a.key > b.key : a.key < b.key;
      if (a.tag != b.tag) return a.tag < b.tag;
      return a.slot != b.slot && id_of(a.slot) < id_of(b.slot);
    }
  };
  // One cache line: what a refresh reads (front_, size_) first, then the two arrays.
  std::int64_t front_ = kEmpty;
  std::size_t size_ = 0;
  std::vector<LadderEntry> heads_;  ///< heads_[i] == blocks_[i].front()
  std::vector<Block> blocks_;       ///< farthest from firing first, none empty
};
static_assert(sizeof(Ladder<Direction::up>) == 64);

/// Merges two nearest-first runs into `out` (nearest first, ties by id).
void merge_crossed(const std::vector<Crossed>& a, const std::vector<Crossed>& b,
                   std::vector<Crossed>& out);

}  // namespace lam
