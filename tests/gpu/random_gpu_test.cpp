// Philox draws and dropout on the GPU against the CPU backend: bitwise for uniform, randint,
// bernoulli and dropout; within a few ulp for normal, whose f64 log/sin/cos come from
// CUDA's libdevice on the GPU and glibc on the CPU (see tensor/cuda/random.cu).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

using testing::bytes_of;
using testing::expect_bitwise;
using testing::poisoned_gpu;
using testing::random_cpu;
using testing::to_gpu;

const std::vector<PhiloxState> kStates = {
    {0, 0}, {42, 7}, {0xDEADBEEFCAFEBABEull, 0x0123456789ABCDEFull}};
const std::vector<int64_t> kSizes = {1, 3, 5, 1000003};
const std::vector<DType> kFloat = {DType::f32, DType::bf16, DType::f16, DType::f64};
const std::vector<DType> kAll = {DType::f32, DType::bf16, DType::f16,    DType::f64,
                                 DType::i32, DType::i64,  DType::boolean};

std::string label(DType dt, int64_t n, PhiloxState s) {
  return str_cat(dtype_name(dt), " n=", n, " seed=", s.seed, " offset=", s.offset);
}

// Draws d into a CPU tensor and a poisoned GPU tensor of the same shape and compares bits.
void expect_draw_matches(DistributionParams d, DType dt, int64_t n, PhiloxState s) {
  SCOPED_TRACE(label(dt, n, s));
  Tensor cpu = Tensor::empty({n}, dt);
  kernels::random_(cpu, d, s);
  Tensor gpu = poisoned_gpu({n}, dt);
  kernels::random_(gpu, d, s);
  expect_bitwise(gpu, cpu);
}

TEST(GpuRandom, UniformIsBitwiseTheCpus) {
  SP_REQUIRE_CUDA();
  for (DType dt : kFloat)
    for (int64_t n : kSizes)
      for (PhiloxState s : kStates) {
        expect_draw_matches({Distribution::uniform, 0.0, 1.0}, dt, n, s);
        expect_draw_matches({Distribution::uniform, -3.5, 2.25}, dt, n, s);
      }
}

TEST(GpuRandom, UniformNeverReachesHighInNarrowRanges) {
  SP_REQUIRE_CUDA();
  // [1, 1.0124): draws above the midpoint under the next representable value round up to
  // it, which is >= high, and are replaced by low, as on the CPU: about 5.5% of draws in
  // bf16 (those >= 1.01171875 round to 1.015625) and 1.6% in f16 (>= 1.012207 round to
  // 1.0126953). (With [1, 1.01) no draw rounds to high in any dtype.)
  const DistributionParams narrow{Distribution::uniform, 1.0, 1.0124};
  for (DType dt : kFloat) {
    expect_draw_matches(narrow, dt, 4097, {3, 1});
    Tensor gpu = poisoned_gpu({4097}, dt);
    kernels::random_(gpu, narrow, {3, 1});
    for (double v : testing::to_cpu(gpu).to_vector<double>()) {
      ASSERT_GE(v, 1.0) << dtype_name(dt);
      ASSERT_LT(v, 1.0124) << dtype_name(dt);
    }
  }
}

TEST(GpuRandom, RandintIsBitwiseTheCpus) {
  SP_REQUIRE_CUDA();
  const std::vector<DType> dtypes = {DType::f32, DType::bf16, DType::f16,
                                     DType::f64, DType::i32,  DType::i64};
  for (DType dt : dtypes)
    for (int64_t n : kSizes)
      for (PhiloxState s : kStates) {
        expect_draw_matches({Distribution::randint, 0, 10}, dt, n, s);
        expect_draw_matches({Distribution::randint, -5, 1000}, dt, n, s);
      }
  // The full 32-bit span, in the integer types that hold it.
  for (PhiloxState s : kStates) {
    expect_draw_matches({Distribution::randint, -2147483648.0, 2147483648.0}, DType::i32, 1000003,
                        s);
    expect_draw_matches({Distribution::randint, -2147483648.0, 2147483648.0}, DType::i64, 1000003,
                        s);
    expect_draw_matches({Distribution::randint, 1e15, 1e15 + 4294967296.0}, DType::i64, 4097, s);
  }
}

