// The ladder against a std::set of the same order: random inserts, erasures and crossing ticks,
// enough of them to split, merge and empty blocks many times over.
#include "engine/ladder.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace lam {
namespace {

/// What the reference set holds: the entry with its owner's whole id.
struct Ref {
  std::int64_t key = 0;
  Uuid id;
  std::uint32_t slot = 0;
};

/// The firing order: nearest first, ties on key by id descending.
template <Direction D>
struct FiringOrder {
  bool operator()(const Ref& a, const Ref& b) const noexcept {
    if (a.key != b.key) return D == Direction::up ? a.key < b.key : a.key > b.key;
    return a.id > b.id;
  }
};

/// The owners' ids by slot, as the matcher's records hold them.
struct Ids {
  std::vector<Uuid> by_slot;
  const Uuid& operator()(std::uint32_t slot) const { return by_slot.at(slot); }
};

/// `staging`: runs of 500 staged inserts (a bulk load's path) alternate with runs of everything
/// else, whose first operation builds the ladder.
template <Direction D>
void run_against_reference(std::uint64_t seed, std::int64_t key_range, bool staging = false) {
  Ladder<D> ladder;
  std::set<Ref, FiringOrder<D>> ref;
  std::mt19937_64 rng(seed);
  Ids ids;
  std::vector<Ref> live;  // what we may erase (or was popped since: erasing it fails)
  std::vector<Crossed> got;
  bool stage = false;
  for (int step = 0; step < 60'000; ++step) {
    if (staging && step % 500 == 0) stage = !stage;
    const std::uint64_t r = rng() % 100;
    if (r < 60 || stage) {  // insert (keys collide often: ties are ordered by id)
      // 64 tags (the id's top 32 bits), so most ties on key are broken by the tag and the rest by
      // the whole id, read through ids.
      const Uuid id{((rng() % 64) << 58) | (rng() % 4), rng()};
      const Ref e{static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(key_range)), id,
                  static_cast<std::uint32_t>(step)};
      ids.by_slot.resize(e.slot + 1);
      ids.by_slot[e.slot] = id;
      ASSERT_TRUE(ref.insert(e).second);
      if (!stage) {
        ladder.insert(e.key, e.id, e.slot, ids);
      } else {
        ladder.stage(e.key, e.id, e.slot);
      }
      live.push_back(e);
    } else if (r < 95) {  // erase one that is there, or one that is not
      if (!live.empty() && (rng() % 8) != 0) {
        const std::size_t i = rng() % live.size();
        const Ref e = live[i];
        live[i] = live.back();
        live.pop_back();
        const bool there = ref.erase(e) != 0;
        ASSERT_EQ(ladder.erase(e.key, e.id, e.slot, ids), there);
      } else if (!live.empty()) {  // a live slot under a key it is not filed under
        const Ref& e = live[rng() % live.size()];
        ASSERT_FALSE(ladder.erase(e.key ^ 1, e.id, e.slot, ids));
      }
    } else {  // a tick that crosses a few entries
      if (ladder.empty()) continue;
      const std::int64_t p = D == Direction::up
                                 ? ladder.front_key() + static_cast<std::int64_t>(rng() % 3)
                                 : ladder.front_key() - static_cast<std::int64_t>(rng() % 3);
      got.clear();
      ladder.pop_crossed(p, got, ids);
      std::vector<Ref> want;
      while (!ref.empty() && Ladder<D>::crosses(ref.begin()->key, p)) {
        want.push_back(*ref.begin());
        ref.erase(ref.begin());
      }
      // nearest first, ties by ascending id
      std::sort(want.begin(), want.end(), [p](const Ref& a, const Ref& b) {
        const auto da = D == Direction::up ? p - a.key : a.key - p;
        const auto db = D == Direction::up ? p - b.key : b.key - p;
        return da != db ? da < db : a.id < b.id;
      });
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].id, want[i].id) << i;
        ASSERT_EQ(got[i].slot, want[i].slot);
        const auto d = D == Direction::up ? p - want[i].key : want[i].key - p;
        ASSERT_EQ(got[i].distance, static_cast<unsigned __int128>(d));
      }
    }
    ASSERT_EQ(ladder.size(), ref.size());
    ASSERT_EQ(ladder.front_key(), ref.empty() ? Ladder<D>::kEmpty : ref.begin()->key);
  }
  // Drain: everything comes out in order.
  got.clear();
  ladder.pop_crossed(
      D == Direction::up ? Ladder<Direction::up>::kEmpty - 1 : Ladder<Direction::down>::kEmpty + 1,
      got, ids);
  EXPECT_EQ(got.size(), ref.size());
  EXPECT_TRUE(ladder.empty());
  EXPECT_EQ(ladder.front_key(), Ladder<D>::kEmpty);
}

