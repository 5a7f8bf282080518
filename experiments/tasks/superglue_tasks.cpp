// The SuperGLUE classification tasks read from the official jsonl files: BoolQ, CB, COPA,
// RTE, WiC (one example per record) and MultiRC (one example per answer), formatted by T5's
// glue preprocessor with T5's label names (t5/data/glue_utils.py).
#include <memory>

#include "experiments/tasks/classification_task.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {
namespace {

const std::map<std::string, std::string> kSplitFiles = {
    {"train", "train.jsonl"}, {"validation", "val.jsonl"}, {"test", "test.jsonl"}};

// How a record stores its label.
enum class LabelKind { kBool, kString, kIndex };

struct RecordTaskSpec {
  std::string name;
  std::vector<std::string> labels;
  LabelKind label_kind;
  ClassMetrics metrics;
  // In T5's order: sorted field names, except where glue_utils fixes the order (WiC).
  std::vector<std::string> fields;
};

// The record's "idx" (a non-negative integer) as text, or its position in the file when the
// record has none.
std::string record_idx(const JsonlRecord& r, size_t position) {
  if (!r.has("idx")) return std::to_string(position);
  return idx_text(r, r.value, "", "idx");
}

class SuperGlueRecordTask : public ClassificationTask {
 public:
  SuperGlueRecordTask(RecordTaskSpec spec, TaskOptions options)
      : ClassificationTask(spec.name, spec.labels, spec.metrics, std::move(options)),
        spec_(std::move(spec)) {}

  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }

  std::string split_file(const std::string& split) const override {
    return split_path(name_, options_.data_dir, split, kSplitFiles, ".jsonl");
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    std::vector<TaskExample> out;
    const std::vector<JsonlRecord> records = read_jsonl_file(path);
    for (size_t i = 0; i < records.size(); ++i) {
      const JsonlRecord& r = records[i];
      std::vector<std::pair<std::string, std::string>> fields;
      for (const std::string& f : spec_.fields) fields.emplace_back(f, r.string_field(f.c_str()));
      out.push_back(make_example(example_id(name_, split, record_idx(r, i)),
                                 join_fields(options_.task_prefix, name_, fields),
                                 label_of(r, split)));
    }
    return out;
  }

 private:
  int label_of(const JsonlRecord& r, const std::string& split) const {
    if (!has_label(r, split, r.value, "", "label")) return -1;
    switch (spec_.label_kind) {
      case LabelKind::kBool: return bool_field(r, "label") ? 1 : 0;
      case LabelKind::kIndex: {
        const int64_t v = int_field(r, "label");
        if (v < 0 || v >= static_cast<int64_t>(labels_.size()))
          r.fail(str_cat("\"label\" is ", v, ", expected 0 to ", labels_.size() - 1));
        return static_cast<int>(v);
      }
      case LabelKind::kString: {
        const std::string v = r.string_field("label");
        for (size_t k = 0; k < labels_.size(); ++k)
          if (labels_[k] == v) return static_cast<int>(k);
        std::string legal;
        for (const auto& l : labels_) legal += str_cat(legal.empty() ? "" : ", ", l);
        r.fail(str_cat("\"label\" is \"", v, "\", expected one of ", legal));
      }
    }
    return -1;
  }

  RecordTaskSpec spec_;
};

