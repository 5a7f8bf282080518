// Fills on CUDA. The host converts the value to the dtype first, so one kernel per element
// width serves all dtypes. Contiguous outputs: a grid-stride store loop (cudaMemsetAsync
// for 1-byte elements); strided ones: the elementwise loop with no inputs.
#include <algorithm>

#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/elementwise_loops.cuh"

namespace sp::cuda {
namespace {

// dst: [n] contiguous -> every element = value.
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
  fill_kernel<W><<<grid_for(n, kThreads), kThreads, 0, current_stream()>>>(
      static_cast<W*>(dst), n, static_cast<W>(pattern));
  return cudaGetLastError();
}

// Operand-free elementwise functor: every element = value.
template <typename W>
struct FillFn {
  W value;
  __device__ W operator()() const { return value; }
};

}  // namespace

cudaError_t launch_fill(void* dst, int64_t n, int elem_size, uint64_t pattern) {
  if (n <= 0) return cudaSuccess;
  switch (elem_size) {
    case 1:
      return cudaMemsetAsync(dst, static_cast<int>(pattern & 0xff), static_cast<size_t>(n),
                             current_stream());
    case 2: return launch<uint16_t>(dst, n, pattern);
    case 4: return launch<uint32_t>(dst, n, pattern);
    case 8: return launch<uint64_t>(dst, n, pattern);
    default: return cudaErrorInvalidValue;
  }
}

// out: [*] any strides -> every element = pattern.
void launch_fill_strided(const Tensor& out, uint64_t pattern) {
  if (out.numel() == 0) return;
  switch (out.element_size()) {
    case 1:
      return launch_elementwise<uint8_t>("fill", FillFn<uint8_t>{static_cast<uint8_t>(pattern)},
                                         out);
    case 2:
      return launch_elementwise<uint16_t>(
          "fill", FillFn<uint16_t>{static_cast<uint16_t>(pattern)}, out);
    case 4:
      return launch_elementwise<uint32_t>(
          "fill", FillFn<uint32_t>{static_cast<uint32_t>(pattern)}, out);
    case 8: return launch_elementwise<uint64_t>("fill", FillFn<uint64_t>{pattern}, out);
    default: fail(str_cat("[fill] unexpected element size ", out.element_size()));
  }
}

}  // namespace sp::cuda
