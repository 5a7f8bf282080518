// Text-to-text formatting of every task on small hand-made files, compared with the strings
// T5's preprocessors make (t5/data/preprocessors.py: glue, record, wsc_simple), plus the
// built-in WordNet word-in-context task on a tiny fake WordNet and custom YAML tasks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "experiments/tasks/task.h"
#include "experiments/tasks/wordnet_wic.h"
#include "fake_wordnet.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// The names a Metrics map reports, sorted: what Task::metric_names() must list.
std::vector<std::string> names_of(const Metrics& m) {
  std::vector<std::string> out;
  for (const auto& [name, value] : m) out.push_back(name);
  return out;
}

class TaskFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_tasks_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::vector<TaskExample> load(const std::string& task, const std::string& split,
                                bool prefix = false, const std::string& config = "") {
    TaskOptions o;
    o.data_dir = dir_.string();
    o.task_prefix = prefix;
    o.config = config;
    return make_task(task, o)->load(split);
  }
  fs::path dir_;
};

TEST_F(TaskFiles, Rte) {
  write("val.jsonl",
        "{\"premise\": \"A cat sat.\", \"hypothesis\": \"A cat.\", \"label\": \"entailment\", "
        "\"idx\": 3}\n"
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"not_entailment\", \"idx\": 4}\n");
  const auto ex = load("rte", "validation");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].id, "rte-validation-3");
  EXPECT_EQ(ex[0].inputs, "hypothesis: A cat. premise: A cat sat.");
  EXPECT_EQ(ex[0].targets, "entailment");
  EXPECT_EQ(ex[0].label, 0);
  EXPECT_EQ(ex[1].targets, "not_entailment");
  EXPECT_EQ(ex[1].label, 1);
  EXPECT_EQ(load("rte", "validation", true)[0].inputs,
            "rte hypothesis: A cat. premise: A cat sat.");
  TaskOptions o;
  o.data_dir = dir_.string();
  auto task = make_task("RTE", o);
  EXPECT_EQ(task->labels(), (std::vector<std::string>{"entailment", "not_entailment"}));
  EXPECT_EQ(task->primary_metric(), "accuracy");
  const Metrics m = task->compute_metrics(ex, {"entailment", "Entailment"});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 50.0);
  EXPECT_EQ(task->metric_names(), names_of(m));
}

TEST_F(TaskFiles, BoolqCbCopaWic) {
  write("boolq/val.jsonl",
        "{\"question\": \"is it?\", \"passage\": \"It is.\", \"idx\": 0, \"label\": true}\n");
  write("cb/val.jsonl",
        "{\"premise\": \"P.\", \"hypothesis\": \"H.\", \"label\": \"neutral\", \"idx\": 1}\n");
  write("copa/train.jsonl",
        "{\"premise\": \"The man fell.\", \"choice1\": \"He slipped.\", \"choice2\": \"He sang.\", "
        "\"question\": \"cause\", \"label\": 0, \"idx\": 5}\n");
  write(
      "wic/train32.jsonl",
      "{\"word\": \"bank\", \"sentence1\": \"The bank.\", \"sentence2\": \"A bank.\", \"idx\": 2, "
      "\"label\": false, \"start1\": 4, \"end1\": 8, \"start2\": 2, \"end2\": 6, \"version\": "
      "1.1}\n");
  TaskOptions o;
  o.data_dir = (dir_ / "boolq").string();
  auto boolq = make_task("boolq", o)->load("validation");
  EXPECT_EQ(boolq[0].inputs, "passage: It is. question: is it?");
  EXPECT_EQ(boolq[0].targets, "True");
  o.data_dir = (dir_ / "cb").string();
  auto cb_task = make_task("cb", o);
  auto cb = cb_task->load("validation");
  EXPECT_EQ(cb[0].inputs, "hypothesis: H. premise: P.");
  EXPECT_EQ(cb[0].targets, "neutral");
  EXPECT_EQ(cb[0].label, 2);
  EXPECT_EQ(cb_task->primary_metric(), "mean_3class_f1");
  const Metrics m = cb_task->compute_metrics(cb, {"neutral"});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 100.0);
  EXPECT_NEAR(m.at("mean_3class_f1"), 100.0 / 3, 1e-9);  // two classes absent score 0
  EXPECT_EQ(cb_task->metric_names(), names_of(m));
  o.data_dir = (dir_ / "copa").string();
  o.task_prefix = true;
  auto copa = make_task("copa", o)->load("train");
  EXPECT_EQ(copa[0].inputs,
            "copa choice1: He slipped. choice2: He sang. premise: The man fell. question: cause");
  EXPECT_EQ(copa[0].targets, "choice1");
  EXPECT_EQ(copa[0].id, "copa-train-5");
  o.data_dir = (dir_ / "wic").string();
  o.task_prefix = false;
  auto wic = make_task("wic", o)->load("train32");
  EXPECT_EQ(wic[0].inputs, "sentence1: The bank. sentence2: A bank. word: bank");
  EXPECT_EQ(wic[0].targets, "False");
  EXPECT_EQ(wic[0].id, "wic-train32-2");
}

