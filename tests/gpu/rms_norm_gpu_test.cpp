// CUDA RMS norm forward and backward against the CPU backend: every float dtype of x and
// weight (mixed too), with and without a weight, dx or dweight undefined, rows from 1 to
// 32128 columns (row-resident kernels, and streaming ones with shared-memory and global
// dweight partials), misaligned views,
// reproducible dweight, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "tensor/kernels.h"

namespace sp::testing {
namespace {

// Row-resident kernels with 1, 2 and 4 vectors a thread (768, 2048, 4096 f32 columns;
// 1100 rows: chunks of one and two rows), streaming ones for 4097 (scalar) and 32128 (wider
// than a resident row).
const std::vector<Shape> kShapes = {Shape{1, 1},     Shape{3, 7},      Shape{64, 1000},
                                    Shape{37, 4097}, Shape{8, 32128},  Shape{4096, 768},
                                    Shape{3, 4096},  Shape{1100, 2048}};

// (x dtype, weight dtype); DType::boolean stands for "no weight".
const std::vector<std::pair<DType, DType>> kTypes = {
    {DType::f32, DType::f32},    {DType::bf16, DType::bf16},   {DType::f16, DType::f16},
    {DType::f64, DType::f64},    {DType::f32, DType::bf16},    {DType::bf16, DType::f32},
    {DType::f16, DType::f64},    {DType::f32, DType::boolean}, {DType::bf16, DType::boolean},
    {DType::f64, DType::boolean}};

constexpr double kEps = 1e-6;

bool has_weight(DType wt) { return wt != DType::boolean; }
DType out_dtype(DType xt, DType wt) { return has_weight(wt) ? wt : xt; }
DType rstd_dtype(DType xt, DType wt) {
  return xt == DType::f64 || wt == DType::f64 ? DType::f64 : DType::f32;
}
// The looser of the tolerances of the dtypes involved.
double tolerance(DType a, DType b) {
  return std::max(arithmetic_tolerance(a), has_weight(b) ? arithmetic_tolerance(b) : 0.0);
}

struct Inputs {
  Tensor x, w, dy, rstd;  // on the CPU; w undefined without a weight
};

Inputs make_inputs(const Shape& shape, DType xt, DType wt, uint64_t seed) {
  Inputs in;
  in.x = random_cpu(shape, xt, seed, 2.0);
  if (has_weight(wt)) in.w = random_cpu(Shape{shape[1]}, wt, seed + 1, 0.5, 1.0);
  in.dy = random_cpu(shape, out_dtype(xt, wt), seed + 2);
  in.rstd = Tensor::empty(Shape{shape[0]}, rstd_dtype(xt, wt));
  Tensor out = Tensor::empty(shape, out_dtype(xt, wt));
  cpu_backend().rms_norm(out, in.rstd, in.x, in.w, kEps);
  return in;
}

Tensor gpu_or_undefined(const Tensor& t) { return t.defined() ? to_gpu(t) : Tensor(); }

// With D = 1, dx = r dn - x r^3 dn x = r dn eps / (x^2 + eps): two nearly equal terms of
// size |r dn| cancel, so its relative error is ill-conditioned (an ulp of r moves it by
// percents). Compared instead with an absolute tolerance on the scale of those terms.
void expect_cancelled_dx_close(const Tensor& dx_g, const Tensor& dx_c, const Inputs& in,
                               double rel_tol) {
  const std::vector<double> g = to_cpu(dx_g).to_vector<double>();
  const std::vector<double> c = dx_c.to_vector<double>();
  const std::vector<double> r = in.rstd.to_vector<double>();
  const std::vector<double> dy = in.dy.to_vector<double>();
  const double w = in.w.defined() ? in.w.to_vector<double>()[0] : 1.0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double scale = std::abs(r[i] * dy[i] * w);
    EXPECT_NEAR(g[i], c[i], rel_tol * scale + 1e-30) << "row " << i;
  }
}

// rms_norm of in on the CPU, and on the GPU of x_g and w_g (in.x and in.w on the device, in
// some layout): outputs and rstd agree.
void expect_forward_matches(const Inputs& in, DType xt, DType wt, const Tensor& x_g,
                            const Tensor& w_g) {
  const Shape& shape = in.x.shape();
  Tensor out_c = Tensor::empty(shape, out_dtype(xt, wt));
  Tensor rstd_c = Tensor::empty(Shape{shape[0]}, rstd_dtype(xt, wt));
  cpu_backend().rms_norm(out_c, rstd_c, in.x, in.w, kEps);
  Tensor out_g = poisoned_gpu(shape, out_dtype(xt, wt));
  Tensor rstd_g = poisoned_gpu(Shape{shape[0]}, rstd_dtype(xt, wt));
  cuda_backend().rms_norm(out_g, rstd_g, x_g, w_g, kEps);
  expect_close(out_g, out_c, tolerance(xt, wt));
  expect_close(rstd_g, rstd_c, arithmetic_tolerance(rstd_dtype(xt, wt)));
}

TEST(GpuRmsNorm, ForwardMatchesCpuForEveryDtypeAndShape) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 1000;
  for (const auto& [xt, wt] : kTypes) {
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(str_cat("x ", dtype_name(xt), " w ", has_weight(wt) ? dtype_name(wt) : "none",
                           " ", shape));
      const Inputs in = make_inputs(shape, xt, wt, seed += 3);
      expect_forward_matches(in, xt, wt, to_gpu(in.x), gpu_or_undefined(in.w));
    }
  }
}

