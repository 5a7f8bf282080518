// The built-in corpus holds none of the built-in WordNet tasks' validation and test text,
// whatever seed the tasks use (wordnet_held_out.h).
#include "experiments/tasks/wordnet_held_out.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "experiments/data/corpus_builder.h"
#include "experiments/tasks/wordnet_topic.h"
#include "experiments/tasks/wordnet_wic.h"
#include "fake_wordnet.h"
#include "temp_dir.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// train.txt and validation.txt of a corpus built from wn, with or without the exclusion.
std::string corpus_text(const TempDir& tmp, const std::string& wn, bool exclude) {
  CorpusBuildOptions o;
  o.out_dir = tmp / (exclude ? "held_out" : "all");
  o.wordnet_dir = wn;
  o.train_vocabulary = false;
  if (exclude) {
    o.wordnet_exclusion = wordnet_tasks_held_out();
    o.wordnet_exclusion_name = kWordnetTasksHeldOut;
  }
  build_corpus(o);
  return read_all(o.out_dir + "/train.txt") + read_all(o.out_dir + "/validation.txt");
}

TEST(WordnetHeldOut, TheCorpusHoldsNoHeldOutTaskTextForAnySeed) {
  TempDir tmp;
  const std::string wn = testing::write_fake_wordnet(
      tmp.path / "wn", 60,
      {.all_data_files = true, .sentences_quoted_twice = true, .topic_classes = true});
  const std::string kept = corpus_text(tmp, wn, true);
  const std::string all = corpus_text(tmp, wn, false);
  const WordnetSenses senses = read_wordnet_senses(wn);
  // Quoted as the documents quote them, so "the word1 sat" is not found in "the word10 sat".
  const auto in = [](const std::string& text, const std::string& quoted) {
    return text.find(quoted) != std::string::npos;
  };
  const auto q = [](const std::string& s) {
    std::string out = "\"";
    out += s;
    out += '"';
    return out;
  };
  const auto gloss = [](const std::string& s) {
    std::string out = ": ";
    out += s;
    out += '\n';
    return out;
  };
  int held_out = 0, in_full_corpus = 0, train_kept = 0;
  for (uint64_t seed : {0, 3, 7}) {
    SCOPED_TRACE(seed);
    WordNetWicOptions wo;
    wo.seed = seed;
    const WordNetWicData wic = make_wordnet_wic(senses, wo);
    for (const auto* split : {&wic.validation, &wic.test})
      for (const WicPair& p : *split)
        for (const std::string& s : {p.sentence1, p.sentence2}) {
          ++held_out;
          EXPECT_FALSE(in(kept, q(s))) << s;
          in_full_corpus += in(all, q(s));
        }
    for (const WicPair& p : wic.train) train_kept += in(kept, q(p.sentence1));
    WordNetTopicOptions to;
    to.seed = seed;
    const WordNetTopicData topic = make_wordnet_topic(wn, to);
    for (const auto* split : {&topic.validation, &topic.test})
      for (const TopicExample& ex : *split) {
        ++held_out;
        EXPECT_FALSE(in(kept, gloss(ex.gloss))) << ex.gloss;
        in_full_corpus += in(all, gloss(ex.gloss));
      }
    for (const TopicExample& ex : topic.train) train_kept += in(kept, gloss(ex.gloss));
  }
  EXPECT_GT(held_out, 20);
  EXPECT_EQ(in_full_corpus, held_out) << "without the exclusion the corpus holds them all";
  EXPECT_GT(train_kept, held_out) << "the training items' text stays in the corpus";
  // corpus.json says what was left out.
  const nlohmann::json manifest =
      nlohmann::json::parse(std::ifstream(tmp / "held_out/corpus.json"));
  EXPECT_EQ(manifest["wordnet_excludes"], kWordnetTasksHeldOut);
  const nlohmann::json& noun = manifest["sources"][2];
  EXPECT_NE(noun["name"].get<std::string>().find("data.noun"), std::string::npos);
  EXPECT_GT(noun["excluded_synsets"].get<int64_t>(), 0);
  EXPECT_GT(noun["excluded_sentences"].get<int64_t>(), 0);
}

TEST(WordnetHeldOut, SplitsDependOnTheItemAlone) {
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 2000; ++i)
    ++counts[static_cast<int>(wordnet_wic_split(std::to_string(i * 7919)))];
  EXPECT_NEAR(counts[0], 1600, 80);  // 80% train
  EXPECT_NEAR(counts[1], 200, 45);
  EXPECT_NEAR(counts[2], 200, 45);
  EXPECT_EQ(wordnet_topic_split(1234), wordnet_topic_split(1234));
}

// A gloss part quoting an excluded sentence goes (a definition giving it after ':' too).
TEST(WordnetHeldOut, ExclusionDropsTheGlossPartsQuotingASentence) {
  const std::optional<WordnetSynset> s = parse_synset_line(
      "00001 03 n 01 long 0 000 | more than needed: \"long on brains\"; very big; \"a long "
      "way\"; \"long days\"",
      'n', "t:1");
  ASSERT_TRUE(s.has_value());
  WordnetExclusion e;
  e.sentence = [](const WordnetSynset&, const std::string& sentence) {
    return sentence != "long days";
  };
  EXPECT_EQ(wordnet_document(*s, e), "long: very big. \"long days\"");
  e.synset = [](const WordnetSynset& synset) { return synset.lex_filenum == 3; };
  EXPECT_EQ(wordnet_document(*s, e), "");
  EXPECT_EQ(wordnet_document(*s),
            "long: more than needed: \"long on brains\"; very big. \"a long way\" \"long days\"");
}

}  // namespace
}  // namespace sp
