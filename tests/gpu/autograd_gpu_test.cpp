// Autograd on the GPU: every differentiable op family of autograd/ops/ runs forward and
// backward on CUDA and on the CPU from the same f32 inputs; the outputs and the gradient
// of every floating input must agree (expect_close at 1e-5 relative norm error unless a
// case says why it needs more; bitwise for integer/bool outputs and for dropout, whose
// mask is the same Philox draw on both devices).
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "gpu_test_util.h"

// GCC 12 warns on designated initializers that leave members to their default initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sp {
namespace {

using sp::testing::expect_bitwise;
using sp::testing::expect_close;
using sp::testing::random_cpu;
using sp::testing::to_cpu;
using sp::testing::to_gpu;

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

constexpr double kTol = 1e-5;

// f32 values in [shift - scale, shift + scale).
Tensor rnd(const Shape& shape, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  return random_cpu(shape, DType::f32, seed, scale, shift);
}

// Integer ids in [0, n) of dtype (from the test LCG, so every run draws the same).
Tensor ids(const Shape& shape, int64_t n, uint64_t seed, DType dtype = DType::i64) {
  std::vector<int64_t> v(static_cast<size_t>(shape.numel()));
  const std::vector<double> u = sp::testing::lcg_values(shape.numel(), seed);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = std::min<int64_t>(n - 1, static_cast<int64_t>((u[i] + 1.0) * 0.5 * n));
  return Tensor::from_vector(v, shape, dtype);
}

// A bool mask: true where a random value is above `above`.
Tensor mask(const Shape& shape, uint64_t seed, double above = 0.0) {
  return kernels::binary_scalar(BinaryOp::gt, rnd(shape, seed), above);
}

// Runs fn on CPU leaves made from inputs and on GPU leaves holding the same values, then
// backward from the same random upstream gradient; compares the outputs and the gradient
// of every floating input. Integer and bool inputs go along without gradients.
void check_op(const std::string& what, const Fn& fn, const std::vector<Tensor>& inputs,
              double tol = kTol, bool bitwise = false) {
  SCOPED_TRACE(what);
  std::vector<Tensor> cpu_in, gpu_in;
  for (const Tensor& x : inputs) {
    Tensor c = kernels::clone(x);
    Tensor g = to_gpu(x);
    ASSERT_TRUE(g.device().is_cuda());
    if (is_floating(x.dtype())) {
      c.requires_grad_(true);
      g.requires_grad_(true);
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  const Tensor yc = fn(cpu_in);
  const Tensor yg = fn(gpu_in);
  ASSERT_TRUE(yg.device().is_cuda()) << what << ": the GPU result is on " << yg.device();
  ASSERT_EQ(yg.dtype(), yc.dtype());
  if (!is_floating(yc.dtype()) || bitwise) {
    expect_bitwise(yg, yc);
  } else {
    expect_close(yg, yc, tol);
  }
  if (!yc.requires_grad()) return;
  ASSERT_TRUE(yg.requires_grad()) << what << ": the GPU result lost its graph";
  const Tensor up = random_cpu(yc.shape(), yc.dtype(), 7777, 1.0);
  yc.backward(up);
  yg.backward(to_gpu(up));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!is_floating(inputs[i].dtype())) continue;
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    const Tensor gc = cpu_in[i].grad(), gg = gpu_in[i].grad();
    ASSERT_EQ(gc.defined(), gg.defined());
    if (!gc.defined()) continue;
    EXPECT_TRUE(gg.device().is_cuda()) << "gradient on " << gg.device();
    if (bitwise) {
      expect_bitwise(gg, gc);
    } else {
      expect_close(gg, gc, tol);
    }
  }
}

// --- elementwise --------------------------------------------------------------------------

TEST(AutogradGpu, Unary) {
  SP_REQUIRE_CUDA();
  struct Case {
    const char* name;
    Fn fn;
    bool positive;  // the op needs x > 0
  };
  const std::vector<Case> cases = {
      {"neg", [](const auto& v) { return -v[0]; }, false},
      {"exp", [](const auto& v) { return exp(v[0]); }, false},
      {"log", [](const auto& v) { return log(v[0]); }, true},
      {"sqrt", [](const auto& v) { return sqrt(v[0]); }, true},
      {"rsqrt", [](const auto& v) { return rsqrt(v[0]); }, true},
      {"pow3", [](const auto& v) { return pow(v[0], 3.0); }, false},
      {"pow_half", [](const auto& v) { return pow(v[0], 0.5); }, true},
      {"tanh", [](const auto& v) { return tanh(v[0]); }, false},
      {"sigmoid", [](const auto& v) { return sigmoid(v[0]); }, false},
      {"relu", [](const auto& v) { return relu(v[0]); }, false},
      {"gelu_tanh", [](const auto& v) { return gelu(v[0], GeluApprox::tanh); }, false},
      {"gelu_erf", [](const auto& v) { return gelu(v[0], GeluApprox::none); }, false},
      {"silu", [](const auto& v) { return silu(v[0]); }, false},
      {"abs", [](const auto& v) { return abs(v[0]); }, false},
      {"square", [](const auto& v) { return square(v[0]); }, false},
      {"clamp", [](const auto& v) { return clamp(v[0], -0.5, 0.25); }, false},
      {"affine", [](const auto& v) { return v[0] * 1.5 + 0.25; }, false},
      {"rdiv", [](const auto& v) { return 2.0 - v[0] / 3.0; }, false},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    for (const Shape& shape : {Shape{1}, Shape{3, 1000}, Shape{7, 4097}}) {
      const Tensor x = c.positive ? rnd(shape, ++seed, 1.0, 2.0) : rnd(shape, ++seed, 2.0);
      check_op(std::string(c.name) + " " + shape.str(), c.fn, {x});
    }
  }
  // A few million elements: grid-stride loops and vector paths.
  check_op("gelu_tanh 2048x2048", [](const auto& v) { return gelu(v[0]); },
           {rnd({2048, 2048}, 99, 3.0)});
  check_op("exp 3x1000003", [](const auto& v) { return exp(v[0]); }, {rnd({3, 1000003}, 98)});
}

TEST(AutogradGpu, BinaryBroadcasting) {
  SP_REQUIRE_CUDA();
  struct Case {
    const char* name;
    Fn fn;
  };
  const std::vector<Case> cases = {
      {"add", [](const auto& v) { return v[0] + v[1]; }},
      {"sub", [](const auto& v) { return v[0] - v[1]; }},
      {"mul", [](const auto& v) { return v[0] * v[1]; }},
      {"div", [](const auto& v) { return v[0] / v[1]; }},
      {"maximum", [](const auto& v) { return maximum(v[0], v[1]); }},
      {"minimum", [](const auto& v) { return minimum(v[0], v[1]); }},
  };
  // (a, b) shapes: equal, trailing broadcast, both sides broadcast, a rank-0 operand.
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {Shape{1000}, Shape{1000}},   {Shape{2, 3, 4097}, Shape{4097}}, {Shape{4, 1, 5}, Shape{3, 1}},
      {Shape{5, 7}, Shape{}},       {Shape{1}, Shape{6, 1}},          {Shape{1024, 2048}, Shape{1024, 1}},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    for (const auto& [sa, sb] : shapes) {
      // b stays away from 0 so div is well conditioned; max/min see no ties.
      const Tensor a = rnd(sa, ++seed, 2.0);
      const Tensor b = rnd(sb, ++seed, 1.0, 2.0);
      check_op(std::string(c.name) + " " + sa.str() + " " + sb.str(), c.fn, {a, b});
    }
  }
  // Both operands are leaves that need a gradient through a shared broadcast.
  check_op("a*b+a", [](const auto& v) { return v[0] * v[1] + v[0]; },
           {rnd({8, 1, 33}, 150), rnd({1, 5, 33}, 151)});
}

