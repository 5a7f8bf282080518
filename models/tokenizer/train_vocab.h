#pragma once
// Training a T5-style SentencePiece vocabulary (spiece.model) from text.
//
// The model gets T5's conventions: unigram, pad = 0 "<pad>", eos = 1 "</s>", unk = 2
// "<unk>", no bos, nmt_nfkc normalisation, no byte fallback. T5Tokenizer::load reads the
// result and adds the extra_ids sentinels after its pieces (T5: 32000 pieces + 100).
//
// Training is deterministic for the same sentences and options: SentencePiece samples
// input_sentence_size sentences with its own fixed seed, and splits the EM sums per thread,
// so num_threads is part of the recipe. The model is written atomically (temporary file,
// then rename). One training runs at a time in a process: SentencePiece's log level and
// random generator are global.
#include <cstdint>
#include <string>
#include <vector>

namespace sp {

struct VocabTrainingOptions {
  int64_t vocab_size = 32000;          // pieces, the special ones included
  std::string model_type = "unigram";  // T5 uses unigram; "bpe" also works
  double character_coverage = 0.9995;  // share of characters kept; the rest become unk
  // At most this many sentences are used; 0 uses them all. With shuffle_input_sentence
  // they are a uniform sample (reservoir, SentencePiece's fixed seed), else the first ones.
  int64_t input_sentence_size = 0;
  bool shuffle_input_sentence = true;
  int64_t max_sentence_length = 4192;  // longer lines (bytes) are skipped
  int num_threads = 1;
  std::string normalization_rule_name = "nmt_nfkc";
  bool split_digits = false;
  // False lets a small corpus end with fewer pieces than vocab_size instead of failing.
  bool hard_vocab_limit = true;
  bool verbose = false;  // SentencePiece's progress log on stderr
};

// Trains on the lines of text files (UTF-8; empty lines are skipped) and writes
// model_path. Throws sp::Error naming an unreadable input or the trainer's complaint.
void train_vocab(const std::vector<std::string>& input_files, const std::string& model_path,
                 const VocabTrainingOptions& options = {});

// The same from sentences in memory.
void train_vocab_from_sentences(const std::vector<std::string>& sentences,
                                const std::string& model_path,
                                const VocabTrainingOptions& options = {});

}  // namespace sp
