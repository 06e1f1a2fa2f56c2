#pragma once
/// Interned ids: each distinct Uuid held once and referred to by a 4-byte handle, with a count of
/// its holders. The matcher's records name their user and wallet this way: a user with many
/// alerts, positions and orders costs one 16-byte id (plus 20 bytes of table), not 16 bytes in
/// each record.

#include <cstdint>
#include <vector>

#include "engine/flat_map.h"
#include "engine/uuid.h"

namespace lam {

class IdTable {
 public:
  static constexpr std::uint32_t kNone = SlotIndex<Uuid, UuidHash>::kNone;

  /// The handle of id, interned if new; one more holder.
  std::uint32_t acquire(const Uuid& id) {
    std::uint32_t h = index_.find(id, Ids{ids_});
    if (h == kNone) {
      if (!free_.empty()) {
        h = free_.back();
        free_.pop_back();
        ids_[h] = id;
      } else {
        h = static_cast<std::uint32_t>(ids_.size());
        ids_.push_back(id);
        refs_.push_back(0);
      }
      index_.insert(id, h);
    }
    ++refs_[h];
    return h;
  }
  /// One holder fewer; the id is forgotten with its last holder (kNone: nothing).
  void release(std::uint32_t h) {
    if (h == kNone || --refs_[h] != 0) return;
    index_.erase(ids_[h], Ids{ids_});
    ids_[h] = Uuid{};
    free_.push_back(h);
  }
  [[nodiscard]] const Uuid& operator[](std::uint32_t h) const noexcept { return ids_[h]; }
  /// The handle of id if interned, else kNone (no holder is added).
  [[nodiscard]] std::uint32_t find(const Uuid& id) const { return index_.find(id, Ids{ids_}); }
  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  [[nodiscard]] std::uint32_t holders(std::uint32_t h) const noexcept { return refs_[h]; }

 private:
  struct Ids {
    const std::vector<Uuid>& v;
    const Uuid& operator()(std::uint32_t s) const noexcept { return v[s]; }
  };
  std::vector<Uuid> ids_;
  std::vector<std::uint32_t> refs_;
  std::vector<std::uint32_t> free_;
  SlotIndex<Uuid, UuidHash> index_;
};

}  // namespace lam