TEST_F(TaskFiles, TestSplitHasNoLabels) {
  write("test.jsonl", "{\"premise\": \"P\", \"hypothesis\": \"H\", \"idx\": 0}\n");
  TaskOptions o;
  o.data_dir = dir_.string();
  auto task = make_task("rte", o);
  auto ex = task->load("test");
  EXPECT_EQ(ex[0].targets, "<unk>");
  EXPECT_EQ(ex[0].label, -1);
  EXPECT_THROW_MSG(task->compute_metrics(ex, {"entailment"}), "has no label");
}

TEST_F(TaskFiles, SplitFileFindsTheFileWithoutReadingIt) {
  const std::string val = write("val.jsonl", "not json\n");
  TaskOptions o;
  o.data_dir = dir_.string();
  EXPECT_EQ(make_task("rte", o)->split_file("validation"), val);
  EXPECT_THROW_MSG(make_task("rte", o)->split_file("train"), "[rte] split 'train': no file");
  EXPECT_THROW_MSG(make_task("mrpc", o)->split_file("validation"), "no file");
  EXPECT_THROW_MSG(make_task("rte", {})->split_file("train"), "no data directory given");
  EXPECT_EQ(make_task("wordnet_wic", {})->split_file("train"), "");  // made in memory
  EXPECT_THROW_MSG(make_task("wordnet_topic", {})->split_file("dev"), "unknown split 'dev'");
}

TEST_F(TaskFiles, ErrorsNameTheFileAndLine) {
  write("val.jsonl",
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 0}\n"
        "{\"premise\": \"P\", \"label\": \"entailment\", \"idx\": 1}\n");
  EXPECT_THROW_MSG(load("rte", "validation"), "val.jsonl:2: expected \"hypothesis\"");
  write("train.jsonl",
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"maybe\", \"idx\": 0}\n");
  EXPECT_THROW_MSG(
      load("rte", "train"),
      "train.jsonl:1: \"label\" is \"maybe\", expected one of entailment, not_entailment");
  EXPECT_THROW_MSG(load("rte", "dev"), "split 'dev': no file");
  EXPECT_THROW_MSG(make_task("rtee", {}), "unknown task 'rtee'; did you mean 'rte'?");
}

TEST_F(TaskFiles, RepeatedIdxIsRefusedNamingBothExamples) {
  // Two records with idx 4: their predictions could not be told apart by id.
  write("val.jsonl",
        "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 4}\n"
        "{\"premise\": \"Q\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 5}\n"
        "{\"premise\": \"R\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 4}\n");
  EXPECT_THROW_MSG(load("rte", "validation"),
                   "rte split 'validation' (" + (dir_ / "val.jsonl").string() +
                       "): examples 1 and 3 have the same id \"rte-validation-4\"");
  // MultiRC: two paragraphs with one idx would merge their questions into one exact-match
  // group without a word; refused instead.
  const std::string paragraph =
      R"({"idx": 7, "passage": {"text": "Hi.", "questions": [{"question": "Who?", "idx": 20, )"
      R"("answers": [{"text": "Me", "idx": 100, "label": 1}]}]}})";
  write("train.jsonl", paragraph + "\n" + paragraph + "\n");
  EXPECT_THROW_MSG(load("multirc", "train"),
                   "examples 1 and 2 have the same id \"multirc-train-7-20-100\"");
}

