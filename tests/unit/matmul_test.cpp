// matmul and linear: values against a naive triple loop, layouts (transposed views,
// broadcast batches, odd strides), the epilogue (bias, alpha, accumulate), 1-D operands,
// error messages, the primitive cache, and what backward computes for a frozen weight.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/ops/linalg.h"
#include "tensor/allocator.h"
#include "tensor/cpu/onednn.h"
#include "tensor/kernels.h"
#include "tensor/kernels/matmul_stats.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::test_tensor;

// The reference: out[b.., m, n] = sum_k a[b.., m, k] * b[b.., k, n] over row-major values,
// batch dims broadcast (numpy rules), in double.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const int na = as.size() - 2, nb = bs.size() - 2, n = std::max(na, nb);
  std::vector<int64_t> batch(n), da(n), db(n);
  int64_t total = 1;
  for (int i = 0; i < n; ++i) {
    da[i] = i - (n - na) >= 0 ? as[i - (n - na)] : 1;
    db[i] = i - (n - nb) >= 0 ? bs[i - (n - nb)] : 1;
    batch[i] = std::max(da[i], db[i]);
    total *= batch[i];
  }
  std::vector<double> out(total * M * N, 0.0);
  for (int64_t t = 0; t < total; ++t) {
    int64_t rest = t, oa = 0, ob = 0, sa = 1, sb = 1;
    for (int i = n - 1; i >= 0; --i) {
      const int64_t idx = rest % batch[i];
      rest /= batch[i];
      oa += (da[i] == 1 ? 0 : idx) * sa;
      ob += (db[i] == 1 ? 0 : idx) * sb;
      sa *= da[i];
      sb *= db[i];
    }
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(oa * M + m) * K + k] * bv[(ob * K + k) * N + j];
        out[(t * M + m) * N + j] = s;
      }
  }
  return out;
}

double tolerance(DType dt) {
  switch (dt) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    default: return 2e-2;  // bf16/f16 output rounding (8 or 11 mantissa bits) on sums of ~10
  }
}

// Values exactly representable in every dtype, so the reference sees what the kernel sees.
Tensor operand(const Shape& shape, uint64_t seed, DType dt) {
  return kernels::cast(kernels::cast(test_tensor(shape, seed, DType::f64), DType::bf16), dt);
}

// Whether a dtype's matmuls are widened to f32 here (bf16 where oneDNN has no bf16 kernel):
// then the operands' f32 copies are allocated, and odd layouts need no copy of their own.
bool widened(DType dt) { return dt == DType::bf16 && !cpu::onednn_has_bf16_matmul(); }

class MatmulDtype : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulDtype, ValuesMatchNaiveLoop2D) {
  const DType dt = GetParam();
  const Tensor a = operand({5, 7}, 1, dt), b = operand({7, 3}, 2, dt);
  const Tensor c = kernels::matmul(a, b);
  EXPECT_EQ(c.shape(), (Shape{5, 3}));
  EXPECT_EQ(c.dtype(), dt);
  expect_values(c, naive_matmul(a, b), tolerance(dt));
}

TEST_P(MatmulDtype, LargerThanOneBlock) {
  const DType dt = GetParam();
  const Tensor a = operand({67, 129}, 3, dt), b = operand({129, 45}, 4, dt);
  expect_values(kernels::matmul(a, b), naive_matmul(a, b), tolerance(dt) * 4);
}

TEST_P(MatmulDtype, TransposedViewsAreNotCopied) {
  const DType dt = GetParam();
  // a = A^T, b = B^T as views: [6, 4] and [4, 5] with unit strides in the first dim.
  const Tensor A = operand({4, 6}, 5, dt), B = operand({5, 4}, 6, dt);
  const Tensor a = kernels::transpose(A, 0, 1), b = kernels::transpose(B, 0, 1);
  ASSERT_FALSE(a.is_contiguous());
  const Tensor ref_a = kernels::contiguous(a), ref_b = kernels::contiguous(b);
  cpu::reset_matmul_cache_stats();
  const int64_t allocs = cpu_memory_stats().num_allocs;
  const Tensor c = kernels::matmul(a, b);
  if (!widened(dt)) {
    EXPECT_EQ(cpu_memory_stats().num_allocs - allocs, 1) << "only the output is allocated";
  }
  EXPECT_EQ(cpu::matmul_cache_stats().layout_copies, 0);
  expect_values(c, naive_matmul(ref_a, ref_b), tolerance(dt));
}

