// CUDA fused cross-entropy forward and backward against the CPU backend: every float
// dtype, i32 and i64 targets, ignore_index rows, z_loss, vocabularies from 1 to 32128
// (vector and scalar paths), misaligned views, and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "tensor/kernels.h"

namespace sp::testing {
namespace {

const std::vector<DType> kFloatDtypes = {DType::f32, DType::bf16, DType::f16, DType::f64};
const std::vector<Shape> kShapes = {Shape{1, 1},     Shape{3, 7},     Shape{64, 1000},
                                    Shape{37, 4097}, Shape{8, 32128}, Shape{4096, 768}};
constexpr int64_t kIgnore = -100;

DType loss_dtype(DType logits) { return logits == DType::f64 ? DType::f64 : DType::f32; }
double loss_tolerance(DType logits) { return logits == DType::f64 ? 1e-12 : 1e-5; }

// [rows] targets of dtype (i32 or i64) in [0, vocab), about one in five ignored.
Tensor random_targets(int64_t rows, int64_t vocab, DType dtype, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<double> t(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const bool ignored = rows > 1 && gen() % 5 == 0;
    t[r] = ignored ? static_cast<double>(kIgnore) : static_cast<double>(gen() % vocab);
  }
  return Tensor::from_vector(t, Shape{rows}, dtype);
}

struct Forward {
  Tensor loss, lse;
};

Forward cpu_forward(const Tensor& logits, const Tensor& targets, double z) {
  const int64_t rows = logits.size(0);
  Forward f{Tensor::empty(Shape{rows}, loss_dtype(logits.dtype())),
            Tensor::empty(Shape{rows}, loss_dtype(logits.dtype()))};
  cpu_backend().cross_entropy(f.loss, f.lse, kernels::contiguous(logits), targets, kIgnore, z);
  return f;
}

Forward gpu_forward(const Tensor& logits_g, const Tensor& targets_g, double z) {
  const int64_t rows = logits_g.size(0);
  Forward f{poisoned_gpu(Shape{rows}, loss_dtype(logits_g.dtype())),
            poisoned_gpu(Shape{rows}, loss_dtype(logits_g.dtype()))};
  cuda_backend().cross_entropy(f.loss, f.lse, logits_g, targets_g, kIgnore, z);
  return f;
}

Tensor cpu_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                    const Tensor& lse, double z) {
  Tensor dx = Tensor::empty(logits.shape(), logits.dtype());
  cpu_backend().cross_entropy_backward(dx, dloss, kernels::contiguous(logits), targets, lse,
                                       kIgnore, z);
  return dx;
}

Tensor gpu_backward(const Tensor& dloss_g, const Tensor& logits_g, const Tensor& targets_g,
                    const Tensor& lse_g, double z) {
  Tensor dx = poisoned_gpu(logits_g.shape(), logits_g.dtype());
  cuda_backend().cross_entropy_backward(dx, dloss_g, logits_g, targets_g, lse_g, kIgnore, z);
  return dx;
}

TEST(GpuCrossEntropy, ForwardAndBackwardMatchCpu) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 7000;
  for (DType dt : kFloatDtypes) {
    for (const Shape& shape : kShapes) {
      for (DType tt : {DType::i64, DType::i32}) {
        for (double z : {0.0, 1e-2}) {
          SCOPED_TRACE(str_cat(dtype_name(dt), " ", shape, " targets ", dtype_name(tt), " z ", z));
          const Tensor logits = random_cpu(shape, dt, ++seed, 5.0);
          const Tensor targets = random_targets(shape[0], shape[1], tt, ++seed);
          const Tensor logits_g = to_gpu(logits), targets_g = to_gpu(targets);
          const Forward c = cpu_forward(logits, targets, z);
          const Forward g = gpu_forward(logits_g, targets_g, z);
          expect_close(g.loss, c.loss, loss_tolerance(dt));
          expect_close(g.lse, c.lse, loss_tolerance(dt));

          const Tensor dloss = random_cpu(Shape{shape[0]}, loss_dtype(dt), ++seed);
          const Tensor dx_g = gpu_backward(to_gpu(dloss), logits_g, targets_g, to_gpu(c.lse), z);
          const Tensor dx_c = cpu_backward(dloss, logits, targets, c.lse, z);
          if (shape[1] == 1) {
            // One class: dlogits = g (1 + 2 z lse) - g, a cancellation that an ulp (or a fused
            // multiply-add) moves by a large relative amount: compare on the scale of g.
            const std::vector<double> gv = to_cpu(dx_g).to_vector<double>();
            const std::vector<double> cv = dx_c.to_vector<double>();
            const std::vector<double> dl = dloss.to_vector<double>();
            for (size_t i = 0; i < gv.size(); ++i)
              EXPECT_NEAR(gv[i], cv[i], arithmetic_tolerance(dt) * std::abs(dl[i]) + 1e-30);
          } else {
            expect_close(dx_g, dx_c, arithmetic_tolerance(dt));
          }
        }
      }
    }
  }
}