TEST(AutogradGpu, ComparisonsWhereMaskedFillCast) {
  SP_REQUIRE_CUDA();
  const Tensor a = rnd({6, 1001}, 200), b = rnd({1001}, 201);
  check_op("lt", [](const auto& v) { return lt(v[0], v[1]); }, {a, b});
  check_op("ge", [](const auto& v) { return ge(v[0], v[1]); }, {a, b});
  check_op("eq", [](const auto& v) { return eq(v[0], v[0]); }, {a});
  check_op("ne", [](const auto& v) { return ne(v[0], v[1]); }, {a, b});
  // where with every operand broadcast: cond [4, 1], a [4, 6], b [6].
  check_op("where", [](const auto& v) { return where(v[0], v[1], v[2]); },
           {mask({4, 1}, 202), rnd({4, 6}, 203), rnd({6}, 204)});
  check_op("where 3x4097", [](const auto& v) { return where(v[0], v[1], v[2]); },
           {mask({3, 4097}, 205), rnd({3, 4097}, 206), rnd({3, 4097}, 207)});
  check_op("masked_fill", [](const auto& v) { return masked_fill(v[0], v[1], -1e4); },
           {rnd({5, 300}, 208), mask({1, 300}, 209)});
  // Casts round the same way on both devices: through bf16 and back is exact to compare.
  check_op("cast bf16 round trip", [](const auto& v) { return cast(cast(v[0], DType::bf16), DType::f32) * v[0]; },
           {rnd({3, 4097}, 210, 5.0)});
  check_op("cast f64", [](const auto& v) { return cast(v[0], DType::f64) * 2.0; }, {rnd({1000}, 211)});
}