TEST_P(MatmulDtype, BatchedAndBroadcastBatchDims) {
  const DType dt = GetParam();
  const double tol = tolerance(dt);
  {  // b shared by every batch (folded into one product on the oneDNN path)
    const Tensor a = operand({2, 3, 4, 5}, 7, dt), b = operand({5, 6}, 8, dt);
    const Tensor c = kernels::matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
    expect_values(c, naive_matmul(a, b), tol);
  }
  {  // b shared, but a's batches are not one run of rows: no folding
    const Tensor base = operand({2, 6, 5}, 33, dt), b = operand({5, 6}, 34, dt);
    const Tensor a = kernels::slice(base, 1, 1, 5);  // [2, 4, 5], batch stride 30
    expect_values(kernels::matmul(a, b), naive_matmul(kernels::contiguous(a), b), tol);
    const Tensor at = kernels::transpose(kernels::contiguous(kernels::transpose(base, 1, 2)), 1, 2);
    expect_values(kernels::matmul(at, b), naive_matmul(base, b), tol);  // column-major a
  }
  {  // size-1 batch dims on both sides
    const Tensor a = operand({2, 1, 4, 5}, 9, dt), b = operand({1, 3, 5, 2}, 10, dt);
    const Tensor c = kernels::matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{2, 3, 4, 2}));
    expect_values(c, naive_matmul(a, b), tol);
  }
  {  // a broadcast over b's batch
    const Tensor a = operand({4, 5}, 11, dt), b = operand({3, 5, 2}, 12, dt);
    expect_values(kernels::matmul(a, b), naive_matmul(a, b), tol);
  }
  {  // expanded (stride 0) batch dims, in one operand and in both
    const Tensor a1 = operand({1, 4, 5}, 13, dt), b1 = operand({1, 5, 2}, 14, dt);
    const Tensor a = kernels::expand(a1, {3, 4, 5}), b = kernels::expand(b1, {3, 5, 2});
    const Tensor b3 = operand({3, 5, 2}, 15, dt);
    cpu::reset_matmul_cache_stats();
    expect_values(kernels::matmul(a, b3), naive_matmul(kernels::contiguous(a), b3), tol);
    EXPECT_EQ(cpu::matmul_cache_stats().layout_copies, 0) << "a broadcast is not materialised";
    const Tensor c = kernels::matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{3, 4, 2}));
    expect_values(c, naive_matmul(kernels::contiguous(a), kernels::contiguous(b)), tol);
  }
}

TEST_P(MatmulDtype, OddLayoutsAreCopiedAndCorrect) {
  const DType dt = GetParam();
  const double tol = tolerance(dt);
  cpu::reset_matmul_cache_stats();
  {  // neither of the last two strides is 1
    const Tensor big = operand({8, 10}, 16, dt);
    const Tensor a = kernels::slice(kernels::slice(big, 0, 0, 8, 2), 1, 0, 10, 2);  // [4, 5]
    const Tensor b = operand({5, 3}, 17, dt);
    expect_values(kernels::matmul(a, b), naive_matmul(kernels::contiguous(a), b), tol);
  }
  {  // the batch dim innermost in memory: [B, M, K] viewed from [M, K, B]
    const Tensor base = operand({4, 5, 3}, 18, dt);
    const Tensor a = kernels::permute(base, {2, 0, 1});
    const Tensor b = operand({3, 5, 2}, 19, dt);
    expect_values(kernels::matmul(a, b), naive_matmul(kernels::contiguous(a), b), tol);
  }
  {  // expanded inside the matrix: a row repeated
    const Tensor row = operand({1, 5}, 20, dt);
    const Tensor a = kernels::expand(row, {4, 5});
    const Tensor b = operand({5, 3}, 21, dt);
    expect_values(kernels::matmul(a, b), naive_matmul(kernels::contiguous(a), b), tol);
  }
  // oneDNN takes these only on its reference kernel, or not at all: each was copied once.
  if ((dt == DType::f32 || dt == DType::bf16) && !widened(dt)) {
    EXPECT_EQ(cpu::matmul_cache_stats().layout_copies, 3);
  }
}

