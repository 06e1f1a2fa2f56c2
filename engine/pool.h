#pragma once
/// Records that only some of the matcher's objects need (an alert's expiry, an order's fill), by a
/// 4-byte index kept in the object's record: released ones are reused first, and the memory goes
/// back to the system once none is held.

#include <cstdint>
#include <vector>

namespace lam {

template <class T>
class Pool {
 public:
  /// A default-constructed record's index.
  std::uint32_t acquire() {
    if (!free_.empty()) {
      const std::uint32_t i = free_.back();
      free_.pop_back();
      items_[i] = T{};
      return i;
    }
    items_.emplace_back();
    return static_cast<std::uint32_t>(items_.size() - 1);
  }
  void release(std::uint32_t i) {
    free_.push_back(i);
    if (free_.size() == items_.size()) {  // none held: give the memory back
      std::vector<T>().swap(items_);
      std::vector<std::uint32_t>().swap(free_);
    }
  }
  [[nodiscard]] T& operator[](std::uint32_t i) noexcept { return items_[i]; }
  [[nodiscard]] const T& operator[](std::uint32_t i) const noexcept { return items_[i]; }
  [[nodiscard]] std::size_t live() const noexcept { return items_.size() - free_.size(); }

 private:
  std::vector<T> items_;
  std::vector<std::uint32_t> free_;
};

}  // namespace lam
