// Task readers on broken data: seeded mutants of one valid record per SuperGLUE task, of a
// GLUE TSV file and of a custom task's YAML must each load (and score any predictions) or
// fail with sp::Error naming the file. Another exception type or a crash is a defect; a
// silent wrong result is what the per-task tests in tasks_test.cpp pin down.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "experiments/tasks/task.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// Values that replace a JSON value (or a TSV cell, or a YAML value).
const std::vector<std::string>& hostile_values() {
  static const std::vector<std::string> values = {"-1",
                                                  "0",
                                                  "1e400",
                                                  "-1e400",
                                                  "1.5",
                                                  "99999999999999999999",
                                                  "-9223372036854775809",
                                                  "2147483648",
                                                  "\"\"",
                                                  "\"x\"",
                                                  "[]",
                                                  "{}",
                                                  "null",
                                                  "true",
                                                  "false",
                                                  "[{}]",
                                                  "\"\\u0000\"",
                                                  "\"\\ud800\"",
                                                  "{\"start\": 5, \"end\": 1}"};
  return values;
}

struct Mutator {
  std::mt19937_64 rng;
  size_t pick(size_t n) { return static_cast<size_t>(rng() % n); }

  // One random edit of text: a value after a separator replaced, a piece cut out, a stray
  // character, or the text cut short.
  std::string operator()(std::string text, const std::string& separator) {
    if (text.empty()) return text;
    switch (pick(4)) {
      case 0: {
        std::vector<size_t> at;
        for (size_t p = text.find(separator); p != std::string::npos;
             p = text.find(separator, p + 1))
          at.push_back(p + separator.size());
        if (at.empty()) return text;
        const size_t begin = at[pick(at.size())];
        size_t end = begin;
        while (end < text.size() && std::string(",}]\t\n").find(text[end]) == std::string::npos)
          ++end;
        return text.substr(0, begin) + hostile_values()[pick(hostile_values().size())] +
               text.substr(end);
      }
      case 1: {
        const size_t begin = pick(text.size());
        return text.erase(begin, 1 + pick(8));
      }
      case 2: {
        static const std::string chars = "{}[]\":,\t\n\\-0";
        text.insert(pick(text.size() + 1), 1, chars[pick(chars.size())]);
        return text;
      }
      default: return text.substr(0, pick(text.size() + 1));
    }
  }
};

class TaskMutation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_task_mutation_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // Loads the validation split and scores it with predictions that are the targets, a
  // wrong label and an empty string in turn; counts outcomes, fails on a foreign exception.
  void load_and_score(const std::string& task_name, const TaskOptions& options,
                      const std::string& what) {
    try {
      const std::unique_ptr<Task> task = make_task(task_name, options);
      const std::vector<TaskExample> examples = task->load("validation");
      std::vector<std::string> predictions;
      for (size_t i = 0; i < examples.size(); ++i)
        predictions.push_back(i % 3 == 0 ? examples[i].targets : i % 3 == 1 ? "nonsense" : "");
      task->compute_metrics(examples, predictions);
      ++loaded_;
    } catch (const Error&) {
      ++refused_;
    } catch (const std::exception& e) {
      ADD_FAILURE() << task_name << " threw " << typeid(e).name() << ": " << e.what()
                    << "\n--- input:\n"
                    << what;
    }
  }

  fs::path dir_;
  int loaded_ = 0, refused_ = 0;
};

