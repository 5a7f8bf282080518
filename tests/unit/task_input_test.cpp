// Task readers on wrong input that used to pass silently: a custom task's name or a split
// name that is not a file name (the runner writes <task>-<split>.jsonl), a labelled split's
// record without its label, an idx or id field of the wrong kind, and a key given twice.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "experiments/tasks/task.h"
#include "temp_dir.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

class TaskInputs : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  // Task name's split, read from dir_/sub.
  std::vector<TaskExample> load(const std::string& name, const std::string& sub,
                                const std::string& split) const {
    TaskOptions o;
    o.data_dir = (dir_ / sub).string();
    return make_task(name, o)->load(split);
  }
  // The custom task of the YAML text, written as dir_/task.yaml.
  std::unique_ptr<Task> custom(const std::string& yaml) const {
    TaskOptions o;
    o.config = write("task.yaml", yaml);
    return make_task("custom", o);
  }

  TempDir tmp_;
  const fs::path& dir_ = tmp_.path;
};

const char* const kCustomBody =
    "input_template: \"premise: {p}\"\n"
    "label_field: y\n"
    "verbalizers: {true: \"yes\", false: \"no\"}\n";

TEST_F(TaskInputs, CustomTaskNameMustBeAFileName) {
  write("train.jsonl", "{\"p\": \"a\", \"y\": true}\n");
  const std::string splits = "splits: {train: train.jsonl}\n";
  EXPECT_THROW_MSG(custom("name: \"../../../ESCAPED\"\n" + splits + kCustomBody),
                   "task.yaml:1:7: name '../../../ESCAPED' must be letters, digits, '.', '_', '-' "
                   "or '+'");
  EXPECT_THROW_MSG(custom("name: \"a b/c\"\n" + splits + kCustomBody), "name 'a b/c' must be");
  EXPECT_THROW_MSG(custom("name: \"..\"\n" + splits + kCustomBody), "name '..' must be");
  EXPECT_THROW_MSG(custom("name: .\n" + splits + kCustomBody), "name '.' must be");
  const auto task = custom("name: We.ath-er_2+\n" + splits + kCustomBody);
  EXPECT_EQ(task->load("train")[0].id, "We.ath-er_2+-train-0");
}

TEST_F(TaskInputs, CustomTaskSplitNamesMustBeFileNames) {
  write("train.jsonl", "{\"p\": \"a\", \"y\": true}\n");
  EXPECT_THROW_MSG(custom(std::string("name: w\nsplits:\n  train: train.jsonl\n  ../up: "
                                      "train.jsonl\n") +
                          kCustomBody),
                   "task.yaml:4:3: splits: split name '../up' must be letters, digits");
}

TEST_F(TaskInputs, FileTaskSplitNamesMustBeFileNames) {
  // "X" reads DIR/X.jsonl, so without the check "../other/val" would read another folder's
  // file and name the eval output "rte-../other/val.jsonl".
  const std::string record =
      "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 0}\n";
  write("data/val.jsonl", record);
  write("other/val.jsonl", record);
  EXPECT_EQ(load("rte", "data", "validation").size(), 1u);
  EXPECT_THROW_MSG(load("rte", "data", "../other/val"),
                   "[rte] split '../other/val' is not a split name: letters, digits");
  EXPECT_THROW_MSG(load("mrpc", "data", "a b"), "[mrpc] split 'a b' is not a split name");
}

TEST_F(TaskInputs, SplitFileThatIsADirectoryIsNamedAsSuch) {
  fs::create_directories(dir_ / "data/val.jsonl");
  EXPECT_THROW_MSG(load("cb", "data", "validation"),
                   "[cb] split 'validation': " + (dir_ / "data/val.jsonl").string() +
                       " is a directory, not a file");
  EXPECT_THROW_MSG(
      custom(std::string("name: w\nsplits: {validation: data/val.jsonl}\n") + kCustomBody)
          ->load("validation"),
      "is a directory, not a file");
}

