#pragma once
/// The gateway's check of each shard's order: every shard numbers its events 1, 2, 3, ... and the
/// gateway sees them in the stream's order. A seq at or below the last one seen repeats (a
/// republication outside JetStream's duplicate window); a seq beyond the next expected skipped
/// some, unless the shard declared those seqs skipped (a restore's declared gap: the publisher
/// names it in the next event's `Laminator-Gap` header), which is no fault. Pure.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace lam::daemon {

class ShardOrder {
 public:
  enum class Verdict : std::uint8_t { in_order, repeat, gap, declared_gap };
  /// Seqs [first, last] the shard declared skipped.
  using Declared = std::pair<std::uint64_t, std::uint64_t>;

  /// Shard `shard`'s event `seq` arrives, with the gap its publisher declared before it, if any.
  Verdict observe(const std::string& shard, std::uint64_t seq,
                  std::optional<Declared> declared = std::nullopt) {
    std::uint64_t& last = last_[shard];
    Verdict v = Verdict::in_order;
    if (last != 0 && seq <= last) {
      v = Verdict::repeat;
    } else if (last != 0 && seq > last + 1) {
      // Declared: it covers every seq between the last one seen and this one.
      v = declared && declared->first <= last + 1 && declared->second + 1 >= seq
              ? Verdict::declared_gap
              : Verdict::gap;
    }
    if (seq > last) last = seq;
    return v;
  }
  /// The last seq seen of `shard` (0: none).
  [[nodiscard]] std::uint64_t last(const std::string& shard) const {
    const auto it = last_.find(shard);
    return it == last_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, std::uint64_t> last_;
};

}  // namespace lam::daemon
