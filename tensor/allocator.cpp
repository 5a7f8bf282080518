#include "tensor/allocator.h"

#include <cstdlib>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "tensor/cuda_hooks.h"
#include "tensor/error.h"

namespace sp {
namespace {

// Under AddressSanitizer the cache would hide use-after-free: every block goes back.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBlocks = false;
#else
constexpr bool kCacheBlocks = true;
#endif

constexpr size_t kAlignment = 64;

// Larger requests cannot be given a size class without overflowing size_t (size_class
// would loop forever); no machine has that much memory, so they fail as out of memory.
constexpr size_t kMaxRequest = std::numeric_limits<size_t>::max() / 2;

// Size classes: multiples of 64 up to 512 B, then four classes per power of two, so a
// reused block wastes at most a quarter of its size.
size_t size_class(size_t nbytes) {
  if (nbytes <= 512) return std::max<size_t>((nbytes + 63) & ~size_t{63}, 64);
  size_t pow2 = 512;
  while (pow2 * 2 < nbytes) pow2 *= 2;
  const size_t quarter = pow2 / 4;
  return (nbytes + quarter - 1) / quarter * quarter;
}

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t nbytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.num_allocs;
    if (nbytes > kMaxRequest) fail_oom_locked(nbytes, nbytes);
    const size_t cls = size_class(nbytes);
    void* p = nullptr;
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached_bytes -= static_cast<int64_t>(cls);
    } else {
      p = system_alloc(cls, nbytes);
    }
    stats_.current_bytes += static_cast<int64_t>(nbytes);
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    if (!p) return;
    const size_t cls = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.current_bytes -= static_cast<int64_t>(nbytes);
    if (kCacheBlocks) {
      free_[cls].push_back(p);
      stats_.cached_bytes += static_cast<int64_t>(cls);
    } else {
      std::free(p);
    }
  }

  AllocatorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak() override {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes = stats_.current_bytes;
  }

  void empty_cache() override {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached_locked();
  }

 private:
  void release_cached_locked() {
    for (auto& [cls, blocks] : free_)
      for (void* b : blocks) std::free(b);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  // Called with mu_ held.
  void* system_alloc(size_t cls, size_t requested) {
    ++stats_.num_system_allocs;
    void* p = std::aligned_alloc(kAlignment, cls);
    if (!p) {
      release_cached_locked();
      p = std::aligned_alloc(kAlignment, cls);
    }
    if (!p) fail_oom_locked(requested, cls);
    return p;
  }

  [[noreturn]] void fail_oom_locked(size_t requested, size_t cls) {
    fail(str_cat("[allocator] out of CPU memory allocating ", cls, " bytes (requested ", requested,
                 "; ", stats_.current_bytes, " bytes held by tensors, ", stats_.cached_bytes,
                 " cached, peak ", stats_.peak_bytes, ")"));
  }

  mutable std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
};

CpuCachingAllocator& cpu_allocator() {
  static CpuCachingAllocator* a = new CpuCachingAllocator();  // outlives static tensors
  return *a;
}

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  return cuda_allocator(device.index);
}

AllocatorStats cpu_memory_stats() { return cpu_allocator().stats(); }
void reset_cpu_peak_memory() { cpu_allocator().reset_peak(); }

}  // namespace sp
