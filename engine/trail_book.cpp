// Trailing stops: groups on a monotonic stack of suffix extremes, two pairing heaps per group
// (engine/trail_book.h). Pairing heaps: O(1) meld, O(log n) amortized pop and erase; an erased
// inner node is replaced in its sibling list by the meld of its children, so erasing needs no root.
#include "engine/trail_book.h"

#include <algorithm>

#include "engine/fixed.h"

namespace lam {

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

std::int64_t clamp_oriented(Wide v) noexcept {  // never kMin: an oriented value negates safely
  if (v > kMax) return kMax;
  if (v <= kMin) return kMin + 1;
  return static_cast<std::int64_t>(v);
}

}  // namespace

std::int64_t TrailBook::orient(std::int64_t p) const noexcept {
  if (!buy_) return p;
  return p == kMin ? kMax : -p;
}

std::int64_t TrailBook::rate_trigger(std::int64_t extreme, std::int64_t rate) const noexcept {
  // SELL: floor(H x (1e9 - rate) / 1e9); BUY (oriented H = -L): floor(-L x (1e9 + rate) / 1e9),
  // which is -ceil(L x (1 + rate)).
  const Wide f = buy_ ? Wide{kScale} + rate : Wide{kScale} - rate;
  return clamp_oriented(floor_div(static_cast<Wide>(extreme) * f, kScale));
}

std::int64_t TrailBook::member_trigger(std::int64_t extreme, const Member& m) const noexcept {
  std::int64_t t = kLow;
  if (m.off.rate > 0) t = rate_trigger(extreme, m.off.rate);
  if (m.off.distance > 0)
    t = std::max(t, clamp_oriented(static_cast<Wide>(extreme) - m.off.distance));
  return t;
}

std::int64_t TrailBook::trigger_of(bool buy, std::int64_t h, TrailOffset off) noexcept {
  const TrailBook b(buy);
  const std::int64_t t = b.member_trigger(b.orient(h), Member{off});
  return buy ? -t : t;
}

// ---- pairing heaps ---------------------------------------------------------------------------

std::uint32_t TrailBook::new_node(std::int64_t key, std::uint32_t member) {
  std::uint32_t n = 0;
  if (!free_nodes_.empty()) {
    n = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n] = Node{key, member};
  return n;
}

std::uint32_t TrailBook::link(std::uint32_t a, std::uint32_t b) noexcept {
  if (a == kNone) return b;
  if (b == kNone) return a;
  if (nodes_[b].key < nodes_[a].key) std::swap(a, b);
  Node& na = nodes_[a];
  Node& nb = nodes_[b];
  nb.prev = a;
  nb.next = na.child;
  if (na.child != kNone) nodes_[na.child].prev = b;
  na.child = b;
  return a;
}

std::uint32_t TrailBook::merge_pairs(std::uint32_t first) {
  if (first == kNone) return kNone;
  scratch_.clear();
  for (std::uint32_t n = first; n != kNone; n = nodes_[n].next) scratch_.push_back(n);
  for (std::uint32_t n : scratch_) nodes_[n].prev = nodes_[n].next = kNone;
  std::size_t pairs = 0;
  for (std::size_t i = 0; i < scratch_.size(); i += 2) {
    scratch_[pairs++] = i + 1 < scratch_.size() ? link(scratch_[i], scratch_[i + 1]) : scratch_[i];
  }
  std::uint32_t r = scratch_[pairs - 1];
  for (std::size_t j = pairs - 1; j-- > 0;) r = link(scratch_[j], r);
  return r;
}

void TrailBook::set_root(std::uint32_t g, std::uint32_t& root, std::uint32_t node) noexcept {
  root = node;
  if (node == kNone) return;
  nodes_[node].prev = nodes_[node].next = kNone;
  nodes_[node].group = g;
}

std::uint32_t TrailBook::heap_erase(std::uint32_t node) {
  const std::uint32_t sub = merge_pairs(nodes_[node].child);
  Node& n = nodes_[node];
  if (n.prev == kNone) return sub;  // the root: its children are the heap now
  // An inner node: the meld of its children takes its place among its siblings.
  const std::uint32_t prev = n.prev;
  const std::uint32_t next = n.next;
  const std::uint32_t repl = sub != kNone ? sub : next;
  if (sub != kNone) {
    nodes_[sub].prev = prev;
    nodes_[sub].next = next;
    if (next != kNone) nodes_[next].prev = sub;
  } else if (next != kNone) {
    nodes_[next].prev = prev;
  }
  if (nodes_[prev].child == node) {
    nodes_[prev].child = repl;
  } else {
    nodes_[prev].next = repl;
  }
  return kNone;
}

