// Elementwise kernels and ops: values against libm in double, the fast f32 math against
// libm at many points, layouts (strided, broadcast, parallel chunks inside rows), integer
// and bool dtypes, error messages, and the gradients that need exact checks (ties).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "autograd/ops.h"
#include "tensor/cpu/elementwise_math.h"
#include "tensor/cpu/loops.h"
#include "tensor/kernels.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;
using testing::test_tensor;

// --- references, in double, written independently of the kernels -------------------------
double ref_unary(UnaryOp op, double x, UnaryParams p) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return 1.0 / std::sqrt(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::relu: return x > 0 ? x : 0.0;
    case UnaryOp::gelu_tanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::silu: return x / (1.0 + std::exp(-x));
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::reciprocal: return 1.0 / x;
    case UnaryOp::pow: return std::pow(x, p.a);
    case UnaryOp::clamp: return std::min(std::max(x, p.a), p.b);
    case UnaryOp::affine: return x * p.a + p.b;
  }
  return 0;
}

struct UnaryCase {
  UnaryOp op;
  UnaryParams p;
  double scale, shift;  // inputs: uniform in [shift - scale, shift + scale)
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {UnaryOp::neg, {}, 3, 0},
      {UnaryOp::exp, {}, 10, 0},
      {UnaryOp::log, {}, 4, 4.5},
      {UnaryOp::sqrt, {}, 4, 4.5},
      {UnaryOp::rsqrt, {}, 4, 4.5},
      {UnaryOp::tanh, {}, 4, 0},
      {UnaryOp::sigmoid, {}, 8, 0},
      {UnaryOp::relu, {}, 2, 0},
      {UnaryOp::gelu_tanh, {}, 5, 0},
      {UnaryOp::gelu_erf, {}, 5, 0},
      {UnaryOp::silu, {}, 6, 0},
      {UnaryOp::abs, {}, 2, 0},
      {UnaryOp::square, {}, 3, 0},
      {UnaryOp::reciprocal, {}, 1, 2},
      {UnaryOp::pow, {2.5, 0}, 2, 2.5},
      {UnaryOp::pow, {3, 0}, 2, 0},
      {UnaryOp::pow, {-0.5, 0}, 2, 2.5},
      {UnaryOp::pow, {0, 0}, 2, 0},
      {UnaryOp::clamp, {-0.5, 0.25}, 1, 0},
      {UnaryOp::affine, {-1.5, 0.25}, 2, 0},
  };
  return cases;
}

// Relative tolerance (absolute below 1) per dtype: bf16 keeps 8 mantissa bits.
double tolerance(DType dt) {
  switch (dt) {
    case DType::f64: return 1e-12;
    case DType::f32: return 2e-6;
    default: return 8e-3;
  }
}

TEST(Elementwise, UnaryMatchesLibmEveryDtype) {
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    for (const UnaryCase& c : unary_cases()) {
      // 37 values: an odd length leaves a vector tail.
      const Tensor x = test_tensor({37}, 11, dt, c.scale, c.shift);
      const Tensor y = kernels::unary(c.op, x, c.p);
      EXPECT_EQ(y.dtype(), dt);
      EXPECT_EQ(y.shape(), x.shape());
      std::vector<double> expected;
      for (double v : x.to_vector<double>()) expected.push_back(ref_unary(c.op, v, c.p));
      SCOPED_TRACE(::testing::Message()
                   << "op " << static_cast<int>(c.op) << " " << dtype_name(dt));
      expect_values(y, expected, dt == DType::f16 ? 2e-3 : tolerance(dt));
    }
  }
}

TEST(Elementwise, GeluTanhIsHfGeluNew) {
  // Values of 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and of the erf form.
  const Tensor x = Tensor::from_vector(std::vector<float>{1, -1, 3, -3, 0.5f});
  expect_values(gelu(x),
                {0.8411919906082768, -0.15880800939172324, 2.996362607918227,
                 -0.0036373920817729943, 0.34571400982514394},
                1e-6);
  expect_values(gelu(x, GeluApprox::none),
                {0.8413447460685429, -0.15865525393145707, 2.99595030590511, -0.00404969409489031,
                 0.34573123063700656},
                1e-6);
}

