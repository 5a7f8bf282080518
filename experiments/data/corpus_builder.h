#pragma once
// The built-in corpus: WordNet's glosses and examples (Debian's wordnet-base) plus any
// text files a user names, whitespace-normalised, deduplicated exactly and split into
// train and validation by a hash of each document's text, with a T5-style SentencePiece
// vocabulary trained on the train split. Written to a directory:
//   train.txt, validation.txt   one document per line
//   spiece.model                T5 conventions (pad 0, eos 1, unk 2; sentinels added on load)
//   corpus.json                 counts, sources with their sha256, the options; written last,
//                               so its presence means the directory is complete
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "experiments/data/document_reader.h"
#include "experiments/data/wordnet.h"

namespace sp {

struct CorpusBuildOptions {
  std::string out_dir;
  bool use_wordnet = true;
  std::string wordnet_dir = kDefaultWordnetDir;
  // What to leave out of WordNet: the runner passes the built-in tasks' held-out text
  // (wordnet_tasks_held_out in experiments/tasks/wordnet_held_out.h).
  WordnetExclusion wordnet_exclusion;
  std::string wordnet_exclusion_name;   // what it is, for corpus.json ("" when unset)
  std::vector<std::string> text_files;  // read after WordNet, in order
  DocumentReaderOptions text_format;    // how the text files hold documents
  int64_t max_documents = 0;            // documents read, over all sources in order; 0: all
  double validation_fraction = 0.02;
  uint64_t seed = 0;  // part of the split hash
  // About 3M tokens of WordNet text: at 8000 pieces nearly every piece is seen hundreds of
  // times, words stay about 1.3 pieces long, and a tiny model's embedding and softmax stay
  // cheap (8k x 256 rather than 32k x 256). A small corpus may end with fewer pieces.
  int64_t vocab_size = 8000;
  bool train_vocabulary = true;
  int64_t input_sentence_size = 2'000'000;  // train.txt lines the vocabulary samples; 0: all
  int vocab_threads = 2;  // part of the recipe: SentencePiece splits its sums per thread
  bool verbose = false;
};

struct CorpusSource {
  std::string name;       // "wordnet:<path>" or the text file's path
  std::string sha256;     // of the file's bytes
  int64_t documents = 0;  // read (before deduplication)
  int64_t excluded_synsets = 0, excluded_sentences = 0;  // WordNet's (WordnetFile)
};

struct CorpusSummary {
  std::vector<CorpusSource> sources;
  int64_t documents_read = 0;
  int64_t empty_documents = 0;  // nothing left after whitespace normalisation
  int64_t duplicates = 0;       // exact repeats of an earlier document, dropped
  int64_t train_documents = 0;
  int64_t validation_documents = 0;
  int64_t train_bytes = 0;
  int64_t validation_bytes = 0;
  std::string train_sha256, validation_sha256, vocab_sha256;
  int64_t vocab_pieces = 0;  // pieces of spiece.model (without sentinels)
  nlohmann::json to_json(const CorpusBuildOptions& options) const;
};

// True when a document goes to validation: the first 8 bytes of sha256(seed ":" text) as a
// fraction of 2^64 fall below fraction. Depends on nothing but the text, so adding or
// removing other documents never moves this one.
bool in_validation_split(std::string_view text, uint64_t seed, double fraction);

// Builds the corpus in options.out_dir (created if missing). Every file is written
// atomically.
CorpusSummary build_corpus(const CorpusBuildOptions& options);

// The files of a built corpus directory; throws naming what is missing and how to make it.
struct CorpusFiles {
  std::string dir, train, validation, spiece_model, manifest;
};
CorpusFiles corpus_files(const std::string& dir);

}  // namespace sp
