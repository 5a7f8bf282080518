// Elementwise ops against the memory-bandwidth references of the same run. All are
// memory-bound (a gelu is ~30 flops per 8 bytes), so the figure is GB/s of the minimum
// bytes moved, and the target is at least half of copy_f32's bandwidth above L2 sizes.
//   memcpy_f32: std::memcpy of n floats, the ceiling (reads n*4, writes n*4)
//   copy_f32:   kernels::copy_ into a preallocated tensor (reads n*4, writes n*4)
//   gelu:       sp::gelu(x), tanh form (T5's gelu_new), f32 (reads n*4, writes n*4)
//   gelu_erf:   sp::gelu(x, GeluApprox::none), f32 (reads n*4, writes n*4)
//   add:        sp::add(a, b), f32, same shapes (reads 2*n*4, writes n*4)
//   add_bf16, mul_bf16, gelu_bf16: the same in bf16, as a bf16 backbone runs them (reads and
//               writes 2 bytes per element); mul_bf16 is the gated-GELU product
//   gelu_backward, gelu_backward_bf16: kernels::activation_backward(gelu_tanh, dy, x), the
//               backward of T5's gated GELU (reads dy and x, writes dx: 12 or 6 bytes per element)
//   dropout, dropout_bf16: kernels::dropout(x, 0.1, state), Philox random numbers included
//               (reads and writes 4 or 2 bytes per element)
//   add_bf16_bias: attention scores [8, 6, 356, 356] + a position bias [1, 6, 356, 356],
//               broadcast over the batch (t5-small's encoder; bytes: scores in and out, once)
// Sizes 1<<16 (L2-resident), 1<<22 (16 MiB), 1<<24 (64 MiB, beyond L3).
#include <benchmark/benchmark.h>

#include <cstring>

#include "autograd/ops.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

void set_bandwidth(benchmark::State& state, double bytes) {
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void memcpy_f32(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5);
  Tensor out = Tensor::zeros({n});
  for (auto _ : state) {
    std::memcpy(out.data_ptr(), x.data_ptr(), static_cast<size_t>(n) * 4);
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 8.0 * n);
}

void copy_f32(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5);
  Tensor out = Tensor::zeros({n});
  for (auto _ : state) {
    kernels::copy_(out, x);
    benchmark::ClobberMemory();
  }
  set_bandwidth(state, 8.0 * n);
}

void gelu_tanh(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5);
  for (auto _ : state) {
    Tensor y = gelu(x, GeluApprox::tanh);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 8.0 * n);
}

void gelu_erf(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5);
  for (auto _ : state) {
    Tensor y = gelu(x, GeluApprox::none);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 8.0 * n);
}

void add_f32(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor a = Tensor::full({n}, 0.5), b = Tensor::full({n}, 0.25);
  for (auto _ : state) {
    Tensor y = add(a, b);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 12.0 * n);
}

Tensor bf16_full(const Shape& shape, double v) { return Tensor::full(shape, v).to(DType::bf16); }

// add or mul on two bf16 vectors of n.
void binary_bf16(benchmark::State& state, Tensor (*op)(const Tensor&, const Tensor&)) {
  const int64_t n = state.range(0);
  const Tensor a = bf16_full({n}, 0.5), b = bf16_full({n}, 0.25);
  for (auto _ : state) {
    Tensor y = op(a, b);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 6.0 * n);
}

void gelu_bf16(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Tensor x = bf16_full({n}, 0.5);
  for (auto _ : state) {
    Tensor y = gelu(x, GeluApprox::tanh);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 4.0 * n);
}

// dx = dy * gelu_tanh'(x) on n elements of dtype (f32 or bf16).
void gelu_backward(benchmark::State& state, DType dtype) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5).to(dtype), dy = Tensor::full({n}, 0.25).to(dtype);
  for (auto _ : state) {
    Tensor dx = kernels::activation_backward(ActivationGrad::gelu_tanh, dy, x);
    benchmark::DoNotOptimize(dx.data_ptr());
  }
  set_bandwidth(state, 3.0 * static_cast<double>(dtype_size(dtype)) * n);
}

// Dropout with p = 0.1 (T5's rate) on n elements of dtype (f32 or bf16).
void dropout(benchmark::State& state, DType dtype) {
  const int64_t n = state.range(0);
  const Tensor x = Tensor::full({n}, 0.5).to(dtype);
  uint64_t offset = 0;
  for (auto _ : state) {
    Tensor y = kernels::dropout(x, 0.1, PhiloxState{1234, offset++});
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 2.0 * static_cast<double>(dtype_size(dtype)) * n);
}

void add_bf16_bias(benchmark::State& state) {
  const Tensor scores = bf16_full({8, 6, 356, 356}, 0.5), bias = bf16_full({1, 6, 356, 356}, 0.25);
  for (auto _ : state) {
    Tensor y = add(scores, bias);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  set_bandwidth(state, 4.0 * scores.numel());
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {int64_t{1} << 16, int64_t{1} << 22, int64_t{1} << 24}) b->Args({n});
  b->UseRealTime();
}

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
BENCHMARK_CAPTURE(binary_bf16, add, static_cast<BinaryFn>(add))->Name("add_bf16")->Apply(sizes);
BENCHMARK_CAPTURE(binary_bf16, mul, static_cast<BinaryFn>(mul))->Name("mul_bf16")->Apply(sizes);
BENCHMARK_CAPTURE(gelu_backward, f32, DType::f32)->Name("gelu_backward")->Apply(sizes);
BENCHMARK_CAPTURE(gelu_backward, bf16, DType::bf16)->Name("gelu_backward_bf16")->Apply(sizes);
BENCHMARK_CAPTURE(dropout, f32, DType::f32)->Name("dropout")->Apply(sizes);
BENCHMARK_CAPTURE(dropout, bf16, DType::bf16)->Name("dropout_bf16")->Apply(sizes);

}  // namespace
}  // namespace sp

BENCHMARK(sp::memcpy_f32)->Name("memcpy_f32")->Apply(sp::sizes);
BENCHMARK(sp::copy_f32)->Name("copy_f32")->Apply(sp::sizes);
BENCHMARK(sp::gelu_tanh)->Name("gelu")->Apply(sp::sizes);
BENCHMARK(sp::gelu_erf)->Name("gelu_erf")->Apply(sp::sizes);
BENCHMARK(sp::add_f32)->Name("add")->Apply(sp::sizes);
BENCHMARK(sp::gelu_bf16)->Name("gelu_bf16")->Apply(sp::sizes);
BENCHMARK(sp::add_bf16_bias)->Name("add_bf16_bias")->UseRealTime();
