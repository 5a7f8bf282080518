#pragma once
// Timing for the GPU families: CUDA events on the backend's stream around batches of
// launches, after warm-up, and the median over many batches as the figure. Each family
// runs one iteration (->Iterations(1)) whose manual time is that median, so Google
// Benchmark's report and JSON carry exactly the median per launch.
//
//   void my_family(benchmark::State& state) {
//     if (!sp::gpu_bench::require_gpu(state)) return;
//     ... make inputs on Device::cuda(0) ...
//     sp::gpu_bench::time_launches(state, [&] { kernels::softmax(x, -1, false); });
//     sp::gpu_bench::set_bytes(state, 2.0 * x.nbytes());
//   }
//   SP_GPU_BENCHMARK(my_family)->Args({...});
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>

#include "tensor/tensor.h"

namespace sp::gpu_bench {

// False (and the family marked skipped with the reason) when no GPU is usable, or when
// CUDA is only emulated (SP_EMULATE_CUDA=1).
bool require_gpu(benchmark::State& state);

// Runs fn (which launches work on cuda:0's stream) a few times to warm up, then times
// batches of launches with CUDA events: each batch long enough (>= 0.5 ms) that the event
// resolution does not matter, `samples` batches in all. Sets the iteration's manual time
// to the median time per launch and the counters "median_us", "min_us", "max_us".
void time_launches(benchmark::State& state, const std::function<void()>& fn, int samples = 31);

// Counters from the last time_launches: "GBps" for the minimum bytes a launch must move
// (each input read once, each output written once), "TFLOPs" for its flops.
void set_bytes(benchmark::State& state, double bytes);
void set_flops(benchmark::State& state, double flops);

// The dtype a family's dtype argument names: 1 = bf16, otherwise f32.
DType bench_dtype(int64_t code);

// A cuda:0 tensor of dtype with values uniform in [-scale, scale) from a seeded host LCG.
Tensor random_device(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0);

}  // namespace sp::gpu_bench

#define SP_GPU_BENCHMARK(fn) \
  BENCHMARK(fn)->UseManualTime()->Iterations(1)->Unit(benchmark::kMicrosecond)