TEST_F(TaskFiles, MultiRcOneExamplePerAnswerGroupedByQuestion) {
  write("val.jsonl",
        R"({"idx": 7, "passage": {"text": "<b>Sent 1: </b>Hi there.<br><b>Sent 2: </b>Bye.<br>", )"
        R"("questions": [{"question": "Who?", "idx": 20, "answers": [)"
        R"({"text": "Me", "idx": 100, "label": 1}, {"text": "You", "idx": 101, "label": 0}]}, )"
        R"({"question": "Why?", "idx": 21, "answers": [{"text": "No", "idx": 102, "label": 1}]}]}})"
        "\n");
  TaskOptions o;
  o.data_dir = dir_.string();
  auto task = make_task("multirc", o);
  auto ex = task->load("validation");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].inputs, "question: Who? answer: Me paragraph: Sent 1: Hi there. Sent 2: Bye. ");
  EXPECT_EQ(ex[0].targets, "True");
  EXPECT_EQ(ex[1].targets, "False");
  EXPECT_EQ(ex[0].id, "multirc-validation-7-20-100");
  EXPECT_EQ(ex[0].group, ex[1].group);
  EXPECT_NE(ex[0].group, ex[2].group);
  // Question 20 half right (no exact match), question 21 right; F1: tp 1 (No), fn 1 (Me),
  // fp 0 -> 2/3.
  const Metrics m = task->compute_metrics(ex, {"False", "False", "True"});
  EXPECT_DOUBLE_EQ(m.at("exact_match"), 50.0);
  EXPECT_NEAR(m.at("f1"), 200.0 / 3, 1e-9);
  EXPECT_EQ(task->metric_names(), names_of(m));
}

TEST_F(TaskFiles, RecordExpandsAnswersInTrainAndTakesTheBestInEval) {
  // Offsets count characters (ë is one), end inclusive.
  const std::string record =
      R"({"idx": 4, "passage": {"text": "Zoë met Bob.\n@highlight\nBob left\n@highlight\nZoë stayed", )"
      R"("entities": [{"start": 0, "end": 2}, {"start": 8, "end": 10}, {"start": 24, "end": 26}, )"
      R"({"start": 44, "end": 46}]}, "qas": [{"query": "@placeholder is here", "idx": 9, )"
      R"("answers": [{"start": 8, "end": 10, "text": "Bob"}, {"start": 0, "end": 2, "text": "Zoë"}, )"
      R"({"start": 24, "end": 26, "text": "Bob"}]}]})"
      "\n";
  write("train.jsonl", record);
  write("val.jsonl", record);
  const std::string inputs =
      "query: @placeholder is here entities: Bob, Zoë passage: Zoë met Bob. Bob left. Zoë stayed";
  auto train = load("record", "train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_EQ(train[0].inputs, inputs);
  EXPECT_EQ(train[0].targets, "Bob");
  EXPECT_EQ(train[1].targets, "Zoë");
  EXPECT_EQ(train[1].id, "record-train-4-9-1");
  auto val = load("record", "validation", true);
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].inputs, "record " + inputs);
  EXPECT_EQ(val[0].answers, (std::vector<std::string>{"Bob", "Zoë"}));
  TaskOptions o;
  o.data_dir = dir_.string();
  auto task = make_task("record", o);
  EXPECT_TRUE(task->labels().empty());
  Metrics m = task->compute_metrics(val, {"the zoë"});
  EXPECT_DOUBLE_EQ(m.at("em"), 100.0);
  EXPECT_DOUBLE_EQ(m.at("f1"), 100.0);
  EXPECT_EQ(task->metric_names(), names_of(m));
  // The expanded train split scores each query once, with its first prediction.
  m = task->compute_metrics(train, {"Bob Smith", "Zoë"});
  EXPECT_DOUBLE_EQ(m.at("em"), 0.0);
  EXPECT_NEAR(m.at("f1"), 100.0 * 2.0 / 3, 1e-9);
}

