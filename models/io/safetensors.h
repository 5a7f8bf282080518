#pragma once
// Reading and writing safetensors files (the format spec in huggingface/safetensors).
//
//   SafetensorsFile f = SafetensorsFile::open("model.safetensors");   // mmap + full validation
//   Tensor w = f.tensor("shared.weight");                  // a copy, stored dtype
//   Tensor w32 = f.tensor("shared.weight", DType::f32);    // bf16 on disk -> f32, exact
//   Tensor v = f.tensor("shared.weight", {}, /*zero_copy=*/true);  // a view of the mapping
//   save_safetensors("out.safetensors", {{"a", a}, {"b", b}});       // atomic
//
// Zero-copy tensors view a read-only mapping: writing to them (an optimizer step, fill_,
// copy_) faults. Ask for them only for frozen weights that are read, never trained; tensor()
// without zero_copy returns memory of the tensor's own. A mapped file must not be truncated
// in place while tensors view it (our writer replaces files by rename, which is safe).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "models/io/safetensors_format.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace sp {

class AtomicFile;

// The softprompt dtype a safetensors dtype name stores exactly (F32 -> f32, BF16 -> bf16,
// F16 -> f16, F64 -> f64, I32 -> i32, I64 -> i64, BOOL -> boolean), or nullopt.
std::optional<DType> native_dtype(std::string_view safetensors_dtype);
// Whether a safetensors dtype name holds floating-point values (F64, F32, F16, BF16,
// F8_E4M3, F8_E5M2): what a weight must be.
bool is_floating_dtype_name(std::string_view safetensors_dtype);
// The safetensors name of a softprompt dtype ("F32", "BF16", ...).
const char* safetensors_dtype_name(DType dtype);

class SafetensorsFile {
 public:
  // Memory-maps path read-only and validates the whole layout; throws sp::Error
  // "[safetensors] <path>: <problem>" for a missing, truncated or malformed file.
  static SafetensorsFile open(const std::string& path);
  // The same over bytes held in memory (tests, the fuzz target); label names it in messages.
  static SafetensorsFile from_bytes(std::vector<uint8_t> bytes,
                                    const std::string& label = "<memory>");

  const std::string& path() const;
  // Tensor names in header order.
  std::vector<std::string> names() const;
  size_t size() const;
  bool contains(const std::string& name) const;
  // Throws naming the file and the missing tensor.
  const SafetensorsEntry& info(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const;
  const SafetensorsHeader& header() const;
  // The raw little-endian bytes of a tensor, valid while this file (or a copy) lives.
  std::span<const uint8_t> bytes(const std::string& name) const;

  // A CPU tensor with the stored values, converted to want when given. Without want the
  // dtype is the stored one where softprompt has it; U8, I8, I16, U16 load as i32, U32 and
  // U64 as i64 (values above 2^63 - 1 throw), F8_E4M3 and F8_E5M2 as f32; the remaining
  // F8/F6/F4/C64 types throw. zero_copy returns a view of the mapping when the stored
  // dtype is want (or want is empty), the data is aligned for it and, for BOOL, every byte
  // is 0 or 1; otherwise (and without zero_copy) the tensor owns a copy.
  Tensor tensor(const std::string& name, std::optional<DType> want = std::nullopt,
                bool zero_copy = false) const;

  struct State;

 private:
  explicit SafetensorsFile(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

// Header metadata written by default: what transformers expects of a PyTorch checkpoint.
inline const std::map<std::string, std::string> kDefaultSafetensorsMetadata = {{"format", "pt"}};

// Serialises tensors (any device, layout and dtype softprompt has) as safetensors bytes:
// keys in the given order, __metadata__ first with "format": "pt" added unless metadata
// sets "format", the header padded with spaces to a multiple of 8. The data buffer holds
// tensors by decreasing element size (stable), so every tensor is aligned for its type
// and loads zero-copy. Throws on an undefined tensor, an empty or duplicate name, or the
// reserved name "__metadata__".
std::vector<uint8_t> serialize_safetensors(
    const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = kDefaultSafetensorsMetadata);

// Writes the same bytes to path atomically: a temporary file path + ".tmp.<pid>.<n>" in the
// same directory, fsync, rename over path. On failure the temporary file is removed and
// an existing file at path is left untouched.
void save_safetensors(
    const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = kDefaultSafetensorsMetadata);

// Writes the same bytes into file without committing it, so that a caller writing several
// files (the shards of a checkpoint) can finish them all before any replaces its
// predecessor.
void write_safetensors(
    AtomicFile& file, const std::vector<std::pair<std::string, Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = kDefaultSafetensorsMetadata);

}  // namespace sp
