#pragma once
// The built-in WordNet tasks' splits, and what the built-in pretraining corpus leaves out so
// that it holds none of their validation and test text.
//
// wordnet_wic splits by lemma and wordnet_topic by synset, each by a hash of the item alone
// (80% train, 10% validation, 10% test): a task's seed picks and orders the examples, never
// the split, so one exclusion covers every seed. Without it, a WiC pair's two sentences
// (same sense: quoted in one gloss) would sit side by side in a pretraining document, and
// pretraining would learn the held-out labels. The corpus leaves out:
//  - every quoted example sentence of a synset that contains (find_lemma) one of that
//    synset's lemmas that wordnet_wic holds out: every sentence a held-out pair can use,
//    with every gloss part that quotes it, under whichever synset;
//  - every noun synset of a wordnet_topic class that wordnet_topic holds out (its gloss is
//    the task's input).
// corpus.json records the counts left out (sources[].excluded_synsets, excluded_sentences).
#include <cstdint>
#include <string>

#include "experiments/data/wordnet.h"

namespace sp {

enum class WordnetSplit { train = 0, validation = 1, test = 2 };

// A wordnet_wic lemma's split; lemma as index.<pos> writes it ("take_off", lower case).
WordnetSplit wordnet_wic_split(const std::string& lemma);
// A wordnet_topic synset's split, by its offset in data.noun.
WordnetSplit wordnet_topic_split(int64_t offset);

// The exclusion described above, and its name in corpus.json.
WordnetExclusion wordnet_tasks_held_out();
constexpr const char* kWordnetTasksHeldOut =
    "the validation and test text of wordnet_wic and wordnet_topic";

// The version of the data wordnet_wic and wordnet_topic make from WordNet (part of a tune
// stage's hash): 2, splits that no longer depend on the seed and WiC's stricter -es/-d
// inflections.
constexpr int kWordnetTaskDataVersion = 2;

}  // namespace sp
