#pragma once
/// Trailing stops of one market, one price source and one direction (docs/semantics.md, "Trailing
/// stops"; the design is docs/design/trailing-stops.md). Pure and single-threaded, like the matcher
/// that owns it.
///
/// A SELL trailing stop activated at time t follows H = max(price over [t, now]) and triggers when
/// the price falls to H x (1 - rate) or H - distance (the nearer of the two when it has both); a
/// BUY one mirrors it on L = min(price over [t, now]). Every such extreme is a suffix extreme of
/// the source's price sequence, so the members form **groups**, one per entry of a monotonic stack:
/// members activated before the last new extreme since their activation share one H. A price that
/// makes a new extreme pops the groups it passes and melds them into one (each group is pushed once
/// and popped once); inside a group, two pairing heaps keyed by rate and by distance (smallest
/// first) give the next member to trigger; across groups, an ordered set of each group's trigger
/// price gives the next group. Costs: a price that changes nothing reads the two fences, O(1); a
/// new extreme O(1) amortized plus O(log g) per group re-keyed (g groups); a trigger O(log n) per
/// member. 1M members in one group cost no more per tick than one.
///
/// Exact: a member triggers at price p when p <= H x (1 - rate) exactly (SELL), i.e. when
/// p <= floor(H x (1e9 - rate) / 1e9) on the 1e-9 grid, so no rounding can make it early or late.
/// Internally prices are oriented (a BUY book negates them), so that one code serves both sides.

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "engine/uuid.h"

namespace lam {

/// A trailing stop's offset, raw (1e-9): `rate` a fraction (0.01 = 1 %), `distance` a price
/// difference; 0 means not set. At least one is set.
struct TrailOffset {
  std::int64_t rate = 0;
  std::int64_t distance = 0;
  friend bool operator==(const TrailOffset&, const TrailOffset&) = default;
};

/// What a book records for persistence (when asked to): a group made or moved to `extreme`, or
/// melded into `merged_into` (not nil). A group's id is the id of the order that founded it.
struct TrailGroupChange {
  Uuid group;
  std::int64_t extreme = 0;  ///< real price
  Uuid merged_into{};
  friend bool operator==(const TrailGroupChange&, const TrailGroupChange&) = default;
};

/// A member whose trigger the price reached: its owner's handle and its trigger price (real).
struct TrailFired {
  std::uint32_t owner = 0;
  std::int64_t trigger = 0;
};

class TrailBook {
 public:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

  /// buy: the members buy when the price rises from its minimum (else sell when it falls from its
  /// maximum).
  /// `log`: record group changes for changes().
  explicit TrailBook(bool buy, bool log = false) noexcept : buy_(buy), log_(log) {}

  /// SELL: the trigger price of extreme `h` and offset `off` (the nearer of its rate and distance
  /// triggers), floor(h x (1 - rate)) or h - distance; BUY: ceil(h x (1 + rate)) or h + distance.
  /// Saturated to the int64 range.
  [[nodiscard]] static std::int64_t trigger_of(bool buy, std::int64_t h, TrailOffset off) noexcept;

  /// A member added: its handle, and the id of the group it joined.
  struct Added {
    std::uint32_t member = kNone;
    Uuid group;
  };
  /// Adds a member following `extreme` (real): a new activation at the source's price now (which is
  /// never beyond the newest group's extreme: the book saw every price that could make one), or,
  /// `restored`, one with the extreme and group it had. It joins the group following that extreme,
  /// else a new group with id `group` placed on the stack by its extreme. A restored member joining
  /// a group of another id records that its own group melded into that one.
  Added add(std::uint32_t owner, TrailOffset off, std::int64_t extreme, const Uuid& group,
            bool restored = false);
  /// Removes a member (cancelled, replaced); its handle is reused.
  void erase(std::uint32_t member);
  /// A price of the source: updates the extremes and appends the members it triggers to `fired`
  /// (their handles are released), in no particular order.
  void on_price(std::int64_t price, std::vector<TrailFired>& fired);