// --- matmul -------------------------------------------------------------------------------

TEST(AutogradGpu, Matmul) {
  SP_REQUIRE_CUDA();
  const Fn mm = [](const auto& v) { return matmul(v[0], v[1]); };
  check_op("1x1x1", mm, {rnd({1, 1}, 300), rnd({1, 1}, 301)});
  check_op("5x7x3", mm, {rnd({5, 7}, 302), rnd({7, 3}, 303)});
  check_op("64x129x257", mm, {rnd({64, 129}, 304), rnd({129, 257}, 305)});
  check_op("batched 4x[37x19x23]", mm, {rnd({4, 37, 19}, 306), rnd({4, 19, 23}, 307)});
  check_op("broadcast batch [2,1,6,5]x[3,5,4]", mm, {rnd({2, 1, 6, 5}, 308), rnd({3, 5, 4}, 309)});
  check_op("broadcast matrix [3,6,5]x[5,4]", mm, {rnd({3, 6, 5}, 310), rnd({5, 4}, 311)});
  check_op("a transposed", [](const auto& v) { return matmul(v[0].mT(), v[1]); },
           {rnd({19, 37}, 312), rnd({19, 23}, 313)});
  check_op("b transposed", [](const auto& v) { return matmul(v[0], v[1].mT()); },
           {rnd({37, 19}, 314), rnd({23, 19}, 315)});
  check_op("both transposed, batched", [](const auto& v) { return matmul(v[0].mT(), v[1].mT()); },
           {rnd({3, 19, 37}, 316), rnd({3, 23, 19}, 317)});
  check_op("vector x matrix", mm, {rnd({7}, 318), rnd({7, 3}, 319)});
  check_op("matrix x vector", mm, {rnd({5, 7}, 320), rnd({7}, 321)});
  // The attention pattern: [B, H, T, dk] @ [B, H, dk, S] from transposed heads.
  check_op("attention scores", [](const auto& v) {
    const Tensor q = v[0].view({2, 9, 3, 8}).transpose(1, 2);
    const Tensor k = v[1].view({2, 11, 3, 8}).transpose(1, 2);
    return matmul(q, k.mT());
  }, {rnd({2, 9, 24}, 322), rnd({2, 11, 24}, 323)});
  check_op("linear with bias", [](const auto& v) { return linear(v[0], v[1], v[2]); },
           {rnd({2, 9, 16}, 324), rnd({8, 16}, 325), rnd({8}, 326)});
  check_op("linear", [](const auto& v) { return linear(v[0], v[1]); },
           {rnd({300, 768}, 327, 0.5), rnd({2048, 768}, 328, 0.05)});
}

// --- reductions -----------------------------------------------------------------------------

