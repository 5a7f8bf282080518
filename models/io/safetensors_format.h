#pragma once
// The safetensors container format, without tensors: parsing and validating a header, and
// decoding the element types that have no softprompt dtype. Depends only on tensor/error.h
// and nlohmann-json, so that the fuzz target (fuzz/safetensors_fuzz.cpp) can link this file
// alone.
//
// Layout (huggingface/safetensors' format spec): 8 bytes little-endian u64 N, N bytes of
// UTF-8 JSON, then the byte buffer. Every tensor's data_offsets are relative to the buffer
// (file offset 8 + N).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sp {

// Headers longer than this are refused (the Rust reference's MAX_HEADER_SIZE).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// An element type a safetensors header may name, with its size in bits (F4 and F6 pack
// several elements per byte).
struct SafetensorsDType {
  const char* name;  // "F32", "BF16", "F8_E4M3", ...
  int bits;
};

// The dtype table entry for name, or null when the name is not a safetensors dtype.
const SafetensorsDType* find_safetensors_dtype(std::string_view name);
// "BOOL, U8, I8, ..." for error messages.
std::string safetensors_dtype_list();

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // as written in the header, e.g. "BF16"
  int bits = 0;       // per element
  std::vector<int64_t> shape;
  uint64_t numel = 0;
  uint64_t begin = 0;  // byte range within the data buffer, end exclusive
  uint64_t end = 0;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;        // in header order
  std::map<std::string, std::string> metadata;  // "__metadata__", empty when absent or null
  uint64_t header_bytes = 0;                    // N
  uint64_t data_start = 0;                      // 8 + N: where the data buffer starts in the file
  uint64_t data_bytes = 0;                      // file size - 8 - N
};

// Parses and validates the whole layout of a safetensors file held in bytes[0, size):
// the length prefix, the JSON header, every entry and the tiling of the data buffer. label
// names the file in messages. Throws sp::Error "[safetensors] <label>: <problem>" on any
// violation; never reads outside [bytes, bytes + size).
SafetensorsHeader parse_safetensors_header(const void* bytes, size_t size,
                                           const std::string& label);

// Decoders for 8-bit floats to float (exact: every value is representable).
// F8_E4M3 is the "fn" variant: no infinities, 0x7f / 0xff are NaN, max 448.
float f8_e4m3_to_float(uint8_t v);
// F8_E5M2 is IEEE-like: the top byte of an IEEE half.
float f8_e5m2_to_float(uint8_t v);

}  // namespace sp