TEST_P(MatmulDtype, BiasAlphaAccumulate) {
  const DType dt = GetParam();
  const double tol = tolerance(dt);
  const Tensor a = operand({3, 4}, 22, dt), b = operand({4, 5}, 23, dt);
  const Tensor bias = operand({5}, 24, dt);
  const std::vector<double> ab = naive_matmul(a, b), bv = bias.to_vector<double>();
  const auto expected = [&](double alpha, const std::vector<double>& base, bool with_bias) {
    std::vector<double> e(ab.size());
    for (size_t i = 0; i < e.size(); ++i)
      e[i] = alpha * ab[i] + (with_bias ? bv[i % 5] : 0.0) + (base.empty() ? 0.0 : base[i]);
    return e;
  };
  MatmulParams p;
  p.bias = &bias;
  expect_values(kernels::matmul(a, b, p), expected(1.0, {}, true), tol);
  p.alpha = 0.5f;  // bias is not scaled
  expect_values(kernels::matmul(a, b, p), expected(0.5, {}, true), tol);
  p.bias = nullptr;
  p.alpha = -2.0f;
  expect_values(kernels::matmul(a, b, p), expected(-2.0, {}, false), tol);

  // matmul_into adds: out = out + alpha * a @ b (+ bias)
  const Tensor init = operand({3, 5}, 25, dt);
  const std::vector<double> iv = init.to_vector<double>();
  for (int with_bias = 0; with_bias < 2; ++with_bias)
    for (float alpha : {1.0f, 0.25f}) {
      Tensor out = kernels::clone(init);
      MatmulParams q;
      q.alpha = alpha;
      q.bias = with_bias ? &bias : nullptr;
      kernels::matmul_into(out, a, b, q);
      expect_values(out, expected(alpha, iv, with_bias), tol);
    }
  {  // a non-contiguous out
    Tensor out = kernels::transpose(kernels::contiguous(kernels::transpose(init, 0, 1)), 0, 1);
    ASSERT_FALSE(out.is_contiguous());
    kernels::matmul_into(out, a, b, {});
    expect_values(out, expected(1.0, iv, false), tol);
  }
  if (dt == DType::bf16) {  // an f32 bias with bf16 operands
    const Tensor bias32 = kernels::cast(bias, DType::f32);
    MatmulParams q;
    q.bias = &bias32;
    expect_values(kernels::matmul(a, b, q), expected(1.0, {}, true), tol);
  }
}