// Max error in ulps of the float result against a double reference, over n points.
template <typename F, typename G>
double max_ulp(F f, G ref, float lo, float hi, int n, double abs_floor = 0) {
  double worst = 0;
  for (int i = 0; i <= n; ++i) {
    const float x = static_cast<float>(lo + (static_cast<double>(hi) - lo) * i / n);
    const double r = ref(static_cast<double>(x));
    const float got = f(x);
    if (std::fabs(got - r) <= abs_floor) continue;
    const float rf = static_cast<float>(r);
    const double ulp = rf == 0 ? std::numeric_limits<float>::denorm_min()
                               : std::nextafter(std::fabs(rf), INFINITY) - std::fabs(rf);
    worst = std::max(worst, std::fabs(got - r) / ulp);
  }
  return worst;
}

TEST(Elementwise, FastMathMatchesLibm) {
  namespace em = cpu::emath;
  const int n = 200000;
  auto fexp = [](float x) { return em::exp(x); };
  auto dexp = [](double x) { return std::exp(x); };
  EXPECT_LE(max_ulp(fexp, dexp, -103.0f, 88.7f, n), 1.5);
  EXPECT_LE(max_ulp(fexp, dexp, -1.0f, 1.0f, n), 1.5);
  auto ftanh = [](float x) { return em::tanh(x); };
  auto dtanh = [](double x) { return std::tanh(x); };
  EXPECT_LE(max_ulp(ftanh, dtanh, -12.0f, 12.0f, n), 2.0);
  EXPECT_LE(max_ulp(ftanh, dtanh, -1e-3f, 1e-3f, n), 1.0);
  EXPECT_LE(max_ulp([](float x) { return em::sigmoid(x); },
                    [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -100.0f, 40.0f, n),
            3.0);
  EXPECT_LE(max_ulp([](float x) { return em::erf(x); }, [](double x) { return std::erf(x); }, -6.0f,
                    6.0f, n),
            8.0);
  // gelu: the double reference itself cancels for very negative x, so below 1e-7
  // absolute error counts as exact.
  EXPECT_LE(max_ulp([](float x) { return em::gelu_tanh(x); },
                    [](double x) {
                      return 0.5 * x *
                             (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
                    },
                    -10.0f, 10.0f, n, 1e-7),
            4.0);
  // Special values.
  EXPECT_TRUE(std::isnan(em::exp(NAN)));
  EXPECT_TRUE(std::isnan(em::tanh(NAN)));
  EXPECT_TRUE(std::isnan(em::sigmoid(NAN)));
  EXPECT_EQ(em::exp(-INFINITY), 0.0f);
  EXPECT_EQ(em::exp(INFINITY), INFINITY);
  EXPECT_EQ(em::exp(89.0f), INFINITY);
  EXPECT_EQ(em::exp(0.0f), 1.0f);
  EXPECT_EQ(em::tanh(INFINITY), 1.0f);
  EXPECT_EQ(em::tanh(-INFINITY), -1.0f);
  EXPECT_EQ(em::sigmoid(-INFINITY), 0.0f);
  EXPECT_EQ(em::sigmoid(INFINITY), 1.0f);
  EXPECT_EQ(em::erf(INFINITY), 1.0f);
  EXPECT_GT(em::exp(-100.0f), 0.0f);  // a denormal, not flushed
}

TEST(Elementwise, UnaryNanPropagates) {
  const Tensor x = Tensor::from_vector(std::vector<float>{NAN});
  for (UnaryOp op : {UnaryOp::exp, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::relu,
                     UnaryOp::gelu_tanh, UnaryOp::gelu_erf, UnaryOp::silu, UnaryOp::clamp})
    EXPECT_TRUE(std::isnan(kernels::unary(op, x, {-1, 1}).item<float>())) << static_cast<int>(op);
}

TEST(Elementwise, OddUnaryOpsKeepTheSignOfZero) {
  // tanh, like libm's (the f64 path) and CUDA's tanhf, maps -0 to -0 in every dtype.
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const Tensor x = Tensor::from_vector(std::vector<float>{-0.0f, 0.0f, -0.25f}, {3}, dt);
    for (UnaryOp op : {UnaryOp::tanh, UnaryOp::neg, UnaryOp::gelu_tanh, UnaryOp::silu}) {
      const std::vector<double> v = kernels::unary(op, x).to_vector<double>();
      const bool flips = op == UnaryOp::neg;
      EXPECT_TRUE(v[0] == 0 && std::signbit(v[0]) != flips)
          << "op " << static_cast<int>(op) << " " << dtype_name(dt) << " of -0 gave " << v[0];
      EXPECT_TRUE(v[1] == 0 && std::signbit(v[1]) == flips)
          << "op " << static_cast<int>(op) << " " << dtype_name(dt);
    }
  }
  EXPECT_TRUE(std::signbit(cpu::emath::tanh(-0.0f)));
  EXPECT_EQ(cpu::emath::tanh(-0.25f), -cpu::emath::tanh(0.25f));
}

TEST(Elementwise, UnaryOnStridedAndBroadcastInputs) {
  // A transposed view: out is contiguous in the view's logical order.
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  expect_values(kernels::unary(UnaryOp::square, kernels::transpose(x, 0, 1)),
                {1, 16, 4, 25, 9, 36});
  // A stride-0 broadcast and a step-2 slice.
  expect_values(
      kernels::unary(UnaryOp::neg, kernels::expand(kernels::slice(x, 1, 0, 3, 2), {3, 2, 2})),
      {-1, -3, -4, -6, -1, -3, -4, -6, -1, -3, -4, -6});
  // A bf16 view with an offset.
  const Tensor b = Tensor::from_vector(std::vector<float>{-1, 2, -3, 4}, {4}, DType::bf16);
  expect_values(kernels::unary(UnaryOp::relu, kernels::slice(b, 0, 1, 4)), {2, 0, 4});
}

TEST(Elementwise, ParallelChunksSplitRows) {
  // Enough elements for parallel_for; rows of odd length so thread ranges begin mid-row.
  const int64_t rows = 3, cols = 40001;
  const Tensor a = test_tensor({rows, cols}, 3, DType::f32);
  const Tensor b = test_tensor({cols}, 4, DType::f32);
  const Tensor c = test_tensor({rows, 1}, 5, DType::f32);
  const Tensor sum = kernels::binary(BinaryOp::add, a, b);
  const Tensor prod = kernels::binary(
      BinaryOp::mul, kernels::transpose(kernels::contiguous(kernels::transpose(a, 0, 1)), 0, 1), c);
  const Tensor g =
      kernels::unary(UnaryOp::gelu_tanh,
                     kernels::transpose(kernels::contiguous(kernels::transpose(a, 0, 1)), 0, 1));
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>(), vc = c.to_vector<float>();
  const auto vs = sum.to_vector<float>(), vp = prod.to_vector<float>(), vg = g.to_vector<float>();
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      bad += vs[i] != va[i] + vb[j];
      bad += vp[i] != va[i] * vc[r];
      bad += std::fabs(vg[i] - ref_unary(UnaryOp::gelu_tanh, va[i], {})) > 1e-6;
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST(Elementwise, LoopPlanMergesDims) {
  const Tensor out = Tensor::empty({4, 5, 6});
  const Tensor row = kernels::expand(Tensor::empty({6}), {4, 5, 6});
  auto plan = cpu::plan_loop<2>(out.shape(), {cpu::operand(out), cpu::operand(out)});
  EXPECT_EQ(plan.ndim, 1);
  EXPECT_EQ(plan.sizes[0], 120);
  plan = cpu::plan_loop<2>(out.shape(), {cpu::operand(out), cpu::operand(row)});
  ASSERT_EQ(plan.ndim, 2);  // [20, 6]: rows of 6, the broadcast input at stride 1
  EXPECT_EQ(plan.sizes[0], 20);
  EXPECT_EQ(plan.sizes[1], 6);
  EXPECT_EQ(plan.strides[1][0], 0);
  EXPECT_EQ(plan.strides[1][1], 1);
}

TEST(Elementwise, ActivationBackwardMatchesDerivative) {
  const std::vector<std::pair<ActivationGrad, UnaryOp>> ops = {
      {ActivationGrad::relu, UnaryOp::relu},
      {ActivationGrad::gelu_tanh, UnaryOp::gelu_tanh},
      {ActivationGrad::gelu_erf, UnaryOp::gelu_erf},
      {ActivationGrad::silu, UnaryOp::silu}};
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (auto [grad_op, op] : ops) {
      const Tensor x = test_tensor({5, 7}, 21, dt, 4.0, 0.1);
      const Tensor dy = test_tensor({5, 7}, 22, dt);
      const Tensor dx = kernels::activation_backward(grad_op, dy, x);
      const auto vx = x.to_vector<double>(), vdy = dy.to_vector<double>();
      std::vector<double> expected;
      for (size_t i = 0; i < vx.size(); ++i) {
        const double h = 1e-5;  // central difference of the double reference
        const double d = (ref_unary(op, vx[i] + h, {}) - ref_unary(op, vx[i] - h, {})) / (2 * h);
        expected.push_back(vdy[i] * d);
      }
      SCOPED_TRACE(::testing::Message() << "op " << static_cast<int>(op) << " " << dtype_name(dt));
      expect_values(dx, expected, dt == DType::bf16 ? 8e-3 : 1e-6);
    }
  }
}

TEST(Elementwise, BinaryBroadcastsEveryPattern) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor row = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  const Tensor col = Tensor::from_vector(std::vector<float>{100, 200}, {2, 1});
  expect_values(kernels::binary(BinaryOp::add, a, row), {11, 22, 33, 14, 25, 36});
  expect_values(kernels::binary(BinaryOp::sub, row, a), {9, 18, 27, 6, 15, 24});
  expect_values(kernels::binary(BinaryOp::mul, a, col), {100, 200, 300, 800, 1000, 1200});
  expect_values(kernels::binary(BinaryOp::div, col, a), {100, 50, 100 / 3.0, 50, 40, 200 / 6.0});
  // Outer product shape: [2, 1] with [3] -> [2, 3].
  expect_values(kernels::binary(BinaryOp::add, col, row), {110, 120, 130, 210, 220, 230});
  // A 0-d scalar and a transposed operand.
  expect_values(kernels::binary(BinaryOp::mul, Tensor::scalar(2.0), kernels::transpose(a, 0, 1)),
                {2, 8, 4, 10, 6, 12});
  EXPECT_EQ(kernels::binary(BinaryOp::add, a, row).shape(), (Shape{2, 3}));
  // Empty broadcast.
  EXPECT_EQ(kernels::binary(BinaryOp::add, Tensor::empty({0, 3}), row).shape(), (Shape{0, 3}));
}

