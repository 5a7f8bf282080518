#pragma once
// Resumable streams of pretraining examples over a tokenized split.
//
// Documents are visited epoch by epoch in a permutation drawn from DataRng(order seed,
// epoch) (or in file order without shuffling); the noise of each example comes from its
// own DataRng stream (span corruption: offset = the example's index; prefix LM: offset =
// the document's visit index). So a stream's whole state is a handful of integers,
// state() / set_state() round-trip it as JSON, and a restored stream continues with
// exactly the examples an uninterrupted one would have produced.
//
//   SpanCorruptionStream: T5's span_corruption. Documents (no EOS) are concatenated with
//     no separator across document and epoch boundaries and cut into pieces of
//     span_corruption_lengths(inputs_length).tokens_length tokens (568 for 512, as T5's
//     random_spans_helper), each noised into one example of at most inputs_length inputs
//     and targets_length targets (the tail of a finite stream gives fewer).
//   PrefixLmStream: T5's prefix_lm: one document at a time, prefix_lm() on it (pieces of
//     inputs_length - 1 tokens, a random split per piece).
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/data/tokenized_documents.h"
#include "experiments/objectives/example.h"
#include "experiments/objectives/prefix_lm.h"
#include "experiments/objectives/special_tokens.h"

namespace sp {

// The visiting order of num_documents documents: epoch e is a uniformly random
// permutation drawn from DataRng(seed, e), or the identity without shuffling.
class DocumentOrder {
 public:
  DocumentOrder(int64_t num_documents, uint64_t seed, bool shuffle);
  // The document visited at position (0 <= position < num_documents) of epoch.
  int64_t at(int64_t epoch, int64_t position);
  int64_t size() const { return n_; }

 private:
  int64_t n_;
  uint64_t seed_;
  bool shuffle_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> perm_;
};

struct StreamOptions {
  uint64_t seed = 0;       // document order and noise
  bool shuffle = true;     // false: documents in file order (fixed validation sets)
  int64_t max_epochs = 0;  // 0: endless; else next() returns nullopt after this many passes
  SpecialTokens vocab;     // eos and sentinels of the tokenizer (special_tokens_of)
};

class ExampleStream {
 public:
  virtual ~ExampleStream() = default;
  // The next example; nullopt only at the end of a stream with max_epochs.
  virtual std::optional<Seq2SeqExample> next() = 0;
  // Up to n examples: n unless a finite stream ends first.
  std::vector<Seq2SeqExample> take(int64_t n);
  // Position, counters and the settings they depend on as JSON; set_state checks the
  // objective, the seed, the corpus size (documents and tokens), shuffling and the
  // objective's lengths match and throws "[data] ..." naming the mismatch otherwise.
  virtual nlohmann::json state() const = 0;
  virtual void set_state(const nlohmann::json& state) = 0;
  virtual int64_t examples_produced() const = 0;
  virtual int64_t epoch() const = 0;
};

struct SpanCorruptionStreamOptions : StreamOptions {
  int64_t inputs_length = 512;
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
};

class SpanCorruptionStream : public ExampleStream {
 public:
  // Throws when the documents hold no tokens at all.
  SpanCorruptionStream(std::shared_ptr<const TokenizedDocuments> documents,
                       SpanCorruptionStreamOptions options);
  std::optional<Seq2SeqExample> next() override;
  nlohmann::json state() const override;
  void set_state(const nlohmann::json& state) override;
  int64_t examples_produced() const override { return examples_; }
  int64_t epoch() const override { return epoch_; }
  // Raw tokens per example and the targets length they give (span_corruption_lengths).
  int64_t piece_length() const { return piece_length_; }
  int64_t targets_length() const { return targets_length_; }

 private:
  nlohmann::json settings() const;

  std::shared_ptr<const TokenizedDocuments> docs_;
  SpanCorruptionStreamOptions options_;
  DocumentOrder order_;
  uint64_t noise_seed_;
  int64_t piece_length_ = 0;
  int64_t targets_length_ = 0;
  int64_t epoch_ = 0;
  int64_t position_ = 0;  // index into the epoch's order of the document being read
  int64_t offset_ = 0;    // tokens of that document already used
  int64_t examples_ = 0;
};

struct PrefixLmStreamOptions : StreamOptions {
  PrefixLmOptions prefix_lm;  // inputs_length, max_chunk_length, keep_single_token_pieces
};

class PrefixLmStream : public ExampleStream {
 public:
  PrefixLmStream(std::shared_ptr<const TokenizedDocuments> documents,
                 PrefixLmStreamOptions options);
  // Throws when a whole epoch yields no example (every document shorter than 2 tokens).
  std::optional<Seq2SeqExample> next() override;
  nlohmann::json state() const override;
  void set_state(const nlohmann::json& state) override;
  int64_t examples_produced() const override { return examples_; }
  int64_t epoch() const override { return epoch_; }

 private:
  nlohmann::json settings() const;
  void load_current();

  std::shared_ptr<const TokenizedDocuments> docs_;
  PrefixLmStreamOptions options_;
  DocumentOrder order_;
  uint64_t noise_seed_;
  int64_t epoch_ = 0;
  int64_t position_ = 0;  // the document being read, in the epoch's order
  int64_t within_ = 0;    // its examples already returned
  int64_t examples_ = 0;
  // The examples of (loaded_epoch_, loaded_position_): regenerated after set_state.
  std::vector<Seq2SeqExample> current_;
  int64_t loaded_epoch_ = -1;
  int64_t loaded_position_ = -1;
};

// The integer `key` of a saved stream state; throws "[data] the stream state has no
// integer ..." when it is missing or not an integer.
int64_t state_int(const nlohmann::json& state, const char* key);

// A seed for one purpose derived from a user seed (SplitMix64 of seed and purpose), so
// that order, noise and model init draw from unrelated streams.
uint64_t derive_seed(uint64_t seed, uint64_t purpose);

}  // namespace sp