TEST_F(TaskFiles, WscSimple) {
  const std::string text =
      "Mark told Pete many lies about himself, which Pete included in his book. He should have "
      "been more truthful.";
  write("val.jsonl",
        "{\"text\": \"" + text +
            "\", \"target\": {\"span1_index\": 0, \"span1_text\": \"mark.\", "
            "\"span2_index\": 13, \"span2_text\": \"He\"}, \"idx\": 0, \"label\": true}\n"
            "{\"text\": \"" +
            text +
            "\", \"target\": {\"span1_index\": 2, \"span1_text\": \"Pete\", "
            "\"span2_index\": 13, \"span2_text\": \"He\"}, \"idx\": 1, \"label\": false}\n");
  write("train.jsonl", std::string(std::istreambuf_iterator<char>(
                                       *std::make_unique<std::ifstream>(dir_ / "val.jsonl")),
                                   {}));
  auto val = load("wsc", "validation", true);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(val[0].inputs,
            "wsc: Mark told Pete many lies about himself, which Pete included in his book. *He* "
            "should have been more truthful.");
  EXPECT_EQ(val[0].targets, "Mark");  // TFDS wsc.fixed: case and trailing "." repaired
  EXPECT_EQ(val[1].targets, "Pete");
  EXPECT_EQ(val[1].label, 0);
  EXPECT_EQ(load("wsc", "train").size(), 1u);  // correct referents only
  TaskOptions o;
  o.data_dir = dir_.string();
  auto task = make_task("wsc", o);
  EXPECT_DOUBLE_EQ(task->compute_metrics(val, {"Mark", "Mark"}).at("accuracy"), 100.0);
  EXPECT_DOUBLE_EQ(task->compute_metrics(val, {"mark", "Pete"}).at("accuracy"), 50.0);
  EXPECT_EQ(task->metric_names(), names_of(task->compute_metrics(val, {"Mark", "Mark"})));
  // T5's wsc_simple postprocessor maps a prediction that is empty after dropping
  // determiners to -1, which matches no label: wrong even on the False example.
  EXPECT_DOUBLE_EQ(task->compute_metrics(val, {"", "the"}).at("accuracy"), 0.0);
  EXPECT_DOUBLE_EQ(task->compute_metrics(val, {"Mark", ""}).at("accuracy"), 50.0);
}

TEST_F(TaskFiles, WscSpecialCasesAndBadIndex) {
  // One of the two texts T5 special-cases (its span2_index does not point at the pronoun).
  write("val.jsonl",
        R"({"text": "The boy continued to whip the pony , and eventually the pony threw him )"
        R"(over. John laughed out quite loud. \"Good for him,\" he said. ", "target": )"
        R"({"span1_index": 0, "span1_text": "The boy", "span2_index": 22, "span2_text": "him"}, )"
        R"("idx": 0, "label": false})"
        "\n");
  EXPECT_EQ(load("wsc", "validation")[0].inputs,
            "The boy continued to whip the pony , and eventually the pony threw him over. John "
            "laughed out quite loud. \"Good for *him* ,\" he said.");
  write("val.jsonl", R"({"text": "He ran.", "target": {"span1_index": 0, "span1_text": "He", )"
                     R"("span2_index": 5, "span2_text": "ran."}, "idx": 0, "label": false})"
                     "\n");
  EXPECT_THROW_MSG(load("wsc", "validation"), "val.jsonl:1: [wsc] span2_index 5 is not inside");
}