// need_dx / need_dweight: both, dx only, dweight only (and dx only without a weight).
TEST(GpuRmsNorm, BackwardMatchesCpuForEveryDtypeShapeAndGradient) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 2000;
  for (const auto& [xt, wt] : kTypes) {
    for (const Shape& shape : kShapes) {
      const Inputs in = make_inputs(shape, xt, wt, seed += 3);
      const std::vector<std::pair<bool, bool>> wants =
          has_weight(wt)
              ? std::vector<std::pair<bool, bool>>{{true, true}, {true, false}, {false, true}}
              : std::vector<std::pair<bool, bool>>{{true, false}};
      for (const auto& [need_dx, need_dw] : wants) {
        SCOPED_TRACE(str_cat("x ", dtype_name(xt), " w ", has_weight(wt) ? dtype_name(wt) : "none",
                             " ", shape, " dx ", need_dx, " dw ", need_dw));
        Tensor dx_c = need_dx ? Tensor::empty(shape, xt) : Tensor();
        Tensor dw_c = need_dw ? Tensor::empty(Shape{shape[1]}, wt) : Tensor();
        cpu_backend().rms_norm_backward(dx_c, dw_c, in.dy, in.x, in.w, in.rstd);
        Tensor dx_g = need_dx ? poisoned_gpu(shape, xt) : Tensor();
        Tensor dw_g = need_dw ? poisoned_gpu(Shape{shape[1]}, wt) : Tensor();
        cuda_backend().rms_norm_backward(dx_g, dw_g, to_gpu(in.dy), to_gpu(in.x),
                                         gpu_or_undefined(in.w), to_gpu(in.rstd));
        if (need_dx && shape[1] == 1) {
          expect_cancelled_dx_close(dx_g, dx_c, in, tolerance(xt, wt));
        } else if (need_dx) {
          expect_close(dx_g, dx_c, tolerance(xt, wt));
        }
        if (need_dw) expect_close(dw_g, dw_c, tolerance(xt, wt));
      }
    }
  }
}

TEST(GpuRmsNorm, MisalignedViewsMatchCpu) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 3000;
  for (const auto& [xt, wt] :
       {std::pair{DType::f32, DType::f32}, std::pair{DType::bf16, DType::bf16},
        std::pair{DType::f32, DType::bf16}}) {
    for (const Shape& shape : {Shape{5, 64}, Shape{7, 768}, Shape{3, 4097}}) {
      SCOPED_TRACE(str_cat("x ", dtype_name(xt), " w ", dtype_name(wt), " ", shape));
      const Inputs in = make_inputs(shape, xt, wt, seed += 3);
      expect_forward_matches(in, xt, wt, misaligned_gpu(in.x), misaligned_gpu(in.w));

      Tensor dx_c = Tensor::empty(shape, xt), dw_c = Tensor::empty(Shape{shape[1]}, wt);
      cpu_backend().rms_norm_backward(dx_c, dw_c, in.dy, in.x, in.w, in.rstd);
      Tensor dx_g = poisoned_gpu(shape, xt), dw_g = poisoned_gpu(Shape{shape[1]}, wt);
      cuda_backend().rms_norm_backward(dx_g, dw_g, misaligned_gpu(in.dy), misaligned_gpu(in.x),
                                       misaligned_gpu(in.w), to_gpu(in.rstd));
      expect_close(dx_g, dx_c, tolerance(xt, wt));
      expect_close(dw_g, dw_c, tolerance(xt, wt));
    }
  }
}