TEST_P(MatmulDtype, OneDimensionalOperands) {
  const DType dt = GetParam();
  const double tol = tolerance(dt);
  const Tensor v = operand({4}, 27, dt), w = operand({4}, 28, dt);
  const Tensor m = operand({4, 3}, 29, dt), mt = operand({5, 4}, 30, dt);
  const Tensor batched = operand({2, 4, 3}, 31, dt), batched_t = operand({2, 5, 4}, 32, dt);
  const auto row = [](const Tensor& x) { return kernels::view(x, {1, x.numel()}); };
  const auto col = [](const Tensor& x) { return kernels::view(x, {x.numel(), 1}); };

  Tensor c = kernels::matmul(v, m);  // [4] @ [4, 3] -> [3]
  EXPECT_EQ(c.shape(), (Shape{3}));
  expect_values(c, naive_matmul(row(v), m), tol);
  c = kernels::matmul(mt, v);  // [5, 4] @ [4] -> [5]
  EXPECT_EQ(c.shape(), (Shape{5}));
  expect_values(c, naive_matmul(mt, col(v)), tol);
  c = kernels::matmul(v, w);  // [4] @ [4] -> []
  EXPECT_EQ(c.shape(), Shape{});
  expect_values(c, naive_matmul(row(v), col(w)), tol);
  c = kernels::matmul(v, batched);  // [4] @ [2, 4, 3] -> [2, 3]
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  expect_values(c, naive_matmul(row(v), batched), tol);
  c = kernels::matmul(batched_t, v);  // [2, 5, 4] @ [4] -> [2, 5]
  EXPECT_EQ(c.shape(), (Shape{2, 5}));
  expect_values(c, naive_matmul(batched_t, col(v)), tol);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MatmulDtype,
                         ::testing::Values(DType::f32, DType::bf16, DType::f64, DType::f16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Forces the widened bf16 path for one scope, on any machine.
class WidenedBf16Matmul {
 public:
  WidenedBf16Matmul() { cpu::force_widened_bf16_matmul(true); }
  ~WidenedBf16Matmul() { cpu::force_widened_bf16_matmul(false); }
};

TEST(Matmul, Bf16WidenedToF32EqualsTheBf16Kernels) {
  const DType dt = DType::bf16;
  const Tensor a = operand({67, 129}, 60, dt), b = operand({129, 45}, 61, dt);
  const Tensor bias = operand({45}, 62, dt), init = operand({67, 45}, 63, dt);
  const Tensor bias32 = kernels::cast(bias, DType::f32);
  const Tensor at = kernels::transpose(operand({129, 67}, 64, dt), 0, 1);  // a column-major a
  const Tensor batched = operand({2, 3, 4, 129}, 65, dt);
  const Tensor expanded = kernels::expand(operand({1, 4, 129}, 66, dt), {3, 4, 129});
  struct Case {
    const char* name;
    std::function<Tensor()> run;
    std::vector<double> expected;
  };
  std::vector<double> ab = naive_matmul(a, b), plus_bias = ab, scaled_into = ab;
  for (size_t i = 0; i < ab.size(); ++i) {
    plus_bias[i] += bias.to_vector<double>()[i % 45];
    scaled_into[i] = 0.5 * ab[i] + init.to_vector<double>()[i];
  }
  const std::vector<Case> cases = {
      {"plain", [&] { return kernels::matmul(a, b); }, ab},
      {"bias",
       [&] {
         MatmulParams p;
         p.bias = &bias;
         return kernels::matmul(a, b, p);
       },
       plus_bias},
      {"f32 bias",
       [&] {
         MatmulParams p;
         p.bias = &bias32;
         return kernels::matmul(a, b, p);
       },
       plus_bias},
      {"alpha, accumulate",
       [&] {
         Tensor out = kernels::clone(init);
         MatmulParams p;
         p.alpha = 0.5f;
         kernels::matmul_into(out, a, b, p);
         return out;
       },
       scaled_into},
      {"transposed a", [&] { return kernels::matmul(at, b); },
       naive_matmul(kernels::contiguous(at), b)},
      {"batched", [&] { return kernels::matmul(batched, b); }, naive_matmul(batched, b)},
      {"expanded batch", [&] { return kernels::matmul(expanded, b); },
       naive_matmul(kernels::contiguous(expanded), b)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor got;
    {
      WidenedBf16Matmul widen;
      const int64_t allocs = cpu_memory_stats().num_allocs;
      got = c.run();
      EXPECT_GT(cpu_memory_stats().num_allocs - allocs, 1) << "the f32 copies";
    }
    EXPECT_EQ(got.dtype(), dt);
    expect_values(got, c.expected, tolerance(dt) * 4);
    if (!cpu::onednn_has_bf16_matmul()) continue;
    // oneDNN's bf16 kernels also sum in f32 and round once: at most the last bit differs,
    // where the two orders of summation round to either side.
    const std::vector<double> native = c.run().to_vector<double>(),
                              widened_v = got.to_vector<double>();
    for (size_t i = 0; i < native.size(); ++i)
      ASSERT_LE(std::abs(native[i] - widened_v[i]), std::ldexp(std::abs(native[i]), -7))
          << "element " << i << ": bf16 kernel " << native[i] << ", widened " << widened_v[i];
  }
}

TEST(Matmul, HandComputedValues) {
  const Tensor a = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32);
  const Tensor b = Tensor::from_vector<double>({7, 8, 9, 10, 11, 12}, {3, 2}, DType::f32);
  expect_values(kernels::matmul(a, b), {58, 64, 139, 154});
}

TEST(Matmul, EmptyDims) {
  const Tensor a = Tensor::ones({0, 3}), b = Tensor::ones({3, 2});
  EXPECT_EQ(kernels::matmul(a, b).shape(), (Shape{0, 2}));
  // K = 0: a sum over nothing is 0, plus the bias.
  const Tensor e = Tensor::ones({2, 0}), f = Tensor::ones({0, 3});
  expect_values(kernels::matmul(e, f), {0, 0, 0, 0, 0, 0});
  const Tensor bias = Tensor::from_vector<double>({1, 2, 3}, {3}, DType::f32);
  MatmulParams p;
  p.bias = &bias;
  expect_values(kernels::matmul(e, f, p), {1, 2, 3, 1, 2, 3});
  Tensor out = Tensor::full({2, 3}, 5.0);
  kernels::matmul_into(out, e, f, {});
  expect_values(out, {5, 5, 5, 5, 5, 5});
}

TEST(Matmul, ErrorMessages) {
  const Tensor a = Tensor::zeros({4, 8}), b = Tensor::zeros({7, 3});
  EXPECT_THROW_MSG(kernels::matmul(a, b), "[matmul] inner dims differ: a is [4, 8], b is [7, 3]");
  EXPECT_THROW_MSG(kernels::matmul(a, Tensor::zeros({8, 3}, DType::bf16)),
                   "[matmul] dtype mismatch: a is f32, b is bf16");
  EXPECT_THROW_MSG(kernels::matmul(Tensor::zeros({2, 4, 8}), Tensor::zeros({3, 8, 5})),
                   "[matmul] batch dims do not broadcast: a is [2, 4, 8], b is [3, 8, 5]");
  EXPECT_THROW_MSG(kernels::matmul(Tensor::scalar(1.0), Tensor::zeros({3})),
                   "[matmul] operands need at least 1 dim: a is [], b is [3]");
  EXPECT_THROW_MSG(
      kernels::matmul(Tensor::zeros({2, 2}, DType::i64), Tensor::zeros({2, 2}, DType::i64)),
      "[matmul] unsupported dtype i64");
  EXPECT_THROW_MSG(kernels::matmul(Tensor::zeros({3}), Tensor::zeros({4})),
                   "[matmul] inner dims differ: a is [3], b is [4]");
  const Tensor bias = Tensor::zeros({4});
  MatmulParams p;
  p.bias = &bias;
  EXPECT_THROW_MSG(kernels::matmul(a, Tensor::zeros({8, 3}), p),
                   "[matmul] bias must be [N] = [3], got [4]");
  Tensor out = Tensor::zeros({4, 4});
  EXPECT_THROW_MSG(kernels::matmul_into(out, a, Tensor::zeros({8, 3}), {}),
                   "[matmul] out is [4, 4], expected [4, 3]");
  MatmulParams acc;
  acc.accumulate = true;
  EXPECT_THROW_MSG(kernels::matmul(a, Tensor::zeros({8, 3}), acc), "use matmul_into");
  EXPECT_THROW_MSG(linear(Tensor::zeros({2, 5}), Tensor::zeros({3, 4})),
                   "[linear] input features differ: x is [2, 5], weight is [3, 4]");
  EXPECT_THROW_MSG(linear(Tensor::zeros({2, 4}), Tensor::zeros({3, 4}), Tensor::zeros({2})),
                   "[linear] bias must be [3], got [2]");
  if (cuda_available()) {
    EXPECT_THROW_MSG(kernels::matmul(a, Tensor::zeros({8, 3}, DType::f32, Device::cuda())),
                     "[matmul] device mismatch: a is on cpu, b is on cuda:0");
  }
}

TEST(Matmul, PrimitiveCacheHit) {
  cpu::clear_matmul_cache();
  cpu::reset_matmul_cache_stats();
  const Tensor a = operand({6, 9}, 40, DType::f32), b = operand({9, 7}, 41, DType::f32);
  const Tensor c1 = kernels::matmul(a, b);
  EXPECT_EQ(cpu::matmul_cache_stats().misses, 1);
  EXPECT_EQ(cpu::matmul_cache_stats().hits, 0);
  // Same layout, other data: nothing is built.
  const Tensor a2 = operand({6, 9}, 42, DType::f32), b2 = operand({9, 7}, 43, DType::f32);
  const Tensor c2 = kernels::matmul(a2, b2);
  EXPECT_EQ(cpu::matmul_cache_stats().misses, 1);
  EXPECT_EQ(cpu::matmul_cache_stats().hits, 1);
  EXPECT_EQ(cpu::matmul_cache_stats().size, 1);
  expect_values(c2, naive_matmul(a2, b2), 1e-5);
  // A new epilogue is a new primitive.
  MatmulParams p;
  p.alpha = 3.0f;
  kernels::matmul(a, b, p);
  EXPECT_EQ(cpu::matmul_cache_stats().misses, 2);
  // Eviction keeps the most recent.
  cpu::set_matmul_cache_capacity(1);
  EXPECT_EQ(cpu::matmul_cache_stats().size, 1);
  kernels::matmul(a, b, p);
  EXPECT_EQ(cpu::matmul_cache_stats().hits, 2);
  cpu::set_matmul_cache_capacity(512);
}

TEST(Matmul, StatsCountCallsAndFlops) {
  kernels::reset_matmul_stats();
  kernels::matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 5}));
  const kernels::MatmulStats s = kernels::matmul_stats();
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(s.flops, 2 * 2 * 3 * 4 * 5);
}

