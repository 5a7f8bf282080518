#pragma once
// Launchers for the kernels in *.cu files, callable from host C++ code. They launch on
// the current device's default stream and return the launch's error (cudaSuccess if none).
#include <cuda_runtime.h>

#include <cstdint>

namespace sp::cuda {

// dst[0, n) = pattern, where pattern holds one element of elem_size (1, 2, 4 or 8) bytes
// in its low bytes.
cudaError_t launch_fill(void* dst, int64_t n, int elem_size, uint64_t pattern);

}  // namespace sp::cuda