TEST_F(TaskFiles, WscPronounAsTheLastWord) {
  // T5's _wsc_inputs joins [words before, "X", words after] with spaces, so a pronoun that
  // is the last word leaves "... X " (an empty third part), which the " X " replacement
  // still marks.
  write("val.jsonl", R"({"text": "Tom threw the ball to him", "target": {"span1_index": 0, )"
                     R"("span1_text": "Tom", "span2_index": 5, "span2_text": "him"}, "idx": 0, )"
                     R"("label": false})"
                     "\n");
  EXPECT_EQ(load("wsc", "validation", true)[0].inputs, "wsc: Tom threw the ball to *him* ");
}

TEST_F(TaskFiles, GlueTsv) {
  write("MRPC/dev.tsv",
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t1\t2\tHe said \"hi\".\tHe greeted.\n"
        "0\t3\t4\tA\n"
        "0\t5\t6\tX\tY\n");
  write("QQP/train.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "0\t1\t2\tWhy?\tHow?\t0\n");
  TaskOptions o;
  o.data_dir = (dir_ / "MRPC").string();
  auto mrpc_task = make_task("mrpc", o);
  auto mrpc = mrpc_task->load("validation");
  ASSERT_EQ(mrpc.size(), 2u);  // the short row is skipped, as TFDS does
  EXPECT_EQ(mrpc[0].inputs, "sentence1: He said \"hi\". sentence2: He greeted.");
  EXPECT_EQ(mrpc[0].targets, "equivalent");
  EXPECT_EQ(mrpc[1].targets, "not_equivalent");
  EXPECT_EQ(mrpc[1].id, "mrpc-validation-1");
  const Metrics m = mrpc_task->compute_metrics(mrpc, {"equivalent", "duplicate"});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 50.0);
  EXPECT_DOUBLE_EQ(m.at("f1"), 100.0 * 2 / 3);  // tp 1, fp 1 (the invalid one)
  EXPECT_EQ(mrpc_task->metric_names(), names_of(m));
  o.data_dir = (dir_ / "QQP").string();
  o.task_prefix = true;
  auto qqp = make_task("qqp", o)->load("train");
  EXPECT_EQ(qqp[0].inputs, "qqp question1: Why? question2: How?");
  EXPECT_EQ(qqp[0].targets, "not_duplicate");
}

TEST_F(TaskFiles, GlueMrpcHeaderWithByteOrderMark) {
  // GLUE's download script copies msr_paraphrase_train.txt's header, UTF-8 byte order mark
  // included, into MRPC/train.tsv and dev.tsv (TFDS skips those 3 bytes, f.seek(3)): the
  // label column is still "Quality", so the rows keep their labels.
  write("dev.tsv",
        "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t1\t2\tHe said hi.\tHe greeted.\n");
  const auto ex = load("mrpc", "validation");
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].inputs, "sentence1: He said hi. sentence2: He greeted.");
  EXPECT_EQ(ex[0].targets, "equivalent");
  EXPECT_EQ(ex[0].label, 1);
}

TEST_F(TaskFiles, CustomYamlTask) {
  write("data/train.jsonl",
        "{\"p\": \"It rains.\", \"h\": {\"text\": \"Wet.\"}, \"y\": true, \"key\": 10}\n"
        "{\"p\": \"Sun.\", \"h\": {\"text\": \"Dry.\"}, \"y\": false, \"key\": 11}\n");
  const std::string yaml = write("task.yaml",
                                 "name: weather\n"
                                 "splits:\n"
                                 "  train: data/train.jsonl\n"
                                 "input_template: \"premise: {p} hypothesis: {h.text} {{x}}\"\n"
                                 "label_field: y\n"
                                 "verbalizers: {True: yes, false: no}\n"
                                 "id_field: key\n"
                                 "metrics: [macro_f1, accuracy]\n");
  TaskOptions o;
  EXPECT_THROW_MSG(make_task("custom", o),
                   "the custom task needs its YAML file (docs/tasks.md): --config FILE for eval");
  o.config = yaml;
  auto task = make_task("custom", o);
  EXPECT_EQ(task->name(), "weather");
  EXPECT_EQ(task->labels(), (std::vector<std::string>{"yes", "no"}));
  EXPECT_EQ(task->primary_metric(), "mean_2class_f1");
  auto ex = task->load("train");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].id, "weather-train-10");
  EXPECT_EQ(ex[0].inputs, "premise: It rains. hypothesis: Wet. {x}");
  EXPECT_EQ(ex[0].targets, "yes");
  EXPECT_EQ(ex[1].targets, "no");
  const Metrics m = task->compute_metrics(ex, {"yes", "maybe"});
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 50.0);
  // "yes": tp 1 -> F1 1; "no": its only example got an illegal prediction -> 0.
  EXPECT_NEAR(m.at("mean_2class_f1"), 100.0 * (1.0 + 0.0) / 2, 1e-9);
  EXPECT_EQ(task->metric_names(), names_of(m));
}

