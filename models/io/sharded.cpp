#include "models/io/sharded.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp {

namespace fs = std::filesystem;

namespace {

// Not ordered_json, whose objects find a key by scanning every key before it (O(n^2) for a
// weight_map of n names). json's objects sort their keys, the order transformers writes.
using json = nlohmann::json;

constexpr uint64_t kMaxIndexBytes = 100'000'000;

template <typename... Args>
[[noreturn]] void fail_at(const std::string& path, const Args&... args) {
  fail(str_cat("[checkpoint] ", path, ": ", args...));
}

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail_at(path, "no such file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) fail_at(path, "cannot read: ", ec.message());
  if (size > kMaxIndexBytes)
    fail_at(path, "index of ", size, " bytes exceeds the limit of ", kMaxIndexBytes);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(path, "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// nlohmann keeps the last of duplicate keys silently; a weight_map listing a name twice
// is ambiguous, so any duplicate key is refused.
struct DuplicateKeys {
  const std::string& path;
  std::vector<std::unordered_set<std::string>> seen;
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    if (depth > 16) fail_at(path, "index JSON nests deeper than 16 levels");
    if (event == json::parse_event_t::object_start) seen.emplace_back();
    if (event == json::parse_event_t::object_end) seen.pop_back();
    if (event == json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.back().insert(key).second) fail_at(path, "duplicate key '", key, "'");
    }
    return true;
  }
};

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

std::string shard_name(const std::string& base, size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%05zu-of-%05zu.safetensors", i, n);
  return base + buf;
}

// <base>-NNNNN-of-NNNNN.safetensors
bool is_shard_name(const std::string& name, const std::string& base) {
  const std::string tail = "-00000-of-00000.safetensors";
  if (name.size() != base.size() + tail.size() || name.compare(0, base.size(), base) != 0)
    return false;
  for (size_t i = 0; i < tail.size(); ++i) {
    const char c = name[base.size() + i];
    if (tail[i] == '0' ? (c < '0' || c > '9') : c != tail[i]) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> ShardedIndex::shard_files() const {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& [name, file] : weight_map)
    if (seen.insert(file).second) out.push_back(file);
  return out;
}

ShardedIndex read_sharded_index(const std::string& path) {
  const std::string text = read_text(path);
  json root;
  try {
    DuplicateKeys check{path, {}};
    root = json::parse(text, std::ref(check));
  } catch (const json::exception& e) {
    fail_at(path, "index is not valid JSON: ", parse_error_text(e));
  }
  if (!root.is_object()) fail_at(path, "index must be a JSON object, got ", root.type_name());
  ShardedIndex index;
  index.path = path;

  if (const auto meta = root.find("metadata"); meta != root.end() && !meta->is_null()) {
    if (!meta->is_object())
      fail_at(path, "\"metadata\" must be an object, got ", meta->type_name());
    if (const auto total = meta->find("total_size"); total != meta->end()) {
      // Some writers store it as a float (4.4e9); any whole non-negative number is accepted.
      if (total->is_number_unsigned()) {
        index.total_size = total->get<uint64_t>();
      } else if (total->is_number_float() && total->get<double>() >= 0 &&
                 total->get<double>() < 1.8e19 &&
                 std::floor(total->get<double>()) == total->get<double>()) {
        index.total_size = static_cast<uint64_t>(total->get<double>());
      } else {
        fail_at(path, "metadata.total_size must be a non-negative integer, got ", total->dump());
      }
    }
  }

  const auto map = root.find("weight_map");
  if (map == root.end()) fail_at(path, "index has no \"weight_map\"");
  if (!map->is_object()) fail_at(path, "\"weight_map\" must be an object, got ", map->type_name());
  if (map->empty()) fail_at(path, "\"weight_map\" is empty");
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string())
      fail_at(path, "weight_map entry '", name, "' must name a shard file, got ", file.type_name());
    const std::string f = file.get<std::string>();
    if (!is_plain_file_name(f))
      fail_at(path, "weight_map entry '", name, "' names '", f,
              "': shards must be plain file names in the checkpoint directory");
    index.weight_map.emplace_back(name, f);
  }
  return index;
}

