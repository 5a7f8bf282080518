#pragma once
// The built-in task "wordnet_wic": word-in-context pairs made from WordNet's example
// sentences, the way WiC (Pilehvar and Camacho-Collados, 2019) was built, so the quickstart
// needs no download. A pair is two example sentences that both contain the same lemma;
// the label is True when both sentences illustrate the same synset (sense) and False when
// they illustrate different senses of that lemma.
//
// Construction (deterministic for a seed):
//  - every lemma of index.{noun,verb,adj,adv} with at least two senses; for each sense, the
//    example sentences quoted in the synset's gloss that contain the lemma (or a regular
//    inflection of it: -s, -ed, -ing, -es after s/x/z/ch/sh/o, -d after a final e,
//    y -> ies / ied, e dropped before -ing, the final consonant doubled) as a whole word,
//    case-insensitively;
//  - same-sense pairs (positives) and cross-sense pairs (negatives) of one lemma; each lemma
//    contributes as many negatives as positives, at most max_pairs_per_lemma of each, so
//    every lemma is balanced and the lemma alone says nothing about the label;
//  - lemmas go to a split by a hash of the lemma string alone (80% train, 10% validation,
//    10% test; wordnet_wic_split), so no lemma appears in two splits and the split is the
//    same for every seed: the built-in corpus leaves the held-out lemmas' sentences out
//    (wordnet_held_out.h);
//  - each split takes whole lemmas in a seeded order until its cap, then is shuffled; the
//    sentence order inside a pair is a seeded coin flip.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/data/wordnet.h"

namespace sp {

struct WicPair {
  std::string word;  // the lemma, words separated by spaces
  char pos = 'n';
  std::string sentence1, sentence2;
  int64_t start1 = 0, end1 = 0, start2 = 0, end2 = 0;  // byte span of the word's occurrence
  bool label = false;
};

struct WordNetWicOptions {
  uint64_t seed = 0;
  int64_t max_pairs_per_lemma = 2;  // of each label
  int64_t max_train = 4000;
  int64_t max_validation = 600;
  int64_t max_test = 600;
};

struct WordNetWicData {
  std::vector<WicPair> train, validation, test;
};

WordNetWicData make_wordnet_wic(const WordnetSenses& wordnet, const WordNetWicOptions& options);

// The byte span [start, end) of the first whole-word, case-insensitive occurrence of lemma
// ('_' between words) or one of its regular inflections in sentence; {-1, -1} when absent.
std::pair<int64_t, int64_t> find_lemma(const std::string& sentence, const std::string& lemma);

// Writes out_dir/train.jsonl, val.jsonl and test.jsonl in WiC's jsonl layout (word,
// sentence1, sentence2, start1, end1, start2, end2, label, idx, pos), each file atomically.
void write_wordnet_wic(const WordNetWicData& data, const std::string& out_dir);

}  // namespace sp