TEST(Ladder, UpMatchesAnOrderedSetThroughSplitsMergesAndCrossings) {
  run_against_reference<Direction::up>(1, 5'000);
  run_against_reference<Direction::up>(2, 50);  // long runs of equal keys
}

TEST(Ladder, DownMatchesAnOrderedSetThroughSplitsMergesAndCrossings) {
  run_against_reference<Direction::down>(3, 5'000);
  run_against_reference<Direction::down>(4, 50);
}

TEST(Ladder, StagedRunsMatchAnOrderedSetWhateverComesBetween) {
  run_against_reference<Direction::up>(5, 5'000, true);
  run_against_reference<Direction::up>(6, 50, true);
  run_against_reference<Direction::down>(7, 5'000, true);
  run_against_reference<Direction::down>(8, 50, true);
}

TEST(Ladder, AStagedMillionIsBuiltSortedInBlocksThreeQuartersFull) {
  Ladder<Direction::down> l;
  std::mt19937_64 rng(9);
  Ids ids;
  for (std::uint32_t i = 0; i < 1'000'000; ++i) {
    ids.by_slot.push_back(Uuid{rng(), rng()});
    l.stage(static_cast<std::int64_t>(rng() % 100'000'000), ids.by_slot.back(), i);
  }
  EXPECT_TRUE(l.staged());
  EXPECT_EQ(l.size(), 1'000'000U);
  const std::int64_t front = l.front_key();
  l.unstage(ids);
  EXPECT_FALSE(l.staged());
  EXPECT_EQ(l.front_key(), front);
  std::vector<Crossed> got;
  l.pop_crossed(Ladder<Direction::down>::kEmpty + 1, got, ids);  // everything, in firing order
  ASSERT_EQ(got.size(), 1'000'000U);
  for (std::size_t i = 1; i < got.size(); ++i) {
    ASSERT_LE(got[i - 1].distance, got[i].distance) << i;
    ASSERT_EQ(got[i].id, ids(got[i].slot));
  }
}

TEST(Ladder, AnEntryStagedTwiceIsKeptOnceWhenBuilt) {
  Ladder<Direction::up> l;
  Ids ids{std::vector<Uuid>(10)};
  ids.by_slot[1] = Uuid{1, 1};
  ids.by_slot[7] = Uuid{1, 2};
  ids.by_slot[9] = Uuid{1, 3};
  l.insert(5, Uuid{1, 1}, 1, ids);
  l.stage(10, Uuid{1, 2}, 7);
  l.stage(10, Uuid{1, 2}, 7);
  l.stage(3, Uuid{1, 3}, 9);
  EXPECT_EQ(l.front_key(), 3);
  l.unstage(ids);
  EXPECT_EQ(l.size(), 3U);
  EXPECT_TRUE(l.erase(10, Uuid{1, 2}, 7, ids));
  EXPECT_FALSE(l.erase(10, Uuid{1, 2}, 7, ids));
  EXPECT_TRUE(l.erase(5, Uuid{1, 1}, 1, ids));
  EXPECT_EQ(l.front_key(), 3);
}

TEST(Ladder, AnEntryFiledTwiceIsKeptOnce) {
  Ladder<Direction::up> l;
  Ids ids{std::vector<Uuid>(8)};
  ids.by_slot[7] = Uuid{1, 2};
  l.insert(10, Uuid{1, 2}, 7, ids);
  l.insert(10, Uuid{1, 2}, 7, ids);
  EXPECT_EQ(l.size(), 1U);
  EXPECT_TRUE(l.erase(10, Uuid{1, 2}, 7, ids));
  EXPECT_FALSE(l.erase(10, Uuid{1, 2}, 7, ids));
  EXPECT_TRUE(l.empty());
}

}  // namespace
}  // namespace lam
