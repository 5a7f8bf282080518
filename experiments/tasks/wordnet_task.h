#pragma once
// WordNetTask: the base of the tasks made from WordNet (wordnet_wic, wordnet_topic).
// data_dir is a WordNet folder (default /usr/share/wordnet), from which the task's data is
// made once per (folder, seed) in this process, or a folder that `softprompt tasks build`
// wrote, read back as it is. A task says how to make its Data (which has train, validation
// and test vectors of Row) and how a Row or a built jsonl record becomes an example.
#include <string>
#include <utility>
#include <vector>

#include "experiments/data/wordnet.h"
#include "experiments/tasks/classification_task.h"
#include "experiments/tasks/task_io.h"
#include "experiments/tasks/wordnet_task_data.h"

namespace sp {

template <typename Data, typename Row>
class WordNetTask : public ClassificationTask {
 public:
  WordNetTask(std::string name, std::vector<std::string> labels, TaskOptions options)
      : ClassificationTask(std::move(name), std::move(labels), ClassMetrics::kAccuracy,
                           std::move(options)) {
    if (options_.data_dir.empty()) options_.data_dir = kDefaultWordnetDir;
  }

  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }

  // A built folder's split file; "" for data made from a WordNet folder (the three splits).
  std::string split_file(const std::string& split) const override {
    if (is_built_task_dir(options_.data_dir))
      return split_path(name_, options_.data_dir, split, built_split_files(), ".jsonl");
    SP_CHECK(split == "train" || split == "validation" || split == "test", "[", name_,
             "] unknown split '", split, "' (splits: train, validation, test)");
    return "";
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    std::vector<TaskExample> out;
    if (is_built_task_dir(options_.data_dir)) {
      const std::vector<JsonlRecord> records = read_jsonl_file(split_file(split));
      for (size_t i = 0; i < records.size(); ++i) {
        const JsonlRecord& r = records[i];
        const std::string idx = r.has("idx") ? idx_text(r, r.value, "", "idx") : std::to_string(i);
        out.push_back(built_example(split, idx, r));
      }
      return out;
    }
    const std::string& dir = options_.data_dir;
    const uint64_t seed = options_.seed;
    const Data& data =
        cached_wordnet_task_data<Data>(dir, seed, [&] { return make_data(dir, seed); });
    const std::vector<Row>& rows = split_of(data, split, name_);
    for (size_t i = 0; i < rows.size(); ++i)
      out.push_back(row_example(split, std::to_string(i), rows[i]));
    return out;
  }

 protected:
  // The task's data from a WordNet folder, shuffled and split with seed.
  virtual Data make_data(const std::string& wordnet_dir, uint64_t seed) const = 0;
  // The example of one made row; idx is its position in the split.
  virtual TaskExample row_example(const std::string& split, const std::string& idx,
                                  const Row& row) const = 0;
  // The example of one line of a built split file (a missing label: label -1).
  virtual TaskExample built_example(const std::string& split, const std::string& idx,
                                    const JsonlRecord& record) const = 0;
};

}  // namespace sp
