// FlatMap against std::unordered_map: random inserts, lookups and erasures, with a well-spread
// hash and with one that puts every key in a handful of runs (erasure's backward shift under
// long probe sequences that wrap around the table's end).
#include "engine/flat_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

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

}  // namespace
}  // namespace lam