TEST(Elementwise, BinaryDtypes) {
  const std::vector<double> va = {1.5, -2, 3, 0.25}, vb = {0.5, 4, -3, 0.25};
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const Tensor a = Tensor::from_vector(va, {4}, dt), b = Tensor::from_vector(vb, {4}, dt);
    expect_values(kernels::binary(BinaryOp::add, a, b), {2, 2, 0, 0.5});
    expect_values(kernels::binary(BinaryOp::mul, a, b), {0.75, -8, -9, 0.0625});
    expect_values(kernels::binary(BinaryOp::div, a, b), {3, -0.5, -1, 1});
    expect_values(kernels::binary(BinaryOp::maximum, a, b), {1.5, 4, 3, 0.25});
    expect_values(kernels::binary(BinaryOp::minimum, a, b), {0.5, -2, -3, 0.25});
    const Tensor lt = kernels::binary(BinaryOp::lt, a, b);
    EXPECT_EQ(lt.dtype(), DType::boolean);
    EXPECT_EQ(lt.to_vector<int>(), (std::vector<int>{0, 1, 0, 0}));
    EXPECT_EQ(kernels::binary(BinaryOp::ge, a, b).to_vector<int>(), (std::vector<int>{1, 0, 1, 1}));
    EXPECT_EQ(kernels::binary(BinaryOp::eq, a, b).to_vector<int>(), (std::vector<int>{0, 0, 0, 1}));
  }
  // bf16 results are rounded to nearest even: 1 + 2^-8 + 2^-9 rounds up, not down.
  const Tensor one = Tensor::full({3}, 1.0, DType::bf16);
  const Tensor tiny = Tensor::full({3}, 1.0 / 256 + 1.0 / 512, DType::bf16);
  expect_values(kernels::binary(BinaryOp::add, one, tiny), {1.0078125, 1.0078125, 1.0078125}, 0);
}

