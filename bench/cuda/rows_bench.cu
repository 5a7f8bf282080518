// GPU row kernels: softmax, add_softmax, RMS norm, fused cross-entropy. Memory-bound: the
// figure is GBps of the minimum bytes moved (each input read once, each output written
// once), to be read beside gpu_copy's bandwidth from the same run; the target is >= 70% of
// it at the sizes above L2 (50 MB).
//   gpu_softmax:        reads x [R, D], writes y [R, D]
//   gpu_add_softmax:    reads scores [B, H, L, L] and a bias [H, L, L], writes y [B, H, L, L]
//   gpu_rms_norm:       forward reads x [R, D] and w [D], writes y [R, D] and rstd [R];
//                       fwd_bwd adds the backward: reads dy, x [R, D], w [D], rstd [R],
//                       writes dx [R, D] and dw [D]
//   gpu_cross_entropy:  forward reads logits [R, V] and targets [R] (i64), writes loss and
//                       lse [R] (f32); fwd_bwd adds the backward: reads logits, targets,
//                       dloss, lse, writes dlogits [R, V]
// The backends are called directly with outputs allocated once, so the timing holds the
// kernels alone (kernels::cross_entropy copies the targets to the host to check them).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "bench/cuda/gpu_bench.h"
#include "tensor/backend.h"
#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_types.cuh"

namespace sp {
namespace {

// A well-mixed 32-bit hash of i (splitmix64's finaliser).
__device__ __forceinline__ uint32_t mix(uint64_t i) {
  i += 0x9e3779b97f4a7c15ull;
  i = (i ^ (i >> 30)) * 0xbf58476d1ce4e5b9ull;
  i = (i ^ (i >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>((i ^ (i >> 31)) >> 32);
}

// x: [n] -> uniform values in [shift - scale, shift + scale), a fixed function of the index.
template <typename T>
__global__ void random_fill_kernel(T* __restrict__ x, int64_t n, float scale, float shift,
                                   uint64_t seed) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float u = static_cast<float>(mix(i + seed * 0x100000000ull) >> 8) * (1.0f / 16777216.0f);
    x[i] = cuda::store_as<T>((2.0f * u - 1.0f) * scale + shift);
  }
}

// t: [n] -> i64 targets in [0, vocab).
__global__ void random_targets_kernel(int64_t* __restrict__ t, int64_t n, int64_t vocab) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) t[i] = static_cast<int64_t>(mix(i + 77) % static_cast<uint64_t>(vocab));
}

// A CUDA tensor of shape and dtype (f32 or bf16) filled with random values: never zeros.
Tensor random_gpu(const Shape& shape, DType dt, uint64_t seed, float scale = 4.0f,
                  float shift = 0.0f) {
  Tensor t = Tensor::empty(shape, dt, Device::cuda(0));
  const int64_t n = t.numel();
  const unsigned blocks = cuda::grid_for(n, 256);
  if (dt == DType::bf16) {
    random_fill_kernel<<<blocks, 256, 0, cuda::stream(0)>>>(
        static_cast<__nv_bfloat16*>(cuda::address(t)), n, scale, shift, seed);
  } else {
    random_fill_kernel<<<blocks, 256, 0, cuda::stream(0)>>>(static_cast<float*>(cuda::address(t)),
                                                            n, scale, shift, seed);
  }
  SP_CUDA_CHECK_LAUNCH("bench");
  return t;
}

Tensor random_targets_gpu(int64_t rows, int64_t vocab) {
  Tensor t = Tensor::empty(Shape{rows}, DType::i64, Device::cuda(0));
  random_targets_kernel<<<static_cast<unsigned>((rows + 255) / 256), 256, 0, cuda::stream(0)>>>(
      static_cast<int64_t*>(cuda::address(t)), rows, vocab);
  SP_CUDA_CHECK_LAUNCH("bench");
  return t;
}

