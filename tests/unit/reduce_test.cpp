// Reductions: values against hand-computed and naive-loop references, dtypes, layouts,
// determinism across thread counts, sum_to, and error messages.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::lcg_values;
using testing::non_contiguous;
using testing::test_tensor;

// Reference: reduces v (row-major, shape) over the dims in mask, in double, one output
// element at a time; the result is in keepdim layout.
std::vector<double> naive(const std::vector<double>& v, const Shape& shape, uint32_t mask,
                          ReduceOp op) {
  Shape out_shape = shape;
  for (int d = 0; d < shape.size(); ++d)
    if ((mask >> d) & 1u) out_shape[d] = 1;
  const bool is_max = op == ReduceOp::max, is_min = op == ReduceOp::min;
  std::vector<double> out(out_shape.numel(), is_max   ? -INFINITY
                                             : is_min ? INFINITY
                                                      : 0.0);
  std::vector<int64_t> count(out.size(), 0);
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t o = 0;
    for (int d = 0; d < shape.size(); ++d) o = o * out_shape[d] + (out_shape[d] == 1 ? 0 : idx[d]);
    if (is_max) out[o] = std::max(out[o], v[i]);
    else if (is_min) out[o] = std::min(out[o], v[i]);
    else out[o] += v[i];
    ++count[o];
    for (int d = shape.size() - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  if (op == ReduceOp::mean)
    for (size_t o = 0; o < out.size(); ++o) out[o] /= count[o];
  return out;
}

std::vector<int64_t> dims_of(uint32_t mask, int rank) {
  std::vector<int64_t> dims;
  for (int d = 0; d < rank; ++d)
    if ((mask >> d) & 1u) dims.push_back(d);
  return dims;
}

TEST(Reduce, SumHandComputed) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_values(sum(x), {21});
  EXPECT_EQ(sum(x).shape(), Shape{});
  expect_values(sum(x, {0}), {5, 7, 9});
  expect_values(sum(x, {-1}), {6, 15});
  const Tensor k = sum(x, {1}, true);
  EXPECT_EQ(k.shape(), (Shape{2, 1}));
  expect_values(k, {6, 15});
  expect_values(mean(x, {0}), {2.5, 3.5, 4.5});
  expect_values(mean(x), {3.5});
  expect_values(max(x, 1), {3, 6});
  expect_values(min(x, 0), {1, 2, 3});
  expect_values(max(x), {6});
}

TEST(Reduce, Dtypes) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const Tensor x = Tensor::from_vector<double>({1, -2, 3, 4, 5, -6}, {3, 2}, dt);
    const Tensor s = sum(x, {0});
    EXPECT_EQ(s.dtype(), dt);
    expect_values(s, {9, -4});
    expect_values(mean(x, {1}), {-0.5, 3.5, -0.5});
    expect_values(max(x, 0), {5, 4});
    expect_values(min(x, 1), {-2, 3, -6});
  }
}

TEST(Reduce, SixteenBitAccumulatesInF32) {
  // 4096 ones: a bf16 accumulator would stop at 256 (256 + 1 rounds back to 256).
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor x = Tensor::ones({4096}, dt);
    EXPECT_EQ(sum(x).item<double>(), 4096.0) << dtype_name(dt);
    const Tensor c = Tensor::ones({4096, 3}, dt);
    expect_values(sum(c, {0}), {4096, 4096, 4096}, 0);
  }
}

TEST(Reduce, Integers) {
  const Tensor x = Tensor::from_vector<int32_t>({1, 2, 3, -4, 5, 6}, {2, 3});
  const Tensor s = sum(x, {1});
  EXPECT_EQ(s.dtype(), DType::i64);
  expect_values(s, {6, 7});
  EXPECT_EQ(max(x, 0).dtype(), DType::i32);
  expect_values(max(x, 0), {1, 5, 6});
  expect_values(min(x, 1), {1, -4});
  const Tensor big = Tensor::full({3}, 2e9, DType::i32);
  EXPECT_EQ(sum(big).item<int64_t>(), 6000000000LL);  // no i32 overflow
  const Tensor b = Tensor::from_vector<double>({1, 0, 1, 1}, {4}, DType::boolean);
  EXPECT_EQ(kernels::reduce(ReduceOp::sum, b, {}, false).item<int64_t>(), 3);
}