TEST(GpuRandom, BernoulliIsBitwiseTheCpus) {
  SP_REQUIRE_CUDA();
  for (DType dt : kAll)
    for (int64_t n : kSizes)
      for (PhiloxState s : kStates) expect_draw_matches({Distribution::bernoulli, 0.3}, dt, n, s);
  for (DType dt : kAll) {
    expect_draw_matches({Distribution::bernoulli, 0.0}, dt, 1001, {5, 5});
    expect_draw_matches({Distribution::bernoulli, 1.0}, dt, 1001, {5, 5});
  }
}

// Element i of a contiguous float tensor's bytes as a point on a line where adjacent
// finite values of the dtype are adjacent integers (sign-magnitude -> two's complement),
// so the difference of two points is their distance in ulp.
int64_t ordered_bits(const std::vector<unsigned char>& bytes, int64_t i, int64_t width) {
  uint64_t u = 0;
  std::memcpy(&u, bytes.data() + i * width, static_cast<size_t>(width));
  const uint64_t sign = uint64_t{1} << (8 * width - 1);
  const int64_t magnitude = static_cast<int64_t>(u & (sign - 1));
  return (u & sign) ? -magnitude : magnitude;
}

TEST(GpuRandom, NormalIsWithinAFewUlpOfTheCpu) {
  SP_REQUIRE_CUDA();
  struct Case {
    double mean, std;
  };
  for (Case c : {Case{0.0, 1.0}, Case{0.5, 2.0}}) {
    for (DType dt : kFloat) {
      // f32 and narrower: the f64 values differ by an ulp or two at most, so after rounding
      // nearly every element is bitwise equal and the rest one ulp apart (<= 2 allowed).
      // f64: the libm differences show directly; mean 0 keeps them relative.
      if (dt == DType::f64 && c.mean != 0.0) continue;
      const int64_t max_ulp = dt == DType::f64 ? 16 : dt == DType::f32 ? 2 : 1;
      for (int64_t n : kSizes) {
        for (PhiloxState s : kStates) {
          SCOPED_TRACE(label(dt, n, s) + str_cat(" mean=", c.mean, " std=", c.std));
          Tensor cpu = Tensor::empty({n}, dt);
          kernels::random_(cpu, {Distribution::normal, c.mean, c.std}, s);
          Tensor gpu = poisoned_gpu({n}, dt);
          kernels::random_(gpu, {Distribution::normal, c.mean, c.std}, s);
          const std::vector<double> g = testing::to_cpu(gpu).to_vector<double>();
          const std::vector<double> r = cpu.to_vector<double>();
          const std::vector<unsigned char> gb = bytes_of(gpu), rb = bytes_of(cpu);
          const int64_t width = gpu.element_size();
          int64_t worst = 0, differing = 0, worst_at = 0;
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_TRUE(std::isfinite(g[i])) << "element " << i << " is " << g[i];
            ASSERT_TRUE(std::isfinite(r[i])) << "cpu element " << i << " is " << r[i];
            const int64_t d = std::abs(ordered_bits(gb, i, width) - ordered_bits(rb, i, width));
            if (d > 0) ++differing;
            if (d > worst) {
              worst = d;
              worst_at = i;
            }
          }
          EXPECT_LE(worst, max_ulp)
              << "element " << worst_at << ": gpu " << g[worst_at] << ", cpu " << r[worst_at];
          if (dt != DType::f64) {
            EXPECT_LE(differing, n / 1000) << differing << " elements differ";
          }
        }
      }
    }
  }
}

TEST(GpuRandom, MisalignedOutputsTakeTheScalarPath) {
  SP_REQUIRE_CUDA();
  // A view starting one element into its storage: no 16-byte stores are possible.
  for (DType dt : kFloat) {
    for (int64_t n : {int64_t{7}, int64_t{4099}}) {
      SCOPED_TRACE(label(dt, n, {9, 2}));
      Tensor cpu = Tensor::empty({n}, dt);
      kernels::random_(cpu, {Distribution::uniform, -1.0, 1.0}, {9, 2});
      Tensor base = poisoned_gpu({n + 1}, dt);
      Tensor view = base.slice(0, 1, n + 1);
      ASSERT_TRUE(view.is_contiguous());
      kernels::random_(view, {Distribution::uniform, -1.0, 1.0}, {9, 2});
      expect_bitwise(view, cpu);
      // The element before the view is untouched (still poison).
      EXPECT_TRUE(std::isnan(testing::to_cpu(base.slice(0, 0, 1)).to_vector<double>()[0]));
    }
  }
}

