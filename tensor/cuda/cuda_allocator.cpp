// One caching allocator per CUDA device (tensor/caching_allocator.h) over cudaMalloc /
// cudaFree segments. Blocks are reused without synchronisation because every kernel, memset
// and async copy of the backend runs on the device's one stream (cuda_util.h: stream()).
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tensor/caching_allocator.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"

namespace sp {
namespace {

class CudaSegmentSource final : public SegmentSource {
 public:
  explicit CudaSegmentSource(int device) : device_(device) {}

  void* allocate_segment(size_t nbytes) override {
    cuda::DeviceGuard guard(device_);
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, nbytes);
    if (err == cudaSuccess) return p;
    // Only running out of memory is worth emptying the cache and retrying: another error
    // (a context lost to an earlier kernel's fault) is reported as what it is.
    if (err != cudaErrorMemoryAllocation) cuda::fail_cuda("allocate", "cudaMalloc", err);
    // An allocation failure is not sticky: clear it so the next CUDA call is not blamed.
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) cudaGetLastError();
    last_error_ = str_cat("cudaMalloc: ", cudaGetErrorName(err), ": ", cudaGetErrorString(err),
                          "; the device reports ", free_bytes, " bytes free of ", total_bytes);
    return nullptr;
  }

  // Never throws: empty_cache and the out-of-memory retry call this mid-allocation.
  void free_segment(void* p, size_t) override {
    cudaError_t err = cudaSuccess;
    int previous = -1;
    if (cudaGetDevice(&previous) == cudaSuccess && cudaSetDevice(device_) == cudaSuccess) {
      // Blocks of this segment may still be in use by queued kernels of their last owners:
      // wait for the device before the memory goes back to the driver.
      err = cudaDeviceSynchronize();
      if (err == cudaSuccess) err = cudaFree(p);
      cudaSetDevice(previous);
    } else {
      err = cudaGetLastError();
    }
    // The segment is dropped from the cache either way; with a lost context the process
    // stops here (fail_cuda) rather than carry on with memory it cannot account for.
    if (cuda::context_is_lost(err)) cuda::fail_cuda("empty_cache", "cudaFree", err);
    if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
      cudaGetLastError();
      std::fprintf(stderr, "[empty_cache] cuda:%d: cudaFree failed: %s\n", device_,
                   cudaGetErrorString(err));
    }
  }

  std::string last_error() const override { return last_error_; }

 private:
  int device_;
  std::string last_error_;
};

}  // namespace

Allocator& cuda_allocator(int device_index) {
  if (cuda_emulated()) return emulated_cuda_allocator(device_index);
  // Never destroyed: tensors in static storage may outlive any destruction order, and the
  // CUDA runtime may be unloaded before static destructors run.
  static std::vector<CachingAllocator*>* allocators = [] {
    auto* v = new std::vector<CachingAllocator*>();
    for (int i = 0; i < cuda_device_count(); ++i) {
      v->push_back(new CachingAllocator(str_cat("cuda:", i), *new CudaSegmentSource(i)));
    }
    return v;
  }();
  SP_CHECK(!allocators->empty(), "[allocate] cuda:", device_index, ": ", cuda_unavailable_reason());
  SP_CHECK(device_index >= 0 && device_index < static_cast<int>(allocators->size()),
           "[allocate] cuda:", device_index, " does not exist: ", allocators->size(),
           " CUDA device(s) visible");
  return *(*allocators)[device_index];
}

}  // namespace sp
