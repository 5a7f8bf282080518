// RMS norm forward and backward against hand references, T5's 16-bit weight semantics,
// dtypes and errors.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;
using testing::test_tensor;

// y = w * x / sqrt(mean(x^2) + eps) per row, in f64.
std::vector<double> reference(const std::vector<double>& x, const std::vector<double>& w, int64_t d,
                              double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / d; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += x[r * d + j] * x[r * d + j];
    const double rs = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t j = 0; j < d; ++j) y[r * d + j] = x[r * d + j] * rs * (w.empty() ? 1.0 : w[j]);
  }
  return y;
}

struct RefGrads {
  std::vector<double> dx, dw;
};

// dx = r * dn - x * r^3 * sum(dn * x) / D with dn = dy * w; dw = sum_rows dy * x * r.
RefGrads reference_backward(const std::vector<double>& x, const std::vector<double>& w,
                            const std::vector<double>& dy, int64_t d, double eps) {
  RefGrads g{std::vector<double>(x.size()), std::vector<double>(d, 0.0)};
  for (size_t r = 0; r < x.size() / d; ++r) {
    double ss = 0, dot = 0;
    for (int64_t j = 0; j < d; ++j) ss += x[r * d + j] * x[r * d + j];
    const double rs = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t j = 0; j < d; ++j) dot += dy[r * d + j] * w[j] * x[r * d + j];
    for (int64_t j = 0; j < d; ++j) {
      g.dx[r * d + j] = rs * dy[r * d + j] * w[j] - x[r * d + j] * rs * rs * rs * dot / d;
      g.dw[j] += dy[r * d + j] * x[r * d + j] * rs;
    }
  }
  return g;
}

TEST(RmsNorm, ForwardMatchesHandComputedValues) {
  // Row [3, 4]: mean square 12.5; row [1, -1]: 1.
  Tensor x = Tensor::from_vector(std::vector<float>{3, 4, 1, -1}, {2, 2});
  Tensor w = Tensor::from_vector(std::vector<float>{2, 0.5});
  const double r0 = 1.0 / std::sqrt(12.5 + 1e-6), r1 = 1.0 / std::sqrt(1.0 + 1e-6);
  expect_values(rms_norm(x, w, 1e-6), {6 * r0, 2 * r0, 2 * r1, -0.5 * r1}, 1e-6);
  expect_values(rms_norm(x, Tensor(), 1e-6), {3 * r0, 4 * r0, r1, -r1}, 1e-6);
  // eps matters for small rows.
  Tensor tiny = Tensor::from_vector(std::vector<double>{1e-3, 0}, {1, 2});
  expect_values(rms_norm(tiny, Tensor(), 1e-6), {1e-3 / std::sqrt(0.5e-6 + 1e-6), 0}, 1e-12);
}

TEST(RmsNorm, ManyRowsAndDtypesAgainstReference) {
  const int64_t rows = 67, d = 37;  // odd sizes: vector tails
  const Tensor x64 = test_tensor({rows, d}, 1, DType::f64, 2.0, 0.1);
  const Tensor w64 = test_tensor({d}, 2, DType::f64, 1.0, 1.0);
  const std::vector<double> xv = x64.to_vector<double>(), wv = w64.to_vector<double>();
  const std::vector<double> expected = reference(xv, wv, d, 1e-6);
  struct Case {
    DType dt;
    double tol;
  };
  for (Case c : {Case{DType::f64, 1e-12}, Case{DType::f32, 1e-5}, Case{DType::bf16, 2e-2},
                 Case{DType::f16, 4e-3}}) {
    // The reference for the rounded inputs.
    const Tensor x = kernels::cast(x64, c.dt), w = kernels::cast(w64, c.dt);
    const std::vector<double> exp =
        reference(x.to_vector<double>(), w.to_vector<double>(), d, 1e-6);
    const Tensor y = rms_norm(x, w);
    EXPECT_EQ(y.dtype(), c.dt);
    expect_values(y, exp, c.tol);
  }
  // 3-D input: the rows are the leading dims flattened.
  const Tensor y3 = rms_norm(kernels::view(x64, Shape{rows, 1, d}), w64);
  EXPECT_EQ(y3.shape(), (Shape{rows, 1, d}));
  expect_values(y3, expected, 1e-12);
  // A non-contiguous input.
  const Tensor xt = testing::non_contiguous(x64);
  expect_values(rms_norm(xt, w64), expected, 1e-12);
}

TEST(RmsNorm, SixteenBitWeightRoundsTheNormalisedValueFirst) {
  // x = [1, 0]: n = [sqrt(2), 0] in f32, bf16(n) = 1.4140625. With w = 1.046875 (exact in
  // bf16), T5 gives bf16(1.4140625 * w) = 1.4765625, where multiplying in f32 first would
  // give 1.484375.
  Tensor x = Tensor::from_vector(std::vector<float>{1, 0}, {1, 2});
  Tensor w = Tensor::from_vector(std::vector<float>{1.046875f, 1.046875f}, {2}, DType::bf16);
  const Tensor y = rms_norm(x, w);
  EXPECT_EQ(y.dtype(), DType::bf16);
  const std::vector<float> v = y.to_vector<float>();
  EXPECT_EQ(v[0], 1.4765625f);
  EXPECT_EQ(v[1], 0.0f);
  // f32 weight and bf16 x: the output follows the weight (f32), as Hugging Face's T5.
  const Tensor yb = rms_norm(kernels::cast(x, DType::bf16), kernels::cast(w, DType::f32));
  EXPECT_EQ(yb.dtype(), DType::f32);
  EXPECT_NEAR(yb.to_vector<float>()[0], std::sqrt(2.0) * 1.046875, 1e-5);
}

