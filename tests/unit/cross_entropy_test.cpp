// Cross-entropy: values against hand-computed references (reductions, z-loss,
// ignore_index), 16-bit logits computed in f32, gradients, and error messages.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;

// For a row of logits [1, 2, 3]: softmax, logsumexp, and lse^2, by hand.
const std::vector<double> kP = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
constexpr double kLse = 3.40760596444438;
constexpr double kLse2 = 11.611778408916914;

Tensor two_rows(DType dt = DType::f32) {
  return Tensor::from_vector<double>({1, 2, 3, 1, 2, 3}, {2, 3}, dt);
}

CrossEntropyOptions opts(Reduction r, double z = 0, int64_t ignore = -100) {
  CrossEntropyOptions o;
  o.reduction = r;
  o.z_loss = z;
  o.ignore_index = ignore;
  return o;
}

TEST(CrossEntropy, Reductions) {
  const Tensor t = Tensor::from_vector<int64_t>({2, 0});
  const double l0 = kLse - 3, l1 = kLse - 1;
  const Tensor none = cross_entropy(two_rows(), t, opts(Reduction::none));
  EXPECT_EQ(none.dtype(), DType::f32);
  EXPECT_EQ(none.shape(), Shape{2});
  expect_values(none, {l0, l1});
  const Tensor s = cross_entropy(two_rows(), t, opts(Reduction::sum));
  EXPECT_EQ(s.shape(), Shape{});
  expect_values(s, {l0 + l1});
  expect_values(cross_entropy(two_rows(), t), {(l0 + l1) / 2});
}

TEST(CrossEntropy, ZLoss) {
  const Tensor t = Tensor::from_vector<int64_t>({2, 0});
  expect_values(cross_entropy(two_rows(), t, opts(Reduction::none, 0.01)),
                {kLse - 3 + 0.01 * kLse2, kLse - 1 + 0.01 * kLse2});
}

TEST(CrossEntropy, PartsSayHowMuchIsTheZTerm) {
  const Tensor t = Tensor::from_vector<int64_t>({2, -100});
  const CrossEntropyParts mean = cross_entropy_parts(two_rows(), t, opts(Reduction::mean, 0.01));
  expect_values(mean.loss, {kLse - 3 + 0.01 * kLse2});
  EXPECT_NEAR(mean.z_term, 0.01 * kLse2, 1e-6);  // the ignored row counts for neither
  const Tensor both = Tensor::from_vector<int64_t>({2, 0});
  EXPECT_NEAR(cross_entropy_parts(two_rows(), both, opts(Reduction::sum, 0.01)).z_term,
              2 * 0.01 * kLse2, 1e-6);
  EXPECT_EQ(cross_entropy_parts(two_rows(), both, opts(Reduction::mean)).z_term, 0);
}

TEST(CrossEntropy, IgnoreIndex) {
  const Tensor t = Tensor::from_vector<int64_t>({2, -100});
  expect_values(cross_entropy(two_rows(), t, opts(Reduction::none)), {kLse - 3, 0});
  // The mean is over kept tokens only.
  expect_values(cross_entropy(two_rows(), t), {kLse - 3});
  expect_values(cross_entropy(two_rows(), Tensor::from_vector<int64_t>({7, 1}),
                              opts(Reduction::sum, 0, 7)),
                {kLse - 2});
  // Nothing kept: 0, not 0 / 0, and a zero gradient.
  const Tensor x = leaf(two_rows());
  const Tensor m = cross_entropy(x, Tensor::from_vector<int64_t>({-100, -100}));
  EXPECT_EQ(m.item<double>(), 0.0);
  m.backward();
  expect_values(x.grad(), {0, 0, 0, 0, 0, 0}, 0);
}

TEST(CrossEntropy, SixteenBitLogitsComputeInF32) {
  // 1, 2, 3 are exact in bf16 and f16; an f32 computation is then f32-accurate.
  for (DType dt : {DType::bf16, DType::f16}) {
    const Tensor loss = cross_entropy(two_rows(dt), Tensor::from_vector<int32_t>({2, 0}),
                                      opts(Reduction::none, 1e-3));
    EXPECT_EQ(loss.dtype(), DType::f32);
    expect_values(loss, {kLse - 3 + 1e-3 * kLse2, kLse - 1 + 1e-3 * kLse2}, 1e-6);
  }
}