TEST(AutogradGpu, Reductions) {
  SP_REQUIRE_CUDA();
  const Tensor x = rnd({3, 1000, 5}, 400);
  check_op("sum all", [](const auto& v) { return sum(v[0]); }, {x});
  check_op("sum dim 1 keepdim", [](const auto& v) { return sum(v[0], {1}, true); }, {x});
  check_op("sum dims 0,2", [](const auto& v) { return sum(v[0], {0, 2}); }, {x});
  check_op("mean last", [](const auto& v) { return mean(v[0], {-1}); }, {x});
  check_op("mean all", [](const auto& v) { return mean(v[0]); }, {rnd({4097}, 401)});
  check_op("mean of one", [](const auto& v) { return mean(v[0]); }, {rnd({1}, 402)});
  check_op("max dim 1", [](const auto& v) { return max(v[0], 1); }, {x});
  check_op("min dim 0 keepdim", [](const auto& v) { return min(v[0], 0, true); }, {x});
  check_op("max all", [](const auto& v) { return max(v[0]); }, {rnd({7, 4097}, 403)});
  check_op("argmax", [](const auto& v) { return argmax(v[0], -1); }, {x});
  check_op("argmin keepdim", [](const auto& v) { return argmin(v[0], 1, true); }, {x});
  // 4M elements down the rows and across them.
  const Tensor big = rnd({1024, 4096}, 404);
  check_op("sum 1024x4096 last", [](const auto& v) { return sum(v[0], {1}); }, {big});
  check_op("sum 1024x4096 first", [](const auto& v) { return sum(v[0], {0}); }, {big});
  // A non-contiguous input (a transposed view).
  check_op("sum of transposed", [](const auto& v) { return sum(v[0].mT(), {-1}); },
           {rnd({37, 513}, 405)});
}

// --- softmax, rms_norm, cross-entropy -------------------------------------------------------

TEST(AutogradGpu, Softmax) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 500;
  for (const Shape& shape : {Shape{1, 1}, Shape{3, 5, 7}, Shape{8, 4097}, Shape{32, 1000}}) {
    const Tensor x = rnd(shape, ++seed, 4.0);
    check_op("softmax " + shape.str(), [](const auto& v) { return softmax(v[0], -1); }, {x});
    check_op("log_softmax " + shape.str(), [](const auto& v) { return log_softmax(v[0], -1); },
             {x});
  }
  check_op("softmax dim 1", [](const auto& v) { return softmax(v[0], 1); },
           {rnd({3, 5, 7}, 510, 4.0)});
  check_op("log_softmax dim 0", [](const auto& v) { return log_softmax(v[0], 0); },
           {rnd({9, 4}, 511, 4.0)});
  // The attention shape with an additive mask of large negatives, and a T5 vocab row.
  check_op("masked attention", [](const auto& v) { return softmax(v[0] + v[1], -1); },
           {rnd({2, 4, 16, 33}, 512, 3.0), masked_fill(rnd({2, 1, 1, 33}, 513), mask({2, 1, 1, 33}, 514, 0.5), -1e9).detach()});
  check_op("log_softmax 128x32128", [](const auto& v) { return log_softmax(v[0], -1); },
           {rnd({128, 32128}, 515, 5.0)});
}

TEST(AutogradGpu, RmsNorm) {
  SP_REQUIRE_CUDA();
  const Fn f = [](const auto& v) { return rms_norm(v[0], v[1], 1e-6); };
  check_op("3x7x768", f, {rnd({3, 7, 768}, 600, 2.0), rnd({768}, 601, 0.5, 1.0)});
  check_op("5x4097", f, {rnd({5, 4097}, 602, 2.0), rnd({4097}, 603, 0.5, 1.0)});
  check_op("1x1", f, {rnd({1, 1}, 604, 2.0), rnd({1}, 605, 0.5, 1.0)});
  check_op("3x1000 eps 1e-2", [](const auto& v) { return rms_norm(v[0], v[1], 1e-2); },
           {rnd({3, 1000}, 606, 0.1), rnd({1000}, 607, 0.5, 1.0)});
  // dweight sums over 4096 rows: more rounding in a different order, still f32.
  check_op("4096x768", f, {rnd({4096, 768}, 608, 2.0), rnd({768}, 609, 0.5, 1.0)});
  // A frozen weight: only dx.
  check_op("frozen weight", [](const auto& v) { return rms_norm(v[0], v[1].detach(), 1e-6); },
           {rnd({6, 512}, 610, 2.0), rnd({512}, 611, 0.5, 1.0)});
}

// Targets in [0, V) with every `every`-th one set to ignore.
Tensor targets(const Shape& shape, int64_t vocab, uint64_t seed, int64_t ignore, int every,
               DType dtype = DType::i64) {
  std::vector<int64_t> t = ids(shape, vocab, seed).to_vector<int64_t>();
  for (size_t i = 0; i < t.size(); i += every) t[i] = ignore;
  return Tensor::from_vector(t, shape, dtype);
}