TEST(RmsNorm, RstdDtypeAndValues) {
  Tensor x = Tensor::from_vector(std::vector<float>{3, 4, 1, -1}, {2, 2});
  kernels::RmsNormResult r = kernels::rms_norm(x, Tensor(), 1e-6);
  EXPECT_EQ(r.rstd.dtype(), DType::f32);
  EXPECT_EQ(r.rstd.shape(), (Shape{2}));
  expect_values(r.rstd, {1.0 / std::sqrt(12.5 + 1e-6), 1.0 / std::sqrt(1.0 + 1e-6)}, 1e-6);
  EXPECT_EQ(kernels::rms_norm(kernels::cast(x, DType::f64), Tensor(), 1e-6).rstd.dtype(),
            DType::f64);
}

TEST(RmsNorm, BackwardMatchesReference) {
  const int64_t rows = 150, d = 41;  // more rows than dweight chunks
  const Tensor x = test_tensor({rows, d}, 3, DType::f64, 1.5);
  const Tensor w = test_tensor({d}, 4, DType::f64, 0.5, 1.0);
  const Tensor dy = test_tensor({rows, d}, 5, DType::f64);
  const RefGrads ref = reference_backward(x.to_vector<double>(), w.to_vector<double>(),
                                          dy.to_vector<double>(), d, 1e-6);
  const Tensor rstd = kernels::rms_norm(x, w, 1e-6).rstd;
  kernels::RmsNormGrads both = kernels::rms_norm_backward(dy, x, w, rstd, true, true);
  expect_values(both.dx, ref.dx, 1e-10);
  expect_values(both.dweight, ref.dw, 1e-10);
  kernels::RmsNormGrads dx_only = kernels::rms_norm_backward(dy, x, w, rstd, true, false);
  EXPECT_FALSE(dx_only.dweight.defined());
  expect_values(dx_only.dx, ref.dx, 1e-10);
  kernels::RmsNormGrads dw_only = kernels::rms_norm_backward(dy, x, w, rstd, false, true);
  EXPECT_FALSE(dw_only.dx.defined());
  expect_values(dw_only.dweight, ref.dw, 1e-10);
  // f32 through autograd.
  Tensor x32 = leaf(kernels::cast(x, DType::f32));
  Tensor w32 = leaf(kernels::cast(w, DType::f32));
  rms_norm(x32, w32).backward(kernels::cast(dy, DType::f32));
  expect_values(x32.grad(), ref.dx, 1e-4);
  expect_values(w32.grad(), ref.dw, 1e-4);
}

TEST(RmsNorm, DweightDoesNotDependOnTheThreadCount) {
  // dweight sums per-chunk partials: the chunks must be a function of the rows only, also
  // on machines with more threads than chunks (64 here, oversubscribed if need be).
  const Tensor x = test_tensor({300, 64}, 7, DType::f32, 3.0);
  const Tensor w = test_tensor({64}, 8, DType::f32);
  const Tensor dy = test_tensor({300, 64}, 9, DType::f32);
  const Tensor rstd = kernels::rms_norm(x, w, 1e-6).rstd;
  const int saved = omp_get_max_threads();
  std::vector<std::vector<float>> dw;
  for (int threads : {1, 2, 64}) {
    omp_set_num_threads(threads);
    dw.push_back(
        kernels::rms_norm_backward(dy, x, w, rstd, false, true).dweight.to_vector<float>());
  }
  omp_set_num_threads(saved);
  EXPECT_EQ(dw[0], dw[1]);
  EXPECT_EQ(dw[0], dw[2]);
}

TEST(RmsNorm, FrozenWeightGetsNoGradient) {
  Tensor x = leaf(test_tensor({3, 4}, 6, DType::f32));
  Tensor w = Tensor::ones({4});
  rms_norm(x, w).backward(Tensor::ones({3, 4}));
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(RmsNorm, RejectsBadArguments) {
  Tensor x = Tensor::ones({2, 4});
  EXPECT_THROW_MSG(rms_norm(x, Tensor::ones({3})),
                   "[rms_norm] weight must be [D] with D = x's last dim: x is [2, 4] f32, "
                   "weight is [3] f32");
  EXPECT_THROW_MSG(rms_norm(Tensor::ones({2, 4}, DType::i32), Tensor()),
                   "[rms_norm] unsupported dtype i32");
  EXPECT_THROW_MSG(rms_norm(Tensor::scalar(1.0), Tensor()),
                   "[rms_norm] x must have at least one dim");
  const Tensor rstd = kernels::rms_norm(x, Tensor(), 1e-6).rstd;
  EXPECT_THROW_MSG(kernels::rms_norm_backward(Tensor::ones({2, 3}), x, Tensor(), rstd, true, false),
                   "[rms_norm_backward] dy must have x's shape: dy is [2, 3] f32, x is [2, 4] f32");
  EXPECT_THROW_MSG(kernels::rms_norm_backward(Tensor::ones({2, 4}), x, Tensor(), rstd, true, true),
                   "[rms_norm_backward] dweight asked for without a weight");
}

}  // namespace
}  // namespace sp
