#pragma once
// Error checking, device selection and the per-device stream for CUDA runtime calls.
#include <cuda_runtime.h>

#include "tensor/error.h"

namespace sp::cuda {

// Throws sp::Error "[op] CUDA error cudaErrorX: <cudaGetErrorString> (in <expr>)".
[[noreturn]] void fail_cuda(const char* op, const char* expr, cudaError_t err);
// Errors after which the CUDA context is lost (an illegal address, a failed launch...):
// every later call fails with them too, so fail_cuda stops the process on them.
bool context_is_lost(cudaError_t err);

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

// The one stream of device `device` (created on first use, never destroyed). Every kernel,
// cuBLASLt call and asynchronous copy of the backend goes on it, so work on one device runs
// in issue order and a freed block can be reused by the next launch without a sync.
// It is a blocking stream: legacy-default-stream calls (cudaMemcpy) still order with it.
cudaStream_t stream(int device);
// The stream of the current device.
cudaStream_t current_stream();

// Waits for everything queued on device's stream; errors name op.
void synchronize(int device, const char* op);

// The number of multiprocessors of device (asked once per device, then cached).
int sm_count(int device);

// The launch configuration for a grid-stride loop over n elements: enough blocks to fill
// every SM several times over, no more.
unsigned grid_for(int64_t n, int threads);

}  // namespace sp::cuda

// SP_CUDA_CHECK("op", cudaMemcpy(...)) throws naming the op when the call fails.
#define SP_CUDA_CHECK(op, expr)                       \
  do {                                                \
    const cudaError_t sp_cuda_err_ = (expr);          \
    if (sp_cuda_err_ != cudaSuccess) [[unlikely]]     \
      ::sp::cuda::fail_cuda(op, #expr, sp_cuda_err_); \
  } while (0)

// After a <<<...>>> launch: throws naming the op when the launch failed.
#define SP_CUDA_CHECK_LAUNCH(op) SP_CUDA_CHECK(op, cudaGetLastError())