TEST_F(TaskFiles, CustomYamlNestedLabelField) {
  write("train.jsonl",
        "{\"p\": \"a\", \"meta\": {\"y\": true}}\n{\"p\": \"b\", \"meta\": {\"y\": false}}\n"
        "{\"p\": \"c\", \"meta\": {}}\n");
  // A test split: the only kind whose records may lack their label.
  const std::string yaml = write("nested.yaml",
                                 "name: t\nsplits: {test: train.jsonl}\n"
                                 "input_template: \"{p}\"\nlabel_field: meta.y\n"
                                 "verbalizers: {true: yes, false: no}\n");
  TaskOptions o;
  o.config = yaml;
  const std::vector<TaskExample> ex = make_task("custom", o)->load("test");
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].label, 0);
  EXPECT_EQ(ex[0].targets, "yes");
  EXPECT_EQ(ex[1].label, 1);
  EXPECT_EQ(ex[1].targets, "no");
  EXPECT_EQ(ex[2].label, -1);  // no label: unlabelled
}

// A cut never splits a group: MultiRC's exact match over a question's answers would count
// a question scored on part of them.
TEST(FirstExamples, KeepsTheLastGroupWhole) {
  std::vector<TaskExample> ex(6);
  const char* groups[] = {"q0", "q0", "q1", "q1", "q1", "q2"};
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].id = std::to_string(i);
    ex[i].group = groups[i];
  }
  EXPECT_EQ(first_examples(ex, 3).size(), 5u);
  EXPECT_EQ(first_examples(ex, 2).size(), 2u);
  EXPECT_EQ(first_examples(ex, 5).size(), 5u);
  EXPECT_EQ(first_examples(ex, 0).size(), 6u);
  EXPECT_EQ(first_examples(ex, 9).size(), 6u);
  for (TaskExample& e : ex) e.group.clear();  // no groups: exactly n
  EXPECT_EQ(first_examples(ex, 3).size(), 3u);
}

// A free-form task: an unlabelled test record has no answers (and is not scored); a null
// field is refused (it would be the text "null").
TEST_F(TaskFiles, CustomYamlFreeFormTargets) {
  write("t.jsonl", "{\"p\": \"x\", \"a\": \"one\"}\n{\"p\": \"y\"}\n");
  const std::string yaml = write("free.yaml",
                                 "name: t\nsplits: {test: t.jsonl, train: t.jsonl}\n"
                                 "input_template: \"{p}\"\ntarget_template: \"{a}\"\n");
  TaskOptions o;
  o.config = yaml;
  auto task = make_task("custom", o);
  const std::vector<TaskExample> test = task->load("test");
  ASSERT_EQ(test.size(), 2u);
  EXPECT_EQ(test[0].targets, "one");
  EXPECT_EQ(test[0].answers, (std::vector<std::string>{"one"}));
  EXPECT_EQ(test[1].targets, "<unk>");
  EXPECT_TRUE(test[1].answers.empty());
  // It is not scored against the text "<unk>".
  EXPECT_THROW_MSG(task->compute_metrics(test, {"one", "<unk>"}),
                   "[t] example t-test-1 has no label (a test split?)");
  EXPECT_THROW_MSG(task->load("train"), "t.jsonl:2: no field \"a\" (used by target_template)");
  write("t.jsonl", "{\"p\": \"x\", \"a\": null}\n");
  EXPECT_THROW_MSG(task->load("test"),
                   "t.jsonl:1: field \"a\" (used by target_template) is null, expected text");
}