CheckpointReader CheckpointReader::open(const std::string& path,
                                        const CheckpointReadOptions& options) {
  CheckpointReader r;
  r.path_ = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / kSafetensorsSingleName, ec))
      r.open_single((dir / kSafetensorsSingleName).string());
    else if (fs::exists(dir / kSafetensorsIndexName, ec))
      r.open_sharded((dir / kSafetensorsIndexName).string(), options);
    else
      fail_at(path, "no ", kSafetensorsSingleName, " or ", kSafetensorsIndexName,
              " in this directory");
  } else if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    r.open_sharded(path, options);
  } else {
    r.open_single(path);
  }
  return r;
}

void CheckpointReader::open_single(const std::string& file) {
  files_.push_back(SafetensorsFile::open(file));
  names_ = files_[0].names();
  for (const std::string& n : names_) where_.emplace(n, 0);
}

void CheckpointReader::open_sharded(const std::string& index_path,
                                    const CheckpointReadOptions& options) {
  sharded_ = true;
  const ShardedIndex index = read_sharded_index(index_path);
  const fs::path dir = fs::path(index_path).parent_path();

  std::unordered_map<std::string, size_t> file_pos;
  for (const std::string& f : index.shard_files()) {
    const fs::path p = dir / f;
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      size_t count = 0;
      std::string example;
      for (const auto& [name, file] : index.weight_map)
        if (file == f && count++ == 0) example = name;
      fail_at(index_path, "shard '", f, "' (holding ", count, " tensors, e.g. '", example,
              "') is missing: no file ", p.string());
    }
    file_pos.emplace(f, files_.size());
    files_.push_back(SafetensorsFile::open(p.string()));
  }

  uint64_t listed_bytes = 0;
  for (const auto& [name, file] : index.weight_map) {
    const size_t pos = file_pos.at(file);
    if (!files_[pos].contains(name))
      fail_at(index_path, "tensor '", name, "' is mapped to shard '", file,
              "', which has no such tensor");
    names_.push_back(name);
    where_.emplace(name, pos);
    listed_bytes += files_[pos].info(name).nbytes();
  }

  for (const auto& [file, pos] : file_pos) {
    for (const std::string& name : files_[pos].names()) {
      const auto it = where_.find(name);
      if (it == where_.end())
        warnings_.push_back(str_cat("tensor '", name, "' in shard '", file,
                                    "' is not in the weight_map and is ignored"));
      else if (it->second != pos)
        warnings_.push_back(str_cat("tensor '", name, "' in shard '", file,
                                    "' is mapped to another shard; this copy is ignored"));
    }
  }
  if (index.total_size && *index.total_size != listed_bytes)
    warnings_.push_back(str_cat("metadata.total_size is ", *index.total_size,
                                ", but the tensors in the weight_map hold ", listed_bytes,
                                " bytes"));
  if (options.strict && !warnings_.empty()) fail_at(index_path, warnings_.front());
}

const SafetensorsFile& CheckpointReader::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end())
    fail_at(path_, "no tensor named '", name, "' in this checkpoint (", names_.size(), " tensors)");
  return files_[it->second];
}

const std::map<std::string, std::string>& CheckpointReader::metadata() const {
  static const std::map<std::string, std::string> kEmpty;
  return files_.empty() ? kEmpty : files_.front().metadata();
}