  /// The extreme a member follows now (real price).
  [[nodiscard]] std::int64_t extreme_of(std::uint32_t member) const noexcept;
  /// A price p changes nothing while lo() < p < hi() (the matcher folds them into its fences).
  [[nodiscard]] std::int64_t hi() const noexcept;
  [[nodiscard]] std::int64_t lo() const noexcept;
  [[nodiscard]] bool empty() const noexcept { return members_live_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return members_live_; }
  [[nodiscard]] std::size_t group_count() const noexcept { return groups_live_; }
  /// The group changes recorded since the last call (log mode only), oldest first.
  void drain_changes(std::vector<TrailGroupChange>& out);
  [[nodiscard]] bool has_changes() const noexcept { return !changes_.empty(); }

 private:
  static constexpr std::int64_t kLow = std::numeric_limits<std::int64_t>::min();
  struct Node {  // one member's key in one of its group's heaps
    std::int64_t key = 0;
    std::uint32_t member = kNone;
    std::uint32_t child = kNone;
    std::uint32_t next = kNone;   // right sibling
    std::uint32_t prev = kNone;   // left sibling, or the parent of a first child
    std::uint32_t group = kNone;  // at a heap's root only: the group it is the root of
  };
  struct Member {
    TrailOffset off;
    std::uint32_t owner = kNone;
    std::uint32_t rate_node = kNone;
    std::uint32_t dist_node = kNone;
  };
  struct Group {
    Uuid id;                      // the founding order's
    std::int64_t extreme = 0;     // oriented
    std::int64_t trigger = kLow;  // oriented: the highest trigger of its members (kLow: none)
    std::uint32_t rate_root = kNone;
    std::uint32_t dist_root = kNone;
    std::uint32_t below = kNone;  // the stack: older (higher extreme)
    std::uint32_t above = kNone;  // newer (lower extreme)
  };

  [[nodiscard]] std::int64_t orient(std::int64_t p) const noexcept;
  std::uint32_t new_node(std::int64_t key, std::uint32_t member);
  std::uint32_t new_group(std::int64_t extreme, const Uuid& id);
  /// Puts a group on the stack by its extreme (and in by_extreme_).
  void stack_insert(std::uint32_t g);
  void log(const Group& g, const Uuid& merged_into = {});
  std::uint32_t link(std::uint32_t a, std::uint32_t b) noexcept;  // melds two roots
  std::uint32_t merge_pairs(std::uint32_t first);                 // a root's children into one
  /// Takes a node out of its heap; returns the heap's new root when the node was the root (else
  /// kNone: the meld of its children took its place).
  std::uint32_t heap_erase(std::uint32_t node);
  /// Melds the groups a new oriented extreme `o` passes into one that follows it.
  void raise(std::int64_t o);
  void set_root(std::uint32_t g, std::uint32_t& root, std::uint32_t node) noexcept;
  /// The group's trigger from its heaps' roots; re-keys it in triggers_, frees it when empty.
  void rekey(std::uint32_t g);
  void unstack(std::uint32_t g) noexcept;
  void merge_groups(std::uint32_t into, std::uint32_t from);
  [[nodiscard]] std::int64_t rate_trigger(std::int64_t extreme, std::int64_t rate) const noexcept;
  [[nodiscard]] std::int64_t member_trigger(std::int64_t extreme, const Member& m) const noexcept;
  /// The group whose heap holds `node` (walks up to the root: for extreme_of, not the hot path).
  [[nodiscard]] std::uint32_t group_of(std::uint32_t node) const noexcept;
  void release_member(std::uint32_t member);

  bool buy_;
  bool log_;
  std::vector<TrailGroupChange> changes_;
  std::map<std::int64_t, std::uint32_t> by_extreme_;  // oriented extreme -> its group
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_nodes_;
  std::vector<Member> members_;
  std::vector<std::uint32_t> free_members_;
  std::vector<Group> groups_;
  std::vector<std::uint32_t> free_groups_;
  std::set<std::pair<std::int64_t, std::uint32_t>> triggers_;  // (oriented trigger, group)
  std::uint32_t top_ = kNone;                                  // the newest group
  std::size_t members_live_ = 0;
  std::size_t groups_live_ = 0;
  std::vector<std::uint32_t> scratch_;
};

}  // namespace lam