TEST_F(TaskMutation, SuperGlueRecordsLoadOrFailWithSpError) {
  const std::vector<std::pair<std::string, std::string>> records = {
      {"boolq", R"({"question": "is it", "passage": "It is.", "idx": 0, "label": true})"},
      {"cb", R"({"premise": "P.", "hypothesis": "H.", "label": "neutral", "idx": 1})"},
      {"copa",
       R"({"premise": "He fell.", "choice1": "Slip.", "choice2": "Sang.", "question": "cause", )"
       R"("label": 0, "idx": 5})"},
      {"rte",
       R"({"premise": "A cat sat.", "hypothesis": "A cat.", "label": "entailment", "idx": 0})"},
      {"wic", R"({"word": "bank", "sentence1": "The bank.", "sentence2": "A bank.", "idx": 2, )"
              R"("label": false, "start1": 4, "end1": 8, "start2": 2, "end2": 6})"},
      {"multirc",
       R"({"idx": 7, "passage": {"text": "<b>Sent 1: </b>Hi.<br>", "questions": [{"question": )"
       R"("Who?", "idx": 20, "answers": [{"text": "Me", "idx": 100, "label": 1}, {"text": "You", )"
       R"("idx": 101, "label": 0}]}]}})"},
      {"record",
       R"({"idx": 4, "passage": {"text": "Zoë met Bob.\n@highlight\nBob left", "entities": )"
       R"([{"start": 0, "end": 2}, {"start": 8, "end": 10}]}, "qas": [{"query": "@placeholder )"
       R"(is here", "idx": 9, "answers": [{"start": 8, "end": 10, "text": "Bob"}]}]})"},
      {"wsc", R"({"text": "Mark told Pete he lied.", "target": {"span1_index": 0, "span1_text": )"
              R"("Mark", "span2_index": 3, "span2_text": "he"}, "idx": 0, "label": true})"},
  };
  Mutator mutate{std::mt19937_64(7)};
  TaskOptions options;
  options.data_dir = dir_.string();
  for (const auto& [task, record] : records) {
    write("val.jsonl", record + "\n");
    ASSERT_EQ(make_task(task, options)->load("validation").empty(), false) << task;
    for (int n = 0; n < 150; ++n) {
      const std::string text = mutate(record, ": ") + "\n";
      write("val.jsonl", text);
      load_and_score(task, options, text);
    }
  }
  EXPECT_GT(loaded_, 0);
  EXPECT_GT(refused_, 0);
}

TEST_F(TaskMutation, GlueTsvLoadsOrFailsWithSpError) {
  const std::string tsv =
      "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA cat sat.\tThe cat sat.\n"
      "0\t3\t4\tIt rains.\tIt is dry.\n";
  Mutator mutate{std::mt19937_64(11)};
  TaskOptions options;
  options.data_dir = dir_.string();
  write("dev.tsv", tsv);
  load_and_score("mrpc", options, tsv);
  ASSERT_EQ(refused_, 0);
  for (int n = 0; n < 300; ++n) {
    const std::string text = mutate(tsv, "\t");
    write("dev.tsv", text);
    load_and_score("mrpc", options, text);
  }
  EXPECT_GT(loaded_, 0);
}

TEST_F(TaskMutation, CustomTaskConfigsLoadOrFailWithSpError) {
  write("val.jsonl", R"({"p": "It rains.", "h": {"text": "Wet."}, "y": true, "key": 10})"
                     "\n"
                     R"({"p": "Sun.", "h": {"text": "Dry."}, "y": false, "key": 11})"
                     "\n");
  const std::string yaml =
      "name: weather\n"
      "splits: {validation: val.jsonl}\n"
      "input_template: \"premise: {p} hypothesis: {h.text} {{x}}\"\n"
      "label_field: y\n"
      "verbalizers: {true: yes, false: no}\n"
      "id_field: key\n"
      "metrics: [macro_f1, accuracy]\n";
  Mutator mutate{std::mt19937_64(13)};
  TaskOptions options;
  options.config = (dir_ / "task.yaml").string();
  write("task.yaml", yaml);
  load_and_score("custom", options, yaml);
  ASSERT_EQ(refused_, 0);
  for (int n = 0; n < 300; ++n) {
    const std::string text = mutate(yaml, ": ");
    write("task.yaml", text);
    load_and_score("custom", options, text);
  }
  EXPECT_GT(loaded_, 0);
  EXPECT_GT(refused_, 0);
}

}  // namespace
}  // namespace sp
