// The built-in task wordnet_topic (experiments/tasks/wordnet_topic) on a hand-written mini
// WordNet: which synsets become examples and how, class balance, the seeded split by synset,
// the verbalizers, the text-to-text format `tasks preview` prints and the built files.
#include "experiments/tasks/wordnet_topic.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "experiments/tasks/predictions.h"
#include "experiments/tasks/task.h"
#include "test_util.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

struct Expected {
  std::string word, gloss;
  int label;  // index into wordnet_topic_classes()
};

class WordNetTopic : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sp_topic_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "wn");
    write_mini_wordnet();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // data.noun with a licence line; per class (animal 05, plant 20, food 13, artifact 06) a
  // number of synsets with a two-word lemma, a second lemma, two definitions and an example;
  // plus synsets the task must skip: another lexicographer file (03 noun.Tops) and a class
  // synset whose gloss is only an example.
  void write_mini_wordnet() {
    std::ofstream data(dir_ / "wn" / "data.noun");
    data << "  1 This software and database is provided \"as is\" (a license line)\n";
    const std::pair<const char*, int> files[] = {{"05", 60}, {"20", 50}, {"13", 40}, {"06", 70}};
    int64_t offset = 1000;
    for (int c = 0; c < 4; ++c) {
      for (int i = 0; i < files[c].second; ++i) {
        const std::string tag = std::to_string(c) + "x" + std::to_string(i);
        data << offset << " " << files[c].first << " n 02 thing_" << tag << " 0 other" << tag
             << " 0 000 | a thing number " << tag << "; of kind " << c << "; \"the thing " << tag
             << " sat\"\n";
        expected_[offset] = {"thing " + tag,
                             "a thing number " + tag + "; of kind " + std::to_string(c), c};
        ++offset;
      }
    }
    for (int i = 0; i < 10; ++i) {
      skipped_.insert(offset);
      data << offset++ << " 03 n 01 top" << i << " 0 000 | an abstraction\n";
    }
    skipped_.insert(offset);
    data << offset++ << " 05 n 01 mute 0 000 | \"only an example\"\n";
  }

  std::string wn() const { return (dir_ / "wn").string(); }

  fs::path dir_;
  std::map<int64_t, Expected> expected_;
  std::set<int64_t> skipped_;
};

const std::vector<TopicExample>* splits_of(const WordNetTopicData& d, int i) {
  return i == 0 ? &d.train : i == 1 ? &d.validation : &d.test;
}

TEST_F(WordNetTopic, ExamplesAreTheClassSynsetsFirstLemmaAndDefinitions) {
  const WordNetTopicData data = make_wordnet_topic(wn(), WordNetTopicOptions{});
  size_t total = 0;
  for (int s = 0; s < 3; ++s) {
    for (const TopicExample& ex : *splits_of(data, s)) {
      EXPECT_EQ(skipped_.count(ex.offset), 0u) << ex.offset;
      ASSERT_EQ(expected_.count(ex.offset), 1u) << ex.offset;
      const Expected& e = expected_.at(ex.offset);
      EXPECT_EQ(ex.word, e.word);    // '_' -> ' ', the second lemma left out
      EXPECT_EQ(ex.gloss, e.gloss);  // definitions joined by "; ", the example left out
      EXPECT_EQ(ex.label, e.label);
      ++total;
    }
  }
  EXPECT_GT(total, 100u);
}

TEST_F(WordNetTopic, EverySplitIsBalancedAndCapped) {
  WordNetTopicOptions options;
  const WordNetTopicData data = make_wordnet_topic(wn(), options);
  for (int s = 0; s < 3; ++s) {
    std::vector<size_t> counts(4, 0);
    for (const TopicExample& ex : *splits_of(data, s)) ++counts.at(ex.label);
    EXPECT_GT(counts[0], 0u) << "split " << s;
    for (size_t c = 1; c < 4; ++c) EXPECT_EQ(counts[c], counts[0]) << "split " << s;
  }
  // Uncapped, train holds every train synset of the smallest class (food: 40 synsets).
  EXPECT_LE(data.train.size(), 4u * 40);
  EXPECT_GE(data.train.size(), 4u * 20);
  options.max_train_per_class = 5;
  options.max_validation_per_class = 1;
  const WordNetTopicData capped = make_wordnet_topic(wn(), options);
  EXPECT_EQ(capped.train.size(), 20u);
  EXPECT_EQ(capped.validation.size(), 4u);
}