TEST(Linear, ValuesWithBias3D) {
  const Tensor x = operand({2, 3, 4}, 50, DType::f32);
  const Tensor w = operand({5, 4}, 51, DType::f32), bias = operand({5}, 52, DType::f32);
  const Tensor y = linear(x, w, bias);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 5}));
  std::vector<double> e =
      naive_matmul(kernels::view(x, {6, 4}), kernels::contiguous(kernels::transpose(w, 0, 1)));
  const std::vector<double> bv = bias.to_vector<double>();
  for (size_t i = 0; i < e.size(); ++i) e[i] += bv[i % 5];
  expect_values(y, e, 1e-5);
}

TEST(Linear, FrozenWeightCostsNoWeightGradientMatmul) {
  Tensor x = testing::leaf(operand({2, 3, 4}, 60, DType::f32));
  const Tensor w = operand({5, 4}, 61, DType::f32);  // frozen
  const Tensor y = linear(x, w);
  kernels::reset_matmul_stats();
  const Tensor g = operand({2, 3, 5}, 62, DType::f32);
  y.backward(g);
  EXPECT_EQ(kernels::matmul_stats().calls, 1) << "only dx = dy @ W";
  EXPECT_FALSE(w.grad().defined());
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().shape(), x.shape());
  expect_values(x.grad(), naive_matmul(kernels::view(g, {6, 5}), w), 1e-5);
}