std::uint32_t TrailBook::group_of(std::uint32_t node) const noexcept {
  while (nodes_[node].prev != kNone) node = nodes_[node].prev;
  return nodes_[node].group;
}

// ---- groups ----------------------------------------------------------------------------------

std::uint32_t TrailBook::new_group(std::int64_t extreme, const Uuid& id) {
  std::uint32_t g = 0;
  if (!free_groups_.empty()) {
    g = free_groups_.back();
    free_groups_.pop_back();
  } else {
    g = static_cast<std::uint32_t>(groups_.size());
    groups_.emplace_back();
  }
  groups_[g] = Group{id, extreme};
  stack_insert(g);
  ++groups_live_;
  log(groups_[g]);
  return g;
}

void TrailBook::stack_insert(std::uint32_t g) {
  Group& x = groups_[g];
  // Below it the nearest higher extreme (older), above it the nearest lower (newer).
  const auto higher = by_extreme_.upper_bound(x.extreme);
  x.below = higher == by_extreme_.end() ? kNone : higher->second;
  x.above = higher == by_extreme_.begin() ? kNone : std::prev(higher)->second;
  if (x.below != kNone) groups_[x.below].above = g;
  if (x.above != kNone) {
    groups_[x.above].below = g;
  } else {
    top_ = g;
  }
  by_extreme_.emplace(x.extreme, g);
}

void TrailBook::unstack(std::uint32_t g) noexcept {
  Group& x = groups_[g];
  if (x.above != kNone) {
    groups_[x.above].below = x.below;
  } else {
    top_ = x.below;
  }
  if (x.below != kNone) groups_[x.below].above = x.above;
  x.above = x.below = kNone;
  by_extreme_.erase(x.extreme);
}

void TrailBook::log(const Group& g, const Uuid& merged_into) {
  if (!log_) return;
  changes_.push_back({g.id, buy_ ? -g.extreme : g.extreme, merged_into});
}

void TrailBook::drain_changes(std::vector<TrailGroupChange>& out) {
  out.insert(out.end(), changes_.begin(), changes_.end());
  changes_.clear();
}

void TrailBook::rekey(std::uint32_t g) {
  Group& x = groups_[g];
  std::int64_t t = kLow;
  if (x.rate_root != kNone) t = rate_trigger(x.extreme, nodes_[x.rate_root].key);
  if (x.dist_root != kNone)
    t = std::max(t, clamp_oriented(static_cast<Wide>(x.extreme) - nodes_[x.dist_root].key));
  if (t == x.trigger && t != kLow) return;
  if (x.trigger != kLow && t != kLow) {  // re-keyed in place: no allocation (a new best, a pop)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"  // as in raise(): the key is in the set
    auto node = triggers_.extract({x.trigger, g});
    node.value() = {t, g};
    triggers_.insert(std::move(node));
#pragma GCC diagnostic pop
    x.trigger = t;
    return;
  }
  if (x.trigger != kLow) triggers_.erase({x.trigger, g});
  x.trigger = t;
  if (t != kLow) {
    triggers_.insert({t, g});
    return;
  }
  unstack(g);  // no members left
  free_groups_.push_back(g);
  --groups_live_;
}

void TrailBook::merge_groups(std::uint32_t into, std::uint32_t from) {
  Group& a = groups_[into];
  Group& b = groups_[from];
  if (b.trigger != kLow) triggers_.erase({b.trigger, from});
  log(b, a.id);
  set_root(into, a.rate_root, link(a.rate_root, b.rate_root));
  set_root(into, a.dist_root, link(a.dist_root, b.dist_root));
  b = Group{};
  free_groups_.push_back(from);
  --groups_live_;
}

// ---- members ---------------------------------------------------------------------------------

TrailBook::Added TrailBook::add(std::uint32_t owner, TrailOffset off, std::int64_t extreme,
                                const Uuid& group, bool restored) {
  const std::int64_t o = orient(extreme);
  const auto held = by_extreme_.find(o);
  const std::uint32_t g = held != by_extreme_.end() ? held->second : new_group(o, group);
  if (restored && groups_[g].id != group) log(Group{group, o}, groups_[g].id);
  std::uint32_t m = 0;
  if (!free_members_.empty()) {
    m = free_members_.back();
    free_members_.pop_back();
  } else {
    m = static_cast<std::uint32_t>(members_.size());
    members_.emplace_back();
  }
  Member& mem = members_[m];
  mem = Member{off, owner};
  if (off.rate > 0) {
    mem.rate_node = new_node(off.rate, m);
    set_root(g, groups_[g].rate_root, link(groups_[g].rate_root, mem.rate_node));
  }
  if (off.distance > 0) {
    mem.dist_node = new_node(off.distance, m);
    set_root(g, groups_[g].dist_root, link(groups_[g].dist_root, mem.dist_node));
  }
  ++members_live_;
  rekey(g);
  return {m, groups_[g].id};
}

