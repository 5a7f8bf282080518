#pragma once
// A whole file memory-mapped read-only, for readers that use its bytes in place: safetensors
// tensors (zero-copy views) and cached token ids (experiments/data/token_cache.h). The
// mapping lives until the last shared_ptr to it goes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace sp {

class MappedFile {
 public:
  // Throws sp::Error "<tag> <path>: cannot open: <reason>" (and likewise for a file that
  // is not a regular file or cannot be mapped). An empty file gives size() 0.
  static std::shared_ptr<MappedFile> open(const std::string& path, const std::string& tag);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sp