// Args: rows, cols, dtype (0: f32, 1: bf16), log (0: softmax, 1: log-softmax).
void gpu_softmax(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t rows = state.range(0), cols = state.range(1);
  const DType dt = gpu_bench::bench_dtype(state.range(2));
  const bool log = state.range(3) != 0;
  const Tensor x = random_gpu(Shape{rows, cols}, dt, 1);
  Tensor y = Tensor::empty(Shape{rows, cols}, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { cuda_backend().softmax(y, x, log); });
  gpu_bench::set_bytes(state, 2.0 * static_cast<double>(x.nbytes()));
  state.SetLabel(std::string(dtype_name(dt)) + (log ? " log_softmax" : " softmax"));
}

// Args: rows, cols, dtype (0: f32, 1: bf16); dx from dy and y.
void gpu_softmax_backward(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t rows = state.range(0), cols = state.range(1);
  const DType dt = gpu_bench::bench_dtype(state.range(2));
  const Tensor x = random_gpu(Shape{rows, cols}, dt, 2);
  const Tensor dy = random_gpu(Shape{rows, cols}, dt, 3);
  Tensor y = Tensor::empty(Shape{rows, cols}, dt, Device::cuda(0));
  cuda_backend().softmax(y, x, false);
  Tensor dx = Tensor::empty(Shape{rows, cols}, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { cuda_backend().softmax_backward(dx, dy, y, false); });
  gpu_bench::set_bytes(state, 3.0 * static_cast<double>(x.nbytes()));
  state.SetLabel(std::string(dtype_name(dt)) + " softmax backward");
}

// Args: batch, heads, len, dtype (0: f32, 1: bf16), fused (1: the backend's add_softmax;
// 0: its reference, Backend::add_softmax's binary add then softmax). T5's attention:
// softmax(scores [B, H, L, L] + position bias [1, H, L, L] broadcast over the batch).
void gpu_add_softmax(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t batch = state.range(0), heads = state.range(1), len = state.range(2);
  const DType dt = gpu_bench::bench_dtype(state.range(3));
  const bool fused = state.range(4) != 0;
  const Shape shape{batch, heads, len, len};
  const Tensor x = random_gpu(shape, dt, 4);
  const Tensor bias = random_gpu(Shape{1, heads, len, len}, dt, 5).expand(shape);
  Tensor y = Tensor::empty(shape, dt, Device::cuda(0));
  Backend& backend = cuda_backend();
  gpu_bench::time_launches(state, [&] {
    if (fused) {
      backend.add_softmax(y, x, bias);
    } else {
      backend.Backend::add_softmax(y, x, bias);
    }
  });
  gpu_bench::set_bytes(state, 2.0 * static_cast<double>(x.nbytes()) +
                                  static_cast<double>(bias.numel() / batch * x.element_size()));
  state.SetLabel(std::string(dtype_name(dt)) + (fused ? " fused" : " add then softmax"));
}

// Args: rows, d, dtype of x and w (0: f32, 1: bf16), with_backward (0 or 1).
void gpu_rms_norm(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t rows = state.range(0), d = state.range(1);
  const DType dt = gpu_bench::bench_dtype(state.range(2));
  const bool backward = state.range(3) != 0;
  const Tensor x = random_gpu(Shape{rows, d}, dt, 4, 2.0f);
  const Tensor w = random_gpu(Shape{d}, dt, 5, 0.5f, 1.0f);
  const Tensor dy = random_gpu(Shape{rows, d}, dt, 6);
  Tensor y = Tensor::empty(Shape{rows, d}, dt, Device::cuda(0));
  Tensor rstd = Tensor::empty(Shape{rows}, DType::f32, Device::cuda(0));
  Tensor dx = Tensor::empty(Shape{rows, d}, dt, Device::cuda(0));
  Tensor dw = Tensor::empty(Shape{d}, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] {
    cuda_backend().rms_norm(y, rstd, x, w, 1e-6);
    if (backward) cuda_backend().rms_norm_backward(dx, dw, dy, x, w, rstd);
  });
  const double big = static_cast<double>(x.nbytes()), small = static_cast<double>(w.nbytes());
  const double fwd = 2 * big + small + static_cast<double>(rstd.nbytes());
  const double bwd = 3 * big + 2 * small + static_cast<double>(rstd.nbytes());
  gpu_bench::set_bytes(state, backward ? fwd + bwd : fwd);
  state.SetLabel(std::string(dtype_name(dt)) + (backward ? " forward+backward" : " forward"));
}

