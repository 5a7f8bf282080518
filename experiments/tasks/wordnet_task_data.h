#pragma once
// What the tasks made from WordNet share (wordnet_wic, wordnet_topic): a portable seeded
// shuffle; their data made once per (WordNet folder, seed) in a process and shared, since
// the runner makes a task many times; or a folder that `softprompt tasks build` wrote, read
// back as it is.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {

// splitmix64: a tiny generator whose output is the same on every platform, unlike the
// standard distributions, so a task made from WordNet is the same everywhere for a seed.
struct SplitMix {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// Fisher-Yates with SplitMix.
template <typename T>
void shuffle(std::vector<T>& v, SplitMix& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// The files `softprompt tasks build` writes, by split name (WiC's layout).
inline const std::map<std::string, std::string>& built_split_files() {
  static const std::map<std::string, std::string> files = {
      {"train", "train.jsonl"}, {"validation", "val.jsonl"}, {"test", "test.jsonl"}};
  return files;
}

// Whether dir holds built split files rather than a WordNet database.
inline bool is_built_task_dir(const std::string& dir) {
  return file_exists((std::filesystem::path(dir) / "train.jsonl").string());
}

// make() once per (dir, seed) and Data type in this process.
template <typename Data, typename Make>
const Data& cached_wordnet_task_data(const std::string& dir, uint64_t seed, Make make) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, uint64_t>, std::unique_ptr<Data>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[{dir, seed}];
  if (!slot) slot = std::make_unique<Data>(make());
  return *slot;
}

// data.train, .validation or .test by split name; another name throws naming the task.
template <typename Data>
const auto& split_of(const Data& data, const std::string& split, const std::string& task) {
  if (split == "train") return data.train;
  if (split == "validation") return data.validation;
  SP_CHECK(split == "test", "[", task, "] unknown split '", split,
           "' (splits: train, validation, test)");
  return data.test;
}

}  // namespace sp
