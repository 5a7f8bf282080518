// GPU elementwise and copy families against the device's own copy bandwidth.
//
// gpu_copy (cudaMemcpyAsync device -> device, bytes read + written) is the reference the
// others are judged by: a memory-bound kernel should reach >= 70% of its GBps at sizes well
// past the 50 MB L2. Args {dtype, rows, cols}: dtype 0 = f32, 1 = bf16; every family runs
// a ~2^28-byte size and the T5 activation 8192 x 2048. Inputs are random (host LCG, then
// uploaded), outputs preallocated, so a launch is exactly one kernel.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "bench/cuda/gpu_bench.h"
#include "tensor/backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// The reference: n bytes device -> device with cudaMemcpyAsync; GBps counts 2n.
void gpu_copy(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const int64_t n = state.range(0) * state.range(1) * state.range(2);  // bytes
  const Tensor src = gpu_bench::random_device(Shape{n / 4}, DType::f32, 1, 2.0);
  Tensor dst = Tensor::empty(src.shape(), DType::f32, Device::cuda(0));
  const cudaStream_t s = cuda::stream(0);
  gpu_bench::time_launches(state, [&] {
    SP_CUDA_CHECK("bench",
                  cudaMemcpyAsync(dst.storage()->data(), src.storage()->data(),
                                  static_cast<size_t>(src.nbytes()), cudaMemcpyDeviceToDevice, s));
  });
  gpu_bench::set_bytes(state, 2.0 * static_cast<double>(src.nbytes()));
}

// copy_ with a cast f32 -> bf16 (the kernel path): reads 4 bytes, writes 2 per element.
void gpu_copy_kernel(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const Shape shape{state.range(1), state.range(2)};
  const Tensor src = gpu_bench::random_device(shape, DType::f32, 2, 2.0);
  Tensor dst = Tensor::empty(shape, DType::bf16, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { kernels::copy_(dst, src); });
  gpu_bench::set_bytes(state, static_cast<double>(src.nbytes() + dst.nbytes()));
}

// gelu_tanh: one read, one write.
void gpu_unary(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const Shape shape{state.range(1), state.range(2)};
  const Tensor x = gpu_bench::random_device(shape, dt, 3, 2.0);
  Tensor out = Tensor::empty(shape, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { cuda_backend().unary(UnaryOp::gelu_tanh, out, x, {}); });
  gpu_bench::set_bytes(state, 2.0 * static_cast<double>(x.nbytes()));
}

// mul of two [rows, cols] tensors: two reads, one write.
void gpu_binary(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const Shape shape{state.range(1), state.range(2)};
  const Tensor a = gpu_bench::random_device(shape, dt, 4, 2.0),
               b = gpu_bench::random_device(shape, dt, 5, 2.0);
  Tensor out = Tensor::empty(shape, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { cuda_backend().binary(BinaryOp::mul, out, a, b); });
  gpu_bench::set_bytes(state, 3.0 * static_cast<double>(a.nbytes()));
}

// [rows, cols] * [cols] (a weight row broadcast down the rows): one big read, one write.
void gpu_binary_broadcast(benchmark::State& state) {
  if (!gpu_bench::require_gpu(state)) return;
  const DType dt = gpu_bench::bench_dtype(state.range(0));
  const Shape shape{state.range(1), state.range(2)};
  const Tensor a = gpu_bench::random_device(shape, dt, 6, 2.0);
  const Tensor w = gpu_bench::random_device(Shape{state.range(2)}, dt, 7, 2.0);
  const Tensor wb = kernels::expand(w, shape);
  Tensor out = Tensor::empty(shape, dt, Device::cuda(0));
  gpu_bench::time_launches(state, [&] { cuda_backend().binary(BinaryOp::mul, out, a, wb); });
  gpu_bench::set_bytes(state,
                       2.0 * static_cast<double>(a.nbytes()) + static_cast<double>(w.nbytes()));
}

// {dtype, rows, cols}: 2^26 elements (256 MiB in f32, 128 MiB in bf16) and a T5
// activation, 8192 tokens x 2048.
void elementwise_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dtype", "rows", "cols"});
  for (int64_t dt : {0, 1}) {
    b->Args({dt, 16384, 4096});
    b->Args({dt, 8192, 2048});
  }
}

// The copy reference at the same byte counts as the f32 and bf16 cases above.
void copy_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"bytes_per_elem", "rows", "cols"});
  for (int64_t bytes : {4, 2}) {
    b->Args({bytes, 16384, 4096});
    b->Args({bytes, 8192, 2048});
  }
}

void copy_kernel_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dtype", "rows", "cols"});
  b->Args({0, 16384, 4096});
  b->Args({0, 8192, 2048});
}

SP_GPU_BENCHMARK(gpu_copy)->Apply(copy_sizes);
SP_GPU_BENCHMARK(gpu_copy_kernel)->Apply(copy_kernel_sizes);
SP_GPU_BENCHMARK(gpu_unary)->Apply(elementwise_sizes);
SP_GPU_BENCHMARK(gpu_binary)->Apply(elementwise_sizes);
SP_GPU_BENCHMARK(gpu_binary_broadcast)->Apply(elementwise_sizes);

}  // namespace
}  // namespace sp