TEST(Reduce, ArgmaxArgmin) {
  // Ties give the first index.
  const Tensor x = Tensor::from_vector<float>({3, 7, 7, 1, 0, 0, 9, 0}, {2, 4});
  const Tensor am = argmax(x, 1);
  EXPECT_EQ(am.dtype(), DType::i64);
  EXPECT_EQ(am.to_vector<int64_t>(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(argmin(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{3, 0}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 0}));
  EXPECT_EQ(argmin(x, 0, true).shape(), (Shape{1, 4}));
  EXPECT_EQ(argmin(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 1}));
  // A long row: the maximum far from the start, with a tie later on.
  std::vector<float> v(5000, 0.5f);
  v[3333] = 2.0f;
  v[4444] = 2.0f;
  EXPECT_EQ(argmax(Tensor::from_vector(v), 0).item<int64_t>(), 3333);
}

TEST(Reduce, NanPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_vector<float>({1, nan, 3, 4, 5, 6}, {2, 3});
  const std::vector<float> m = max(x, 1).to_vector<float>();
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_EQ(m[1], 6.0f);
  EXPECT_TRUE(std::isnan(min(x, 0).to_vector<float>()[1]));
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>()[0], 1);
  EXPECT_TRUE(std::isnan(sum(x).item<double>()));
}

// Between +0 and -0, max gives +0 and min -0 wherever the zeros sit (lanes, tail, any
// order), so that every fold order, the CUDA backend's included, gives the same bits.
TEST(Reduce, SignedZerosTieTheSameWayInAnyOrder) {
  for (int64_t n : {2, 33, 100}) {
    for (int64_t pos : {int64_t{0}, n / 2, n - 1}) {
      for (bool negative_first : {true, false}) {
        std::vector<float> v(static_cast<size_t>(n), negative_first ? -0.0f : 0.0f);
        v[static_cast<size_t>(pos)] = negative_first ? 0.0f : -0.0f;
        for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
          const Tensor x = Tensor::from_vector(v, Shape{n}, dt);
          SCOPED_TRACE(::testing::Message() << describe(x) << " odd zero at " << pos);
          EXPECT_FALSE(std::signbit(max(x, 0).item<double>()));
          EXPECT_TRUE(std::signbit(min(x, 0).item<double>()));
          const Tensor columns = x.unsqueeze(1).expand({n, 3}).contiguous();  // column path
          for (double m : max(columns, 0).to_vector<double>()) EXPECT_FALSE(std::signbit(m));
          for (double m : min(columns, 0).to_vector<double>()) EXPECT_TRUE(std::signbit(m));
        }
      }
    }
  }
}

// Every layout path (rows, blocked rows, columns, blocked columns, middle dims, several
// groups) against the naive reference.
TEST(Reduce, MatchesNaiveReference) {
  struct Case {
    Shape shape;
    uint32_t mask;
  };
  const std::vector<Case> cases = {
      {{3, 40000}, 0b10},     {{40000, 3}, 0b01},   {{5000, 37}, 0b01},  {{3, 300, 2500}, 0b010},
      {{100003}, 0b1},        {{3, 4, 5, 6}, 0b1010}, {{3, 4, 5, 6}, 0b1001}, {{3, 4, 5, 6}, 0b0101},
      {{2, 1, 7, 1}, 0b0110}, {{2, 1, 7, 1}, 0b1010},        {{7, 3000, 2}, 0b110},
  };
  for (const Case& c : cases) {
    const std::vector<double> v = lcg_values(c.shape.numel(), 7);
    const Tensor x = Tensor::from_vector(v, c.shape, DType::f32);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
      const Tensor got = kernels::reduce(op, x, dims_of(c.mask, c.shape.size()), true);
      const std::vector<double> want = naive(v, c.shape, c.mask, op);
      SCOPED_TRACE(::testing::Message() << "shape " << c.shape << " mask " << c.mask << " op "
                                        << static_cast<int>(op));
      // Sums of up to 1e5 values in [-1, 1) in f32.
      expect_values(got, want, 2e-4);
    }
  }
}