TEST_F(WordNetTopic, SplitIsBySynsetAndDeterministic) {
  WordNetTopicOptions options;
  options.seed = 7;
  const WordNetTopicData data = make_wordnet_topic(wn(), options);
  std::map<int64_t, int> split_of;
  for (int s = 0; s < 3; ++s)
    for (const TopicExample& ex : *splits_of(data, s))
      EXPECT_TRUE(split_of.emplace(ex.offset, s).second) << "synset " << ex.offset << " twice";
  // A synset's split does not depend on the caps: with other caps no synset changes split.
  WordNetTopicOptions small = options;
  small.max_train_per_class = 3;
  small.max_test_per_class = 2;
  const WordNetTopicData fewer = make_wordnet_topic(wn(), small);
  size_t common = 0;
  for (int s = 0; s < 3; ++s) {
    for (const TopicExample& ex : *splits_of(fewer, s)) {
      const auto it = split_of.find(ex.offset);
      if (it == split_of.end()) continue;
      EXPECT_EQ(it->second, s) << "synset " << ex.offset;
      ++common;
    }
  }
  EXPECT_GT(common, 0u);
  // Same seed, same data in the same order; another seed, another split.
  const WordNetTopicData again = make_wordnet_topic(wn(), options);
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(splits_of(again, s)->size(), splits_of(data, s)->size());
    for (size_t i = 0; i < splits_of(data, s)->size(); ++i)
      EXPECT_EQ((*splits_of(again, s))[i].offset, (*splits_of(data, s))[i].offset);
  }
  options.seed = 8;
  const WordNetTopicData other = make_wordnet_topic(wn(), options);
  bool differs = false;
  for (const TopicExample& ex : other.validation)
    differs = differs || !split_of.count(ex.offset) || split_of.at(ex.offset) != 1;
  EXPECT_TRUE(differs);
}

TEST_F(WordNetTopic, VerbalizersAndPreviewFormat) {
  EXPECT_EQ(wordnet_topic_classes().size(), 4u);
  TaskOptions o;
  o.data_dir = wn();
  auto task = make_task("wordnet_topic", o);
  EXPECT_EQ(task->labels(), (std::vector<std::string>{"animal", "plant", "food", "artifact"}));
  EXPECT_EQ(task->primary_metric(), "accuracy");
  const auto val = task->load("validation");
  ASSERT_FALSE(val.empty());
  const WordNetTopicData data = make_wordnet_topic(wn(), WordNetTopicOptions{});
  const Expected& e = expected_.at(data.validation.at(0).offset);
  EXPECT_EQ(val[0].id, "wordnet_topic-validation-0");
  EXPECT_EQ(val[0].inputs, "word: " + e.word + " gloss: " + e.gloss);
  EXPECT_EQ(val[0].targets, task->labels()[e.label]);
  EXPECT_EQ(val[0].label, e.label);
  EXPECT_EQ(example_json(val[0]),
            "{\"id\":\"wordnet_topic-validation-0\",\"inputs\":\"word: " + e.word +
                " gloss: " + e.gloss + "\",\"targets\":\"" + task->labels()[e.label] + "\"}");
  o.task_prefix = true;
  EXPECT_EQ(make_task("wordnet_topic", o)->load("validation")[0].inputs,
            "wordnet_topic word: " + e.word + " gloss: " + e.gloss);
  // Scored by accuracy over the four words.
  std::vector<std::string> predictions;
  for (const TaskExample& ex : val) predictions.push_back(ex.targets);
  EXPECT_DOUBLE_EQ(task->compute_metrics(val, predictions).at("accuracy"), 100.0);
  EXPECT_THROW_MSG(task->load("dev"), "unknown split 'dev'");
}

TEST_F(WordNetTopic, BuiltFilesReadBackAsTheSameExamples) {
  TaskOptions o;
  o.data_dir = wn();
  const auto train = make_task("wordnet_topic", o)->load("train");
  write_wordnet_topic(make_wordnet_topic(wn(), WordNetTopicOptions{}), wordnet_topic_classes(),
                      (dir_ / "built").string());
  o.data_dir = (dir_ / "built").string();
  const auto built = make_task("wordnet_topic", o)->load("train");
  ASSERT_EQ(built.size(), train.size());
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(built[i].id, train[i].id);
    EXPECT_EQ(built[i].inputs, train[i].inputs);
    EXPECT_EQ(built[i].targets, train[i].targets);
    EXPECT_EQ(built[i].label, train[i].label);
  }
  std::ofstream(dir_ / "built" / "test.jsonl") << "{\"word\": \"w\", \"gloss\": \"g\", "
                                                  "\"label\": \"mineral\"}\n";
  EXPECT_THROW_MSG(make_task("wordnet_topic", o)->load("test"),
                   "test.jsonl:1: label \"mineral\" is not one of animal, plant, food, artifact");
}

TEST_F(WordNetTopic, ErrorsNameTheProblem) {
  EXPECT_THROW_MSG(make_wordnet_topic((dir_ / "nothing").string(), WordNetTopicOptions{}),
                   "no WordNet database in");
  WordNetTopicOptions options;
  options.classes = {{5, "animal"}, {5, "beast"}};
  EXPECT_THROW_MSG(make_wordnet_topic(wn(), options), "repeats a lex_filenum or a label");
  options.classes = {{5, "animal"}, {17, "object"}};
  EXPECT_THROW_MSG(make_wordnet_topic(wn(), options), "no synset of lex_filenum 17");
  std::ofstream(dir_ / "wn" / "data.noun", std::ios::app) << "1 x5 n 01 bad 0 000 | bad\n";
  EXPECT_THROW_MSG(make_wordnet_topic(wn(), WordNetTopicOptions{}),
                   "data.noun:" + std::to_string(4 * 55 + 13) + ": lex_filenum \"x5\"");
}

}  // namespace
}  // namespace sp
