#pragma once
// A block of device memory shared by tensors that view it.
#include <cstddef>
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

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;  // null for external memory
  std::shared_ptr<void> owner_;
};

}  // namespace sp
