#include "experiments/objectives/prefix_lm.h"

#include <algorithm>

#include "experiments/objectives/token_pieces.h"
#include "tensor/error.h"

namespace sp {

int64_t random_prefix_length(int64_t n, DataRng& rng) {
  SP_CHECK(n >= 1, "[prefix_lm] a piece needs at least 1 token, got ", n);
  const int64_t max_k = n - 1;
  return rng.uniform_range(std::min<int64_t>(max_k, 1), max_k);
}

Seq2SeqExample prefix_lm_split(std::span<const int32_t> piece, int64_t k,
                               const SpecialTokens& vocab) {
  SP_CHECK(k >= 0 && k <= static_cast<int64_t>(piece.size()), "[prefix_lm] split point ", k,
           " is outside a piece of ", piece.size(), " tokens");
  const auto split = piece.begin() + static_cast<std::ptrdiff_t>(k);
  Seq2SeqExample ex;
  ex.inputs.reserve(static_cast<size_t>(k) + 1);
  ex.inputs.assign(piece.begin(), split);
  ex.inputs.push_back(vocab.eos_id);
  ex.targets.reserve(piece.size() - static_cast<size_t>(k) + 1);
  ex.targets.assign(split, piece.end());
  ex.targets.push_back(vocab.eos_id);
  return ex;
}

std::vector<Seq2SeqExample> prefix_lm(std::span<const int32_t> document, DataRng& rng,
                                      const PrefixLmOptions& options, const SpecialTokens& vocab) {
  // Below 3, every piece has a single token and all of them would be skipped.
  const int64_t min_inputs_length = options.keep_single_token_pieces ? 2 : 3;
  SP_CHECK(options.inputs_length >= min_inputs_length, "[prefix_lm] inputs_length must be at ",
           "least ", min_inputs_length, " (a piece of ", min_inputs_length - 1,
           " tokens plus EOS), got ", options.inputs_length);
  const std::span<const int32_t> chunk =
      select_random_chunk(document, options.max_chunk_length, rng);
  std::vector<Seq2SeqExample> examples;
  const int64_t piece_length = options.inputs_length - 1;
  const auto len = static_cast<size_t>(piece_length);
  for (size_t start = 0; start < chunk.size(); start += len) {
    const std::span<const int32_t> piece =
        chunk.subspan(start, std::min(len, chunk.size() - start));
    if (piece.size() < 2 && !options.keep_single_token_pieces) continue;
    const int64_t k = random_prefix_length(static_cast<int64_t>(piece.size()), rng);
    examples.push_back(prefix_lm_split(piece, k, vocab));
  }
  return examples;
}

}  // namespace sp