TEST(Elementwise, BinaryIntegersAndBool) {
  const Tensor a = Tensor::from_vector(std::vector<int64_t>{5, -3, 7}, {3});
  const Tensor b = Tensor::from_vector(std::vector<int64_t>{2, 4, 7}, {3});
  EXPECT_EQ(kernels::binary(BinaryOp::add, a, b).to_vector<int64_t>(),
            (std::vector<int64_t>{7, 1, 14}));
  EXPECT_EQ(kernels::binary(BinaryOp::sub, a, b).to_vector<int64_t>(),
            (std::vector<int64_t>{3, -7, 0}));
  EXPECT_EQ(kernels::binary(BinaryOp::mul, a, b).to_vector<int64_t>(),
            (std::vector<int64_t>{10, -12, 49}));
  EXPECT_EQ(kernels::binary(BinaryOp::maximum, a, b).to_vector<int64_t>(),
            (std::vector<int64_t>{5, 4, 7}));
  EXPECT_EQ(kernels::binary(BinaryOp::ne, a, b).to_vector<int>(), (std::vector<int>{1, 1, 0}));
  // i32 wraps around instead of overflowing.
  const Tensor big = Tensor::from_vector(std::vector<int32_t>{2147483647, -2147483647 - 1}, {2});
  const Tensor one = Tensor::from_vector(std::vector<int32_t>{1, 1}, {2});
  EXPECT_EQ(kernels::binary(BinaryOp::add, big, one).to_vector<int32_t>(),
            (std::vector<int32_t>{-2147483647 - 1, -2147483647}));
  EXPECT_EQ(kernels::binary(BinaryOp::minimum, big, one).to_vector<int32_t>(),
            (std::vector<int32_t>{1, -2147483647 - 1}));
  // Scalars at the ends of the i32 range are representable, and so exact.
  EXPECT_EQ(kernels::binary_scalar(BinaryOp::eq, big, -2147483648.0).to_vector<int>(),
            (std::vector<int>{0, 1}));
  EXPECT_EQ(kernels::binary_scalar(BinaryOp::eq, big, 2147483647.0).to_vector<int>(),
            (std::vector<int>{1, 0}));
  EXPECT_THROW_MSG(kernels::binary_scalar(BinaryOp::eq, big, 2147483648.0),
                   "is not representable in i32");
  EXPECT_THROW_MSG(kernels::binary_scalar(BinaryOp::eq, big, -2147483649.0),
                   "is not representable in i32");
  // Masks: comparisons on bool.
  const Tensor t = Tensor::from_vector(std::vector<bool>{true, true, false, false}, {4});
  const Tensor u = Tensor::from_vector(std::vector<bool>{true, false, true, false}, {4});
  EXPECT_EQ(kernels::binary(BinaryOp::eq, t, u).to_vector<int>(), (std::vector<int>{1, 0, 0, 1}));
  EXPECT_EQ(kernels::binary(BinaryOp::gt, t, u).to_vector<int>(), (std::vector<int>{0, 1, 0, 0}));
  EXPECT_EQ(kernels::binary(BinaryOp::le, t, u).to_vector<int>(), (std::vector<int>{1, 0, 1, 1}));
}