TEST(Linear, TrainableWeightGradientIsOneMatmul) {
  const Tensor x = operand({2, 3, 4}, 63, DType::f32);  // an input that needs no gradient
  Tensor w = testing::leaf(operand({5, 4}, 64, DType::f32));
  Tensor bias = testing::leaf(operand({5}, 65, DType::f32));
  const Tensor y = linear(x, w, bias);
  kernels::reset_matmul_stats();
  const Tensor g = operand({2, 3, 5}, 66, DType::f32);
  y.backward(g);
  EXPECT_EQ(kernels::matmul_stats().calls, 1) << "dW = dY^T @ X over all 6 rows";
  const Tensor g2 = kernels::view(g, {6, 5});
  expect_values(
      w.grad(),
      naive_matmul(kernels::contiguous(kernels::transpose(g2, 0, 1)), kernels::view(x, {6, 4})),
      1e-5);
  const std::vector<double> gv = g2.to_vector<double>();
  std::vector<double> db(5, 0.0);
  for (size_t i = 0; i < gv.size(); ++i) db[i % 5] += gv[i];
  expect_values(bias.grad(), db, 1e-5);
}

TEST(MatmulAutograd, BroadcastWeightGradientSummedOverBatch) {
  Tensor a = testing::leaf(operand({2, 3, 4}, 70, DType::f64));
  Tensor b = testing::leaf(operand({4, 2}, 71, DType::f64));
  const Tensor c = matmul(a, b);
  const Tensor g = operand({2, 3, 2}, 72, DType::f64);
  c.backward(g);
  // db = sum over batches of a_i^T g_i = (a as [6, 4])^T @ (g as [6, 2])
  expect_values(
      b.grad(),
      naive_matmul(kernels::contiguous(kernels::transpose(kernels::view(a, {6, 4}), 0, 1)),
                   kernels::view(g, {6, 2})),
      1e-12);
  expect_values(a.grad(), naive_matmul(g, kernels::contiguous(kernels::transpose(b, 0, 1))), 1e-12);
}

