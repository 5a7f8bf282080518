// unary, activation_backward, binary and where on CUDA against the CPU backend: every op,
// every dtype the CPU takes, contiguous / transposed / broadcast (stride 0) / misaligned
// (offset by one element, so no 16-byte vectors) inputs at sizes 0, 1, 7 and 4097, and
// ~3M elements (the *Large tests) on a subset. Outputs are poisoned first; float results
// within arithmetic_tolerance, integer and bool results bitwise.
#include <string>
#include <vector>

#include "gpu/gpu_test_util.h"

namespace sp::testing {
namespace {

enum class Layout { contiguous, transposed, broadcast, misaligned };

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::transposed: return "transposed";
    case Layout::broadcast: return "broadcast";
    case Layout::misaligned: return "misaligned";
  }
  return "?";
}

// Every layout runs at the small sizes; the *Large tests run ~3M elements (past L2, many
// grid-stride steps) on fewer combinations to keep the suite to seconds.
const std::vector<int64_t> kSmallSizes = {0, 1, 7, 4097};
const std::vector<int64_t> kLargeSizes = {3'000'000};
const std::vector<Layout> kAllLayouts = {Layout::contiguous, Layout::transposed,
                                         Layout::broadcast, Layout::misaligned};
const std::vector<DType> kFloatTypes = {DType::f32, DType::bf16, DType::f16, DType::f64};
const std::vector<DType> kAllTypes = {DType::f32, DType::bf16, DType::f16, DType::f64,
                                      DType::i32, DType::i64,  DType::boolean};

// The logical shape of a test of about n elements: 1-d for the 1-d layouts, [n, 3] or
// [1500, 2000] for the 2-d ones.
Shape shape_for(Layout l, int64_t n) {
  if (l == Layout::contiguous || l == Layout::misaligned) return Shape{n};
  if (n >= 1'000'000) return Shape{1500, n / 1500};
  return Shape{n, n <= 1 ? 1 : 3};
}

// The same values on both devices, viewed with layout l at shape.
struct Pair {
  Tensor cpu, gpu;
};

Pair make_input(Layout l, const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0,
                double shift = 0.0) {
  switch (l) {
    case Layout::contiguous: {
      Tensor base = random_cpu(shape, dtype, seed, scale, shift);
      return {base, to_gpu(base)};
    }
    case Layout::transposed: {
      Tensor base = random_cpu(Shape{shape[1], shape[0]}, dtype, seed, scale, shift);
      return {kernels::transpose(base, 0, 1), kernels::transpose(to_gpu(base), 0, 1)};
    }
    case Layout::broadcast: {  // one row, expanded down the rows with stride 0
      Tensor base = random_cpu(Shape{1, shape[1]}, dtype, seed, scale, shift);
      return {kernels::expand(base, shape), kernels::expand(to_gpu(base), shape)};
    }
    case Layout::misaligned: {
      Tensor base = random_cpu(Shape{shape.numel() + 1}, dtype, seed, scale, shift);
      Tensor g = to_gpu(base);
      return {kernels::view(kernels::slice(base, 0, 1, shape.numel() + 1), shape),
              kernels::view(kernels::slice(g, 0, 1, shape.numel() + 1), shape)};
    }
  }
  return {};
}

void expect_matches(const Tensor& gpu, const Tensor& cpu) {
  if (is_floating(cpu.dtype())) {
    expect_close(gpu, cpu, arithmetic_tolerance(cpu.dtype()));
  } else {
    expect_bitwise(gpu, cpu);
  }
}

std::string where_str(DType dtype, Layout l, const Shape& shape) {
  return std::string(dtype_name(dtype)) + " " + layout_name(l) + " " + shape.str();
}

