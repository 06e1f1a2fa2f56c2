// TrailBook against a reference that keeps every member's own extreme and scans them all: random
// activations, cancellations and prices on both sides, enough to create, meld, fire and empty
// groups many times over. Extremes, fired sets, trigger prices and both fences are compared after
// every step.
#include "engine/trail_book.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>

#include "builders.h"
#include "engine/fixed.h"

namespace lam {
namespace {
using test::GroupRows;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

/// One member as the reference holds it.
struct RefMember {
  std::uint32_t handle = 0;
  TrailOffset off;
  std::int64_t extreme = 0;
};

/// Every member scanned on every price.
class RefBook {
 public:
  explicit RefBook(bool buy) : buy_(buy) {}
  void add(std::uint32_t owner, std::uint32_t handle, TrailOffset off, std::int64_t p) {
    members_[owner] = {handle, off, p};
  }
  void erase(std::uint32_t owner) { members_.erase(owner); }
  std::vector<TrailFired> on_price(std::int64_t p) {
    std::vector<TrailFired> fired;
    for (auto it = members_.begin(); it != members_.end();) {
      RefMember& m = it->second;
      m.extreme = buy_ ? std::min(m.extreme, p) : std::max(m.extreme, p);
      const std::int64_t t = TrailBook::trigger_of(buy_, m.extreme, m.off);
      if (buy_ ? p >= t : p <= t) {
        fired.push_back({it->first, t});
        it = members_.erase(it);
      } else {
        ++it;
      }
    }
    return fired;
  }
  /// The fences exactly: the newest extreme passed, or the nearest trigger reached.
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> fences() const {
    std::int64_t hi = kMax, lo = kMin;
    for (const auto& [owner, m] : members_) {
      const std::int64_t t = TrailBook::trigger_of(buy_, m.extreme, m.off);
      if (buy_) {
        hi = std::min(hi, t);
        lo = std::max(lo, m.extreme - 1);
      } else {
        hi = std::min(hi, m.extreme + 1);
        lo = std::max(lo, t);
      }
    }
    return {hi, lo};
  }
  [[nodiscard]] const std::map<std::uint32_t, RefMember>& members() const { return members_; }

 private:
  bool buy_;
  std::map<std::uint32_t, RefMember> members_;
};

bool by_owner(const TrailFired& a, const TrailFired& b) {
  return a.owner < b.owner;
}

Uuid group_id(std::uint32_t owner) {
  return Uuid{0x7A11, owner + 1};
}

void run_random(bool buy, std::uint32_t seed, int steps) {
  std::mt19937_64 rng(seed);
  TrailBook book(buy, /*log=*/true);
  GroupRows rows;
  std::map<std::uint32_t, Uuid> joined;  // owner -> the group its activation joined
  RefBook ref(buy);
  std::int64_t price = 1000 * kScale;
  std::uint32_t next_owner = 0;
  std::vector<TrailFired> fired;
  for (int step = 0; step < steps; ++step) {
    const auto roll = rng() % 100;
    if (roll < 30) {  // activate at the current price, sometimes several at once (one group)
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; ++i) {
        TrailOffset off;
        const auto kind = rng() % 3;
        if (kind != 1) off.rate = static_cast<std::int64_t>(1 + rng() % 50) * kScale / 1000;
        if (kind != 0) off.distance = static_cast<std::int64_t>(1 + rng() % 40) * kScale;
        const std::uint32_t owner = next_owner++;
        const TrailBook::Added a = book.add(owner, off, price, group_id(owner));
        joined[owner] = a.group;
        ref.add(owner, a.member, off, price);
      }
    } else if (roll < 33) {  // a member restored at an extreme of its own, anywhere on the stack
      TrailOffset off{static_cast<std::int64_t>(1 + rng() % 50) * kScale / 1000, 0};
      const std::int64_t extreme = buy ? price - static_cast<std::int64_t>(rng() % 30) * kScale
                                       : price + static_cast<std::int64_t>(rng() % 30) * kScale;
      const std::uint32_t owner = next_owner++;
      const TrailBook::Added a = book.add(owner, off, extreme, group_id(owner), true);
      joined[owner] = group_id(owner);  // what its row says; the log melds it if it joined another
      ref.add(owner, a.member, off, extreme);
    } else if (roll < 40 && !ref.members().empty()) {  // cancel one
      auto it = ref.members().begin();
      std::advance(it, static_cast<long>(rng() % ref.members().size()));
      book.erase(it->second.handle);
      ref.erase(it->first);
    } else {  // a price: a random walk, with jumps
      const std::int64_t step_size = rng() % 10 == 0 ? 60 : 6;
      price += (static_cast<std::int64_t>(rng() % (2 * step_size + 1)) - step_size) * kScale;
      price = std::max<std::int64_t>(price, 100 * kScale);
      fired.clear();
      book.on_price(price, fired);
      std::vector<TrailFired> want = ref.on_price(price);
      std::sort(fired.begin(), fired.end(), by_owner);
      std::sort(want.begin(), want.end(), by_owner);
      ASSERT_EQ(fired.size(), want.size()) << "step " << step;
      for (std::size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(fired[i].owner, want[i].owner) << "step " << step;
        ASSERT_EQ(fired[i].trigger, want[i].trigger) << "step " << step;
      }
    }
    ASSERT_EQ(book.size(), ref.members().size());
    std::vector<TrailGroupChange> changes;
    book.drain_changes(changes);
    rows.apply(changes);
    for (const auto& [owner, m] : ref.members()) {
      ASSERT_EQ(book.extreme_of(m.handle), m.extreme) << "step " << step << " owner " << owner;
      ASSERT_EQ(rows.extreme(joined[owner]), m.extreme)
          << "the logged rows give another extreme, step " << step << " owner " << owner;
    }
    const auto [hi, lo] = ref.fences();
    ASSERT_EQ(book.hi(), hi) << "step " << step;
    ASSERT_EQ(book.lo(), lo) << "step " << step;
  }
}

TEST(TrailBook, SellSideMatchesTheScanOfEveryMember) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) run_random(false, seed, 4000);
}

