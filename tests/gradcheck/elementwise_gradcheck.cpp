// Gradchecks of the elementwise ops, with broadcasting and non-contiguous inputs.
// Inputs stay away from kinks (relu at 0, clamp bounds, maximum ties) and from domain
// edges (log, sqrt, div near 0), where central differences are not valid.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Values in [lo, hi) (uniform), as a fresh f64 leaf.
Tensor in_range(const Shape& shape, uint64_t seed, double lo, double hi) {
  return leaf(test_tensor(shape, seed, DType::f64, (hi - lo) / 2, (hi + lo) / 2));
}
Tensor strided_in_range(const Shape& shape, uint64_t seed, double lo, double hi) {
  return leaf(non_contiguous(test_tensor(shape, seed, DType::f64, (hi - lo) / 2, (hi + lo) / 2)));
}

// Checks a unary op on a contiguous [3, 4] input and on a transposed [4, 3] one.
void check_unary(const std::function<Tensor(const Tensor&)>& op, double lo, double hi) {
  Fn f = [op](const std::vector<Tensor>& in) { return op(in[0]); };
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 1, lo, hi)});
  EXPECT_GRADCHECK(f, {strided_in_range({4, 3}, 2, lo, hi)});
}

// Checks a binary op: same shapes, broadcasting both ways, a transposed operand.
void check_binary(const std::function<Tensor(const Tensor&, const Tensor&)>& op, double lo,
                  double hi, double blo, double bhi) {
  Fn f = [op](const std::vector<Tensor>& in) { return op(in[0], in[1]); };
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 3, lo, hi), in_range({3, 4}, 4, blo, bhi)});
  EXPECT_GRADCHECK(f, {in_range({2, 3, 4}, 5, lo, hi), in_range({4}, 6, blo, bhi)});
  EXPECT_GRADCHECK(f, {in_range({3, 1}, 7, lo, hi), in_range({2, 1, 4}, 8, blo, bhi)});
  EXPECT_GRADCHECK(f, {strided_in_range({4, 3}, 9, lo, hi), in_range({4, 1}, 10, blo, bhi)});
}

TEST(Gradcheck, gradcheck_add) {
  check_binary([](auto& a, auto& b) { return a + b; }, -1, 1, -1, 1);
}
TEST(Gradcheck, gradcheck_sub) {
  check_binary([](auto& a, auto& b) { return a - b; }, -1, 1, -1, 1);
}
TEST(Gradcheck, gradcheck_mul) {
  check_binary([](auto& a, auto& b) { return a * b; }, -1, 1, -1, 1);
}
TEST(Gradcheck, gradcheck_div) {
  check_binary([](auto& a, auto& b) { return a / b; }, -1, 1, 0.5, 2);
}

// maximum / minimum: independent values from different seeds, so no pair is within eps
// of a tie (ties themselves are tested exactly in elementwise_test.cpp).
TEST(Gradcheck, gradcheck_maximum) {
  check_binary([](auto& a, auto& b) { return maximum(a, b); }, -1, 1, -1, 1);
}
TEST(Gradcheck, gradcheck_minimum) {
  check_binary([](auto& a, auto& b) { return minimum(a, b); }, -1, 1, -1, 1);
}

TEST(Gradcheck, gradcheck_scalar_ops) {
  check_unary([](const Tensor& x) { return (x + 2.0) * 3.0 - 1.0; }, -1, 1);
  check_unary([](const Tensor& x) { return 2.0 - x / 4.0; }, -1, 1);
}