TEST(AutogradGpu, CrossEntropy) {
  SP_REQUIRE_CUDA();
  auto ce = [](CrossEntropyOptions o) {
    return Fn([o](const auto& v) { return cross_entropy(v[0], v[1], o); });
  };
  const Tensor logits = rnd({6, 1000}, 700, 4.0);
  const Tensor t = targets({6}, 1000, 701, -100, 4);
  check_op("mean", ce({}), {logits, t});
  check_op("sum", ce({.reduction = Reduction::sum}), {logits, t});
  check_op("none", ce({.reduction = Reduction::none}), {logits, t});
  check_op("z_loss", ce({.z_loss = 1e-4}), {logits, t});
  check_op("ignore index 0", ce({.ignore_index = 0}), {logits, targets({6}, 1000, 702, 0, 3)});
  check_op("i32 targets", ce({.z_loss = 1e-3}),
           {logits, targets({6}, 1000, 703, -100, 5, DType::i32)});
  check_op("all ignored", ce({}), {rnd({3, 17}, 704), targets({3}, 17, 705, -100, 1)});
  check_op("[2,3,37]", ce({.z_loss = 1e-4}), {rnd({2, 3, 37}, 706, 4.0), targets({2, 3}, 37, 707, -100, 4)});
  check_op("4097 classes", ce({}), {rnd({5, 4097}, 708, 4.0), targets({5}, 4097, 709, -100, 7)});
  check_op("T5 head 256x32128", ce({.z_loss = 1e-4}),
           {rnd({256, 32128}, 710, 5.0), targets({256}, 32128, 711, -100, 9)});
}

// --- embedding, indexing, joining ---------------------------------------------------------------

TEST(AutogradGpu, Embedding) {
  SP_REQUIRE_CUDA();
  const Fn f = [](const auto& v) { return embedding(v[0], v[1]); };
  // Repeated ids and both ends of the table: the backward sums duplicates.
  std::vector<int64_t> raw = ids({4, 7}, 50, 800).to_vector<int64_t>();
  raw[0] = 0;
  raw[1] = 49;
  raw[2] = raw[3] = raw[4] = 17;
  const Tensor id64 = Tensor::from_vector(raw, Shape{4, 7});
  check_op("i64 with repeats", f, {rnd({50, 16}, 801), id64});
  check_op("i32", f, {rnd({50, 16}, 802), kernels::cast(id64, DType::i32)});
  check_op("odd width 4097", f, {rnd({9, 4097}, 803), ids({11}, 9, 804)});
  check_op("T5 vocab", f, {rnd({32128, 64}, 805), ids({8, 512}, 32128, 806)});
}

TEST(AutogradGpu, IndexSelectGatherCat) {
  SP_REQUIRE_CUDA();
  const Tensor x = rnd({5, 6, 7}, 900);
  // Duplicates in every index: the backward adds them up.
  const Tensor i0 = Tensor::from_vector(std::vector<int64_t>{4, 0, 4, 2}, Shape{4});
  const Tensor i1 = Tensor::from_vector(std::vector<int64_t>{5, 5, 1}, Shape{3}, DType::i32);
  const Tensor i2 = Tensor::from_vector(std::vector<int64_t>{6, 0, 3, 3, 0, 6, 1, 2}, Shape{8});
  check_op("index_select 0", [](const auto& v) { return index_select(v[0], 0, v[1]); }, {x, i0});
  check_op("index_select 1", [](const auto& v) { return index_select(v[0], 1, v[1]); }, {x, i1});
  check_op("index_select 2", [](const auto& v) { return index_select(v[0], 2, v[1]); }, {x, i2});
  check_op("gather 1", [](const auto& v) { return gather(v[0], 1, v[1]); }, {x, ids({5, 9, 7}, 6, 901)});
  check_op("gather 2", [](const auto& v) { return gather(v[0], 2, v[1]); }, {x, ids({5, 6, 3}, 7, 902)});
  check_op("gather 0", [](const auto& v) { return gather(v[0], 0, v[1]); }, {x, ids({2, 6, 7}, 5, 903)});
  check_op("cat 0", [](const auto& v) { return cat({v[0], v[1], v[2]}, 0); },
           {rnd({2, 5}, 904), rnd({1, 5}, 905), rnd({3, 5}, 906)});
  check_op("cat 1", [](const auto& v) { return cat({v[0], v[1]}, 1); },
           {rnd({3, 4097}, 907), rnd({3, 3}, 908)});
  check_op("stack", [](const auto& v) { return stack({v[0], v[1]}, 1); },
           {rnd({4, 6}, 909), rnd({4, 6}, 910)});
}

