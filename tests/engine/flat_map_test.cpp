// FlatMap and SlotIndex against std::unordered_map: random inserts, lookups and erasures, with a
// well-spread hash and with one that puts every key in a handful of runs (erasure's backward shift
// under long probe sequences that wrap around the table's end).
#include "engine/flat_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>

#include "engine/id_table.h"

namespace lam {
namespace {

struct Spread {
  std::size_t operator()(std::uint64_t k) const noexcept { return k * 0xFF51AFD7ED558CCDULL; }
};
struct Clumped {  // eight hash values in all
  std::size_t operator()(std::uint64_t k) const noexcept { return k % 8; }
};

template <class Hash>
void run(std::uint64_t seed, std::uint64_t key_range, int steps) {
  FlatMap<std::uint64_t, std::uint32_t, Hash> m;
  std::unordered_map<std::uint64_t, std::uint32_t> ref;
  std::mt19937_64 rng(seed);
  for (int step = 0; step < steps; ++step) {
    const std::uint64_t k = rng() % key_range;
    const std::uint64_t r = rng() % 10;
    if (r < 5) {
      const auto [it, inserted] = m.try_emplace(k, static_cast<std::uint32_t>(step));
      const auto [rit, rinserted] = ref.try_emplace(k, static_cast<std::uint32_t>(step));
      ASSERT_EQ(inserted, rinserted);
      ASSERT_EQ(it->first, k);
      ASSERT_EQ(it->second, rit->second);
    } else if (r < 8) {
      ASSERT_EQ(m.erase(k), ref.erase(k) != 0);
    } else {
      const auto it = m.find(k);
      const auto rit = ref.find(k);
      ASSERT_EQ(it == m.end(), rit == ref.end());
      if (rit != ref.end()) {
        ASSERT_EQ(it->second, rit->second);
      }
    }
    ASSERT_EQ(m.size(), ref.size());
  }
  // Every key still reachable, and nothing else there.
  for (const auto& [k, v] : ref) ASSERT_EQ(m.at(k), v);
  std::size_t seen = 0;
  m.for_each([&](std::uint64_t k, std::uint32_t v) {
    ++seen;
    ASSERT_EQ(ref.at(k), v);
  });
  EXPECT_EQ(seen, ref.size());
}

TEST(FlatMap, MatchesUnorderedMapWithASpreadHash) {
  run<Spread>(1, 20'000, 200'000);
}

TEST(FlatMap, MatchesUnorderedMapWhenEveryKeySharesEightHomes) {
  run<Clumped>(2, 600, 40'000);
}

TEST(FlatMap, ReserveHoldsWithoutRehashingAndAtThrowsForAMissingKey) {
  FlatMap<std::uint64_t, std::uint32_t, Spread> m;
  m.reserve(1000);
  const std::size_t bytes = m.bytes();
  for (std::uint64_t k = 0; k < 1000; ++k) m.try_emplace(k, 1);
  EXPECT_EQ(m.bytes(), bytes);
  EXPECT_THROW((void)m.at(5000), std::out_of_range);
}

/// SlotIndex against std::unordered_map: the keys live with their owners (a slot array, as the
/// matcher's records), freed slots are reused, and an owner's key is cleared once it is erased, so
/// an index that still read a departed owner would find the wrong key.
template <class Hash>
void run_slot_index(std::uint64_t seed, std::uint64_t key_range, int steps) {
  using Index = SlotIndex<std::uint64_t, Hash>;
  Index index;
  std::unordered_map<std::uint64_t, std::uint32_t> ref;
  std::vector<std::uint64_t> owners;  // slot -> key (~0: free)
  std::vector<std::uint32_t> free_slots;
  const auto key_of = [&](std::uint32_t slot) { return owners.at(slot); };
  std::mt19937_64 rng(seed);
  for (int step = 0; step < steps; ++step) {
    const std::uint64_t k = rng() % key_range;
    const std::uint64_t r = rng() % 10;
    const std::uint32_t found = index.find(k, key_of);
    const auto rit = ref.find(k);
    ASSERT_EQ(found == Index::kNone, rit == ref.end());
    if (rit != ref.end()) {
      ASSERT_EQ(found, rit->second);
    }
    if (r < 5 && rit == ref.end()) {
      std::uint32_t slot = 0;
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
      } else {
        slot = static_cast<std::uint32_t>(owners.size());
        owners.push_back(~0ULL);
      }
      owners[slot] = k;
      index.insert(k, slot);
      ref.emplace(k, slot);
    } else if (r >= 5 && r < 8) {
      const std::uint32_t slot = index.erase(k, key_of);
      ASSERT_EQ(slot, rit == ref.end() ? Index::kNone : rit->second);
      if (rit != ref.end()) {
        owners[slot] = ~0ULL;
        free_slots.push_back(slot);
        ref.erase(rit);
      }
    }
    ASSERT_EQ(index.size(), ref.size());
  }
  for (const auto& [k, v] : ref) ASSERT_EQ(index.find(k, key_of), v);
  std::size_t seen = 0;
  index.for_each([&](std::uint32_t slot) {
    ++seen;
    ASSERT_EQ(ref.at(owners.at(slot)), slot);
  });
  EXPECT_EQ(seen, ref.size());
}

TEST(SlotIndex, MatchesUnorderedMapWithASpreadHash) {
  run_slot_index<Spread>(3, 20'000, 200'000);
}

TEST(SlotIndex, MatchesUnorderedMapWhenEveryKeySharesEightHomesAndTags) {
  run_slot_index<Clumped>(4, 600, 40'000);
}

TEST(SlotIndex, TakesEightBytesASlotAndReserveHoldsWithoutRehashing) {
  SlotIndex<std::uint64_t, Spread> index;
  index.reserve(1000);
  const std::size_t bytes = index.bytes();
  EXPECT_EQ(bytes, 2048U * 8U);  // 1000 keys at most 3/4 full: 2048 slots
  std::vector<std::uint64_t> owners;
  for (std::uint64_t k = 0; k < 1000; ++k) {
    owners.push_back(k * 7);
    index.insert(k * 7, static_cast<std::uint32_t>(k));
  }
  EXPECT_EQ(index.bytes(), bytes);
  const auto key_of = [&](std::uint32_t slot) { return owners.at(slot); };
  EXPECT_EQ(index.find(7 * 999, key_of), 999U);
  constexpr std::uint32_t kNone = SlotIndex<std::uint64_t, Spread>::kNone;
  EXPECT_EQ(index.find(5, key_of), kNone);
}

TEST(IdTable, InternsEachIdOnceCountsItsHoldersAndReusesAForgottenHandle) {
  IdTable t;
  const Uuid a{1, 2}, b{3, 4}, c{5, 6};
  const std::uint32_t ha = t.acquire(a);
  EXPECT_EQ(t.acquire(a), ha);
  const std::uint32_t hb = t.acquire(b);
  EXPECT_NE(ha, hb);
  EXPECT_EQ(t[ha], a);
  EXPECT_EQ(t[hb], b);
  EXPECT_EQ(t.size(), 2U);
  EXPECT_EQ(t.holders(ha), 2U);
  t.release(ha);
  EXPECT_EQ(t.find(a), ha);  // one holder left
  t.release(ha);
  EXPECT_EQ(t.find(a), IdTable::kNone);
  EXPECT_EQ(t.size(), 1U);
  EXPECT_EQ(t.acquire(c), ha);  // the forgotten handle, reused
  EXPECT_EQ(t[ha], c);
  EXPECT_EQ(t.find(b), hb);
  t.release(IdTable::kNone);  // no-op
}

TEST(IdTable, AThousandHoldersOfAHundredIdsLeaveNothingBehind) {
  IdTable t;
  std::mt19937_64 rng(7);
  std::vector<std::pair<Uuid, std::uint32_t>> held;
  for (int i = 0; i < 1000; ++i) {
    const Uuid id{rng() % 100, 42};
    held.emplace_back(id, t.acquire(id));
  }
  for (const auto& [id, h] : held) ASSERT_EQ(t[h], id);
  EXPECT_LE(t.size(), 100U);
  std::shuffle(held.begin(), held.end(), rng);
  for (const auto& [id, h] : held) {
    ASSERT_EQ(t.find(id), h);
    t.release(h);
  }
  EXPECT_EQ(t.size(), 0U);
}

}  // namespace
}  // namespace lam