TEST(Gradcheck, gradcheck_neg) {
  check_unary([](const Tensor& x) { return -x; }, -1, 1);
}
TEST(Gradcheck, gradcheck_exp) {
  check_unary([](const Tensor& x) { return exp(x); }, -2, 2);
}
TEST(Gradcheck, gradcheck_log) {
  check_unary([](const Tensor& x) { return log(x); }, 0.5, 3);
}
TEST(Gradcheck, gradcheck_sqrt) {
  check_unary([](const Tensor& x) { return sqrt(x); }, 0.5, 3);
}
TEST(Gradcheck, gradcheck_rsqrt) {
  check_unary([](const Tensor& x) { return rsqrt(x); }, 0.5, 3);
}
TEST(Gradcheck, gradcheck_pow) {
  check_unary([](const Tensor& x) { return pow(x, 2.5); }, 0.5, 3);
  check_unary([](const Tensor& x) { return pow(x, 3); }, -2, 2);
  check_unary([](const Tensor& x) { return pow(x, -1); }, 0.5, 3);
}
TEST(Gradcheck, gradcheck_tanh) {
  check_unary([](const Tensor& x) { return tanh(x); }, -3, 3);
}
TEST(Gradcheck, gradcheck_sigmoid) {
  check_unary([](const Tensor& x) { return sigmoid(x); }, -4, 4);
}
// [0.05, 2] and its negative: no element near the kink.
TEST(Gradcheck, gradcheck_relu) {
  check_unary([](const Tensor& x) { return relu(x); }, 0.05, 2);
  check_unary([](const Tensor& x) { return relu(x); }, -2, -0.05);
  Fn f = [](const std::vector<Tensor>& in) { return relu(in[0] * in[1]); };
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 11, 0.1, 1), in_range({4}, 12, -1, -0.1)});
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 13, 0.1, 1), in_range({4}, 14, 0.1, 1)});
}
TEST(Gradcheck, gradcheck_gelu_tanh) {
  check_unary([](const Tensor& x) { return gelu(x, GeluApprox::tanh); }, -4, 4);
}
TEST(Gradcheck, gradcheck_gelu_erf) {
  check_unary([](const Tensor& x) { return gelu(x, GeluApprox::none); }, -4, 4);
}
TEST(Gradcheck, gradcheck_silu) {
  check_unary([](const Tensor& x) { return silu(x); }, -5, 5);
}
TEST(Gradcheck, gradcheck_abs) {
  check_unary([](const Tensor& x) { return abs(x); }, 0.05, 2);
  check_unary([](const Tensor& x) { return abs(x); }, -2, -0.05);
}
TEST(Gradcheck, gradcheck_square) {
  check_unary([](const Tensor& x) { return square(x); }, -2, 2);
}

// clamp bounds 0.3 and 0.7 against a grid that steers clear of them: values in
// (-1, 1) spaced 1/6 from -11/12, none within 0.05 of a bound.
TEST(Gradcheck, gradcheck_clamp) {
  std::vector<double> v;
  for (int i = 0; i < 12; ++i) v.push_back(-11.0 / 12 + i / 6.0);
  Fn f = [](const std::vector<Tensor>& in) { return clamp(in[0], 0.3, 0.7) * in[1]; };
  EXPECT_GRADCHECK(f, {leaf(Tensor::from_vector(v, {3, 4})), in_range({4}, 15, -1, 1)});
  EXPECT_GRADCHECK(
      f, {leaf(non_contiguous(Tensor::from_vector(v, {4, 3}))), in_range({3}, 16, -1, 1)});
}

TEST(Gradcheck, gradcheck_where) {
  const Tensor cond = Tensor::from_vector(std::vector<bool>{true, false, false, true}, {4});
  Fn f = [cond](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); };
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 17, -1, 1), in_range({3, 1}, 18, -1, 1)});
  EXPECT_GRADCHECK(f, {strided_in_range({4, 4}, 19, -1, 1), in_range({4}, 20, -1, 1)});
}

TEST(Gradcheck, gradcheck_masked_fill) {
  const Tensor mask = Tensor::from_vector(std::vector<bool>{false, true, false}, {3, 1});
  Fn f = [mask](const std::vector<Tensor>& in) { return masked_fill(in[0], mask, -5.0) * in[1]; };
  EXPECT_GRADCHECK(f, {in_range({3, 4}, 21, -1, 1), in_range({4}, 22, -1, 1)});
  EXPECT_GRADCHECK(f, {strided_in_range({3, 4}, 23, -1, 1), in_range({3, 4}, 24, -1, 1)});
}

// f64 -> f32 -> f64 loses precision, so the check uses values and a step that f32
// represents exactly (multiples of 1/8, eps 2^-10): the differences are then exact.
TEST(Gradcheck, gradcheck_cast) {
  std::vector<double> v;
  for (int i = 0; i < 12; ++i) v.push_back((i - 6) / 8.0);
  Fn f = [](const std::vector<Tensor>& in) {
    return cast(cast(in[0], DType::f32) * 3.0, DType::f64) * in[1];
  };
  GradcheckOptions opts;
  opts.eps = 1.0 / 1024;
  EXPECT_GRADCHECK(f, {leaf(Tensor::from_vector(v, {3, 4})), in_range({4}, 25, -1, 1)}, opts);
  EXPECT_GRADCHECK(
      f, {leaf(non_contiguous(Tensor::from_vector(v, {4, 3}))), in_range({3}, 26, -1, 1)}, opts);
}

}  // namespace
}  // namespace sp