TEST_F(TaskFiles, CustomYamlErrorsPointAtTheLine) {
  write("train.jsonl",
        "{\"p\": \"x\", \"y\": 1}\n{\"q\": \"x\", \"y\": 1}\n{\"p\": \"x\", \"y\": 2}\n");
  auto make = [&](const std::string& yaml) {
    TaskOptions o;
    o.config = write("bad.yaml", yaml);
    return make_task("custom", o);
  };
  const std::string head = "name: t\nsplits: {train: train.jsonl}\n";
  EXPECT_THROW_MSG(
      make(head + "input_templat: \"{p}\"\nlabel_field: y\nverbalizers: {1: a, 2: b}\n"),
      "bad.yaml:3:1: unknown key 'input_templat'");
  EXPECT_THROW_MSG(
      make(head + "input_template: \"{p\"\nlabel_field: y\nverbalizers: {1: a, 2: b}\n"),
      "bad.yaml:3:17: input_template has a '{' at character 1 without a closing '}'");
  EXPECT_THROW_MSG(make(head + "input_template: \"{p}\"\nlabel_field: y\n"),
                   "label_field needs verbalizers");
  EXPECT_THROW_MSG(
      make(head + "input_template: \"{p}\"\nlabel_field: y\nverbalizers: {1: a, 2: b}\n"
                  "metrics: [acuracy]\n"),
      "did you mean 'accuracy'?");
  auto task = make(head + "input_template: \"{p}\"\nlabel_field: y\nverbalizers: {1: a, 2: b}\n");
  EXPECT_THROW_MSG(task->load("train"), "train.jsonl:2: no field \"p\" (used by input_template)");
  write("train.jsonl", "{\"p\": \"x\", \"y\": 3}\n");
  EXPECT_THROW_MSG(task->load("train"), "train.jsonl:1: label \"y\" is 3, which has no verbalizer");
  EXPECT_THROW_MSG(task->load("validation"), "no split 'validation' (splits: train)");
}

TEST_F(TaskFiles, FindLemmaMatchesWholeWordsAndInflections) {
  EXPECT_EQ(find_lemma("Two banks collapsed", "bank"), (std::pair<int64_t, int64_t>{4, 9}));
  EXPECT_EQ(find_lemma("she studied hard", "study"), (std::pair<int64_t, int64_t>{4, 11}));
  EXPECT_EQ(find_lemma("he stopped", "stop"), (std::pair<int64_t, int64_t>{3, 10}));
  EXPECT_EQ(find_lemma("Taking off now", "take_off"), (std::pair<int64_t, int64_t>{0, 10}));
  EXPECT_EQ(find_lemma("the firm went bankrupt", "bank"), (std::pair<int64_t, int64_t>{-1, -1}));
  EXPECT_EQ(find_lemma("an embankment", "bank"), (std::pair<int64_t, int64_t>{-1, -1}));
  // -d after a final e, -es after a sibilant: "be" is not in "bed", "a" not in "as".
  EXPECT_EQ(find_lemma("they moved", "move"), (std::pair<int64_t, int64_t>{5, 10}));
  EXPECT_EQ(find_lemma("two boxes", "box"), (std::pair<int64_t, int64_t>{4, 9}));
  EXPECT_EQ(find_lemma("they went to bed", "be"), (std::pair<int64_t, int64_t>{-1, -1}));
  EXPECT_EQ(find_lemma("the cats and dogs", "cat"), (std::pair<int64_t, int64_t>{4, 8}));
  EXPECT_EQ(find_lemma("two catses", "cat"), (std::pair<int64_t, int64_t>{-1, -1}));
}

