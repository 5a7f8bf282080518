#pragma once
// Error checking and device selection for CUDA runtime calls (host code only).
#include <cuda_runtime.h>

#include "tensor/error.h"

namespace sp::cuda {

// Throws sp::Error "[op] CUDA error cudaErrorX: <cudaGetErrorString> (in <expr>)".
[[noreturn]] void fail_cuda(const char* op, const char* expr, cudaError_t err);

// Makes device the current one for its scope; restores the previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

}  // namespace sp::cuda

// SP_CUDA_CHECK("op", cudaMemcpy(...)) throws naming the op when the call fails.
#define SP_CUDA_CHECK(op, expr)                       \
  do {                                                \
    const cudaError_t sp_cuda_err_ = (expr);          \
    if (sp_cuda_err_ != cudaSuccess) [[unlikely]]     \
      ::sp::cuda::fail_cuda(op, #expr, sp_cuda_err_); \
  } while (0)
