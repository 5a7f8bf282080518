// CUDA-event timing for the GPU benchmark families (gpu_bench.h).
#include "bench/cuda/gpu_bench.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"
#include "tensor/kernels.h"

namespace sp::gpu_bench {
namespace {

double& last_median_seconds() {
  static double s = 0;
  return s;
}

// Milliseconds for `launches` calls of fn between two events on the stream.
float time_batch(const std::function<void()>& fn, int launches, cudaEvent_t start,
                 cudaEvent_t stop) {
  cudaStream_t s = cuda::stream(0);
  SP_CUDA_CHECK("bench", cudaEventRecord(start, s));
  for (int i = 0; i < launches; ++i) fn();
  SP_CUDA_CHECK("bench", cudaEventRecord(stop, s));
  SP_CUDA_CHECK("bench", cudaEventSynchronize(stop));
  float ms = 0;
  SP_CUDA_CHECK("bench", cudaEventElapsedTime(&ms, start, stop));
  return ms;
}

}  // namespace

bool require_gpu(benchmark::State& state) {
  if (cuda_available() && !cuda_emulated()) return true;
  // The emulated device has no CUDA events to time with, nor GPU kernels worth timing.
  const std::string why = cuda_emulated() ? "CUDA is emulated on the host (SP_EMULATE_CUDA=1)"
                                          : cuda_unavailable_reason();
  state.SkipWithError(("no GPU: " + why).c_str());
  for (auto _ : state) {}
  return false;
}

void time_launches(benchmark::State& state, const std::function<void()>& fn, int samples) {
  cuda::DeviceGuard guard(0);
  cudaEvent_t start, stop;
  SP_CUDA_CHECK("bench", cudaEventCreate(&start));
  SP_CUDA_CHECK("bench", cudaEventCreate(&stop));
  // Warm-up: module load, cuBLASLt plans, allocator cache; then size the batches.
  for (int i = 0; i < 3; ++i) fn();
  cuda::synchronize(0, "bench");
  const float one = std::max(time_batch(fn, 1, start, stop), 1e-4f);
  const int launches = std::clamp(static_cast<int>(0.5f / one) + 1, 1, 10000);
  std::vector<double> per_launch;
  for (int i = 0; i < samples; ++i) {
    per_launch.push_back(time_batch(fn, launches, start, stop) * 1e-3 / launches);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(per_launch.begin(), per_launch.end());
  const double median = per_launch[per_launch.size() / 2];
  last_median_seconds() = median;
  for (auto _ : state) state.SetIterationTime(median);
  state.counters["median_us"] = median * 1e6;
  state.counters["min_us"] = per_launch.front() * 1e6;
  state.counters["max_us"] = per_launch.back() * 1e6;
}

void set_bytes(benchmark::State& state, double bytes) {
  state.counters["GBps"] = bytes / last_median_seconds() * 1e-9;
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["TFLOPs"] = flops / last_median_seconds() * 1e-12;
}

DType bench_dtype(int64_t code) { return code == 1 ? DType::bf16 : DType::f32; }

Tensor random_device(const Shape& shape, DType dtype, uint64_t seed, double scale) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (float& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>((static_cast<double>(s >> 40) / 16777216.0 * 2.0 - 1.0) * scale);
  }
  return kernels::to_device(Tensor::from_vector(v, shape).to(dtype), Device::cuda(0));
}

}  // namespace sp::gpu_bench