// --- views --------------------------------------------------------------------------------------

TEST(AutogradGpu, ViewsAndContiguous) {
  SP_REQUIRE_CUDA();
  const Tensor x = rnd({4, 6, 5}, 1000);
  const Tensor w = rnd({6, 4}, 1001);
  check_op("reshape", [](const auto& v) { return v[0].reshape({6, 20}) * 2.0; }, {x});
  check_op("view", [](const auto& v) { return v[0].view({24, 5}) + 1.0; }, {x});
  check_op("flatten", [](const auto& v) { return v[0].flatten(1) * v[0].flatten(1); }, {x});
  check_op("permute", [](const auto& v) { return v[0].permute({2, 0, 1}).contiguous(); }, {x});
  check_op("transpose * w", [](const auto& v) { return v[0].transpose(0, 1).select(2, 3) * v[1]; },
           {x, w});
  check_op("slice step 2", [](const auto& v) { return v[0].slice(1, 1, 6, 2) * 3.0; }, {x});
  check_op("narrow", [](const auto& v) { return v[0].narrow(2, 1, 3).contiguous(); }, {x});
  check_op("select", [](const auto& v) { return v[0].select(0, 2); }, {x});
  check_op("expand", [](const auto& v) { return v[0].expand({4, 6, 5}) * v[1]; },
           {rnd({1, 6, 1}, 1002), x});
  check_op("squeeze/unsqueeze", [](const auto& v) { return v[0].unsqueeze(1).squeeze(1) * 2.0; },
           {x});
  check_op("squeeze all", [](const auto& v) { return v[0].squeeze() + 1.0; }, {rnd({1, 7, 1}, 1003)});
  check_op("mT then reshape (a copy)", [](const auto& v) { return v[0].mT().reshape({30, 4}); }, {x});
  check_op("to bf16 and back", [](const auto& v) { return v[0].to(DType::bf16).to(DType::f32); },
           {x});
  check_op("clone", [](const auto& v) { return v[0].clone() * v[0]; }, {x});
  check_op("to(cpu) and back inside the graph", [](const auto& v) {
    const Device d = v[0].device();
    return (v[0].to(Device::cpu()) * 2.0).to(d) + v[0];
  }, {x});
}

// --- dropout ------------------------------------------------------------------------------------

TEST(AutogradGpu, DropoutSameStateSameMask) {
  SP_REQUIRE_CUDA();
  // A fresh generator with the same seed for each device: the same Philox state, so the
  // same mask and the same scale, bit for bit, forward and backward.
  for (double p : {0.1, 0.5}) {
    for (const Shape& shape : {Shape{1}, Shape{3, 1000}, Shape{4097}, Shape{1000003}}) {
      check_op("dropout p=" + std::to_string(p) + " " + shape.str(), [p](const auto& v) {
        Generator gen(4242);
        gen.set_state({4242, 17});
        return dropout(v[0], p, true, &gen);
      }, {rnd(shape, 1100)}, kTol, /*bitwise=*/true);
    }
  }
  // Two draws from one generator differ from each other, and agree across devices.
  check_op("two draws", [](const auto& v) {
    Generator gen(7);
    const Tensor a = dropout(v[0], 0.3, true, &gen);
    return a + dropout(v[0], 0.3, true, &gen);
  }, {rnd({5000}, 1101)});
}

// --- errors ---------------------------------------------------------------------------------

TEST(AutogradGpu, MixedDevicesAreErrors) {
  SP_REQUIRE_CUDA();
  const Tensor c = rnd({3, 4}, 1200);
  const Tensor g = to_gpu(c);
  EXPECT_THROW_MSG(add(c, g), "device");
  EXPECT_THROW_MSG(matmul(c, to_gpu(rnd({4, 2}, 1201))), "device");
  EXPECT_THROW_MSG(embedding(to_gpu(rnd({5, 3}, 1202)), ids({2}, 5, 1203)), "different devices");
  EXPECT_THROW_MSG(rms_norm(g, rnd({4}, 1204)), "different devices");
}

}  // namespace
}  // namespace sp
