#pragma once
// Launchers for the kernels in *.cu files, callable from host C++ code. They launch on
// the current device's stream (cuda_util.h: current_stream()).
#include <cuda_runtime.h>

#include <cstdint>

#include "tensor/tensor.h"

namespace sp::cuda {

// dst[0, n) = pattern, where pattern holds one element of elem_size (1, 2, 4 or 8) bytes
// in its low bytes. Returns the launch's error (cudaSuccess if none).
cudaError_t launch_fill(void* dst, int64_t n, int elem_size, uint64_t pattern);

// The launchers below throw sp::Error naming the op when a launch fails.

// out: [*] any strides on the current device -> every element = pattern (as launch_fill).
void launch_fill_strided(const Tensor& out, uint64_t pattern);

// in -> out: same shape, both on the current device, any dtypes and strides (stride 0 in
// `in` broadcasts). Converts exactly as the CPU backend's copy.
void launch_copy(const Tensor& out, const Tensor& in);

}  // namespace sp::cuda