TEST_F(TaskInputs, SuperGlueLabelledSplitsNeedLabels) {
  // Line 2 of each file has no label: in train and validation that is an error, in test it
  // is the unlabelled split.
  const std::vector<std::pair<std::string, std::string>> records = {
      {"boolq", R"({"question": "is it", "passage": "It is.", "idx": 0)"},
      {"cb", R"({"premise": "P.", "hypothesis": "H.", "idx": 0)"},
      {"copa", R"({"premise": "He fell.", "choice1": "Slip.", "choice2": "Sang.", )"
               R"("question": "cause", "idx": 0)"},
      {"rte", R"({"premise": "P.", "hypothesis": "H.", "idx": 0)"},
      {"wic", R"({"word": "bank", "sentence1": "The bank.", "sentence2": "A bank.", "idx": 0)"},
  };
  const std::map<std::string, std::string> labels = {{"boolq", "true"},
                                                     {"cb", "\"neutral\""},
                                                     {"copa", "0"},
                                                     {"rte", "\"entailment\""},
                                                     {"wic", "false"}};
  for (const auto& [task, head] : records) {
    const std::string text = head + ", \"label\": " + labels.at(task) + "}\n" + head + "}\n";
    write(task + "/train.jsonl", text);
    write(task + "/val.jsonl", text);
    write(task + "/test.jsonl", head + "}\n");
    EXPECT_THROW_MSG(load(task, task, "train"),
                     "train.jsonl:2: expected \"label\" (split 'train' needs labels; only a test "
                     "split may leave them out)");
    EXPECT_THROW_MSG(load(task, task, "validation"),
                     "val.jsonl:2: expected \"label\" (split 'validation' needs labels");
    const std::vector<TaskExample> test = load(task, task, "test");
    ASSERT_EQ(test.size(), 1u) << task;
    EXPECT_EQ(test[0].targets, "<unk>");
    // A null label is not a missing one.
    write(task + "/test.jsonl", head + ", \"label\": null}\n");
    EXPECT_THROW_MSG(load(task, task, "test"), "test.jsonl:1: expected \"label\" to be");
  }
}

TEST_F(TaskInputs, MultiRcRecordAndWscLabelledSplitsNeedLabels) {
  write("multirc/val.jsonl",
        R"({"idx": 7, "passage": {"text": "Hi.", "questions": [{"question": "Who?", "idx": 2, )"
        R"("answers": [{"text": "Me", "idx": 0, "label": 1}, {"text": "You", "idx": 1}]}]}})"
        "\n");
  EXPECT_THROW_MSG(load("multirc", "multirc", "validation"),
                   "val.jsonl:1: expected \"passage.questions[0].answers[1].label\" (split "
                   "'validation' needs labels");
  fs::copy(dir_ / "multirc/val.jsonl", dir_ / "multirc/test.jsonl");
  EXPECT_EQ(load("multirc", "multirc", "test")[1].label, -1);

  const std::string passage =
      R"({"idx": 4, "passage": {"text": "Zoë met Bob.", "entities": [{"start": 0, "end": 2}]}, )";
  write("record/train.jsonl", passage + R"("qas": [{"query": "@placeholder ran", "idx": 9}]})"
                                        "\n");
  write("record/val.jsonl",
        passage + R"("qas": [{"query": "@placeholder ran", "idx": 9, "answers": []}]})"
                  "\n");
  EXPECT_THROW_MSG(load("record", "record", "train"),
                   "train.jsonl:1: expected \"qas[0].answers\" (split 'train' needs labels");
  EXPECT_THROW_MSG(load("record", "record", "validation"),
                   "val.jsonl:1: \"qas[0].answers\" is empty (split 'validation' needs a gold "
                   "answer for every query");
  fs::copy(dir_ / "record/train.jsonl", dir_ / "record/test.jsonl");
  EXPECT_EQ(load("record", "record", "test")[0].targets, "<unk>");

  // WSC's train split keeps only true referents, so an unlabelled line used to vanish.
  const std::string wsc =
      R"({"text": "Mark told Pete he lied.", "target": {"span1_index": 0, "span1_text": "Mark", )"
      R"("span2_index": 3, "span2_text": "he"}, "idx": 0)";
  write("wsc/train.jsonl", wsc + ", \"label\": true}\n" + wsc + "}\n");
  EXPECT_THROW_MSG(load("wsc", "wsc", "train"),
                   "train.jsonl:2: expected \"label\" (split 'train' needs labels");
  write("wsc/test.jsonl", wsc + "}\n");
  EXPECT_EQ(load("wsc", "wsc", "test")[0].label, -1);
}

TEST_F(TaskInputs, GlueAndBuiltWordNetLabelledSplitsNeedLabels) {
  const std::string unlabelled = "#1 ID\t#2 ID\t#1 String\t#2 String\n1\t2\tA.\tB.\n";
  write("mrpc/dev.tsv", unlabelled);
  write("mrpc/test.tsv", unlabelled);
  EXPECT_THROW_MSG(load("mrpc", "mrpc", "validation"),
                   "dev.tsv:1: no column \"Quality\" in the header (split 'validation' needs "
                   "labels");
  EXPECT_EQ(load("mrpc", "mrpc", "test")[0].label, -1);

  // Folders `tasks build` writes: train.jsonl marks them as built.
  write("wic/train.jsonl",
        "{\"word\": \"bank\", \"sentence1\": \"A bank.\", \"sentence2\": \"The bank.\", \"idx\": "
        "0}\n");
  EXPECT_THROW_MSG(load("wordnet_wic", "wic", "train"),
                   "train.jsonl:1: expected \"label\" (split 'train' needs labels");
  write("topic/train.jsonl", "{\"word\": \"cat\", \"gloss\": \"a feline\", \"idx\": 0}\n");
  EXPECT_THROW_MSG(load("wordnet_topic", "topic", "train"),
                   "train.jsonl:1: expected \"label\" (split 'train' needs labels");
}

