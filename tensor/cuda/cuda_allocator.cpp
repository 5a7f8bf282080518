// A cudaMalloc/cudaFree allocator per device with byte statistics. The caching allocator
// of DESIGN.md (512-byte rounding, 2 MiB segments, best fit, retry on OOM) replaces it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <vector>

#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda_hooks.h"

namespace sp {
namespace {

class CudaAllocator final : public Allocator {
 public:
  explicit CudaAllocator(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    void* p = nullptr;
    if (nbytes > 0) {
      cuda::DeviceGuard guard(device_);
      const cudaError_t err = cudaMalloc(&p, nbytes);
      if (err != cudaSuccess) {
        cudaGetLastError();
        const AllocatorStats s = stats();
        fail(str_cat("[allocate] cuda:", device_, ": cannot allocate ", nbytes, " bytes (",
                     s.current_bytes, " held by tensors, peak ", s.peak_bytes,
                     "): cudaMalloc: ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.current_bytes += static_cast<int64_t>(nbytes);
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    ++stats_.num_allocs;
    if (nbytes > 0) ++stats_.num_system_allocs;
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    if (p != nullptr) {
      // Called from destructors: report, never throw. At process exit the runtime may
      // already be unloaded, which is harmless.
      const cudaError_t err = cudaFree(p);
      if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
        cudaGetLastError();
        std::fprintf(stderr, "[deallocate] cuda:%d: cudaFree failed: %s\n", device_,
                     cudaGetErrorString(err));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.current_bytes -= static_cast<int64_t>(nbytes);
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes = stats_.current_bytes;
  }

  void empty_cache() override {}  // nothing is cached yet

 private:
  int device_;
  mutable std::mutex mu_;
  AllocatorStats stats_;
};

}  // namespace

Allocator& cuda_allocator(int device_index) {
  // Never destroyed: tensors in static storage may outlive any destruction order.
  static std::vector<CudaAllocator*>* allocators = [] {
    auto* v = new std::vector<CudaAllocator*>();
    for (int i = 0; i < cuda_device_count(); ++i) v->push_back(new CudaAllocator(i));
    return v;
  }();
  SP_CHECK(!allocators->empty(), "[allocate] cuda:", device_index, ": ", cuda_unavailable_reason());
  SP_CHECK(device_index >= 0 && device_index < static_cast<int>(allocators->size()),
           "[allocate] cuda:", device_index, " does not exist: ", allocators->size(),
           " CUDA device(s) visible");
  return *(*allocators)[device_index];
}

}  // namespace sp
