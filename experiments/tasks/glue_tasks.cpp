// GLUE MRPC and QQP from GLUE's tab-separated files (DIR/train.tsv, dev.tsv, test.tsv, a
// header row naming the columns, no quoting), formatted as T5's glue preprocessor and
// scored with accuracy and the F1 of the positive class.
#include <fstream>
#include <memory>

#include "experiments/tasks/classification_task.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {
namespace {

const std::map<std::string, std::string> kSplitFiles = {
    {"train", "train.tsv"}, {"validation", "dev.tsv"}, {"test", "test.tsv"}};

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i)
    if (i == line.size() || line[i] == '\t') {
      fields.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  return fields;
}

struct TsvTaskSpec {
  std::string name;
  std::vector<std::string> labels;
  std::vector<std::pair<std::string, std::string>> fields;  // T5 key, TSV column
  std::string label_column;                                 // holds 0 / 1
};

class GlueTsvTask : public ClassificationTask {
 public:
  GlueTsvTask(TsvTaskSpec spec, TaskOptions options)
      : ClassificationTask(spec.name, spec.labels, ClassMetrics::kAccuracyF1, std::move(options)),
        spec_(std::move(spec)) {}

  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }

  std::string split_file(const std::string& split) const override {
    return split_path(name_, options_.data_dir, split, kSplitFiles, ".tsv");
  }

  // Rows with missing columns are skipped, as TFDS does for QQP's few corrupted lines.
  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    std::ifstream in(path);
    SP_CHECK(in.good(), "[", name_, "] cannot open ", path);
    std::string line;
    SP_CHECK(static_cast<bool>(std::getline(in, line)), "[", name_, "] ", path,
             ":1: expected a header row");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // GLUE's MRPC train.tsv and dev.tsv start with a UTF-8 byte order mark, copied from
    // msr_paraphrase_train.txt's header (TFDS skips it too), in front of "Quality".
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    const std::vector<std::string> header = split_tabs(line);
    auto column = [&](const std::string& name, bool required, const std::string& why) -> int {
      for (size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return static_cast<int>(i);
      SP_CHECK(!required, "[", name_, "] ", path, ":1: no column \"", name, "\" in the header",
               why);
      return -1;
    };
    std::vector<int> text_columns;
    for (const auto& [key, col] : spec_.fields) text_columns.push_back(column(col, true, ""));
    // Only a test split's file may come without labels (GLUE's test.tsv has no label column).
    const int label_column = column(
        spec_.label_column, !split_may_be_unlabelled(split),
        str_cat(" (split '", split, "' needs labels; only a test split may leave them out)"));

    std::vector<TaskExample> out;
    int64_t line_no = 1, row = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const std::vector<std::string> cells = split_tabs(line);
      if (cells.size() < header.size()) continue;
      std::vector<std::pair<std::string, std::string>> fields;
      for (size_t f = 0; f < spec_.fields.size(); ++f)
        fields.emplace_back(spec_.fields[f].first, cells[text_columns[f]]);
      int label = -1;
      if (label_column >= 0) {
        const std::string& v = cells[label_column];
        SP_CHECK(v == "0" || v == "1", "[", name_, "] ", path, ":", line_no, ": column \"",
                 spec_.label_column, "\" is \"", v, "\", expected 0 or 1");
        label = v == "1" ? 1 : 0;
      }
      out.push_back(make_example(example_id(name_, split, std::to_string(row++)),
                                 join_fields(options_.task_prefix, name_, fields), label));
    }
    return out;
  }

 private:
  TsvTaskSpec spec_;
};

TaskFactory tsv_task(TsvTaskSpec spec) {
  return [spec](const TaskOptions& options) -> std::unique_ptr<Task> {
    return std::make_unique<GlueTsvTask>(spec, options);
  };
}

SP_REGISTER_TASK(mrpc, "mrpc",
                 tsv_task({"mrpc",
                           {"not_equivalent", "equivalent"},
                           {{"sentence1", "#1 String"}, {"sentence2", "#2 String"}},
                           "Quality"}));
SP_REGISTER_TASK(qqp, "qqp",
                 tsv_task({"qqp",
                           {"not_duplicate", "duplicate"},
                           {{"question1", "question1"}, {"question2", "question2"}},
                           "is_duplicate"}));

}  // namespace
}  // namespace sp