TEST_F(TaskInputs, CustomLabelledSplitsNeedLabels) {
  write("train.jsonl", "{\"p\": \"a\", \"y\": true}\n{\"p\": \"b\"}\n");
  const auto task = custom(std::string("name: w\nsplits: {train: train.jsonl, test: "
                                       "train.jsonl}\n") +
                           kCustomBody);
  EXPECT_THROW_MSG(task->load("train"),
                   "train.jsonl:2: no label field \"y\" (split 'train' needs labels; only a test "
                   "split may leave them out)");
  EXPECT_EQ(task->load("test")[1].label, -1);
}

TEST_F(TaskInputs, SuperGlueIdxIsANonNegativeInteger) {
  const std::string head = R"({"premise": "P", "hypothesis": "H", "label": "neutral", "idx": )";
  write("val.jsonl", head + "0}\n" + head + "\"one\"}\n");
  EXPECT_THROW_MSG(load("cb", "", "validation"),
                   "val.jsonl:2: expected \"idx\" to be an integer, got a string");
  write("val.jsonl", head + "{\"x\": 1}}\n");
  EXPECT_THROW_MSG(load("cb", "", "validation"),
                   "val.jsonl:1: expected \"idx\" to be an integer, got an object");
  write("val.jsonl", head + "-1}\n");
  EXPECT_THROW_MSG(load("cb", "", "validation"),
                   "val.jsonl:1: \"idx\" is -1, expected a non-negative integer");
  // Above int64_t's range but an integer: written as it is, not wrapped to -1.
  write("val.jsonl", head + "18446744073709551615}\n");
  EXPECT_EQ(load("cb", "", "validation")[0].id, "cb-validation-18446744073709551615");

  write("val.jsonl",
        R"({"idx": 7, "passage": {"text": "Hi.", "questions": [{"question": "Who?", "idx": -2, )"
        R"("answers": [{"text": "Me", "idx": 0, "label": 1}]}]}})"
        "\n");
  EXPECT_THROW_MSG(load("multirc", "", "validation"),
                   "val.jsonl:1: \"passage.questions[0].idx\" is -2, expected a non-negative");
  write("val.jsonl",
        R"({"idx": 4, "passage": {"text": "Bob ran.", "entities": [{"start": 0, "end": 2}]}, )"
        R"("qas": [{"query": "@placeholder ran", "idx": -9, "answers": [{"text": "Bob"}]}]})"
        "\n");
  EXPECT_THROW_MSG(load("record", "", "validation"),
                   "val.jsonl:1: \"qas[0].idx\" is -9, expected a non-negative integer");
  write("val.jsonl",
        R"({"text": "Mark told Pete he lied.", "target": {"span1_index": 0, "span1_text": "Mark", )"
        R"("span2_index": 3, "span2_text": "he"}, "idx": -1, "label": true})"
        "\n");
  EXPECT_THROW_MSG(load("wsc", "", "validation"),
                   "val.jsonl:1: \"idx\" is -1, expected a non-negative integer");
}

TEST_F(TaskInputs, CustomIdFieldIsAStringOrAnInteger) {
  const std::string yaml =
      std::string("name: weather\nsplits: {validation: val.jsonl}\nid_field: key\n") + kCustomBody;
  const auto task = custom(yaml);
  write("val.jsonl",
        "{\"p\": \"a\", \"y\": true, \"key\": \"k1\"}\n"
        "{\"p\": \"b\", \"y\": false, \"key\": 12}\n");
  const std::vector<TaskExample> ex = task->load("validation");
  EXPECT_EQ(ex[0].id, "weather-validation-k1");
  EXPECT_EQ(ex[1].id, "weather-validation-12");
  write("val.jsonl", "{\"p\": \"a\", \"y\": true, \"key\": {\"x\": 1}}\n");
  EXPECT_THROW_MSG(task->load("validation"),
                   "val.jsonl:1: id field \"key\" is an object, expected a string or an integer");
  write("val.jsonl", "{\"p\": \"a\", \"y\": true, \"key\": [1]}\n");
  EXPECT_THROW_MSG(task->load("validation"), "id field \"key\" is an array, expected");
  write("val.jsonl", "{\"p\": \"a\", \"y\": true, \"key\": 1.5}\n");
  EXPECT_THROW_MSG(task->load("validation"), "id field \"key\" is a number (1.5), expected");
  write("val.jsonl", "{\"p\": \"a\", \"y\": true, \"key\": null}\n");
  EXPECT_THROW_MSG(task->load("validation"), "id field \"key\" is null (null), expected");
}

TEST_F(TaskInputs, DataLineWithADuplicateKeyIsAnError) {
  write("val.jsonl",
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 0}\n"
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"label\": "
        "\"neutral\", \"idx\": 1}\n");
  EXPECT_THROW_MSG(load("cb", "", "validation"),
                   "val.jsonl:2: key \"label\" is given twice in one object");
}

}  // namespace
}  // namespace sp
