// dst: [n] of 1, 2, 4 or 8-byte elements -> every element set to one bit pattern.
// The host converts the value to the dtype first, so one kernel per width serves all dtypes.
#include <algorithm>

#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/cuda_util.h"

namespace sp::cuda {
namespace {

template <typename W>
__global__ void fill_kernel(W* __restrict__ dst, int64_t n, W value) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    dst[i] = value;
  }
}

template <typename W>
cudaError_t launch(void* dst, int64_t n, uint64_t pattern) {
  constexpr int kThreads = 256;
  // A grid-stride loop: enough blocks to fill every SM several times over, no more.
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 8192);
  fill_kernel<W><<<static_cast<unsigned>(blocks), kThreads, 0, current_stream()>>>(static_cast<W*>(dst), n,
                                                              static_cast<W>(pattern));
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fill(void* dst, int64_t n, int elem_size, uint64_t pattern) {
  if (n <= 0) return cudaSuccess;
  switch (elem_size) {
    case 1: return cudaMemsetAsync(dst, static_cast<int>(pattern & 0xff), static_cast<size_t>(n), current_stream());
    case 2: return launch<uint16_t>(dst, n, pattern);
    case 4: return launch<uint32_t>(dst, n, pattern);
    case 8: return launch<uint64_t>(dst, n, pattern);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sp::cuda
