// GPU matmul through our op against a bare cuBLASLt plan on the same layouts.
//   gpu_matmul_bf16 / gpu_matmul_f32:   kernels::matmul(a, b) on cuda:0 tensors: the plan
//                                        cache lookup, the output allocation (caching
//                                        allocator) and the launch
//   cublaslt_raw_bf16 / cublaslt_raw_f32: one cuBLASLt plan built once outside the timed
//                                        loop, launched into a preallocated output: the ceiling
// f32 is strict FP32 (CUBLAS_COMPUTE_32F) on both sides. Counter TFLOPs = 2 M N K / time.
// Target: ours >= 0.95x raw at every shape; bf16 4096^3 > 600 TFLOP/s on an H100.
// Args {M, N, K, tA, tB}: tA / tB = 1 pass a / b as transposed views (x.mT() of a dense x).
// Shapes: 4096^3; T5 linears at 8192 tokens, y = x @ W^T (tB = 1): t5-base d_model 768 /
// d_ff 2048 (wi, wo), the 768 x 768 attention projections, the LM head (vocab 32128), t5-xl
// d_model 2048 / d_ff 5120 (wi, wo); one weight gradient dW = dY^T @ X (tA = 1).
#include <cublasLt.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/cuda/gpu_bench.h"
#include "tensor/backend.h"
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// A dense [rows, cols] cuda:0 tensor of uniform [-0.5, 0.5) values, or the transposed view
// of a dense [cols, rows] one. Made on the host and copied: no GPU primitive but copy.
Tensor make_operand(int64_t rows, int64_t cols, bool transposed, DType dt, uint64_t seed) {
  const Shape shape = transposed ? Shape{cols, rows} : Shape{rows, cols};
  Tensor f = Tensor::empty(shape, DType::f32);
  float* p = f.data<float>();
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < f.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<float>(static_cast<double>(s >> 40) / 16777216.0 - 0.5);
  }
  Tensor t = kernels::to_device(kernels::cast(f, dt), Device::cuda(0));
  return transposed ? kernels::transpose(t, 0, 1) : t;
}

struct Operands {
  Tensor a, b;
};

Operands make_operands(const benchmark::State& state, DType dt) {
  return {make_operand(state.range(0), state.range(2), state.range(3) != 0, dt, 1),
          make_operand(state.range(2), state.range(1), state.range(4) != 0, dt, 2)};
}

void set_flops(benchmark::State& state) {
  gpu_bench::set_flops(state, 2.0 * state.range(0) * state.range(1) * state.range(2));
}

void ours(benchmark::State& state, DType dt) {
  if (!gpu_bench::require_gpu(state)) return;
  const Operands x = make_operands(state, dt);
  gpu_bench::time_launches(state, [&] { benchmark::DoNotOptimize(kernels::matmul(x.a, x.b)); });
  set_flops(state);
}

#define SP_LT(expr) SP_CHECK((expr) == CUBLAS_STATUS_SUCCESS, "[bench] ", #expr, " failed")

// The same row-major product as CudaBackend::matmul (out^T = b^T a^T in column-major),
// with cuBLASLt's default preferences: the best its heuristic offers for these layouts.
void raw(benchmark::State& state, DType dt) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const bool ta = state.range(3) != 0, tb = state.range(4) != 0;
  const Operands x = make_operands(state, dt);
  Tensor out = Tensor::empty({M, N}, dt, Device::cuda(0));
  const cudaDataType_t type = dt == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  constexpr size_t kWorkspace = size_t{32} << 20;
  Tensor workspace = Tensor::empty({static_cast<int64_t>(kWorkspace)}, DType::boolean,
                                   Device::cuda(0));

  cuda::DeviceGuard guard(0);
  cublasLtHandle_t handle;
  SP_LT(cublasLtCreate(&handle));
  cublasLtMatmulDesc_t desc;
  SP_LT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLASLt's A is our b
  const cublasOperation_t op_b = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  SP_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  SP_LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  cublasLtMatrixLayout_t la, lb, lc;
  // b [K, N]: row-major is [N, K] column-major (ld N); its transposed view is [K, N] (ld K).
  SP_LT(tb ? cublasLtMatrixLayoutCreate(&la, type, K, N, K)
           : cublasLtMatrixLayoutCreate(&la, type, N, K, N));
  SP_LT(ta ? cublasLtMatrixLayoutCreate(&lb, type, M, K, M)
           : cublasLtMatrixLayoutCreate(&lb, type, K, M, K));
  SP_LT(cublasLtMatrixLayoutCreate(&lc, type, N, M, N));
  cublasLtMatmulPreference_t pref;
  SP_LT(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = kWorkspace;
  SP_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof(ws)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  SP_LT(cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, lc, lc, pref, 1, &result, &found));
  SP_CHECK(found > 0, "[bench] no cuBLASLt algorithm");
  const float alpha = 1.0f, beta = 0.0f;
  cudaStream_t stream = cuda::stream(0);
  const void* pa = cuda::address(x.a);
  const void* pb = cuda::address(x.b);
  void* po = cuda::address(out);
  void* pw = cuda::address(workspace);
  gpu_bench::time_launches(state, [&] {
    SP_LT(cublasLtMatmul(handle, desc, &alpha, pb, la, pa, lb, &beta, po, lc, po, lc,
                         &result.algo, pw, kWorkspace, stream));
  });
  set_flops(state);
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(handle);
}

// Registered shape by shape, ours then raw, so each pair runs back to back at the same
// clocks (a family-after-family order put the first family on a cold GPU).
const int registered = [] {
  const int64_t shapes[][5] = {
      {4096, 4096, 4096, 0, 0},
      {8192, 2048, 768, 0, 1},   // t5-base wi: d_model -> d_ff
      {8192, 768, 2048, 0, 1},   // t5-base wo: d_ff -> d_model
      {8192, 768, 768, 0, 1},    // attention q / k / v / o
      {8192, 32128, 768, 0, 1},  // LM head
      {8192, 5120, 2048, 0, 1},  // t5-xl wi
      {8192, 2048, 5120, 0, 1},  // t5-xl wo
      {2048, 768, 8192, 1, 0},   // t5-base dW of wi: dY^T @ X
  };
  for (const DType dt : {DType::bf16, DType::f32}) {
    const char* suffix = dt == DType::bf16 ? "bf16" : "f32";
    for (const auto& s : shapes) {
      const std::vector<int64_t> args(s, s + 5);
      for (int raw_side = 0; raw_side < 2; ++raw_side) {
        const std::string name = str_cat(raw_side ? "cublaslt_raw_" : "gpu_matmul_", suffix);
        benchmark::RegisterBenchmark(name.c_str(),
                                     [dt, raw_side](benchmark::State& st) {
                                       raw_side ? raw(st, dt) : ours(st, dt);
                                     })
            ->ArgNames({"M", "N", "K", "tA", "tB"})
            ->Args(args)
            ->UseManualTime()
            ->Iterations(1)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  return 0;
}();

}  // namespace
}  // namespace sp