void TrailBook::release_member(std::uint32_t member) {
  Member& m = members_[member];
  std::uint32_t touched = kNone;
  auto drop = [&](std::uint32_t node, bool rate) {
    if (node == kNone) return;
    if (nodes_[node].prev == kNone) {  // a root: its group's heap is its children now
      const std::uint32_t g = nodes_[node].group;
      Group& x = groups_[g];
      set_root(g, rate ? x.rate_root : x.dist_root, heap_erase(node));
      touched = g;
    } else {
      heap_erase(node);
    }
    nodes_[node] = Node{};
    free_nodes_.push_back(node);
  };
  drop(m.rate_node, true);
  drop(m.dist_node, false);
  m = Member{};
  free_members_.push_back(member);
  --members_live_;
  if (touched != kNone) rekey(touched);
}

void TrailBook::erase(std::uint32_t member) {
  if (member >= members_.size() || members_[member].owner == kNone) return;
  release_member(member);
}

void TrailBook::raise(std::int64_t o) {
  if (top_ == kNone || groups_[top_].extreme >= o) return;
  // A new extreme: the groups it passes meld into the newest, which follows it and stays the
  // newest (every group left has a higher extreme). Its by_extreme_ node is re-keyed in place: the
  // smallest key before and after, so no allocation and no search.
  const std::uint32_t survivor = top_;
  Group& s = groups_[survivor];
  while (s.below != kNone && groups_[s.below].extreme <= o) {
    const std::uint32_t g = s.below;
    unstack(g);
    merge_groups(survivor, g);
  }
  // GCC 12 reads the node handle as possibly empty (-Wnull-dereference); the survivor's key is in
  // the map (stack_insert put it there), so the handle holds its node.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
  auto node = by_extreme_.extract(s.extreme);
  node.key() = o;
  by_extreme_.insert(by_extreme_.begin(), std::move(node));
#pragma GCC diagnostic pop
  s.extreme = o;
  log(s);
  rekey(survivor);
}

void TrailBook::on_price(std::int64_t price, std::vector<TrailFired>& fired) {
  const std::int64_t o = orient(price);
  raise(o);
  // Triggers, group by group from the highest; a group left empty is freed by rekey, and its
  // roots read kNone.
  while (!triggers_.empty() && triggers_.rbegin()->first >= o) {
    const std::uint32_t g = triggers_.rbegin()->second;
    for (;;) {
      const Group& x = groups_[g];
      std::uint32_t node = kNone;
      if (x.rate_root != kNone && rate_trigger(x.extreme, nodes_[x.rate_root].key) >= o) {
        node = x.rate_root;
      } else if (x.dist_root != kNone &&
                 clamp_oriented(static_cast<Wide>(x.extreme) - nodes_[x.dist_root].key) >= o) {
        node = x.dist_root;
      }
      if (node == kNone) break;
      const std::uint32_t member = nodes_[node].member;
      const std::int64_t t = member_trigger(x.extreme, members_[member]);
      fired.push_back({members_[member].owner, buy_ ? -t : t});
      release_member(member);  // re-keys (or frees) the group
    }
  }
}

std::int64_t TrailBook::extreme_of(std::uint32_t member) const noexcept {
  const Member& m = members_[member];
  const std::uint32_t node = m.rate_node != kNone ? m.rate_node : m.dist_node;
  const std::int64_t e = groups_[group_of(node)].extreme;
  return buy_ ? -e : e;
}

std::int64_t TrailBook::hi() const noexcept {
  if (buy_) return triggers_.empty() ? kMax : -triggers_.rbegin()->first;
  return top_ == kNone ? kMax : clamp_oriented(static_cast<Wide>(groups_[top_].extreme) + 1);
}

std::int64_t TrailBook::lo() const noexcept {
  if (buy_)
    return top_ == kNone ? kMin : -clamp_oriented(static_cast<Wide>(groups_[top_].extreme) + 1);
  return triggers_.empty() ? kMin : triggers_.rbegin()->first;
}

}  // namespace lam