TEST(Elementwise, MaximumMinimumPropagateNan) {
  const Tensor a = Tensor::from_vector(std::vector<float>{NAN, 1, 2});
  const Tensor b = Tensor::from_vector(std::vector<float>{1, NAN, 3});
  for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
    const auto v = kernels::binary(op, a, b).to_vector<float>();
    EXPECT_TRUE(std::isnan(v[0]));
    EXPECT_TRUE(std::isnan(v[1]));
    EXPECT_EQ(v[2], op == BinaryOp::maximum ? 3.0f : 2.0f);
  }
}

TEST(Elementwise, BinaryScalar) {
  // bf16 x * 0.1 is computed in f32 with 0.1 unrounded: 3 * 0.1 = 0.3 -> bf16(0.3).
  const Tensor x = Tensor::from_vector(std::vector<float>{3, 10}, {2}, DType::bf16);
  expect_values(kernels::binary_scalar(BinaryOp::mul, x, 0.1),
                {static_cast<float>(bf16(0.3f)), 1.0}, 0);
  expect_values(kernels::binary_scalar(BinaryOp::sub, x, 1), {2, 9}, 0);
  expect_values(kernels::binary_scalar(BinaryOp::div, x, 4), {0.75, 2.5}, 0);
  expect_values(kernels::binary_scalar(BinaryOp::maximum, x, 5), {5, 10}, 0);
  EXPECT_EQ(kernels::binary_scalar(BinaryOp::gt, x, 5).to_vector<int>(), (std::vector<int>{0, 1}));
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{0, 3, -100}, {3});
  EXPECT_EQ(kernels::binary_scalar(BinaryOp::ne, ids, -100).to_vector<int>(),
            (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(kernels::binary_scalar(BinaryOp::add, ids, 2).to_vector<int64_t>(),
            (std::vector<int64_t>{2, 5, -98}));
  // Operator sugar from the autograd ops.
  expect_values(1.0 - Tensor::from_vector(std::vector<float>{0.25f, 2}), {0.75, -1});
  expect_values(Tensor::from_vector(std::vector<float>{1, 2}) / 4.0, {0.25, 0.5});
}

TEST(Elementwise, BinaryScalarKeepsTheSignOfZero) {
  // x * s and x / s round as the product does: -0 * 1 = -0 and 0 * -1 = -0, as in PyTorch.
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const Tensor x = Tensor::from_vector(std::vector<float>{-0.0f, 0.0f, -2.0f}, {3}, dt);
    for (const Tensor& y : {mul(x, 1.0), x / 1.0, kernels::binary_scalar(BinaryOp::div, x, 1.0)}) {
      const std::vector<double> v = y.to_vector<double>();
      EXPECT_TRUE(v[0] == 0 && std::signbit(v[0])) << dtype_name(dt) << " " << v[0];
      EXPECT_TRUE(v[1] == 0 && !std::signbit(v[1])) << dtype_name(dt);
      EXPECT_EQ(v[2], -2.0);
    }
    const std::vector<double> n = mul(x, -1.0).to_vector<double>();
    EXPECT_TRUE(n[0] == 0 && !std::signbit(n[0])) << dtype_name(dt);
    EXPECT_TRUE(n[1] == 0 && std::signbit(n[1])) << dtype_name(dt);
    EXPECT_EQ(n[2], 2.0);
  }
}