// MultiRC: a paragraph with questions, each with candidate answers labelled true or false;
// one binary example per answer, grouped by question for the exact-match metric.
class MultiRcTask : public ClassificationTask {
 public:
  explicit MultiRcTask(TaskOptions options)
      : ClassificationTask("multirc", {"False", "True"}, ClassMetrics::kF1GroupExactMatch,
                           std::move(options)) {}

  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }

  std::string split_file(const std::string& split) const override {
    return split_path(name_, options_.data_dir, split, kSplitFiles, ".jsonl");
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    std::vector<TaskExample> out;
    const std::vector<JsonlRecord> records = read_jsonl_file(path);
    for (size_t i = 0; i < records.size(); ++i) {
      const JsonlRecord& r = records[i];
      const std::string p_idx = record_idx(r, i);
      const nlohmann::json& passage = child(r, r.value, "", "passage", JsonKind::kObject);
      const std::string text = child(r, passage, "passage.", "text", JsonKind::kString);
      const nlohmann::json& questions =
          child(r, passage, "passage.", "questions", JsonKind::kArray);
      for (size_t q = 0; q < questions.size(); ++q) {
        const std::string q_path = str_cat("passage.questions[", q, "].");
        const nlohmann::json& question = questions[q];
        if (!question.is_object()) r.fail(str_cat("expected ", q_path, " to be an object"));
        const std::string q_text = child(r, question, q_path, "question", JsonKind::kString);
        const std::string q_idx = idx_text(r, question, q_path, "idx");
        const nlohmann::json& answers = child(r, question, q_path, "answers", JsonKind::kArray);
        for (size_t a = 0; a < answers.size(); ++a) {
          const std::string a_path = str_cat(q_path, "answers[", a, "].");
          const nlohmann::json& answer = answers[a];
          if (!answer.is_object()) r.fail(str_cat("expected ", a_path, " to be an object"));
          const std::string a_text = child(r, answer, a_path, "text", JsonKind::kString);
          const std::string a_idx = idx_text(r, answer, a_path, "idx");
          int label = -1;
          if (has_label(r, split, answer, a_path, "label")) {
            const nlohmann::json& l = answer["label"];
            if (l.is_boolean())
              label = l.get<bool>() ? 1 : 0;
            else if (l.is_number_integer() && (l == 0 || l == 1))
              label = l.get<int>();
            else
              r.fail(str_cat("expected \"", a_path, "label\" to be 0 or 1, got ", l.dump()));
          }
          std::string inputs =
              join_fields(options_.task_prefix, name_,
                          {{"question", q_text}, {"answer", a_text}, {"paragraph", text}});
          TaskExample ex =
              make_example(example_id(name_, split, str_cat(p_idx, "-", q_idx, "-", a_idx)),
                           strip_markup(inputs), label);
          ex.group = str_cat(p_idx, "-", q_idx);
          out.push_back(std::move(ex));
        }
      }
    }
    return out;
  }

 private:
  // T5 removes the paragraph's HTML markup after joining: "<br>" -> " ", "<b>" and "</b>"
  // dropped.
  static std::string strip_markup(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, 4, "<br>") == 0) {
        out.push_back(' ');
        i += 4;
      } else if (s.compare(i, 3, "<b>") == 0) {
        i += 3;
      } else if (s.compare(i, 4, "</b>") == 0) {
        i += 4;
      } else {
        out.push_back(s[i++]);
      }
    }
    return out;
  }
};

TaskFactory record_task(RecordTaskSpec spec) {
  return [spec](const TaskOptions& options) -> std::unique_ptr<Task> {
    return std::make_unique<SuperGlueRecordTask>(spec, options);
  };
}

SP_REGISTER_TASK(boolq, "boolq",
                 record_task({"boolq",
                              {"False", "True"},
                              LabelKind::kBool,
                              ClassMetrics::kAccuracy,
                              {"passage", "question"}}));
SP_REGISTER_TASK(cb, "cb",
                 record_task({"cb",
                              {"entailment", "contradiction", "neutral"},
                              LabelKind::kString,
                              ClassMetrics::kAccuracyMacroF1,
                              {"hypothesis", "premise"}}));
SP_REGISTER_TASK(copa, "copa",
                 record_task({"copa",
                              {"choice1", "choice2"},
                              LabelKind::kIndex,
                              ClassMetrics::kAccuracy,
                              {"choice1", "choice2", "premise", "question"}}));
SP_REGISTER_TASK(rte, "rte",
                 record_task({"rte",
                              {"entailment", "not_entailment"},
                              LabelKind::kString,
                              ClassMetrics::kAccuracy,
                              {"hypothesis", "premise"}}));
SP_REGISTER_TASK(wic, "wic",
                 record_task({"wic",
                              {"False", "True"},
                              LabelKind::kBool,
                              ClassMetrics::kAccuracy,
                              {"sentence1", "sentence2", "word"}}));
SP_REGISTER_TASK(multirc, "multirc", [](const TaskOptions& options) -> std::unique_ptr<Task> {
  return std::make_unique<MultiRcTask>(options);
});

}  // namespace
}  // namespace sp
