// GPU Philox families: dropout (read x, write y) and random fills (write only).
//
// Judge them by gpu_copy (bench/cuda/elementwise_bench.cpp, cudaMemcpyAsync device ->
// device) from the same run: run with --benchmark_filter='gpu_(dropout|random|copy)'.
// Each Philox block (10 rounds of two 32x32->64 multiplies) yields 4 elements, so dropout
// in bf16 does twice the integer work per byte of f32 and may sit under the copy's GBps.
// Args {dtype, rows, cols}: dtype 0 = f32, 1 = bf16. Sizes: 2^28 bytes (far past the 50 MB
// L2) and the T5 activation [8 * 512 tokens, 768]. Inputs are random draws on the device;
// outputs are preallocated, so a launch is exactly one kernel.
#include <cstdint>

#include "bench/cuda/gpu_bench.h"
#include "tensor/backend.h"
#include "tensor/kernels.h"

namespace sp {
namespace {


// y = dropout(x, p = 0.1): GBps of x read once plus y written once.
void gpu_dropout(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const Shape shape{state.range(1), state.range(2)};
  Tensor x = Tensor::empty(shape, dt, Device::cuda(0));
  kernels::random_(x, {Distribution::uniform, -2.0, 2.0}, {1, 0});
  Tensor y = Tensor::empty(shape, dt, Device::cuda(0));
  uint64_t offset = 0;
  // A new offset per launch, as in training (each step draws a fresh mask).
  gpu_bench::time_launches(state, [&] { cuda_backend().dropout(y, x, 0.1, {7, offset++}); });
  gpu_bench::set_bytes(state, 2.0 * static_cast<double>(x.nbytes()));
  state.SetLabel(dtype_name(dt));
}

// out ~ U[-1, 1) (kind 0) or N(0, 1) (kind 1) in f32: GBps of out written once.
void gpu_random(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const bool normal = state.range(0) == 1;
  const Shape shape{state.range(1), state.range(2)};
  Tensor out = Tensor::empty(shape, DType::f32, Device::cuda(0));
  const DistributionParams d = normal ? DistributionParams{Distribution::normal, 0.0, 1.0}
                                      : DistributionParams{Distribution::uniform, -1.0, 1.0};
  uint64_t offset = 0;
  gpu_bench::time_launches(state, [&] { cuda_backend().random(out, d, {3, offset++}); });
  gpu_bench::set_bytes(state, static_cast<double>(out.nbytes()));
  state.SetLabel(normal ? "normal f32" : "uniform f32");
}

// 2^28 bytes: f32 [16384, 4096], bf16 [32768, 4096]; T5: [4096, 768].
SP_GPU_BENCHMARK(gpu_dropout)
    ->Args({0, 16384, 4096})
    ->Args({1, 32768, 4096})
    ->Args({0, 4096, 768})
    ->Args({1, 4096, 768});
SP_GPU_BENCHMARK(gpu_random)->Args({0, 16384, 4096})->Args({1, 16384, 4096});

}  // namespace
}  // namespace sp