TEST(Elementwise, Where) {
  const Tensor cond = Tensor::from_vector(std::vector<bool>{true, false, true}, {3});
  const Tensor a = Tensor::from_vector(std::vector<float>{1, 2}, {2, 1});
  const Tensor b = Tensor::from_vector(std::vector<float>{-1, -2, -3}, {3});
  expect_values(kernels::where(cond, a, b), {1, -2, 1, 2, -2, 2});
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{7, 8, 9}, {3});
  EXPECT_EQ(kernels::where(cond, ids, Tensor::scalar(0, DType::i64)).to_vector<int64_t>(),
            (std::vector<int64_t>{7, 0, 9}));
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::bf16);
  expect_values(masked_fill(x, cond, -1e9), {-1e9, 2, -1e9, -1e9, 5, -1e9}, 1e-2);
}

TEST(Elementwise, Errors) {
  const Tensor a = Tensor::zeros({2, 3});
  EXPECT_THROW_MSG(kernels::binary(BinaryOp::add, a, Tensor::zeros({3}, DType::bf16)),
                   "[add] dtype mismatch: a is [2, 3] f32, b is [3] bf16");
  EXPECT_THROW_MSG(a + Tensor::zeros({4}), "[add] shapes do not broadcast: [2, 3] and [4]");
  EXPECT_THROW_MSG(kernels::binary(BinaryOp::div, Tensor::zeros({2}, DType::i32),
                                   Tensor::zeros({2}, DType::i32)),
                   "[div] unsupported dtype i32: expected a floating dtype");
  const Tensor flags = Tensor::zeros({2}, DType::boolean);
  EXPECT_THROW_MSG(kernels::binary(BinaryOp::add, flags, flags), "[add] unsupported dtype bool");
  EXPECT_THROW_MSG(exp(Tensor::zeros({2}, DType::i64)), "[exp] unsupported dtype i64");
  EXPECT_THROW_MSG(gelu(Tensor::zeros({2}, DType::i32)), "[gelu] unsupported dtype i32");
  EXPECT_THROW_MSG(kernels::where(a, a, a), "[where] cond must be bool, got [2, 3] f32");
  EXPECT_THROW_MSG(kernels::where(flags, Tensor::zeros({2}), Tensor::zeros({2}, DType::f64)),
                   "[where] dtype mismatch: a is [2] f32, b is [2] f64");
  EXPECT_THROW_MSG(kernels::binary_scalar(BinaryOp::lt, Tensor::zeros({2}, DType::i64), 2.5),
                   "[lt] scalar 2.5 is not representable in i64");
  EXPECT_THROW_MSG(masked_fill(Tensor::zeros({3}), Tensor::zeros({2, 3}, DType::boolean), 0),
                   "[masked_fill] mask [2, 3] bool does not broadcast to x [3] f32");
  EXPECT_THROW_MSG(clamp(a, 1, 0), "[clamp] lo 1 is above hi 0");
  EXPECT_THROW_MSG(kernels::unary(UnaryOp::clamp, a, {1, 0}), "[clamp] lo 1 is above hi 0");
  EXPECT_THROW_MSG(kernels::activation_backward(ActivationGrad::relu, a, Tensor::zeros({3, 2})),
                   "[relu_backward] shapes differ: dy is [2, 3] f32, x is [3, 2] f32");
}