// Ignored rows: loss 0 and lse 0 exactly, and a zero gradient row.
TEST(GpuCrossEntropy, IgnoredRowsAreZero) {
  SP_REQUIRE_CUDA();
  const Tensor logits = random_cpu(Shape{4, 4097}, DType::f32, 7500, 5.0);
  const Tensor targets =
      Tensor::from_vector(std::vector<double>{kIgnore, 3, kIgnore, 4096}, Shape{4}, DType::i64);
  const Forward g = gpu_forward(to_gpu(logits), to_gpu(targets), 1e-3);
  const std::vector<double> loss = to_cpu(g.loss).to_vector<double>();
  const std::vector<double> lse = to_cpu(g.lse).to_vector<double>();
  EXPECT_EQ(loss[0], 0.0);
  EXPECT_EQ(lse[0], 0.0);
  EXPECT_EQ(loss[2], 0.0);
  EXPECT_GT(loss[1], 0.0);
  const Tensor dloss = Tensor::ones(Shape{4}, DType::f32);
  const Tensor dx = gpu_backward(to_gpu(dloss), to_gpu(logits), to_gpu(targets), g.lse, 1e-3);
  for (double v : to_cpu(kernels::select(dx, 0, 2)).to_vector<double>()) ASSERT_EQ(v, 0.0);
  // A non-ignored row's gradient sums to about 2 z lse (softmax sums to 1, minus the one-hot).
  double s = 0;
  for (double v : to_cpu(kernels::select(dx, 0, 3)).to_vector<double>()) s += v;
  EXPECT_NEAR(s, 2e-3 * lse[3], 1e-4);
}

TEST(GpuCrossEntropy, MisalignedViewsMatchCpu) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 8000;
  for (DType dt : {DType::f32, DType::bf16}) {
    for (const Shape& shape : {Shape{6, 1000}, Shape{3, 32128}}) {
      SCOPED_TRACE(str_cat(dtype_name(dt), " ", shape));
      const Tensor logits = random_cpu(shape, dt, ++seed, 5.0);
      const Tensor targets = random_targets(shape[0], shape[1], DType::i64, ++seed);
      const Tensor logits_g = misaligned_gpu(logits), targets_g = to_gpu(targets);
      const Forward c = cpu_forward(logits, targets, 1e-2);
      const Forward g = gpu_forward(logits_g, targets_g, 1e-2);
      expect_close(g.loss, c.loss, 1e-5);
      expect_close(g.lse, c.lse, 1e-5);
      const Tensor dloss = random_cpu(Shape{shape[0]}, DType::f32, ++seed);
      expect_close(gpu_backward(to_gpu(dloss), logits_g, targets_g, to_gpu(c.lse), 1e-2),
                   cpu_backward(dloss, logits, targets, c.lse, 1e-2), arithmetic_tolerance(dt));
    }
  }
}

// Through the dispatching layer (leading dims flattened; i64 targets, so no GPU cast).
TEST(GpuCrossEntropy, KernelsApiMatchesCpu) {
  SP_REQUIRE_CUDA();
  const Tensor logits = random_cpu(Shape{2, 3, 50}, DType::f32, 9000, 4.0);
  const Tensor targets =
      Tensor::from_vector(std::vector<double>{1, 49, kIgnore, 0, 7, 20}, Shape{2, 3}, DType::i64);
  const auto c = kernels::cross_entropy(logits, targets, kIgnore, 1e-3);
  const auto g = kernels::cross_entropy(to_gpu(logits), to_gpu(targets), kIgnore, 1e-3);
  expect_close(g.loss, c.loss, 1e-5);
  expect_close(g.lse, c.lse, 1e-5);
  const Tensor dloss = random_cpu(Shape{2, 3}, DType::f32, 9001);
  expect_close(kernels::cross_entropy_backward(to_gpu(dloss), to_gpu(logits), to_gpu(targets),
                                               g.lse, kIgnore, 1e-3),
               kernels::cross_entropy_backward(dloss, logits, targets, c.lse, kIgnore, 1e-3), 1e-5);
}

TEST(GpuCrossEntropy, RejectsFloatTargetsNamingTheOp) {
  SP_REQUIRE_CUDA();
  const Tensor logits = to_gpu(random_cpu(Shape{2, 5}, DType::f32, 9100));
  const Tensor targets = to_gpu(Tensor::zeros(Shape{2}, DType::f32));
  Tensor loss = Tensor::empty(Shape{2}, DType::f32, Device::cuda(0));
  Tensor lse = Tensor::empty(Shape{2}, DType::f32, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().cross_entropy(loss, lse, logits, targets, kIgnore, 0.0),
                   "[cross_entropy] targets must be i32 or i64");
}

}  // namespace
}  // namespace sp::testing
