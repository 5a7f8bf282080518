// RMS norm forward and fused backward. Memory-bound: the figure is GB/s of the minimum
// bytes moved, to be read beside copy_f32 (read + write of one f32 tensor) from the same
// run (--benchmark_filter='copy_f32|rms_norm'); the target is at least half of copy_f32's
// bandwidth above L2 sizes. 4096 x 1024 and 16384 x 1024 match copy_f32/4194304 and
// copy_f32/16777216 element for element.
//   forward:  reads x [R, D] and w [D], writes out [R, D] and rstd [R]
//   backward: reads dy, x [R, D], w [D], rstd [R], writes dx [R, D] and dw [D]
#include <benchmark/benchmark.h>

#include "tensor/kernels.h"

namespace sp {
namespace {

// Args: rows, D, dtype (0: f32, 1: bf16 for x, w and out).
DType bench_dtype(int64_t code) { return code == 1 ? DType::bf16 : DType::f32; }

Tensor bench_input(const Shape& shape, DType dt, double value) {
  return Tensor::full(shape, value, dt);
}

void rms_norm_forward(benchmark::State& state) {
  const int64_t rows = state.range(0), d = state.range(1);
  const DType dt = bench_dtype(state.range(2));
  const Tensor x = bench_input({rows, d}, dt, 0.5);
  const Tensor w = bench_input({d}, dt, 1.0);
  for (auto _ : state) {
    kernels::RmsNormResult r = kernels::rms_norm(x, w, 1e-6);
    benchmark::DoNotOptimize(r.out.data_ptr());
  }
  const double bytes =
      static_cast<double>(2 * rows * d * dtype_size(dt) + d * dtype_size(dt) + rows * 4);
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(dtype_name(dt));
}

void rms_norm_backward(benchmark::State& state) {
  const int64_t rows = state.range(0), d = state.range(1);
  const DType dt = bench_dtype(state.range(2));
  const Tensor x = bench_input({rows, d}, dt, 0.5);
  const Tensor w = bench_input({d}, dt, 1.0);
  const Tensor dy = bench_input({rows, d}, dt, 0.25);
  const Tensor rstd = kernels::rms_norm(x, w, 1e-6).rstd;
  for (auto _ : state) {
    kernels::RmsNormGrads g = kernels::rms_norm_backward(dy, x, w, rstd, true, true);
    benchmark::DoNotOptimize(g.dx.data_ptr());
  }
  const double bytes =
      static_cast<double>(3 * rows * d * dtype_size(dt) + 2 * d * dtype_size(dt) + rows * 4);
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(dtype_name(dt));
}

void norm_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "D", "bf16"});
  b->Args({2848, 512, 0})->Args({2848, 768, 0})->Args({4096, 1024, 0})->Args({16384, 1024, 0});
  b->Args({2848, 512, 1});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

}  // namespace
}  // namespace sp

BENCHMARK(sp::rms_norm_forward)->Name("rms_norm")->Apply(sp::norm_sizes);
BENCHMARK(sp::rms_norm_backward)->Name("rms_norm_backward")->Apply(sp::norm_sizes);
