#pragma once
// A block of device memory shared by tensors that view it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tensor/allocator.h"
#include "tensor/device.h"

namespace sp {

class Storage {
 public:
  // Memory from the device's allocator.
  Storage(size_t nbytes, Device device);
  // Memory owned elsewhere (a memory-mapped file, say): owner keeps it alive.
  Storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Counts in-place writes to the memory (fill_, copy_, random_, matmul_into, optimizer
  // steps, gradient accumulation), so that autograd can refuse a saved tensor that changed
  // after it was saved (SavedTensor, autograd/node.h). Writes through data() are not seen.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;  // null for external memory
  std::shared_ptr<void> owner_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace sp