TEST(Reduce, NonContiguousInputs) {
  const Tensor base = test_tensor({4, 6}, 3, DType::f32);
  const Tensor t = non_contiguous(base);  // same values, transposed in memory
  ASSERT_FALSE(t.is_contiguous());
  const std::vector<double> v = base.to_vector<double>();
  expect_values(sum(t, {0}), naive(v, {4, 6}, 0b01, ReduceOp::sum), 1e-6);
  expect_values(max(t, 1), naive(v, {4, 6}, 0b10, ReduceOp::max), 1e-6);
  EXPECT_EQ(argmax(t, 1).to_vector<int64_t>(), argmax(base, 1).to_vector<int64_t>());
  // A strided slice has no contiguous order: copied first.
  const Tensor s = kernels::slice(base, 1, 0, 6, 2);
  expect_values(sum(s, {1}), {v[0] + v[2] + v[4], v[6] + v[8] + v[10], v[12] + v[14] + v[16],
                              v[18] + v[20] + v[22]}, 1e-6);
  // A permuted 3-d view.
  const Tensor p3 = test_tensor({2, 3, 4}, 5, DType::f32);
  const Tensor perm = kernels::permute(p3, {2, 0, 1});  // [4, 2, 3]
  const Tensor got = sum(perm, {0, 2});                  // over p3's dims 2 and 1 -> [2]
  expect_values(got, naive(p3.to_vector<double>(), {2, 3, 4}, 0b110, ReduceOp::sum), 1e-6);
}

TEST(Reduce, BroadcastInputs) {
  // Reduced stride-0 dims are read once (and a sum scaled by their size).
  const Tensor row = Tensor::from_vector<float>({1, -2, 3}, {1, 3});
  const Tensor e = kernels::expand(row, {4, 3});
  expect_values(sum(e, {0}), {4, -8, 12});
  expect_values(sum(e), {8});
  expect_values(mean(e, {0}), {1, -2, 3});
  expect_values(max(e, 0), {1, -2, 3});
  EXPECT_EQ(argmax(e, 0).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0}));
  expect_values(sum(e, {1}), {2, 2, 2, 2});
  const Tensor i = kernels::expand(Tensor::from_vector<int32_t>({5}, {1, 1}), {3, 7});
  EXPECT_EQ(sum(i).item<int64_t>(), 105);
}

TEST(Reduce, SameResultForAnyThreadCount) {
  const Tensor cols = test_tensor({4096, 512}, 11, DType::f32);
  const Tensor rows = test_tensor({3, 100000}, 12, DType::f32);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> c1 = sum(cols, {0}).to_vector<float>();
  const std::vector<float> r1 = sum(rows, {1}).to_vector<float>();
  omp_set_num_threads(std::max(2, saved));
  const std::vector<float> c2 = sum(cols, {0}).to_vector<float>();
  const std::vector<float> r2 = sum(rows, {1}).to_vector<float>();
  omp_set_num_threads(saved);
  EXPECT_EQ(c1, c2);
  EXPECT_EQ(r1, r2);
}