std::vector<std::string> save_checkpoint(const std::string& dir,
                                         const std::vector<std::pair<std::string, Tensor>>& tensors,
                                         const CheckpointSaveOptions& options) {
  SP_CHECK(options.max_shard_bytes > 0, "[checkpoint] ", dir, ": max_shard_bytes must be positive");
  SP_CHECK(is_plain_file_name(options.base), "[checkpoint] ", dir, ": base '", options.base,
           "' must be a plain file name");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail_at(dir, "cannot create the directory: ", ec.message());

  using Named = std::pair<std::string, Tensor>;
  std::vector<std::vector<Named>> shards;
  std::vector<Named> current;
  uint64_t current_bytes = 0;
  uint64_t total = 0;
  std::unordered_set<std::string> seen;
  for (const Named& nt : tensors) {
    SP_CHECK(nt.second.defined(), "[checkpoint] ", dir, ": tensor '", nt.first, "' is undefined");
    SP_CHECK(seen.insert(nt.first).second, "[checkpoint] ", dir, ": duplicate tensor name '",
             nt.first, "'");
    const uint64_t n = static_cast<uint64_t>(nt.second.nbytes());
    total += n;
    if (n > options.max_shard_bytes) {
      shards.push_back({nt});
      continue;
    }
    if (current_bytes + n > options.max_shard_bytes && !current.empty()) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(nt);
    current_bytes += n;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));

  const fs::path out(dir);
  const std::string single = options.base + ".safetensors";
  const std::string index_name = options.base + ".safetensors.index.json";
  std::vector<std::string> written;
  if (shards.size() == 1) {
    save_safetensors((out / single).string(), shards[0], options.metadata);
    written.push_back(single);
  } else {
    json weight_map = json::object();
    std::map<std::string, std::string> sorted;  // transformers writes the map sorted by name
    // Every shard is written in full before any replaces a file: a save with the shard
    // count of the previous one reuses its shard names, and replacing them one by one
    // would leave, on a failure part-way, the old index reading new shards beside old ones.
    std::vector<std::unique_ptr<AtomicFile>> pending;
    bool replaces_a_shard = false;
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name = shard_name(options.base, i + 1, shards.size());
      pending.push_back(std::make_unique<AtomicFile>((out / name).string(), "[safetensors]"));
      write_safetensors(*pending.back(), shards[i], options.metadata);
      replaces_a_shard = replaces_a_shard || fs::exists(out / name, ec);
      written.push_back(name);
      for (const Named& nt : shards[i]) sorted.emplace(nt.first, name);
    }
    // The renames below are not one atomic step: without the old index, a crash between
    // them leaves no checkpoint to read (an error) rather than a mix of two (silent).
    if (replaces_a_shard) {
      fs::remove(out / index_name, ec);
      if (ec) fail_at(dir, "cannot remove the previous ", index_name, ": ", ec.message());
    }
    for (auto& file : pending) file->commit();
    // A reader prefers a single file to the index: one left by an earlier save goes before
    // the index exists, so a crash in between leaves no checkpoint to read rather than the
    // old weights.
    fs::remove(out / single, ec);
    if (ec) fail_at(dir, "cannot remove the previous ", single, ": ", ec.message());
    for (const auto& [k, v] : sorted) weight_map[k] = v;
    json index = json::object();
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = std::move(weight_map);
    write_file_atomic((out / index_name).string(), index.dump(2) + "\n", "[checkpoint]");
    written.push_back(index_name);
  }

  // Leftovers of an earlier save with another layout sit beside this one as stale shards
  // or a stale index (an earlier single file went before the index was written).
  const std::unordered_set<std::string> keep(written.begin(), written.end());
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    if (keep.count(name) || !entry.is_regular_file(ec)) continue;
    const bool stale =
        is_shard_name(name, options.base) || (shards.size() == 1 && name == index_name);
    if (!stale) continue;
    std::error_code removed;
    fs::remove(entry.path(), removed);
    SP_CHECK(!removed, "[checkpoint] cannot remove ", entry.path().string(), " (",
             removed.message(),
             ") left by an earlier save: a reader would load it instead of the new checkpoint");
  }
  return written;
}

}  // namespace sp