// dweight comes from a fixed two-stage reduction: the same bits on every run.
TEST(GpuRmsNorm, DweightIsReproducible) {
  SP_REQUIRE_CUDA();
  for (const Shape& shape : {Shape{4096, 768}, Shape{1100, 2048}, Shape{8, 32128}}) {
    const Inputs in = make_inputs(shape, DType::f32, DType::f32, 4000);
    const Tensor dy = to_gpu(in.dy), x = to_gpu(in.x), w = to_gpu(in.w), r = to_gpu(in.rstd);
    Tensor dx1 = poisoned_gpu(shape, DType::f32), dx2 = poisoned_gpu(shape, DType::f32);
    Tensor dw1 = poisoned_gpu(Shape{shape[1]}, DType::f32);
    Tensor dw2 = poisoned_gpu(Shape{shape[1]}, DType::f32);
    cuda_backend().rms_norm_backward(dx1, dw1, dy, x, w, r);
    cuda_backend().rms_norm_backward(dx2, dw2, dy, x, w, r);
    expect_bitwise(dw1, dw2);
    expect_bitwise(dx1, dx2);
    Tensor none;
    Tensor dw3 = poisoned_gpu(Shape{shape[1]}, DType::f32);
    Tensor dw4 = poisoned_gpu(Shape{shape[1]}, DType::f32);
    cuda_backend().rms_norm_backward(none, dw3, dy, x, w, r);
    cuda_backend().rms_norm_backward(none, dw4, dy, x, w, r);
    expect_bitwise(dw3, dw4);
  }
}

// Through the dispatching layer: a 3-d input, and a zero-row input (dweight zeroed).
TEST(GpuRmsNorm, KernelsApiMatchesCpu) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_cpu(Shape{2, 5, 96}, DType::f32, 5000);
  const Tensor w = random_cpu(Shape{96}, DType::f32, 5001, 0.5, 1.0);
  const auto c = kernels::rms_norm(x, w, kEps);
  const auto g = kernels::rms_norm(to_gpu(x), to_gpu(w), kEps);
  expect_close(g.out, c.out, 1e-5);
  expect_close(g.rstd, c.rstd, 1e-5);
  const Tensor dy = random_cpu(Shape{2, 5, 96}, DType::f32, 5002);
  const auto gc = kernels::rms_norm_backward(dy, x, w, c.rstd, true, true);
  const auto gg = kernels::rms_norm_backward(to_gpu(dy), to_gpu(x), to_gpu(w), g.rstd, true, true);
  expect_close(gg.dx, gc.dx, 1e-5);
  expect_close(gg.dweight, gc.dweight, 1e-5);

  const Tensor x0 = Tensor::empty(Shape{0, 96}, DType::f32, Device::cuda(0));
  const Tensor r0 = Tensor::empty(Shape{0}, DType::f32, Device::cuda(0));
  Tensor none;
  Tensor dw0 = poisoned_gpu(Shape{96}, DType::f32);
  cuda_backend().rms_norm_backward(none, dw0, x0, x0, to_gpu(w), r0);
  expect_bitwise(dw0, Tensor::zeros(Shape{96}, DType::f32));
}

TEST(GpuRmsNorm, RejectsAWrongRstdDtypeNamingTheOp) {
  SP_REQUIRE_REAL_CUDA();
  const Tensor x = to_gpu(random_cpu(Shape{2, 8}, DType::f32, 6000));
  Tensor out = Tensor::empty(Shape{2, 8}, DType::f32, Device::cuda(0));
  Tensor rstd = Tensor::empty(Shape{2}, DType::f64, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().rms_norm(out, rstd, x, Tensor(), kEps),
                   "[rms_norm] rstd must be f32");
}

}  // namespace
}  // namespace sp::testing