// --- epilogues: gelu_tanh (aux = pre-activation) and dgelu_tanh ---------------------------

// The fused epilogue against the unfused ops it stands for, which run the same code: equal.
TEST_P(MatmulDtype, GeluEpilogueEqualsMatmulThenGelu) {
  const DType dt = GetParam();
  const Tensor a = operand({2, 7, 9}, 80, dt), b = operand({9, 6}, 81, dt);
  const Tensor bias = operand({6}, 82, dt);
  MatmulParams plain;
  plain.bias = &bias;
  plain.alpha = 0.5f;
  const Tensor pre = kernels::matmul(a, b, plain);
  Tensor aux;
  MatmulParams p = plain;
  p.epilogue = Epilogue::gelu_tanh;
  p.aux = &aux;
  const Tensor out = kernels::matmul(a, b, p);
  ASSERT_TRUE(aux.defined()) << "kernels::matmul allocates aux for gelu_tanh";
  EXPECT_EQ(aux.shape(), (Shape{2, 7, 6}));
  expect_values(aux, pre.to_vector<double>(), 0.0);
  expect_values(out, kernels::unary(UnaryOp::gelu_tanh, pre).to_vector<double>(), 0.0);
}

TEST_P(MatmulDtype, GeluEpilogueAccumulatesBeforeTheActivation) {
  const DType dt = GetParam();
  const Tensor a = kernels::transpose(operand({9, 5}, 83, dt), 0, 1), b = operand({9, 4}, 84, dt);
  const Tensor init = operand({5, 4}, 85, dt);
  Tensor pre = kernels::clone(init);
  kernels::matmul_into(pre, a, b, {});
  Tensor out = kernels::clone(init), aux = Tensor::empty({5, 4}, dt);
  MatmulParams p;
  p.epilogue = Epilogue::gelu_tanh;
  p.aux = &aux;
  kernels::matmul_into(out, a, b, p);
  expect_values(aux, pre.to_vector<double>(), 0.0);
  expect_values(out, kernels::unary(UnaryOp::gelu_tanh, pre).to_vector<double>(), 0.0);
  // A strided out takes the dense-copy path and computes the same.
  Tensor base = kernels::transpose(kernels::clone(kernels::transpose(init, 0, 1)), 0, 1);
  ASSERT_FALSE(base.is_contiguous());
  Tensor aux2 = Tensor::empty({5, 4}, dt);
  p.aux = &aux2;
  kernels::matmul_into(base, a, b, p);
  expect_values(base, out.to_vector<double>(), 0.0);
}

