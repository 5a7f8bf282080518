#pragma once
// Device memory allocators with byte statistics.
//
// The CPU allocator caches freed blocks by rounded size: large malloc()s become
// mmap/munmap and a training step would otherwise pay page faults on every first touch.
#include <cstddef>
#include <cstdint>

#include "tensor/device.h"

namespace sp {

struct AllocatorStats {
  int64_t current_bytes = 0;   // bytes held by live tensors (requested sizes)
  int64_t peak_bytes = 0;      // high-water mark of current_bytes since the last reset
  int64_t cached_bytes = 0;    // bytes kept in the cache for reuse, not held by tensors
  int64_t num_allocs = 0;      // allocate() calls
  int64_t num_system_allocs = 0;  // allocations that missed the cache
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory aligned to at least 64 bytes; nbytes may be 0.
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached blocks to the system.
  virtual void empty_cache() = 0;
};

// The allocator for a device; CUDA throws when built without CUDA.
Allocator& allocator_for(Device device);

// Shorthands for the CPU allocator, for tests and benchmarks.
AllocatorStats cpu_memory_stats();
void reset_cpu_peak_memory();

}  // namespace sp
