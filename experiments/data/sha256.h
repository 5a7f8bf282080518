#pragma once
// SHA-256 (FIPS 180-4): content hashes for corpus manifests and the hash-based
// train/validation split, so a split and a manifest can be checked with `sha256sum`.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sp {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t nbytes);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest of everything updated so far; the object must not be updated afterwards.
  std::array<uint8_t, 32> finish();
  // finish() as 64 lowercase hex digits.
  std::string finish_hex();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> h_;
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(std::string_view data);
// Streams the file; throws sp::Error "[sha256] cannot read <path>".
std::string sha256_file_hex(const std::string& path);

}  // namespace sp