struct UnaryCase {
  UnaryOp op;
  UnaryParams p;
  bool positive;  // needs inputs > 0 (log, sqrt, ...)
  const char* name;
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {UnaryOp::neg, {}, false, "neg"},
      {UnaryOp::exp, {}, false, "exp"},
      {UnaryOp::log, {}, true, "log"},
      {UnaryOp::sqrt, {}, true, "sqrt"},
      {UnaryOp::rsqrt, {}, true, "rsqrt"},
      {UnaryOp::tanh, {}, false, "tanh"},
      {UnaryOp::sigmoid, {}, false, "sigmoid"},
      {UnaryOp::relu, {}, false, "relu"},
      {UnaryOp::gelu_tanh, {}, false, "gelu_tanh"},
      {UnaryOp::gelu_erf, {}, false, "gelu_erf"},
      {UnaryOp::silu, {}, false, "silu"},
      {UnaryOp::abs, {}, false, "abs"},
      {UnaryOp::square, {}, false, "square"},
      {UnaryOp::reciprocal, {}, true, "reciprocal"},
      {UnaryOp::pow, {2.0, 0}, false, "pow 2"},
      {UnaryOp::pow, {3.0, 0}, false, "pow 3"},
      {UnaryOp::pow, {0.0, 0}, false, "pow 0"},
      {UnaryOp::pow, {1.0, 0}, false, "pow 1"},
      {UnaryOp::pow, {-1.0, 0}, true, "pow -1"},
      {UnaryOp::pow, {0.5, 0}, true, "pow 0.5"},
      {UnaryOp::pow, {-0.5, 0}, true, "pow -0.5"},
      {UnaryOp::pow, {1.7, 0}, true, "pow 1.7"},
      {UnaryOp::clamp, {-0.5, 0.7}, false, "clamp"},
      {UnaryOp::affine, {1.5, -0.25}, false, "affine"},
  };
  return cases;
}

