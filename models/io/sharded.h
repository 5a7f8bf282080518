#pragma once
// Checkpoints as Hugging Face lays them out: one model.safetensors, or shards
//   model-00001-of-00003.safetensors, ... plus
//   model.safetensors.index.json = {"metadata": {"total_size": n}, "weight_map": {name: file}}
// CheckpointReader presents either as one name -> tensor map; save_checkpoint writes either.
//
// Validation of a sharded set. Errors (sp::Error "[checkpoint] <file>: <problem>"): an
// unreadable or malformed index, an empty weight_map, a shard name that is not a plain file
// name (no directories, no ".."), a missing or corrupt shard, a name the weight_map maps to
// a shard that lacks it. Warnings (errors with CheckpointReadOptions::strict): total_size
// differing from the bytes of the listed tensors (transformers' own totals sometimes count
// differently, so it alone must not refuse a checkpoint), and tensors present in a shard
// but not mapped to it, which are ignored as transformers ignores them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/io/safetensors.h"

namespace sp {

inline constexpr const char* kSafetensorsSingleName = "model.safetensors";
inline constexpr const char* kSafetensorsIndexName = "model.safetensors.index.json";

struct ShardedIndex {
  std::string path;
  std::vector<std::pair<std::string, std::string>> weight_map;  // name -> shard file, index order
  std::optional<uint64_t> total_size;                           // metadata.total_size
  // The distinct shard files in order of first mention.
  std::vector<std::string> shard_files() const;
};

// Reads and validates an index file (the shards themselves are not opened).
ShardedIndex read_sharded_index(const std::string& path);

struct CheckpointReadOptions {
  bool strict = false;  // warnings become errors
};

class CheckpointReader {
 public:
  // path: a directory holding model.safetensors (preferred, as transformers does) or
  // model.safetensors.index.json with its shards; an index .json file; or one
  // .safetensors file.
  static CheckpointReader open(const std::string& path, const CheckpointReadOptions& options = {});

  const std::string& path() const { return path_; }
  bool sharded() const { return sharded_; }
  // Single file: header order; sharded: weight_map order.
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& info(const std::string& name) const { return file_of(name).info(name); }
  // As SafetensorsFile::tensor.
  Tensor tensor(const std::string& name, std::optional<DType> want = std::nullopt,
                bool zero_copy = false) const {
    return file_of(name).tensor(name, want, zero_copy);
  }
  // The file that holds name; throws naming the checkpoint when there is none.
  const SafetensorsFile& file_of(const std::string& name) const;
  const std::vector<SafetensorsFile>& files() const { return files_; }
  // Header metadata of the first file (every shard carries the same in HF checkpoints).
  const std::map<std::string, std::string>& metadata() const;
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void open_single(const std::string& file);
  void open_sharded(const std::string& index_path, const CheckpointReadOptions& options);

  std::string path_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> files_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> where_;  // name -> files_ position
  std::vector<std::string> warnings_;
};

struct CheckpointSaveOptions {
  // transformers' default max_shard_size "5GB". A tensor larger than this gets a shard
  // of its own.
  uint64_t max_shard_bytes = 5'000'000'000;
  std::string base = "model";  // file names: model.safetensors, model-00001-of-00002.safetensors
  std::map<std::string, std::string> metadata = kDefaultSafetensorsMetadata;
};

// Writes tensors into dir (created if missing): one <base>.safetensors when they fit one
// shard, else shards of at most max_shard_bytes (filled greedily in the given order, as
// huggingface_hub does) and then the index, each file atomically, the index last so that
// a reader never sees an index naming shards not yet written. Shards are written in full
// to temporary files before any replaces an existing file, so a save that fails leaves the
// previous checkpoint whole (at the cost of disk space for both). Afterwards removes files a
// previous save left that would shadow or confuse this one: <base>-NNNNN-of-NNNNN
// .safetensors shards not written now, <base>.safetensors when sharded, the index when
// not. Returns the file names written, in write order.
std::vector<std::string> save_checkpoint(const std::string& dir,
                                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                                         const CheckpointSaveOptions& options = {});

}  // namespace sp