TEST_F(TaskFiles, WordNetWicIsBalancedDisjointAndDeterministic) {
  const std::string wn_dir = testing::write_fake_wordnet(dir_ / "wn", 40);
  const WordnetSenses wn = read_wordnet_senses(wn_dir);
  EXPECT_EQ(wn.lemmas.size(), 41u);
  WordNetWicOptions options;
  options.seed = 3;
  const WordNetWicData data = make_wordnet_wic(wn, options);
  // Each lemma has 2 same-sense pairs and 4 cross-sense pairs: it gives 2 of each.
  EXPECT_EQ(data.train.size() + data.validation.size() + data.test.size(), 40u * 4);
  std::set<std::string> seen_words;
  for (const auto* split : {&data.train, &data.validation, &data.test}) {
    std::set<std::string> words;
    size_t positives = 0;
    for (const WicPair& p : *split) {
      positives += p.label;
      words.insert(p.word);
      EXPECT_EQ(p.sentence1.substr(p.start1, p.end1 - p.start1).substr(0, p.word.size()), p.word);
      EXPECT_NE(p.sentence1, p.sentence2);
    }
    EXPECT_EQ(2 * positives, split->size());
    for (const std::string& w : words) EXPECT_TRUE(seen_words.insert(w).second) << w;
  }
  EXPECT_FALSE(data.train.empty());
  // Same seed, same data; another seed, another order.
  const WordNetWicData again = make_wordnet_wic(wn, options);
  ASSERT_EQ(again.train.size(), data.train.size());
  for (size_t i = 0; i < data.train.size(); ++i) {
    EXPECT_EQ(again.train[i].sentence1, data.train[i].sentence1);
    EXPECT_EQ(again.train[i].label, data.train[i].label);
  }
  options.seed = 4;
  const WordNetWicData other = make_wordnet_wic(wn, options);
  bool differs = other.train.size() != data.train.size();
  for (size_t i = 0; !differs && i < data.train.size(); ++i)
    differs = other.train[i].sentence1 != data.train[i].sentence1;
  EXPECT_TRUE(differs);
  options.max_train = 8;
  EXPECT_LE(make_wordnet_wic(wn, options).train.size(), 8u);
}

TEST_F(TaskFiles, WordNetWicTaskReadsWordNetOrItsBuiltFiles) {
  const std::string wn_dir = testing::write_fake_wordnet(dir_ / "wn", 40);
  TaskOptions o;
  o.data_dir = wn_dir;
  auto task = make_task("wordnet_wic", o);
  EXPECT_EQ(task->labels(), (std::vector<std::string>{"False", "True"}));
  const auto train = task->load("train");
  ASSERT_FALSE(train.empty());
  EXPECT_EQ(train[0].id, "wordnet_wic-train-0");
  EXPECT_EQ(train[0].inputs.rfind("sentence1: ", 0), 0u);
  EXPECT_NE(train[0].inputs.find(" word: word"), std::string::npos);
  // Written out and read back: the same examples.
  WordNetWicOptions options;
  write_wordnet_wic(make_wordnet_wic(read_wordnet_senses(wn_dir), options),
                    (dir_ / "built").string());
  o.data_dir = (dir_ / "built").string();
  const auto built = make_task("wordnet_wic", o)->load("train");
  ASSERT_EQ(built.size(), train.size());
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(built[i].id, train[i].id);
    EXPECT_EQ(built[i].inputs, train[i].inputs);
    EXPECT_EQ(built[i].targets, train[i].targets);
  }
  // The files are WiC's layout: task wic reads them too.
  o.data_dir = (dir_ / "built").string();
  EXPECT_EQ(make_task("wic", o)->load("validation").size(),
            make_task("wordnet_wic", o)->load("validation").size());
  o.data_dir = (dir_ / "nothing").string();
  EXPECT_THROW_MSG(make_task("wordnet_wic", o)->load("train"), "no WordNet database in");
}

}  // namespace
}  // namespace sp
