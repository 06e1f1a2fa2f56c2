#pragma once
/// Interned ids: each distinct Uuid held once and referred to by a 4-byte handle, with a count of
/// its holders. The matcher's records name their user and wallet this way: a user with many
/// alerts, positions and orders costs one entry (about 40 bytes with its index slots), not 16 bytes
/// in each record.

#include <cstdint>
#include <vector>

#include "engine/flat_map.h"
#include "engine/pool.h"
#include "engine/uuid.h"

namespace lam {

class IdTable {
 public:
  static constexpr std::uint32_t kNone = SlotIndex<Uuid, UuidHash>::kNone;

  /// The handle of id, interned if new; one more holder.
  std::uint32_t acquire(const Uuid& id) {
    std::uint32_t h = index_.find(id, Ids{entries_});
    if (h == kNone) {
      h = entries_.acquire();
      entries_[h].id = id;
      index_.insert(id, h);
    }
    ++entries_[h].holders;
    return h;
  }
  /// One holder fewer; the id is forgotten with its last holder (kNone: nothing).
  void release(std::uint32_t h) {
    if (h == kNone || --entries_[h].holders != 0) return;
    index_.erase(entries_[h].id, Ids{entries_});
    entries_.release(h);
  }
  [[nodiscard]] const Uuid& operator[](std::uint32_t h) const noexcept { return entries_[h].id; }
  /// The handle of id if interned, else kNone (no holder is added).
  [[nodiscard]] std::uint32_t find(const Uuid& id) const { return index_.find(id, Ids{entries_}); }
  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] std::uint32_t holders(std::uint32_t h) const noexcept {
    return entries_[h].holders;
  }

 private:
  struct Entry {
    Uuid id;
    std::uint32_t holders = 0;
  };
  struct Ids {
    const Pool<Entry>& entries;
    const Uuid& operator()(std::uint32_t s) const noexcept { return entries[s].id; }
  };
  Pool<Entry> entries_;
  SlotIndex<Uuid, UuidHash> index_;
};

}  // namespace lam
