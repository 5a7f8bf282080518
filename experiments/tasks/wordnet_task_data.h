#pragma once
// What the tasks made from WordNet share (wordnet_wic, wordnet_topic): their data is made
// once per (WordNet folder, seed) in a process and shared, since the runner makes a task
// many times; or a folder that `softprompt tasks build` wrote is read back as it is.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {

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
