#pragma once
// Cutting token streams into the pieces the objectives noise (T5's select_random_chunk,
// split_tokens and the concatenation before span corruption).
#include <cstdint>
#include <span>
#include <vector>

#include "experiments/objectives/data_rng.h"

namespace sp {

// tokens: [n] -> pieces of piece_length tokens in order, the last one shorter when
// piece_length does not divide n; no pieces for n = 0 (T5's split_tokens).
std::vector<std::vector<int32_t>> split_tokens(std::span<const int32_t> tokens,
                                               int64_t piece_length);

// tokens: [n] -> one of the ceil(n / max_length) aligned chunks [i * max_length,
// min((i + 1) * max_length, n)), uniformly (T5's select_random_chunk; 65536 in T5's
// objectives, so nearly every document is taken whole). Empty for n = 0, without a draw.
std::span<const int32_t> select_random_chunk(std::span<const int32_t> tokens, int64_t max_length,
                                             DataRng& rng);

// Span corruption's input stream: documents tokenized without EOS, concatenated with no
// separator, cut into pieces of piece_length tokens (random_spans_helper's tokens_length).
class TokenStreamSplitter {
 public:
  explicit TokenStreamSplitter(int64_t piece_length);

  int64_t piece_length() const { return piece_length_; }
  // Appends a document; returns the pieces it completes (possibly none, possibly several).
  std::vector<std::vector<int32_t>> push(std::span<const int32_t> document);
  // The tail that waits for the next document: all there is to save to resume the stream.
  const std::vector<int32_t>& pending() const { return pending_; }
  void set_pending(std::vector<int32_t> tokens);
  // The shorter last piece at the end of the stream (empty if none); clears the tail.
  std::vector<int32_t> flush();

 private:
  int64_t piece_length_;
  std::vector<int32_t> pending_;
};

}  // namespace sp
