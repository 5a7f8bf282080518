// Softmax and log-softmax: values against hand-computed references, stability, masking,
// dims, dtypes, the backward formulas, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;

// softmax([1, 2, 3]) and log_softmax([1, 2, 3]), from exp(1), exp(2), exp(3) by hand.
const std::vector<double> kP = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
const std::vector<double> kLogP = {-2.40760596444438, -1.4076059644443801, -0.40760596444438013};

TEST(Softmax, HandComputed) {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    const double tol = dt == DType::f64 ? 1e-14 : dt == DType::f32 ? 1e-6 : 1e-2;
    // Large enough that exp overflows f32 without the max subtraction; exact in dt.
    const double c = dt == DType::bf16 ? 96 : 1000;
    const Tensor x = Tensor::from_vector<double>({1, 2, 3, c + 1, c + 2, c + 3}, {2, 3}, dt);
    const Tensor y = softmax(x);
    EXPECT_EQ(y.dtype(), dt);
    EXPECT_EQ(y.shape(), (Shape{2, 3}));
    // Shifting a row by c changes nothing (the max is subtracted first).
    expect_values(y, {kP[0], kP[1], kP[2], kP[0], kP[1], kP[2]}, tol);
    expect_values(log_softmax(x), {kLogP[0], kLogP[1], kLogP[2], kLogP[0], kLogP[1], kLogP[2]},
                  dt == DType::f16 || dt == DType::bf16 ? 2e-3 : tol);
  }
}

TEST(Softmax, LongRowsMatchDoubleReference) {
  // Lengths around the 32-lane blocks and the tail; an f32 sum of 32k terms is good to a
  // few 1e-6 relative.
  for (int64_t d : {1, 31, 32, 33, 1000, 32128}) {
    const Tensor x = testing::test_tensor({2, d}, 17, DType::f32, 8.0);
    const std::vector<double> v = x.to_vector<double>();
    std::vector<double> want(v.size()), want_log(v.size());
    for (int r = 0; r < 2; ++r) {
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < d; ++i) m = std::max(m, v[r * d + i]);
      for (int64_t i = 0; i < d; ++i) s += std::exp(v[r * d + i] - m);
      for (int64_t i = 0; i < d; ++i) {
        want[r * d + i] = std::exp(v[r * d + i] - m) / s;
        want_log[r * d + i] = v[r * d + i] - m - std::log(s);
      }
    }
    SCOPED_TRACE(d);
    const std::vector<double> got = softmax(x).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * want[i] + 1e-12);
    expect_values(log_softmax(x), want_log, 1e-5);
  }
}

TEST(Softmax, MaskedEntries) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = Tensor::from_vector<float>({-inf, 0, -inf, 0, -inf, -inf, -inf, -inf}, {2, 4});
  // Row 0: two equal finite entries. Row 1: everything masked gives zeros, not NaN.
  expect_values(softmax(x), {0, 0.5, 0, 0.5, 0, 0, 0, 0});
  const std::vector<float> l = log_softmax(x).to_vector<float>();
  EXPECT_EQ(l[0], -inf);
  EXPECT_NEAR(l[1], -std::log(2.0), 1e-6);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(l[i], -inf);
}

TEST(Softmax, InfOrNanInARowMakesTheRowNanInEveryDtype) {
  // +inf - +inf is NaN, so the row's sum of exps is NaN and every output with it, as in
  // PyTorch; the f64 and f16 path once turned that NaN sum into 0 (or +inf for log).
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    for (double bad : {inf, std::nan("")}) {
      const Tensor x = Tensor::from_vector<double>({bad, 1, 2}, {1, 3}, dt);
      for (const Tensor& y : {softmax(x), log_softmax(x)})
        for (double v : y.to_vector<double>())
          EXPECT_TRUE(std::isnan(v)) << dtype_name(dt) << " input " << bad << " gave " << v;
    }
  }
}

TEST(Softmax, OtherDims) {
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2});
  const double a = 0.11920292202211755, b = 0.8807970779778823;  // softmax([1, 3])
  expect_values(softmax(x, 0), {a, a, b, b});
  expect_values(softmax(x, -2), {a, a, b, b});
  expect_values(log_softmax(x, 0), {std::log(a), std::log(a), std::log(b), std::log(b)});
  // A transposed (non-contiguous) input along its last dim.
  expect_values(softmax(testing::non_contiguous(x), 1), softmax(x, 1).to_vector<double>());
  // dim 1 of a 3-d tensor.
  const Tensor x3 = Tensor::from_vector<float>({1, 0, 2, 0, 3, 0}, {1, 3, 2});
  expect_values(softmax(x3, 1), {kP[0], 1.0 / 3, kP[1], 1.0 / 3, kP[2], 1.0 / 3});
}

TEST(Softmax, EmptyTensorsAlongAnyDim) {
  // Softmax over a dim other than the last moves it last: the empty [0, 3] becomes a
  // [3, 0] buffer, which the kernels must accept as contiguous.
  const Tensor x = leaf(Tensor::zeros({0, 3}));
  for (int64_t dim : {0, 1}) {
    const Tensor y = softmax(x, dim);
    EXPECT_EQ(y.shape(), (Shape{0, 3}));
    EXPECT_EQ(log_softmax(x, dim).shape(), (Shape{0, 3}));
    sum(y).backward();
    EXPECT_EQ(x.grad().shape(), (Shape{0, 3}));
  }
  EXPECT_TRUE(Tensor::empty({3, 0}).is_contiguous());
  EXPECT_TRUE(kernels::transpose(Tensor::empty({0, 3}), 0, 1).is_contiguous());
}