TEST(GpuRandom, MultiDimensionalOutputsUseRowMajorIndices) {
  SP_REQUIRE_CUDA();
  Tensor cpu = Tensor::empty({3, 5, 7}, DType::f32);
  kernels::random_(cpu, {Distribution::uniform, 0.0, 1.0}, {11, 4});
  Tensor gpu = poisoned_gpu({3, 5, 7}, DType::f32);
  kernels::random_(gpu, {Distribution::uniform, 0.0, 1.0}, {11, 4});
  expect_bitwise(gpu, cpu);
}

TEST(GpuDropout, IsBitwiseTheCpus) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (DType dt : kFloat)
    for (int64_t n : kSizes)
      for (PhiloxState s : kStates)
        for (double p : {0.1, 0.5}) {
          SCOPED_TRACE(label(dt, n, s) + str_cat(" p=", p));
          const Tensor x = random_cpu({n}, dt, ++seed, 3.0);
          expect_bitwise(kernels::dropout(to_gpu(x), p, s), kernels::dropout(x, p, s));
        }
}

TEST(GpuDropout, ZeroProbabilityKeepsEverything) {
  SP_REQUIRE_CUDA();
  for (DType dt : kFloat) {
    const Tensor x = random_cpu({1001}, dt, 7);
    const Tensor y = kernels::dropout(to_gpu(x), 0.0, {1, 2});
    EXPECT_EQ(bytes_of(y), bytes_of(x)) << dtype_name(dt);
  }
}

TEST(GpuDropout, MisalignedInputAndOddShapes) {
  SP_REQUIRE_CUDA();
  for (DType dt : kFloat) {
    SCOPED_TRACE(dtype_name(dt));
    // Input one element into its storage: the kernel must fall back to scalar loads.
    const Tensor base = random_cpu({4098}, dt, 21);
    const Tensor x = base.slice(0, 1, 4098);
    const Tensor xg = to_gpu(base).slice(0, 1, 4098);
    expect_bitwise(kernels::dropout(xg, 0.25, {8, 8}), kernels::dropout(x, 0.25, {8, 8}));
    // A 2-D shape with an odd row length.
    const Tensor m = random_cpu({37, 41}, dt, 22);
    expect_bitwise(kernels::dropout(to_gpu(m), 0.3, {8, 9}), kernels::dropout(m, 0.3, {8, 9}));
  }
}

TEST(GpuDropout, DroppedNaNsStayNaN) {
  SP_REQUIRE_CUDA();
  const Tensor x = Tensor::full({64}, std::numeric_limits<double>::quiet_NaN(), DType::f32);
  const std::vector<float> y =
      testing::to_cpu(kernels::dropout(to_gpu(x), 0.5, {1, 1})).to_vector<float>();
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

TEST(GpuDropout, MaskFractionMatchesP) {
  SP_REQUIRE_CUDA();
  const int64_t n = 1 << 20;
  const Tensor x = to_gpu(Tensor::ones({n}, DType::f32));
  const std::vector<float> y =
      testing::to_cpu(kernels::dropout(x, 0.2, {77, 0})).to_vector<float>();
  int64_t kept = 0;
  for (float v : y) {
    ASSERT_TRUE(v == 0.0f || v == 1.25f) << v;
    kept += v != 0.0f;
  }
  // 0.8 of 2^20, within 5 standard deviations (sigma = sqrt(n * 0.16) ~ 410).
  EXPECT_NEAR(static_cast<double>(kept), 0.8 * n, 2050.0);
}

TEST(GpuRandom, BackendRejectsUnsupportedDtypes) {
  SP_REQUIRE_CUDA();
  Tensor b = Tensor::empty({8}, DType::boolean, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().random(b, {Distribution::randint, 0, 2}, {0, 0}),
                   "[randint] unsupported dtype bool");
  Tensor i = Tensor::empty({8}, DType::i32, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().random(i, {Distribution::normal, 0, 1}, {0, 0}),
                   "[normal] unsupported dtype i32");
  Tensor o = Tensor::empty({8}, DType::i64, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().dropout(o, o, 0.5, {0, 0}), "[dropout] unsupported dtype i64");
}

}  // namespace
}  // namespace sp