// Args: rows, vocab, dtype (0: f32, 1: bf16), with_backward (0 or 1); z_loss 1e-4.
void gpu_cross_entropy(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t rows = state.range(0), vocab = state.range(1);
  const DType dt = gpu_bench::bench_dtype(state.range(2));
  const bool backward = state.range(3) != 0;
  const Tensor logits = random_gpu(Shape{rows, vocab}, dt, 7);
  const Tensor targets = random_targets_gpu(rows, vocab);
  const Tensor dloss = random_gpu(Shape{rows}, DType::f32, 8, 0.5f, 1.0f);
  Tensor loss = Tensor::empty(Shape{rows}, DType::f32, Device::cuda(0));
  Tensor lse = Tensor::empty(Shape{rows}, DType::f32, Device::cuda(0));
  Tensor dlogits = Tensor::empty(Shape{rows, vocab}, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] {
    cuda_backend().cross_entropy(loss, lse, logits, targets, -100, 1e-4);
    if (backward)
      cuda_backend().cross_entropy_backward(dlogits, dloss, logits, targets, lse, -100, 1e-4);
  });
  const double big = static_cast<double>(logits.nbytes());
  const double per_row = static_cast<double>(rows) * (8 + 4 + 4);  // targets, loss, lse
  const double fwd = big + per_row;
  const double bwd = 2 * big + static_cast<double>(rows) * (8 + 4 + 4);  // targets, dloss, lse
  gpu_bench::set_bytes(state, backward ? fwd + bwd : fwd);
  state.SetLabel(std::string(dtype_name(dt)) + (backward ? " forward+backward" : " forward"));
}

// 8 * 8 * 512 rows: batch 8 x heads 8 x 512 queries over 512 keys; 4096 x 32128: the vocab.
SP_GPU_BENCHMARK(gpu_softmax)
    ->ArgNames({"rows", "cols", "bf16", "log"})
    ->Args({32768, 512, 0, 0})
    ->Args({32768, 512, 1, 0})
    ->Args({4096, 32128, 0, 0})
    ->Args({4096, 32128, 1, 0})
    ->Args({4096, 32128, 1, 1});
// t5-base's encoder: batch 8, 12 heads, 512 tokens.
SP_GPU_BENCHMARK(gpu_add_softmax)
    ->ArgNames({"batch", "heads", "len", "bf16", "fused"})
    ->Args({8, 12, 512, 1, 1})
    ->Args({8, 12, 512, 1, 0})
    ->Args({8, 12, 512, 0, 1})
    ->Args({8, 12, 512, 0, 0});
SP_GPU_BENCHMARK(gpu_softmax_backward)
    ->ArgNames({"rows", "cols", "bf16"})
    ->Args({32768, 512, 1})
    ->Args({4096, 32128, 1});
// 8192 x 768: 8 x 1024 tokens of T5-base; 65536 x 4096: far above L2.
SP_GPU_BENCHMARK(gpu_rms_norm)
    ->ArgNames({"rows", "d", "bf16", "bwd"})
    ->Args({8192, 768, 0, 0})
    ->Args({8192, 768, 1, 0})
    ->Args({8192, 768, 1, 1})
    ->Args({65536, 4096, 0, 0})
    ->Args({65536, 4096, 1, 0})
    ->Args({65536, 4096, 0, 1})
    ->Args({65536, 4096, 1, 1});
// 8192 x 32128: 8 x 1024 target tokens over T5's vocabulary.
SP_GPU_BENCHMARK(gpu_cross_entropy)
    ->ArgNames({"rows", "vocab", "bf16", "bwd"})
    ->Args({8192, 32128, 0, 0})
    ->Args({8192, 32128, 1, 0})
    ->Args({8192, 32128, 0, 1})
    ->Args({8192, 32128, 1, 1});

}  // namespace
}  // namespace sp