TEST(TrailBook, BuySideMatchesTheScanOfEveryMember) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) run_random(true, seed, 4000);
}

TEST(TrailBook, TriggerPricesAreExactOnTheGrid) {
  // 1 % below 100.000000001: 99.00000000099 floors to 99.000000000 (a sell at 99.000000001 would
  // be early); 1 % above it for a buy: 101.00000000101 ceils to 101.000000002.
  const std::int64_t h = 100 * kScale + 1;
  EXPECT_EQ(TrailBook::trigger_of(false, h, {kScale / 100, 0}), 99 * kScale);
  EXPECT_EQ(TrailBook::trigger_of(true, h, {kScale / 100, 0}), 101 * kScale + 2);
  // Both offsets: the nearer trigger (the one reached first) wins.
  EXPECT_EQ(TrailBook::trigger_of(false, 100 * kScale, {kScale / 100, kScale / 2}), 99'500'000'000);
  EXPECT_EQ(TrailBook::trigger_of(true, 100 * kScale, {kScale / 100, 2 * kScale}), 101 * kScale);
}

TEST(TrailBook, MembersActivatedBeforeANewHighShareItAsOneGroup) {
  TrailBook book(false);
  std::vector<TrailFired> fired;
  const std::int64_t p = 100 * kScale;
  const auto a = book.add(1, {kScale / 10, 0}, p, group_id(1)).member;  // 10 %
  book.on_price(p - kScale, fired);                                     // 99
  const auto b = book.add(2, {0, 5 * kScale}, p - kScale, group_id(2)).member;
  EXPECT_EQ(book.group_count(), 2U);
  EXPECT_EQ(book.hi(), p - kScale + 1);   // above 99 the newest group moves
  book.on_price(p + 10 * kScale, fired);  // 110: both follow it now
  EXPECT_EQ(book.group_count(), 1U);
  EXPECT_EQ(book.extreme_of(a), 110 * kScale);
  EXPECT_EQ(book.extreme_of(b), 110 * kScale);
  EXPECT_EQ(book.lo(), 105 * kScale);  // b's 110 - 5 is nearer than a's 99
  book.on_price(105 * kScale, fired);
  ASSERT_EQ(fired.size(), 1U);
  EXPECT_EQ(fired[0].owner, 2U);
  EXPECT_EQ(fired[0].trigger, 105 * kScale);
  EXPECT_EQ(book.lo(), 99 * kScale);
  book.erase(a);
  EXPECT_TRUE(book.empty());
  EXPECT_EQ(book.group_count(), 0U);
  EXPECT_EQ(book.hi(), kMax);
  EXPECT_EQ(book.lo(), kMin);
}

TEST(TrailBook, AMillionMembersInOneGroupMoveWithOnePrice) {
  TrailBook book(false);
  std::vector<TrailFired> fired;
  for (std::uint32_t i = 0; i < 1'000'000; ++i)
    book.add(i, {static_cast<std::int64_t>(1 + i % 1000) * kScale / 10'000, 0}, 100 * kScale,
             group_id(i));
  EXPECT_EQ(book.group_count(), 1U);
  book.on_price(200 * kScale, fired);  // a new high: one group re-keyed, nobody scanned
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(book.hi(), 200 * kScale + 1);
  EXPECT_EQ(book.lo(), 200 * kScale - 2 * kScale / 100);  // the 0.01 % member: 199.98
  book.on_price(199 * kScale, fired);                     // 0.5 %: the members up to 0.5 % fire
  EXPECT_EQ(fired.size(), 50'000U);
  EXPECT_EQ(book.size(), 950'000U);
}

}  // namespace
}  // namespace lam
