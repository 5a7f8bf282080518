#pragma once
// The built-in task "wordnet_topic": which kind of thing does a WordNet gloss describe? Each
// example is one noun synset of Debian's wordnet-base (/usr/share/wordnet), its first lemma
// and its definitions; the label is the synset's supersense, the lexicographer file
// WordNet's editors filed it under (field 2 of a data.noun line, lex_filenum; WordNet's
// lexnames file names them, wordnet-base does not install it): 05 noun.animal -> "animal",
// 20 noun.plant -> "plant", 13 noun.food -> "food", 06 noun.artifact -> "artifact". An
// easier built-in task than wordnet_wic: the quickstart's t5-tiny learns it by model tuning
// (bench/RESULTS.md has what each method reaches).
//
//   inputs:  "word: beagle gloss: a small short-legged smooth-coated breed of hound"
//   targets: "animal"
//
// Construction (deterministic for a seed):
//  - every synset of data.noun whose lex_filenum is one of the classes and that has a
//    definition (synsets are read with parse_synset_line, the one WordNet reader);
//  - synsets go to a split by a hash of their offset alone (80% train, 10% validation,
//    10% test; wordnet_topic_split), so no synset, and so no gloss, is in two splits (a
//    lemma with senses in two classes, "apple" the fruit and the tree, can be in two), and
//    the split is the same for every seed: the built-in corpus leaves the held-out synsets
//    out (wordnet_held_out.h);
//  - each split is balanced: every class contributes the same number of synsets, the
//    smallest class's count in that split or the split's per-class cap if lower, taken in
//    a seeded order; the split is then shuffled.
#include <cstdint>
#include <string>
#include <vector>

namespace sp {

struct TopicClass {
  int lex_filenum = 0;  // the lexicographer file: 5 for noun.animal
  std::string label;    // the verbalizer, a single common word: "animal"
};

// The task's classes in label-index order: animal, plant, food, artifact.
const std::vector<TopicClass>& wordnet_topic_classes();

struct TopicExample {
  int64_t offset = 0;  // the synset's offset in data.noun
  std::string word;    // its first lemma, words separated by spaces
  std::string gloss;   // its definitions joined by "; " (example sentences left out)
  int label = 0;       // index into the classes
};

struct WordNetTopicOptions {
  uint64_t seed = 0;
  std::vector<TopicClass> classes = wordnet_topic_classes();
  int64_t max_train_per_class = 1500;
  int64_t max_validation_per_class = 200;
  int64_t max_test_per_class = 200;
};

struct WordNetTopicData {
  std::vector<TopicExample> train, validation, test;
};

// From dir/data.noun (the missing-database error when it is absent). Throws when a class
// has no synset at all or two classes share a lex_filenum or a label.
WordNetTopicData make_wordnet_topic(const std::string& dir, const WordNetTopicOptions& options);

// Writes out_dir/train.jsonl, val.jsonl and test.jsonl, one {"idx", "offset", "word",
// "gloss", "label"} object a line (label: the class's word), each file atomically.
void write_wordnet_topic(const WordNetTopicData& data, const std::vector<TopicClass>& classes,
                         const std::string& out_dir);

}  // namespace sp