void check_unary(const std::vector<DType>& dtypes, const std::vector<Layout>& layouts,
                 const std::vector<int64_t>& sizes) {
  uint64_t seed = 1;
  for (const UnaryCase& c : unary_cases()) {
    for (DType dtype : dtypes) {
      for (Layout l : layouts) {
        for (int64_t n : sizes) {
          const Shape shape = shape_for(l, n);
          SCOPED_TRACE(std::string(c.name) + " " + where_str(dtype, l, shape));
          const Pair in = c.positive ? make_input(l, shape, dtype, ++seed, 1.0, 1.5)
                                     : make_input(l, shape, dtype, ++seed, 3.0);
          const Tensor ref = kernels::unary(c.op, in.cpu, c.p);
          Tensor out = poisoned_gpu(shape, dtype);
          cuda_backend().unary(c.op, out, in.gpu, c.p);
          expect_matches(out, ref);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST(ElementwiseGpu, UnaryEveryOpDtypeLayout) {
  SP_REQUIRE_CUDA();
  check_unary(kFloatTypes, kAllLayouts, kSmallSizes);
}

TEST(ElementwiseGpu, UnaryEveryOpLarge) {
  SP_REQUIRE_CUDA();
  check_unary({DType::f32, DType::bf16}, {Layout::contiguous, Layout::transposed}, kLargeSizes);
}

// Through the dispatching layer too (it allocates the output), on a 3-d permuted view.
TEST(ElementwiseGpu, UnaryPermutedThroughKernels) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_cpu(Shape{5, 33, 17}, DType::bf16, 7, 2.0);
  const Tensor xc = kernels::permute(x, Shape{2, 0, 1});
  const Tensor xg = kernels::permute(to_gpu(x), Shape{2, 0, 1});
  expect_close(kernels::unary(UnaryOp::gelu_tanh, xg), kernels::unary(UnaryOp::gelu_tanh, xc),
               arithmetic_tolerance(DType::bf16));
}

void check_activation_backward(const std::vector<DType>& dtypes,
                               const std::vector<int64_t>& sizes) {
  const std::pair<ActivationGrad, const char*> ops[] = {{ActivationGrad::relu, "relu"},
                                                        {ActivationGrad::gelu_tanh, "gelu_tanh"},
                                                        {ActivationGrad::gelu_erf, "gelu_erf"},
                                                        {ActivationGrad::silu, "silu"}};
  uint64_t seed = 1000;
  for (const auto& [op, name] : ops) {
    for (DType dtype : dtypes) {
      // The backend takes contiguous operands; misaligned is contiguous at an odd offset.
      for (Layout l : {Layout::contiguous, Layout::misaligned}) {
        for (int64_t n : sizes) {
          const Shape shape = shape_for(l, n);
          SCOPED_TRACE(std::string(name) + " " + where_str(dtype, l, shape));
          const Pair dy = make_input(l, shape, dtype, ++seed, 1.0);
          const Pair x = make_input(l, shape, dtype, ++seed, 4.0);
          const Tensor ref = kernels::activation_backward(op, dy.cpu, x.cpu);
          Tensor dx = poisoned_gpu(shape, dtype);
          cuda_backend().activation_backward(op, dx, dy.gpu, x.gpu);
          expect_matches(dx, ref);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST(ElementwiseGpu, ActivationBackwardEveryOpDtype) {
  SP_REQUIRE_CUDA();
  check_activation_backward(kFloatTypes, kSmallSizes);
}

TEST(ElementwiseGpu, ActivationBackwardLarge) {
  SP_REQUIRE_CUDA();
  check_activation_backward({DType::f32, DType::bf16}, kLargeSizes);
}

// The binary layouts: how a and b are laid out relative to out [rows, cols].
enum class BinaryLayout { contiguous, transposed_a, row_broadcast_b, col_broadcast_b, scalar_b,
                          misaligned };
const std::vector<BinaryLayout> kBinaryLayouts = {
    BinaryLayout::contiguous,      BinaryLayout::transposed_a, BinaryLayout::row_broadcast_b,
    BinaryLayout::col_broadcast_b, BinaryLayout::scalar_b,     BinaryLayout::misaligned};

const char* binary_layout_name(BinaryLayout l) {
  switch (l) {
    case BinaryLayout::contiguous: return "contiguous";
    case BinaryLayout::transposed_a: return "transposed a";
    case BinaryLayout::row_broadcast_b: return "[R, D] op [D]";
    case BinaryLayout::col_broadcast_b: return "[R, D] op [R, 1]";
    case BinaryLayout::scalar_b: return "[R, D] op []";
    case BinaryLayout::misaligned: return "misaligned";
  }
  return "?";
}

// Values for op on dtype: comparisons get small integers (so equal pairs occur), div a
// divisor away from zero, integers large enough that add / mul wrap.
Tensor binary_values(const Shape& shape, DType dtype, uint64_t seed, BinaryOp op, bool divisor) {
  if (is_comparison(op) || dtype == DType::boolean) {
    const Tensor small = kernels::cast(random_cpu(shape, DType::f64, seed, 3.5), DType::i32);
    return kernels::cast(small, dtype);
  }
  if (dtype == DType::i32) return random_cpu(shape, dtype, seed, 2.0e9);
  if (dtype == DType::i64) return random_cpu(shape, dtype, seed, 9.0e18);
  if (divisor) return random_cpu(shape, dtype, seed, 1.0, 2.0);
  return random_cpu(shape, dtype, seed, 3.0);
}

// a, b as (cpu, gpu) pairs expanded to shape [rows, cols] with layout l.
std::pair<Pair, Pair> binary_inputs(BinaryLayout l, const Shape& shape, DType dtype,
                                    uint64_t seed, BinaryOp op) {
  const int64_t rows = shape[0], cols = shape[1];
  auto up = [](const Tensor& t) { return Pair{t, to_gpu(t)}; };
  auto expanded = [&](const Tensor& t) {
    return Pair{kernels::expand(t, shape), kernels::expand(to_gpu(t), shape)};
  };
  Pair a = up(binary_values(shape, dtype, seed, op, false));
  const bool div = op == BinaryOp::div;
  switch (l) {
    case BinaryLayout::contiguous:
      return {a, up(binary_values(shape, dtype, seed + 1, op, div))};
    case BinaryLayout::transposed_a: {
      const Tensor t = binary_values(Shape{cols, rows}, dtype, seed, op, false);
      a = Pair{kernels::transpose(t, 0, 1), kernels::transpose(to_gpu(t), 0, 1)};
      return {a, up(binary_values(shape, dtype, seed + 1, op, div))};
    }
    case BinaryLayout::row_broadcast_b:
      return {a, expanded(binary_values(Shape{1, cols}, dtype, seed + 1, op, div))};
    case BinaryLayout::col_broadcast_b:
      return {a, expanded(binary_values(Shape{rows, 1}, dtype, seed + 1, op, div))};
    case BinaryLayout::scalar_b:
      return {a, expanded(binary_values(Shape{1, 1}, dtype, seed + 1, op, div))};
    case BinaryLayout::misaligned: {
      const Tensor t = binary_values(Shape{shape.numel() + 1}, dtype, seed, op, false);
      const Tensor g = to_gpu(t);
      a = Pair{kernels::view(kernels::slice(t, 0, 1, shape.numel() + 1), shape),
               kernels::view(kernels::slice(g, 0, 1, shape.numel() + 1), shape)};
      return {a, up(binary_values(shape, dtype, seed + 1, op, div))};
    }
  }
  return {};
}

Shape binary_shape(int64_t n) {
  if (n >= 1'000'000) return Shape{1500, n / 1500};
  return Shape{n, n <= 1 ? 1 : 3};
}

void check_binary(const std::vector<DType>& dtypes, const std::vector<BinaryLayout>& layouts,
                  const std::vector<int64_t>& sizes) {
  const std::pair<BinaryOp, const char*> ops[] = {
      {BinaryOp::add, "add"}, {BinaryOp::sub, "sub"}, {BinaryOp::mul, "mul"},
      {BinaryOp::div, "div"}, {BinaryOp::maximum, "maximum"}, {BinaryOp::minimum, "minimum"},
      {BinaryOp::eq, "eq"},   {BinaryOp::ne, "ne"},   {BinaryOp::lt, "lt"},
      {BinaryOp::le, "le"},   {BinaryOp::gt, "gt"},   {BinaryOp::ge, "ge"}};
  uint64_t seed = 5000;
  for (const auto& [op, name] : ops) {
    for (DType dtype : dtypes) {
      if (op == BinaryOp::div && !is_floating(dtype)) continue;  // as the CPU
      if (dtype == DType::boolean && !is_comparison(op)) continue;
      for (BinaryLayout l : layouts) {
        for (int64_t n : sizes) {
          const Shape shape = binary_shape(n);
          SCOPED_TRACE(std::string(name) + " " + dtype_name(dtype) + " " + binary_layout_name(l) +
                       " " + shape.str());
          seed += 2;
          const auto [a, b] = binary_inputs(l, shape, dtype, seed, op);
          const Tensor ref = kernels::binary(op, a.cpu, b.cpu);
          Tensor out = poisoned_gpu(shape, ref.dtype());
          cuda_backend().binary(op, out, a.gpu, b.gpu);
          expect_matches(out, ref);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST(ElementwiseGpu, BinaryEveryOpDtypeLayout) {
  SP_REQUIRE_CUDA();
  check_binary(kAllTypes, kBinaryLayouts, kSmallSizes);
}

TEST(ElementwiseGpu, BinaryEveryOpLarge) {
  SP_REQUIRE_CUDA();
  check_binary({DType::f32, DType::bf16, DType::i64},
               {BinaryLayout::contiguous, BinaryLayout::row_broadcast_b}, kLargeSizes);
}

// [B, T, D] * [D] through the dispatching layer (the T5 pattern) and a scalar op.
TEST(ElementwiseGpu, BinaryBroadcastThroughKernels) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_cpu(Shape{4, 33, 768}, DType::bf16, 11, 2.0);
  const Tensor w = random_cpu(Shape{768}, DType::bf16, 12, 2.0);
  expect_close(kernels::binary(BinaryOp::mul, to_gpu(x), to_gpu(w)),
               kernels::binary(BinaryOp::mul, x, w), arithmetic_tolerance(DType::bf16));
  const Tensor xi = random_cpu(Shape{4097}, DType::i64, 13, 1000.0);
  expect_bitwise(kernels::binary_scalar(BinaryOp::lt, to_gpu(xi), 3.0),
                 kernels::binary_scalar(BinaryOp::lt, xi, 3.0));
}

void check_where(const std::vector<DType>& dtypes, const std::vector<Layout>& layouts,
                 const std::vector<int64_t>& sizes) {
  uint64_t seed = 9000;
  for (DType dtype : dtypes) {
    for (Layout l : layouts) {
      for (int64_t n : sizes) {
        const Shape shape = shape_for(l, n);
        SCOPED_TRACE(where_str(dtype, l, shape));
        const Tensor cond_cpu =
            kernels::binary_scalar(BinaryOp::gt, random_cpu(shape, DType::f32, ++seed), 0.0);
        const Pair cond{cond_cpu, to_gpu(cond_cpu)};
        const Pair a = make_input(l, shape, dtype, ++seed, 100.0);
        const Pair b = make_input(Layout::contiguous, shape, dtype, ++seed, 100.0);
        const Tensor ref = kernels::where(cond.cpu, a.cpu, b.cpu);
        Tensor out = poisoned_gpu(shape, dtype);
        cuda_backend().where(out, cond.gpu, a.gpu, b.gpu);
        expect_bitwise(out, ref);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

TEST(ElementwiseGpu, WhereEveryDtypeLayout) {
  SP_REQUIRE_CUDA();
  check_where(kAllTypes, kAllLayouts, kSmallSizes);
}

TEST(ElementwiseGpu, WhereLarge) {
  SP_REQUIRE_CUDA();
  check_where({DType::f32, DType::bf16}, {Layout::contiguous, Layout::broadcast}, kLargeSizes);
}

// where with every operand broadcast: cond [R, 1], a [D], b scalar, through kernels::where.
TEST(ElementwiseGpu, WhereAllBroadcast) {
  SP_REQUIRE_CUDA();
  const Tensor cond = kernels::binary_scalar(
      BinaryOp::gt, random_cpu(Shape{37, 1}, DType::f32, 21), 0.0);
  const Tensor a = random_cpu(Shape{129}, DType::f32, 22);
  const Tensor b = random_cpu(Shape{}, DType::f32, 23);
  expect_bitwise(kernels::where(to_gpu(cond), to_gpu(a), to_gpu(b)), kernels::where(cond, a, b));
}

TEST(ElementwiseGpu, ErrorsNameTheOp) {
  SP_REQUIRE_REAL_CUDA();
  Backend& be = cuda_backend();
  const Tensor i = to_gpu(Tensor::arange(8, DType::i32));
  Tensor out_i = poisoned_gpu(Shape{8}, DType::i32);
  EXPECT_THROW_MSG(be.unary(UnaryOp::exp, out_i, i, {}), "[unary] unsupported dtype i32");
  EXPECT_THROW_MSG(be.binary(BinaryOp::div, out_i, i, i), "[binary]");
  const Tensor bools = to_gpu(Tensor::zeros(Shape{8}, DType::boolean));
  Tensor out_b = poisoned_gpu(Shape{8}, DType::boolean);
  EXPECT_THROW_MSG(be.binary(BinaryOp::add, out_b, bools, bools),
                   "[binary] arithmetic on bool tensors is not supported");
  const Tensor f = to_gpu(Tensor::zeros(Shape{8}, DType::f32));
  Tensor out_f = poisoned_gpu(Shape{8}, DType::f32);
  EXPECT_THROW_MSG(be.where(out_f, f, f, f), "[where] cond must be bool");
  Tensor out_short = poisoned_gpu(Shape{7}, DType::f32);
  EXPECT_THROW_MSG(be.unary(UnaryOp::neg, out_short, f, {}), "[unary] shapes differ");
  EXPECT_THROW_MSG(be.activation_backward(ActivationGrad::relu, out_f, i, f),
                   "[activation_backward] dtype mismatch");
}

}  // namespace
}  // namespace sp::testing
