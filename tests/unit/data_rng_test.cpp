// DataRng: the seeded, resumable generator of the data pipeline.
#include "experiments/objectives/data_rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include "tensor/random.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(DataRng, words_follow_the_philox_layout) {
  DataRng rng(123, 45);
  uint32_t block0[4], block1[4];
  philox_block(123, 45, 0, block0);
  philox_block(123, 45, 1, block1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rng.next_u32(), block0[i]) << i;
  EXPECT_EQ(rng.next_u32(), block1[0]);
  EXPECT_EQ(rng.next_u64(), uint64_t{block1[1]} | (uint64_t{block1[2]} << 32));
  EXPECT_EQ(rng.state(), (DataRngState{123, 45, 7}));
}

TEST(DataRng, deterministic_and_resumable) {
  DataRng a(9), b(9), other_offset(9, 1), other_seed(10);
  std::vector<uint32_t> wa, wb, wo, ws;
  for (int i = 0; i < 10; ++i) {
    wa.push_back(a.next_u32());
    wb.push_back(b.next_u32());
    wo.push_back(other_offset.next_u32());
    ws.push_back(other_seed.next_u32());
  }
  EXPECT_EQ(wa, wb);
  EXPECT_NE(wa, wo);
  EXPECT_NE(wa, ws);
  // Save mid-block, continue in a fresh generator and in the original: same draws.
  DataRng c(77);
  for (int i = 0; i < 7; ++i) c.next_u32();
  const DataRngState saved = c.state();
  DataRng d(0);
  d.next_u32();  // its cached block must not leak into the restored state
  d.set_state(saved);
  DataRng e(saved);
  for (int i = 0; i < 20; ++i) {
    const uint64_t x = c.uniform_int(1000);
    EXPECT_EQ(d.uniform_int(1000), x);
    EXPECT_EQ(e.uniform_int(1000), x);
  }
}

TEST(DataRng, uniform_int_is_in_range_and_unbiased) {
  DataRng rng(1);
  std::vector<int> counts(6, 0);
  constexpr int kDraws = 60000;
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t x = rng.uniform_int(6);
    ASSERT_LT(x, 6u);
    ++counts[x];
  }
  double chi2 = 0;
  for (const int c : counts) chi2 += (c - 10000.0) * (c - 10000.0) / 10000.0;
  EXPECT_LT(chi2, 20.5);  // 5 degrees of freedom, 0.1% tail
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rng.uniform_int(1), 0u);
  // Above 2^32: 64-bit draws, still in range, and both halves of the range are hit.
  const uint64_t big = (uint64_t{1} << 40) + 3;
  int high = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = rng.uniform_int(big);
    ASSERT_LT(x, big);
    high += x >= big / 2;
  }
  EXPECT_NEAR(high, 500, 80);
  EXPECT_LT(rng.uniform_int(uint64_t{1} << 32), uint64_t{1} << 32);
  EXPECT_THROW_MSG(rng.uniform_int(0), "[DataRng] uniform_int needs n >= 1, got 0");
}

TEST(DataRng, uniform_range_includes_both_ends) {
  DataRng rng(2);
  std::map<int64_t, int> seen;
  for (int i = 0; i < 7000; ++i) ++seen[rng.uniform_range(-3, 3)];
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen.begin()->first, -3);
  EXPECT_EQ(seen.rbegin()->first, 3);
  EXPECT_EQ(rng.uniform_range(5, 5), 5);
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < 10; ++i) {
    const int64_t x = rng.uniform_range(lo, hi);
    EXPECT_TRUE(x >= lo && x <= hi);
  }
  EXPECT_THROW_MSG(rng.uniform_range(2, 1), "[DataRng] uniform_range needs lo <= hi, got [2, 1]");
}

TEST(DataRng, uniform_double_in_unit_interval) {
  DataRng rng(3);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    const double x = rng.uniform_double();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    sum += x;
  }
  EXPECT_NEAR(sum / 20000, 0.5, 0.01);
}

TEST(DataRng, shuffle_gives_every_permutation_equally_often) {
  DataRng rng(8);
  std::map<std::vector<int>, int> seen;
  constexpr int kDraws = 48000;
  for (int i = 0; i < kDraws; ++i) {
    std::vector<int> v = {0, 1, 2, 3};
    rng.shuffle(v);
    ++seen[v];
  }
  ASSERT_EQ(seen.size(), 24u);
  double chi2 = 0;
  for (const auto& [perm, count] : seen) chi2 += (count - 2000.0) * (count - 2000.0) / 2000.0;
  EXPECT_LT(chi2, 49.7);  // 23 degrees of freedom, 0.1% tail
  std::vector<int> big(1000);
  std::iota(big.begin(), big.end(), 0);
  std::vector<int> shuffled = big;
  rng.shuffle(shuffled);
  EXPECT_NE(shuffled, big);
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, big);
  std::vector<int> empty, one = {5};
  rng.shuffle(empty);
  rng.shuffle(one);
  EXPECT_EQ(one, (std::vector<int>{5}));
}

}  // namespace
}  // namespace sp