TEST_P(MatmulDtype, DgeluEpilogueEqualsMatmulThenActivationBackward) {
  const DType dt = GetParam();
  const Tensor a = operand({6, 8}, 86, dt), b = kernels::transpose(operand({5, 8}, 87, dt), 0, 1);
  Tensor aux = kernels::cast(test_tensor({6, 5}, 88, DType::f64, 3.0), dt);
  const Tensor bias = operand({5}, 89, dt);
  MatmulParams p;
  p.epilogue = Epilogue::dgelu_tanh;
  p.aux = &aux;
  const Tensor out = kernels::matmul(a, b, p);
  const Tensor ref =
      kernels::activation_backward(ActivationGrad::gelu_tanh, kernels::matmul(a, b), aux);
  expect_values(out, ref.to_vector<double>(), 0.0);
  // With bias and accumulate: (a @ b + bias + out) * gelu'(aux).
  const Tensor init = operand({6, 5}, 90, dt);
  MatmulParams plain;
  plain.bias = &bias;
  Tensor pre = kernels::clone(init);
  kernels::matmul_into(pre, a, b, plain);
  Tensor acc = kernels::clone(init);
  p.bias = &bias;
  kernels::matmul_into(acc, a, b, p);
  expect_values(
      acc, kernels::activation_backward(ActivationGrad::gelu_tanh, pre, aux).to_vector<double>(),
      0.0);
}

// In f64 against the formula itself: T5's gelu_new, 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))),
// and its derivative.
TEST(MatmulEpilogue, MatchesTheGeluNewFormulaInF64) {
  const Tensor a = test_tensor({7, 11}, 91, DType::f64, 2.0), b = test_tensor({11, 3}, 92);
  const std::vector<double> x = naive_matmul(a, b);
  const double k = 0.7978845608028654, c = 0.044715;
  std::vector<double> gelu(x.size()), dgelu(x.size());
  Tensor aux = test_tensor({7, 3}, 93, DType::f64, 3.0);
  const std::vector<double> h = aux.to_vector<double>();
  for (size_t i = 0; i < x.size(); ++i) {
    gelu[i] = 0.5 * x[i] * (1 + std::tanh(k * (x[i] + c * x[i] * x[i] * x[i])));
    const double t = std::tanh(k * (h[i] + c * h[i] * h[i] * h[i]));
    const double d = 0.5 * (1 + t) + 0.5 * h[i] * (1 - t * t) * k * (1 + 3 * c * h[i] * h[i]);
    dgelu[i] = x[i] * d;
  }
  Tensor gelu_aux;
  MatmulParams p;
  p.epilogue = Epilogue::gelu_tanh;
  p.aux = &gelu_aux;
  expect_values(kernels::matmul(a, b, p), gelu, 1e-12);
  expect_values(gelu_aux, x, 1e-12);
  p.epilogue = Epilogue::dgelu_tanh;
  p.aux = &aux;
  expect_values(kernels::matmul(a, b, p), dgelu, 1e-12);
}

TEST(MatmulEpilogue, AuxIsValidated) {
  const Tensor a = Tensor::zeros({4, 8}), b = Tensor::zeros({8, 3});
  Tensor wrong_shape = Tensor::zeros({4, 4});
  Tensor wrong_dtype = Tensor::zeros({4, 3}, DType::bf16);
  Tensor strided = kernels::transpose(Tensor::zeros({3, 4}), 0, 1);
  Tensor undefined;
  MatmulParams p;
  p.aux = &wrong_shape;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] aux is given but the epilogue is none");
  p.epilogue = Epilogue::gelu_tanh;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] aux is [4, 4], expected [4, 3]");
  p.aux = &wrong_dtype;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] dtype mismatch: aux is bf16, a is f32");
  p.aux = &strided;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] aux must be contiguous");
  p.aux = nullptr;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] epilogue gelu_tanh needs aux");
  p.epilogue = Epilogue::dgelu_tanh;
  p.aux = &undefined;
  EXPECT_THROW_MSG(kernels::matmul(a, b, p), "[matmul] epilogue dgelu_tanh reads aux");
}

TEST(MatmulEpilogue, Fp32MatmulSettingDefaultsToStrict) {
  EXPECT_EQ(fp32_matmul(), Fp32Matmul::strict);
  set_fp32_matmul(Fp32Matmul::tf32);
  EXPECT_EQ(fp32_matmul(), Fp32Matmul::tf32);
  set_fp32_matmul(Fp32Matmul::strict);
  EXPECT_EQ(fp32_matmul(), Fp32Matmul::strict);
}

}  // namespace
}  // namespace sp
