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
#include <memory_resource>
#include <set>
#include <vector>

#include "engine/fixed.h"
#include "engine/uuid.h"

namespace lam {

enum class Direction : std::uint8_t { up, down };

struct LadderEntry {
  std::int64_t key = 0;
  Uuid id;
  std::uint32_t slot = 0;
};

/// An entry taken off a ladder by a tick, with its distance from the price that crossed it.
struct Crossed {
  unsigned __int128 distance = 0;
  Uuid id;
  std::uint32_t slot = 0;
};

template <Direction D>
struct LadderOrder {
  // Front = nearest to firing. Ties on key are ordered by id descending, so that the crossed run,
  // once reversed, comes out nearest-first with ties by ascending id.
  bool operator()(const LadderEntry& a, const LadderEntry& b) const noexcept {
    if (a.key != b.key) return D == Direction::up ? a.key < b.key : a.key > b.key;
    return a.id > b.id;
  }
};

template <Direction D>
class Ladder {
 public:
  static constexpr std::int64_t kEmpty = D == Direction::up
                                             ? std::numeric_limits<std::int64_t>::max()
                                             : std::numeric_limits<std::int64_t>::min();

  /// `mem` must outlive the ladder; it is shared by the ladders of one matcher (one thread).
  explicit Ladder(std::pmr::memory_resource* mem) : set_(mem) {}

  void insert(std::int64_t key, const Uuid& id, std::uint32_t slot) {
    set_.insert({key, id, slot});
  }
  /// Removes the entry filed under (key, id); returns whether it was there.
  bool erase(std::int64_t key, const Uuid& id) { return set_.erase({key, id, 0}) != 0; }

  [[nodiscard]] std::int64_t front_key() const noexcept {
    return set_.empty() ? kEmpty : set_.begin()->key;
  }
  [[nodiscard]] static bool crosses(std::int64_t key, std::int64_t p) noexcept {
    return D == Direction::up ? p >= key : p <= key;
  }
  [[nodiscard]] std::size_t size() const noexcept { return set_.size(); }
  [[nodiscard]] bool empty() const noexcept { return set_.empty(); }

  /// Removes every entry that price p crosses and appends them to `out`, nearest first, ties by id.
  void pop_crossed(std::int64_t p, std::vector<Crossed>& out) {
    const std::size_t first = out.size();
    auto it = set_.begin();
    while (it != set_.end() && crosses(it->key, p)) {
      const Wide d =
          D == Direction::up ? static_cast<Wide>(p) - it->key : static_cast<Wide>(it->key) - p;
      out.push_back({static_cast<unsigned __int128>(d), it->id, it->slot});
      it = set_.erase(it);
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }

 private:
  std::pmr::set<LadderEntry, LadderOrder<D>> set_;
};

/// Merges two nearest-first runs into `out` (nearest first, ties by id).
void merge_crossed(const std::vector<Crossed>& a, const std::vector<Crossed>& b,
                   std::vector<Crossed>& out);

}  // namespace lam
