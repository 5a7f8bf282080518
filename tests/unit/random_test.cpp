// Philox (known-answer vectors, layout), the per-element mapping of every distribution,
// statistics, and dropout (mask, scaling, backward reuse of the mask).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;

// Element i's word by the documented layout, computed with the scalar reference.
uint32_t word(PhiloxState s, int64_t i) {
  uint32_t w[4];
  philox_block(s.seed, s.offset, static_cast<uint64_t>(i / 4), w);
  return w[i % 4];
}

void expect_block(uint32_t ctr0, uint32_t ctr1, uint32_t ctr2, uint32_t ctr3, uint32_t k0,
                  uint32_t k1, std::array<uint32_t, 4> expected) {
  uint32_t c[4] = {ctr0, ctr1, ctr2, ctr3};
  philox4x32_10(c, k0, k1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(c[i], expected[i]) << "lane " << i;
}

TEST(Random, PhiloxKnownAnswers) {
  // Random123's kat_vectors for philox4x32 with 10 rounds.
  expect_block(0, 0, 0, 0, 0, 0, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  expect_block(~0u, ~0u, ~0u, ~0u, ~0u, ~0u, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  expect_block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
               {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST(Random, PhiloxBlockLayout) {
  // counter = {block lo, block hi, offset lo, offset hi}, key = {seed lo, seed hi}.
  uint32_t w[4];
  philox_block(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull, w);
  EXPECT_EQ(w[0], 0xd16cfe09u);
  EXPECT_EQ(w[1], 0x94fdccebu);
  EXPECT_EQ(w[2], 0x5001e420u);
  EXPECT_EQ(w[3], 0x24126ea1u);
  EXPECT_FLOAT_EQ(philox_uniform(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
  EXPECT_EQ(philox_uniform(0xffu), 0.0f);
}

TEST(Random, GeneratorAdvancesOffsetAndReseeds) {
  Generator g(7);
  EXPECT_EQ(g.next().offset, 0u);
  const PhiloxState s = g.next();
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.offset, 1u);
  g.manual_seed(9);
  EXPECT_EQ(g.state().seed, 9u);
  EXPECT_EQ(g.state().offset, 0u);
  manual_seed(123);
  EXPECT_EQ(default_generator().state().seed, 123u);
  EXPECT_EQ(default_generator().state().offset, 0u);
  uniform({3});
  EXPECT_EQ(default_generator().state().offset, 1u);
}

TEST(Random, UniformFollowsTheDocumentedMapping) {
  // 1000 elements: several tiles of the vectorised generator and a partial last block;
  // seeds and offsets with both 32-bit halves set, so every counter and key word counts.
  for (const PhiloxState s : {PhiloxState{0x1234567890abcdefull, 42},
                              PhiloxState{0xfedcba9876543210ull, 0x0000000500000003ull}}) {
    for (DType dt : {DType::f32, DType::f64}) {
      Generator g;
      g.set_state(s);
      const std::vector<double> got = uniform({1001}, -2.0, 3.0, dt, &g).to_vector<double>();
      for (int64_t i = 0; i < 1001; ++i) {
        double expected = std::fma(5.0, static_cast<double>(philox_uniform(word(s, i))), -2.0);
        if (dt == DType::f32) expected = static_cast<float>(expected);
        ASSERT_EQ(got[i], expected) << "element " << i << " " << dtype_name(dt);
      }
    }
  }
}

TEST(Random, NormalFollowsTheDocumentedMapping) {
  const PhiloxState s{99, 3};
  Generator g;
  g.set_state(s);
  const std::vector<double> got = normal({515}, 1.0, 2.0, DType::f64, &g).to_vector<double>();
  for (int64_t i = 0; i < 515; ++i) {
    const int64_t lo = i & ~int64_t{1};
    const double u1 = (static_cast<double>(word(s, lo)) + 1.0) / 4294967296.0;
    const double u2 = static_cast<double>(word(s, lo + 1)) / 4294967296.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
    const double z = (i % 2 == 0) ? r * std::cos(t) : r * std::sin(t);
    ASSERT_NEAR(got[i], 1.0 + 2.0 * z, 1e-12) << "element " << i;
  }
}

TEST(Random, ElementDependsOnlyOnSeedOffsetAndIndex) {
  Generator a(5), b(5);
  const std::vector<float> small = normal({7}, 0, 1, DType::f32, &a).to_vector<float>();
  const std::vector<float> large = normal({100000}, 0, 1, DType::f32, &b).to_vector<float>();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(small[i], large[i]) << i;
  // Same state, same values; the next offset, different values.
  Generator c(5), d(5);
  const std::vector<float> u1 = uniform({64}, 0, 1, DType::f32, &c).to_vector<float>();
  const std::vector<float> u2 = uniform({64}, 0, 1, DType::f32, &d).to_vector<float>();
  const std::vector<float> u3 = uniform({64}, 0, 1, DType::f32, &d).to_vector<float>();
  EXPECT_EQ(u1, u2);
  int same = 0;
  for (int i = 0; i < 64; ++i) same += u1[i] == u3[i];
  EXPECT_LT(same, 3);
  Generator e(6);
  const std::vector<float> u4 = uniform({64}, 0, 1, DType::f32, &e).to_vector<float>();
  EXPECT_NE(u1, u4);
}

TEST(Random, UniformStatistics) {
  Generator g(11);
  const std::vector<double> v = uniform({100000}, 0, 1, DType::f32, &g).to_vector<double>();
  double mean = 0, var = 0;
  for (double x : v) {
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    mean += x;
  }
  mean /= v.size();
  for (double x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 0.5, 0.005);
  EXPECT_NEAR(var, 1.0 / 12.0, 0.002);
  // Rounding to bf16 would give high itself for the top draws: they become low instead.
  const std::vector<float> b = uniform({100000}, 0, 1, DType::bf16, &g).to_vector<float>();
  for (float x : b) ASSERT_LT(x, 1.0f);
  const std::vector<float> shifted = uniform({1000}, -3, -1, DType::f32, &g).to_vector<float>();
  for (float x : shifted) {
    ASSERT_GE(x, -3.0f);
    ASSERT_LT(x, -1.0f);
  }
}

TEST(Random, NormalStatistics) {
  Generator g(12);
  for (DType dt : {DType::f32, DType::bf16}) {
    const std::vector<double> v = normal({100000}, 1.0, 2.0, dt, &g).to_vector<double>();
    double mean = 0, var = 0;
    for (double x : v) mean += x;
    mean /= v.size();
    for (double x : v) var += (x - mean) * (x - mean);
    const double std = std::sqrt(var / v.size());
    EXPECT_NEAR(mean, 1.0, 0.03) << dtype_name(dt);
    EXPECT_NEAR(std, 2.0, 0.03) << dtype_name(dt);
    int beyond_2sigma = 0;
    for (double x : v) beyond_2sigma += std::abs(x - 1.0) > 4.0;
    EXPECT_NEAR(beyond_2sigma / 1e5, 0.0455, 0.004) << dtype_name(dt);
  }
}

TEST(Random, BernoulliRate) {
  Generator g(13);
  const Tensor b = bernoulli({100000}, 0.3, &g);
  EXPECT_EQ(b.dtype(), DType::boolean);
  const std::vector<double> v = b.to_vector<double>();
  double rate = 0;
  for (double x : v) rate += x;
  EXPECT_NEAR(rate / v.size(), 0.3, 0.007);
  for (double x : bernoulli({1000}, 0.0, &g).to_vector<double>()) ASSERT_EQ(x, 0.0);
  for (double x : bernoulli({1000}, 1.0, &g).to_vector<double>()) ASSERT_EQ(x, 1.0);
  // Into a float tensor through the kernel: 1 exactly where the documented rule says so.
  Tensor f = Tensor::empty({300}, DType::f32);
  const PhiloxState s{4, 8};
  kernels::random_(f, {Distribution::bernoulli, 0.25, 0}, s);
  const std::vector<float> fv = f.to_vector<float>();
  for (int i = 0; i < 300; ++i) ASSERT_EQ(fv[i], philox_uniform(word(s, i)) < 0.25f ? 1.f : 0.f);
}

TEST(Random, RandintCoversTheRangeEvenly) {
  Generator g(14);
  for (DType dt : {DType::i64, DType::i32}) {
    const std::vector<int64_t> v = randint({100000}, -3, 7, dt, &g).to_vector<int64_t>();
    std::vector<int> counts(10, 0);
    for (int64_t x : v) {
      ASSERT_GE(x, -3);
      ASSERT_LT(x, 7);
      ++counts[static_cast<size_t>(x + 3)];
    }
    for (int c : counts) EXPECT_NEAR(c, 10000, 500) << dtype_name(dt);
  }
  // The multiply-shift map, element by element.
  const PhiloxState s{3, 1};
  Generator h;
  h.set_state(s);
  const std::vector<int64_t> v = randint({50}, 100, 1100, DType::i64, &h).to_vector<int64_t>();
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(v[i], 100 + static_cast<int64_t>((uint64_t{word(s, i)} * 1000) >> 32));
  // The full 32-bit range.
  const std::vector<int64_t> w =
      randint({1000}, 0, int64_t{1} << 32, DType::i64, &g).to_vector<int64_t>();
  std::set<int64_t> distinct(w.begin(), w.end());
  EXPECT_GT(distinct.size(), 990u);
}

TEST(Random, NonContiguousOutputGetsRowMajorElements) {
  const PhiloxState s{21, 0};
  Tensor base = Tensor::zeros({4, 3}, DType::f64);
  Tensor t = kernels::transpose(base, 0, 1);  // [3, 4], not contiguous
  kernels::random_(t, {Distribution::uniform, 0, 1}, s);
  const std::vector<double> v = t.to_vector<double>();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(v[i], philox_uniform(word(s, i))) << i;
}

TEST(Random, RejectsBadArguments) {
  EXPECT_THROW_MSG(uniform({3}, 0, 1, DType::i64), "[uniform] unsupported dtype i64");
  EXPECT_THROW_MSG(uniform({3}, 2, 1), "[uniform] needs finite low <= high: low is 2, high is 1");
  EXPECT_THROW_MSG(normal({3}, 0, -1), "[normal] needs a finite mean and std >= 0");
  EXPECT_THROW_MSG(randint({3}, 5, 5), "[randint] needs integers low < high: low is 5, high is 5");
  EXPECT_THROW_MSG(randint({3}, 0, (int64_t{1} << 32) + 1),
                   "[randint] range high - low must be at most 2^32");
  EXPECT_THROW_MSG(randint({3}, 0, (int64_t{1} << 31) + 1, DType::i32), "does not fit i32");
  EXPECT_THROW_MSG(randint({3}, 0, 2, DType::boolean), "[randint] unsupported dtype bool");
  EXPECT_THROW_MSG(bernoulli({3}, 1.5), "[bernoulli] p must be in [0, 1]: p is 1.5");
  Tensor x = Tensor::ones({3});
  EXPECT_THROW_MSG(dropout(x, 1.0), "[dropout] p must be in [0, 1): p is 1");
  EXPECT_THROW_MSG(dropout(x, -0.1), "[dropout] p must be in [0, 1): p is -0.1");
  EXPECT_THROW_MSG(kernels::dropout(Tensor::ones({3}, DType::i32), 0.5, {}),
                   "[dropout] unsupported dtype i32");
}

TEST(Dropout, KeepRateScalingAndMask) {
  const double p = 0.2;
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    Tensor x = testing::test_tensor({100, 1000}, 3, dt, 1.0, 2.0);  // values in [1, 3)
    Generator g(17);
    const PhiloxState s = g.state();
    const Tensor y = dropout(x, p, true, &g);
    EXPECT_EQ(y.dtype(), dt);
    const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    const double scale = dt == DType::f64 ? 1.0 / (1.0 - p) : static_cast<float>(1.0 / (1.0 - p));
    const double tol = dt == DType::bf16 ? 1e-2 : 1e-7;
    int64_t kept = 0;
    for (size_t i = 0; i < xv.size(); ++i) {
      const bool keep = philox_uniform(word(s, static_cast<int64_t>(i))) >= static_cast<float>(p);
      kept += keep;
      ASSERT_NEAR(yv[i], keep ? xv[i] * scale : 0.0, tol * std::abs(xv[i] * scale)) << i;
    }
    EXPECT_NEAR(kept / 1e5, 1.0 - p, 0.005) << dtype_name(dt);
  }
}

TEST(Dropout, BackwardReusesTheForwardMask) {
  Tensor x = leaf(Tensor::ones({37, 11}, DType::f32));
  Generator g(5);
  const Tensor y = dropout(x, 0.5, true, &g);
  y.backward(Tensor::ones({37, 11}, DType::f32));
  // With x = 1 and dy = 1, dx = mask / (1 - p) = y, element for element.
  const std::vector<float> yv = y.to_vector<float>(), gv = x.grad().to_vector<float>();
  EXPECT_EQ(yv, gv);
  int zeros = 0;
  for (float v : yv) zeros += v == 0.0f;
  EXPECT_GT(zeros, 100);
  EXPECT_LT(zeros, 307);
}

TEST(Dropout, IdentityWhenNotTrainingOrPZero) {
  Tensor x = testing::test_tensor({4, 5}, 1, DType::f32);
  Generator g(1);
  EXPECT_TRUE(dropout(x, 0.5, false, &g).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true, &g).is_same(x));
  EXPECT_EQ(g.state().offset, 0u);  // no draw taken
  dropout(x, 0.5, true, &g);
  EXPECT_EQ(g.state().offset, 1u);
}

}  // namespace
}  // namespace sp
