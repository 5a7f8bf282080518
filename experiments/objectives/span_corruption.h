#pragma once
// T5's span corruption (google-research/text-to-text-transfer-transformer,
// t5/data/preprocessors.py: random_spans_noise_mask, noise_span_to_unique_sentinel,
// random_spans_helper), on token ids.
//
//   tokens  a b c d e f g h     mask  . . N N . . . N   (N = noise)
//   inputs  a b S0 e f g S1 EOS
//   targets S0 c d S1 h EOS       (S_k = <extra_id_k>)
//
// A mask from random_spans_noise_mask always starts with non-noise and ends with noise, so
// every S_k appears once on each side; a hand-made mask that ends with non-noise gives the
// targets one more sentinel.
#include <cstdint>
#include <span>
#include <vector>

#include "experiments/objectives/data_rng.h"
#include "experiments/objectives/example.h"
#include "experiments/objectives/special_tokens.h"

namespace sp {

// Round half to even, as tf.round, np.round and Python's round do.
double round_half_even(double x);

// The deterministic part of random_spans_noise_mask for a sequence of `length` tokens.
struct NoiseSpanCounts {
  int64_t length = 0;        // max(length, 2): the length the mask is drawn for
  int64_t num_noise = 0;     // clamp(round(length * density), 1, length - 1)
  int64_t num_spans = 0;     // max(round(num_noise / mean_noise_span_length), 1)
  int64_t num_nonnoise = 0;  // length - num_noise
};
// Computed in float32 like T5's TensorFlow code (to_float, then tf.round): at lengths such
// as 190 (190 * 0.15 = 28.5) float32 rounds 190 * 0.15f up to 28.500002, so T5 draws 29
// noise tokens where exact arithmetic would round half to even to 28.
NoiseSpanCounts noise_span_counts(int64_t length, double noise_density = 0.15,
                                  double mean_noise_span_length = 3.0);

// A uniformly random composition of num_items into num_segments positive parts: shuffle
// (num_segments - 1) ones and (num_items - num_segments) zeros, prepend a zero, and each
// one starts a new segment. 1 <= num_segments <= num_items.
std::vector<int64_t> random_segmentation(int64_t num_items, int64_t num_segments, DataRng& rng);

// mask: [length], 1 = noise. Alternating spans, non-noise first, noise last (before the
// cut to the original length when length < 2); the noise segmentation is drawn before the
// non-noise one. All masks with the counts of noise_span_counts are equally likely.
// noise_density 0 gives an all-zero mask without a draw, as in T5.
std::vector<uint8_t> random_spans_noise_mask(int64_t length, DataRng& rng,
                                             double noise_density = 0.15,
                                             double mean_noise_span_length = 3.0);

// tokens: [n], noise_mask: [n] -> each run of noise replaced by one sentinel, the k-th run
// (from 0) by <extra_id_k>; no EOS. Throws if there are more runs than sentinels (T5 would
// silently hand out ordinary vocabulary ids below the sentinel range).
std::vector<int32_t> noise_span_to_unique_sentinel(std::span<const int32_t> tokens,
                                                   std::span<const uint8_t> noise_mask,
                                                   const SpecialTokens& vocab);
// The same with the roles swapped: each run of non-noise becomes a sentinel.
std::vector<int32_t> nonnoise_span_to_unique_sentinel(std::span<const int32_t> tokens,
                                                      std::span<const uint8_t> noise_mask,
                                                      const SpecialTokens& vocab);

// tokens: [n], noise_mask: [n] -> {inputs: noise runs -> sentinels + EOS,
//                                  targets: non-noise runs -> sentinels + EOS}.
Seq2SeqExample span_corruption_with_mask(std::span<const int32_t> tokens,
                                         std::span<const uint8_t> noise_mask,
                                         const SpecialTokens& vocab = {});

// tokens: [n] (a piece of the concatenated stream, no EOS) -> one span-corruption example
// with a fresh random_spans_noise_mask drawn from rng.
Seq2SeqExample span_corruption(std::span<const int32_t> tokens, DataRng& rng,
                               const SpecialTokens& vocab = {}, double noise_density = 0.15,
                               double mean_noise_span_length = 3.0);

// T5's random_spans_helper: the largest raw piece length T whose inputs (non-noise tokens,
// one sentinel per noise span, EOS) fit in inputs_length, and the targets length it
// yields. 512 -> {568, 114}, 256 -> {284, 58}, 1024 -> {1137, 229}. Like T5 this counts in
// float64 with Python's round and without the mask's clamps, so for a few lengths the
// float32 mask disagrees by a token or two (e.g. inputs_length 172: T = 190, predicted
// targets 38, actual 40); at 256, 512 and 1024 they agree.
struct SpanLengths {
  int64_t tokens_length = 0;
  int64_t targets_length = 0;
};
SpanLengths random_spans_helper(int64_t inputs_length, double noise_density = 0.15,
                                double mean_noise_span_length = 3.0,
                                int64_t extra_tokens_per_span_inputs = 1,
                                int64_t extra_tokens_per_span_targets = 1);
// The same with one sentinel per span on both sides, as T5's span_corruption uses it.
inline SpanLengths raw_length_for_inputs_length(int64_t inputs_length, double noise_density = 0.15,
                                                double mean_noise_span_length = 3.0) {
  return random_spans_helper(inputs_length, noise_density, mean_noise_span_length, 1, 1);
}

// What the pretraining stream uses: random_spans_helper's tokens_length, shortened while
// the pieces' actual inputs (from the float32 counts with their clamps) exceed
// inputs_length, and the exact targets length of such a piece (shorter pieces give no
// more). They differ from the helper's for inputs_length 4..9 (it counts round(1 / 3) = 0
// spans where the mask has 1: one input too many) and wherever float32 rounds the noise
// up (172 -> 40 targets, not 38); at 256, 512 and 1024 they agree. inputs_length >= 3.
SpanLengths span_corruption_lengths(int64_t inputs_length, double noise_density = 0.15,
                                    double mean_noise_span_length = 3.0);

}  // namespace sp