TEST(Softmax, Backward) {
  // dy = e0: softmax dx = y * (e0 - y0); log_softmax dx = e0 - p * 1.
  const Tensor x = leaf(Tensor::from_vector<double>({1, 2, 3}));
  const Tensor dy = Tensor::from_vector<double>({1, 0, 0});
  softmax(x).backward(dy);
  expect_values(x.grad(), {kP[0] * (1 - kP[0]), -kP[1] * kP[0], -kP[2] * kP[0]}, 1e-12);
  const Tensor z = leaf(Tensor::from_vector<double>({1, 2, 3}));
  log_softmax(z).backward(dy);
  expect_values(z.grad(), {1 - kP[0], -kP[1], -kP[2]}, 1e-12);
  // bf16: same formula computed in f32.
  const Tensor h = leaf(Tensor::from_vector<double>({1, 2, 3}, {3}, DType::bf16));
  softmax(h).backward(Tensor::from_vector<double>({1, 0, 0}, {3}, DType::bf16));
  EXPECT_EQ(h.grad().dtype(), DType::bf16);
  expect_values(h.grad(), {kP[0] * (1 - kP[0]), -kP[1] * kP[0], -kP[2] * kP[0]}, 1e-2);
}

// add_softmax(x, bias) against softmax(x + bias) run as two ops: the same bits forward and
// in both gradients, for every float dtype and the bias layouts attention uses (a position
// bias broadcast over the batch, a padding mask broadcast over heads and queries) or that
// the kernel must repack (transposed, broadcast along the row). Rows of 7 take the scalar
// tails, rows of 356 (t5-small's encoder) the vector loops; the mask blanks whole rows.
TEST(AddSoftmax, EqualsAddThenSoftmaxBitForBit) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    Shape x, bias;
    bool transpose_bias = false;
  };
  const std::vector<Case> cases = {{{2, 3, 5, 7}, {1, 3, 5, 7}},
                                   {{2, 3, 5, 7}, {2, 1, 1, 7}},
                                   {{2, 3, 5, 7}, {2, 3, 5, 7}},
                                   {{2, 3, 5, 7}, {7}},
                                   {{2, 3, 5, 7}, {2, 3, 5, 1}},
                                   {{2, 3, 5, 7}, {2, 3, 7, 5}, true},
                                   {{1, 3, 5, 7}, {2, 3, 5, 7}},
                                   {{2, 4, 3, 356}, {1, 4, 3, 356}},
                                   {{5}, {}}};
  uint64_t seed = 1;
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(str_cat(dtype_name(dt), " x ", c.x, " bias ", c.bias));
      Tensor bias_values = testing::test_tensor(c.bias, ++seed, DType::f64, 3.0);
      if (c.bias.numel() > 6) {  // mask entries, and a whole row when the bias has one
        std::vector<double> v = bias_values.to_vector<double>();
        for (size_t i = 0; i < v.size(); i += 3) v[i] = -inf;
        const int64_t row = c.bias.empty() ? 1 : c.bias.back();
        if (row > 1)
          for (int64_t i = 0; i < row; ++i) v[static_cast<size_t>(i)] = -inf;
        bias_values = Tensor::from_vector(v, c.bias, DType::f64);
      }
      Tensor bias = bias_values.to(dt);
      if (c.transpose_bias) bias = kernels::transpose(bias, -1, -2);
      const Tensor x1 = leaf(testing::test_tensor(c.x, ++seed, dt, 4.0));
      const Tensor x2 = leaf(x1.detach());
      const Tensor b1 = leaf(bias.detach()), b2 = leaf(bias.detach());
      const Tensor fused = add_softmax(x1, b1);
      const Tensor unfused = softmax(x2 + b2, -1);
      ASSERT_EQ(fused.shape(), unfused.shape());
      EXPECT_EQ(fused.to_vector<double>(), unfused.to_vector<double>());
      const Tensor dy = testing::test_tensor(fused.shape(), ++seed, dt);
      fused.backward(dy);
      unfused.backward(dy);
      EXPECT_EQ(x1.grad().to_vector<double>(), x2.grad().to_vector<double>());
      EXPECT_EQ(b1.grad().shape(), b1.shape());
      EXPECT_EQ(b1.grad().to_vector<double>(), b2.grad().to_vector<double>());
    }
  }
}

TEST(AddSoftmax, Errors) {
  EXPECT_THROW_MSG(add_softmax(Tensor::zeros({2, 3}), Tensor::zeros({3}, DType::bf16)),
                   "[add_softmax] dtype mismatch: scores are [2, 3] f32, bias is [3] bf16");
  EXPECT_THROW_MSG(add_softmax(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({3}, DType::i64)),
                   "[add_softmax] needs a floating dtype, scores are [2, 3] i64");
  EXPECT_THROW_MSG(add_softmax(Tensor::zeros({2, 3}), Tensor::zeros({4})), "[add_softmax]");
}

TEST(Softmax, Errors) {
  EXPECT_THROW_MSG(softmax(Tensor::zeros({2, 3}, DType::i64)),
                   "[softmax] needs a floating dtype, x is [2, 3] i64");
  EXPECT_THROW_MSG(log_softmax(Tensor::zeros({2, 3}), 2),
                   "[log_softmax] dim 2 is out of range for a tensor of rank 2");
  EXPECT_THROW_MSG(kernels::softmax_backward(Tensor::zeros({2}), Tensor::zeros({3}), -1, false),
                   "[softmax_backward] dy is [2] f32, y is [3] f32");
}

}  // namespace
}  // namespace sp