TEST(Reduce, LongSumsStayWithinAFewUlpOfF64) {
  // Values in [0.5, 1.5): their sum is 1e7 for a row, where an f32 ulp is 1. Partial results
  // added one after another drifted by 3 to 12 ulp (the mean by up to 20), rows and columns.
  const int64_t n = 10000000;
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = 7;
  for (float& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0) + 0.5f;
  }
  auto ulps = [](double got, double ref) {
    return std::abs(got - ref) /
           (std::nextafter(static_cast<float>(ref), INFINITY) - static_cast<float>(ref));
  };
  double total = 0;
  for (float x : v) total += x;
  const Tensor row = Tensor::from_vector(v, {n});
  EXPECT_LE(ulps(sum(row).item<double>(), total), 2.0);
  EXPECT_LE(ulps(mean(row).item<double>(), total / n), 2.0);
  // Columns: [n / 4, 4] summed over rows.
  const std::vector<float> cols = sum(row.view({n / 4, 4}), {0}).to_vector<float>();
  for (int64_t c = 0; c < 4; ++c) {
    double ref = 0;
    for (int64_t i = c; i < n; i += 4) ref += v[static_cast<size_t>(i)];
    EXPECT_LE(ulps(cols[static_cast<size_t>(c)], ref), 2.0) << "column " << c;
  }
}

TEST(Reduce, EmptyAndScalar) {
  const Tensor e = Tensor::zeros({0, 3});
  expect_values(sum(e, {0}), {0, 0, 0});
  EXPECT_TRUE(std::isnan(mean(e, {0}).to_vector<double>()[0]));
  EXPECT_EQ(sum(e, {1}).shape(), Shape{0});
  const Tensor s = Tensor::scalar(2.5);
  expect_values(sum(s), {2.5});
  expect_values(max(s, 0), {2.5});
  EXPECT_EQ(argmax(s, 0).item<int64_t>(), 0);
}

TEST(Reduce, Errors) {
  const Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW_MSG(sum(x, {2}), "[sum] dim 2 is out of range for a tensor of rank 2");
  EXPECT_THROW_MSG(sum(x, {1, -1}), "[sum] dim -1 is given twice in [1, -1] for x [2, 3]");
  EXPECT_THROW_MSG(kernels::reduce(ReduceOp::argmax, x, {0, 1}, false),
                   "[argmax] needs exactly one dim, got 2");
  EXPECT_THROW_MSG(kernels::reduce(ReduceOp::argmin, x, {}, false),
                   "[argmin] needs exactly one dim, got 0");
  EXPECT_THROW_MSG(mean(Tensor::zeros({2}, DType::i32)), "[mean] needs a floating dtype");
  EXPECT_THROW_MSG(max(Tensor::zeros({0, 3}), 0), "[max] cannot reduce over an empty dim");
}

TEST(SumTo, ReversesBroadcasting) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 2, 3});
  const Tensor a = kernels::sum_to(x, {2, 1});
  EXPECT_EQ(a.shape(), (Shape{2, 1}));
  expect_values(a, {1 + 2 + 3 + 7 + 8 + 9, 4 + 5 + 6 + 10 + 11 + 12});
  expect_values(kernels::sum_to(x, {3}), {22, 26, 30});
  expect_values(kernels::sum_to(x, {1, 2, 1}), {30, 48});
  expect_values(kernels::sum_to(x, {}), {78});
  EXPECT_TRUE(kernels::sum_to(x, x.shape()).is_same(x));
  EXPECT_EQ(kernels::sum_to(kernels::view(x, {1, 2, 2, 3}), {2, 2, 3}).shape(), (Shape{2, 2, 3}));
  EXPECT_THROW_MSG(kernels::sum_to(x, {4}), "[sum_to] cannot sum [2, 2, 3] f32 to [4]");
  EXPECT_THROW_MSG(kernels::sum_to(x, {1, 1, 2, 3}), "more dims than x");
}

TEST(Reduce, BackwardRoutesToFirstMax) {
  const Tensor x = testing::leaf(Tensor::from_vector<float>({1, 5, 5, 2, 0, 3}, {2, 3}));
  sum(max(x, 1) * Tensor::from_vector<float>({2, 3})).backward();
  expect_values(x.grad(), {0, 2, 0, 0, 0, 3});
  const Tensor y = testing::leaf(Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}));
  mean(y).backward();
  expect_values(y.grad(), {0.25, 0.25, 0.25, 0.25});
}

}  // namespace
}  // namespace sp
