#pragma once
// The prefix-LM objective ("LM adaptation"), T5's prefix_lm: a random chunk of ONE
// document (documents are not concatenated), cut into pieces of inputs_length - 1 tokens
// (room for EOS); each piece of n tokens is split at k, uniform in [1, n - 1]:
//   inputs = piece[:k] + EOS, targets = piece[k:] + EOS.
#include <cstdint>
#include <span>
#include <vector>

#include "experiments/objectives/data_rng.h"
#include "experiments/objectives/example.h"
#include "experiments/objectives/special_tokens.h"

namespace sp {

struct PrefixLmOptions {
  int64_t inputs_length = 512;       // encoder length with EOS; pieces hold one token less
  int64_t max_chunk_length = 65536;  // select_random_chunk's max_length in T5
  // A piece of a single token (the tail of a document) has no split with both sides
  // non-empty. By default it is skipped. T5 keeps it with k = 0: inputs = [EOS],
  // targets = [token, EOS]; set this to reproduce that.
  bool keep_single_token_pieces = false;
};

// n >= 1 -> k uniform in [min(1, n - 1), n - 1] (T5's random_prefix_noise_mask): [1, n - 1]
// for n >= 2, and 0 for n = 1. One draw either way.
int64_t random_prefix_length(int64_t n, DataRng& rng);

// piece: [n], 0 <= k <= n -> {piece[:k] + EOS, piece[k:] + EOS}.
Seq2SeqExample prefix_lm_split(std::span<const int32_t> piece, int64_t k,
                               const SpecialTokens& vocab = {});

// document: [n] (tokenized without EOS) -> one example per piece, in document order.
// Draws: one for the chunk (when the document is not empty), then one per piece kept.
std::vector<Seq2SeqExample> prefix_lm(std::span<const int32_t> document, DataRng& rng,
                                      const PrefixLmOptions& options = {},
                                      const SpecialTokens& vocab = {});

}  // namespace sp