TEST(CrossEntropy, Gradients) {
  // mean over 2 kept rows: dlogits = (softmax - onehot) / 2.
  const Tensor x = leaf(two_rows());
  cross_entropy(x, Tensor::from_vector<int64_t>({2, 0})).backward();
  expect_values(x.grad(), {kP[0] / 2, kP[1] / 2, (kP[2] - 1) / 2, (kP[0] - 1) / 2, kP[1] / 2,
                           kP[2] / 2});
  // z-loss adds 2 z lse softmax; an ignored row gets nothing; none takes dloss per row.
  const double z = 0.01, k = 1 + 2 * z * kLse;
  const Tensor y = leaf(two_rows(DType::f64));
  cross_entropy(y, Tensor::from_vector<int64_t>({1, -100}), opts(Reduction::none, z))
      .backward(Tensor::from_vector<double>({3, 5}));
  expect_values(y.grad(), {3 * kP[0] * k, 3 * (kP[1] * k - 1), 3 * kP[2] * k, 0, 0, 0}, 1e-12);
  // bf16 logits get a bf16 gradient.
  const Tensor h = leaf(two_rows(DType::bf16));
  cross_entropy(h, Tensor::from_vector<int64_t>({2, 0}), opts(Reduction::sum)).backward();
  EXPECT_EQ(h.grad().dtype(), DType::bf16);
  expect_values(h.grad(), {kP[0], kP[1], kP[2] - 1, kP[0] - 1, kP[1], kP[2]}, 1e-2);
}

TEST(CrossEntropy, BatchedLogitsAndLongRows) {
  // [B, T, V] logits with [B, T] targets.
  const Tensor x = testing::test_tensor({2, 3, 5000}, 21, DType::f32, 6.0);
  const Tensor t = Tensor::from_vector<int64_t>({0, 4999, 17, -100, 2500, 3}, {2, 3});
  const Tensor loss = cross_entropy(x, t, opts(Reduction::none, 1e-4));
  EXPECT_EQ(loss.shape(), (Shape{2, 3}));
  const std::vector<double> v = x.to_vector<double>();
  const std::vector<int64_t> tv = t.to_vector<int64_t>();
  std::vector<double> want(6, 0.0);
  for (int r = 0; r < 6; ++r) {
    if (tv[r] < 0) continue;
    double m = -INFINITY, s = 0;
    for (int i = 0; i < 5000; ++i) m = std::max(m, v[r * 5000 + i]);
    for (int i = 0; i < 5000; ++i) s += std::exp(v[r * 5000 + i] - m);
    const double lse = m + std::log(s);
    want[r] = lse - v[r * 5000 + tv[r]] + 1e-4 * lse * lse;
  }
  expect_values(loss, want, 1e-5);
}

TEST(CrossEntropy, Errors) {
  EXPECT_THROW_MSG(cross_entropy(two_rows(), Tensor::from_vector<int64_t>({2, 3})),
                   "[cross_entropy] target out of range at row 1: 3 is not in [0, 3)");
  EXPECT_THROW_MSG(cross_entropy(two_rows(), Tensor::from_vector<int32_t>({-5, 0})),
                   "[cross_entropy] target out of range at row 0: -5");
  EXPECT_THROW_MSG(cross_entropy(two_rows(), Tensor::from_vector<int64_t>({1, 2, 0})),
                   "[cross_entropy] targets [3] i64 do not match logits [2, 3] f32");
  EXPECT_THROW_MSG(cross_entropy(two_rows(), Tensor::from_vector<float>({1, 2})),
                   "[cross_entropy] targets must be i32 or i64, got [2] f32");
  EXPECT_THROW_MSG(cross_entropy(Tensor::zeros({2, 3}, DType::i32),
                                 Tensor::from_vector<int64_t>({1, 2})),
                   "[cross_entropy] logits need a floating dtype");
}

}  // namespace
}  // namespace sp