// Gradients whose exact values central differences cannot check (kinks and ties).
TEST(Elementwise, MaximumTiesSplitTheGradient) {
  const Tensor a = leaf(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}));
  const Tensor b = leaf(Tensor::from_vector(std::vector<double>{2}, {1}));
  sum(maximum(a, b)).backward();
  expect_values(a.grad(), {0, 0.5, 1});
  expect_values(b.grad(), {1.5});
  const Tensor c = leaf(Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}));
  const Tensor d = leaf(Tensor::from_vector(std::vector<double>{2, 2, 2}, {3}));
  sum(minimum(c, d)).backward();
  expect_values(c.grad(), {1, 0.5, 0});
  expect_values(d.grad(), {0, 0.5, 1});
}

TEST(Elementwise, KinkGradients) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{-1, 0, 0.5, 1, 2}, {5}));
  sum(clamp(x, 0, 1)).backward();
  expect_values(x.grad(), {0, 1, 1, 1, 0});  // bounds included
  x.zero_grad();
  sum(relu(x)).backward();
  expect_values(x.grad(), {0, 0, 1, 1, 1});
  x.zero_grad();
  sum(abs(x)).backward();
  expect_values(x.grad(), {-1, 0, 1, 1, 1});
  const Tensor y = leaf(Tensor::from_vector(std::vector<double>{0, 2}, {2}));
  sum(pow(y, 0)).backward();
  expect_values(y.grad(), {0, 0});
}

TEST(Elementwise, CastGradientReturnsToInputDtype) {
  const Tensor x = leaf(Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}));
  const Tensor y = cast(x, DType::bf16);
  EXPECT_EQ(y.dtype(), DType::bf16);
  EXPECT_TRUE(y.requires_grad());
  sum(mul(y, 2.0)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  expect_values(x.grad(), {2, 2, 2});
  EXPECT_TRUE(cast(x, DType::f32).is_same(x));
  EXPECT_FALSE(cast(x, DType::i64).requires_grad());
}

TEST(Elementwise, NoGraphWithoutGrad) {
  const Tensor x = Tensor::ones({2});
  EXPECT_FALSE(exp(x).requires_grad());
  const Tensor w = leaf(Tensor::ones({2}));
  EXPECT_TRUE((x * w).requires_grad());
  NoGradGuard guard;
  EXPECT_FALSE((x * w).requires_grad());
}

}  // namespace
}  // namespace sp
