// ReCoRD: cloze-style questions over a news passage; the answer is one of the passage's
// entities. Formatted as T5's record preprocessor; scored as T5's squad metric deduplicated
// per query (the max over every gold answer of exact match and token F1).
#include <memory>
#include <set>

#include "experiments/tasks/metrics.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/task_io.h"
#include "tensor/error.h"

namespace sp {
namespace {

const std::map<std::string, std::string> kSplitFiles = {
    {"train", "train.jsonl"}, {"validation", "val.jsonl"}, {"test", "test.jsonl"}};

// Byte offsets of each code point of UTF-8 text (plus text.size() at the end), since the
// dataset's entity offsets count characters as Python does.
std::vector<size_t> code_point_offsets(const std::string& text) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) offsets.push_back(i);
  offsets.push_back(text.size());
  return offsets;
}

// "\n@highlight\n" separates the article from its summary bullets: after sentence-final
// punctuation or a quote it becomes a space, otherwise ". ".
std::string join_highlights(const std::string& passage) {
  static const std::string kMarker = "\n@highlight\n";
  std::string out;
  size_t i = 0;
  while (i < passage.size()) {
    if (passage.compare(i, kMarker.size(), kMarker) == 0) {
      const char before = i > 0 ? passage[i - 1] : '\0';
      const bool punct =
          before == '.' || before == '?' || before == '!' || before == '"' || before == '\'';
      out += punct ? " " : ". ";
      i += kMarker.size();
    } else {
      out.push_back(passage[i++]);
    }
  }
  return out;
}

class RecordTask : public Task {
 public:
  explicit RecordTask(TaskOptions options) : options_(std::move(options)) {}

  std::string name() const override { return "record"; }
  std::vector<std::string> splits() const override { return {"train", "validation", "test"}; }
  std::vector<std::string> labels() const override { return {}; }
  std::string primary_metric() const override { return "f1"; }
  std::vector<std::string> metric_names() const override { return {"em", "f1"}; }

  std::string split_file(const std::string& split) const override {
    return split_path("record", options_.data_dir, split, kSplitFiles, ".jsonl");
  }

  std::vector<TaskExample> read_split(const std::string& split) const override {
    const std::string path = split_file(split);
    // T5 trains on one example per gold answer; evaluation needs one per query.
    const bool expand = split.rfind("train", 0) == 0;
    std::vector<TaskExample> out;
    const std::vector<JsonlRecord> records = read_jsonl_file(path);
    for (size_t i = 0; i < records.size(); ++i) {
      const JsonlRecord& r = records[i];
      const std::string p_idx = idx_text(r, r.value, "", "idx");
      const nlohmann::json& passage = child(r, r.value, "", "passage", JsonKind::kObject);
      const std::string text = child(r, passage, "passage.", "text", JsonKind::kString);
      const std::vector<size_t> cp = code_point_offsets(text);
      const int64_t n_chars = static_cast<int64_t>(cp.size()) - 1;
      // The distinct entity strings, sorted (as TFDS builds them); end offsets are inclusive.
      std::set<std::string> entity_set;
      const nlohmann::json& entities = child(r, passage, "passage.", "entities", JsonKind::kArray);
      for (size_t e = 0; e < entities.size(); ++e) {
        const std::string e_path = str_cat("passage.entities[", e, "].");
        if (!entities[e].is_object()) r.fail(str_cat("expected ", e_path, " to be an object"));
        const int64_t start = child(r, entities[e], e_path, "start", JsonKind::kInteger);
        const int64_t end = child(r, entities[e], e_path, "end", JsonKind::kInteger);
        if (start < 0 || end < start || end >= n_chars)
          r.fail(str_cat(e_path, " [", start, ", ", end, "] is outside the passage's ", n_chars,
                         " characters"));
        entity_set.insert(text.substr(cp[start], cp[end + 1] - cp[start]));
      }
      std::string entity_list;
      for (const std::string& e : entity_set) entity_list += (entity_list.empty() ? "" : ", ") + e;
      const std::string passage_text = join_highlights(text);

      const nlohmann::json& qas = child(r, r.value, "", "qas", JsonKind::kArray);
      for (size_t q = 0; q < qas.size(); ++q) {
        const std::string q_path = str_cat("qas[", q, "].");
        if (!qas[q].is_object()) r.fail(str_cat("expected ", q_path, " to be an object"));
        const std::string query = child(r, qas[q], q_path, "query", JsonKind::kString);
        const std::string q_idx = idx_text(r, qas[q], q_path, "idx");
        std::set<std::string> answer_set;
        // A labelled split's query without gold answers would train on "<unk>" (train) or
        // fail only when scored (validation).
        if (has_label(r, split, qas[q], q_path, "answers")) {
          const nlohmann::json& answers = child(r, qas[q], q_path, "answers", JsonKind::kArray);
          for (size_t a = 0; a < answers.size(); ++a) {
            const std::string a_path = str_cat(q_path, "answers[", a, "].");
            if (!answers[a].is_object()) r.fail(str_cat("expected ", a_path, " to be an object"));
            answer_set.insert(
                child(r, answers[a], a_path, "text", JsonKind::kString).get<std::string>());
          }
          if (answers.empty() && !split_may_be_unlabelled(split))
            r.fail(str_cat("\"", q_path, "answers\" is empty (split '", split,
                           "' needs a gold answer for every query; only a test split may leave "
                           "them out)"));
        }
        TaskExample ex;
        ex.inputs = str_cat(options_.task_prefix ? "record " : "", "query: ", query,
                            " entities: ", entity_list, " passage: ", passage_text);
        ex.group = str_cat(p_idx, "-", q_idx);
        ex.answers.assign(answer_set.begin(), answer_set.end());
        const std::string id = example_id("record", split, ex.group);
        if (ex.answers.empty()) {
          ex.id = id;
          ex.targets = "<unk>";
          out.push_back(ex);
        } else if (!expand) {
          ex.id = id;
          ex.targets = ex.answers.front();
          out.push_back(ex);
        } else {
          for (size_t k = 0; k < ex.answers.size(); ++k) {
            TaskExample one = ex;
            one.id = str_cat(id, "-", k);
            one.targets = ex.answers[k];
            out.push_back(std::move(one));
          }
        }
      }
    }
    return out;
  }

  // One score per query: examples repeating a query (the expanded train split) count once,
  // with the first one's prediction, as T5's deduplicate_metric.
  Metrics compute_metrics(const std::vector<TaskExample>& examples,
                          const std::vector<std::string>& predictions) const override {
    SP_CHECK(examples.size() == predictions.size(), "[record] ", examples.size(), " examples but ",
             predictions.size(), " predictions");
    SP_CHECK(!examples.empty(), "[record] no examples to score");
    std::set<std::string> seen;
    double em = 0, f1 = 0;
    size_t scored = 0;
    for (size_t i = 0; i < examples.size(); ++i) {
      const TaskExample& ex = examples[i];
      if (!ex.group.empty() && !seen.insert(ex.group).second) continue;
      SP_CHECK(!ex.answers.empty(), "[record] example ", ex.id,
               " has no gold answers (a test split?)");
      const SquadScore s = squad_max_over_answers(ex.answers, predictions[i]);
      ++scored;
      em += s.em;
      f1 += s.f1;
    }
    return {{"em", 100.0 * em / scored}, {"f1", 100.0 * f1 / scored}};
  }

 private:
  TaskOptions options_;
};

SP_REGISTER_TASK(record, "record", [](const TaskOptions& options) -> std::unique_ptr<Task> {
  return std::make_unique<RecordTask>(options);
});

}  // namespace
}  // namespace sp
