#include "experiments/objectives/span_corruption.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "tensor/error.h"

namespace sp {

double round_half_even(double x) {
  const double floor_x = std::floor(x);
  const double frac = x - floor_x;
  if (frac > 0.5) return floor_x + 1.0;
  if (frac < 0.5) return floor_x;
  return std::fmod(floor_x, 2.0) == 0.0 ? floor_x : floor_x + 1.0;
}

namespace {

void check_noise_params(const char* op, double noise_density, double mean_noise_span_length) {
  SP_CHECK(noise_density >= 0.0 && noise_density <= 1.0, "[", op,
           "] noise_density must be in [0, 1], got ", noise_density);
  SP_CHECK(mean_noise_span_length > 0.0 && std::isfinite(mean_noise_span_length), "[", op,
           "] mean_noise_span_length must be positive, got ", mean_noise_span_length);
}

// How many runs of `value` the mask holds.
int64_t count_runs(std::span<const uint8_t> mask, bool value) {
  int64_t runs = 0;
  bool prev = false;
  for (const uint8_t m : mask) {
    const bool hit = (m != 0) == value;
    if (hit && !prev) ++runs;
    prev = hit;
  }
  return runs;
}

// T5's noise_span_to_unique_sentinel with `value` marking the runs to replace.
std::vector<int32_t> runs_to_unique_sentinel(const char* op, std::span<const int32_t> tokens,
                                             std::span<const uint8_t> mask, bool value,
                                             const SpecialTokens& vocab) {
  SP_CHECK(tokens.size() == mask.size(), "[", op, "] tokens has ", tokens.size(),
           " ids but the noise mask has ", mask.size());
  const int64_t runs = count_runs(mask, value);
  SP_CHECK(runs <= vocab.num_sentinels, "[", op, "] ", runs, " spans need ", runs,
           " sentinels but the vocabulary has ", vocab.num_sentinels);
  std::vector<int32_t> out;
  out.reserve(tokens.size() + 1);
  int64_t next_sentinel = 0;
  bool prev = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool hit = (mask[i] != 0) == value;
    if (!hit) {
      out.push_back(tokens[i]);
    } else if (!prev) {
      out.push_back(vocab.sentinel(next_sentinel++));
    }
    prev = hit;
  }
  return out;
}

}  // namespace

NoiseSpanCounts noise_span_counts(int64_t length, double noise_density,
                                  double mean_noise_span_length) {
  check_noise_params("random_spans_noise_mask", noise_density, mean_noise_span_length);
  SP_CHECK(length >= 0, "[random_spans_noise_mask] length must be >= 0, got ", length);
  NoiseSpanCounts c;
  c.length = std::max<int64_t>(length, 2);
  // float32 products and quotients, as TensorFlow computes them in T5.
  const float noise_f = static_cast<float>(c.length) * static_cast<float>(noise_density);
  c.num_noise = static_cast<int64_t>(round_half_even(static_cast<double>(noise_f)));
  c.num_noise = std::min(std::max<int64_t>(c.num_noise, 1), c.length - 1);
  const float spans_f =
      static_cast<float>(c.num_noise) / static_cast<float>(mean_noise_span_length);
  c.num_spans =
      std::max<int64_t>(static_cast<int64_t>(round_half_even(static_cast<double>(spans_f))), 1);
  c.num_nonnoise = c.length - c.num_noise;
  return c;
}

std::vector<int64_t> random_segmentation(int64_t num_items, int64_t num_segments, DataRng& rng) {
  SP_CHECK(num_segments >= 1 && num_segments <= num_items, "[random_segmentation] ", num_items,
           " items cannot form ", num_segments, " non-empty segments");
  std::vector<uint8_t> first_in_segment(static_cast<size_t>(num_items - 1), 0);
  std::fill_n(first_in_segment.begin(), num_segments - 1, uint8_t{1});
  rng.shuffle(first_in_segment);
  std::vector<int64_t> lengths;
  lengths.reserve(static_cast<size_t>(num_segments));
  int64_t current = 1;  // the prepended zero: item 0 opens segment 0
  for (const uint8_t starts_new : first_in_segment) {
    if (starts_new) {
      lengths.push_back(current);
      current = 1;
    } else {
      ++current;
    }
  }
  lengths.push_back(current);
  return lengths;
}

std::vector<uint8_t> random_spans_noise_mask(int64_t length, DataRng& rng, double noise_density,
                                             double mean_noise_span_length) {
  check_noise_params("random_spans_noise_mask", noise_density, mean_noise_span_length);
  SP_CHECK(length >= 0, "[random_spans_noise_mask] length must be >= 0, got ", length);
  // T5 returns before its clamps, which would otherwise force one noise token.
  if (noise_density == 0.0) return std::vector<uint8_t>(static_cast<size_t>(length), 0);
  const NoiseSpanCounts c = noise_span_counts(length, noise_density, mean_noise_span_length);
  SP_CHECK(c.num_spans <= c.num_noise && c.num_spans <= c.num_nonnoise,
           "[random_spans_noise_mask] ", c.num_spans, " noise spans need as many noise and ",
           "non-noise tokens, but length ", c.length, " gives ", c.num_noise, " noise and ",
           c.num_nonnoise, " non-noise (noise_density ", noise_density, ", mean_noise_span_length ",
           mean_noise_span_length, ")");
  const std::vector<int64_t> noise_lengths = random_segmentation(c.num_noise, c.num_spans, rng);
  const std::vector<int64_t> nonnoise_lengths =
      random_segmentation(c.num_nonnoise, c.num_spans, rng);
  std::vector<uint8_t> mask;
  mask.reserve(static_cast<size_t>(c.length));
  for (int64_t s = 0; s < c.num_spans; ++s) {
    mask.insert(mask.end(), static_cast<size_t>(nonnoise_lengths[s]), uint8_t{0});
    mask.insert(mask.end(), static_cast<size_t>(noise_lengths[s]), uint8_t{1});
  }
  mask.resize(static_cast<size_t>(length));  // only shrinks, for lengths 0 and 1
  return mask;
}

std::vector<int32_t> noise_span_to_unique_sentinel(std::span<const int32_t> tokens,
                                                   std::span<const uint8_t> noise_mask,
                                                   const SpecialTokens& vocab) {
  return runs_to_unique_sentinel("span_corruption", tokens, noise_mask, true, vocab);
}

std::vector<int32_t> nonnoise_span_to_unique_sentinel(std::span<const int32_t> tokens,
                                                      std::span<const uint8_t> noise_mask,
                                                      const SpecialTokens& vocab) {
  return runs_to_unique_sentinel("span_corruption", tokens, noise_mask, false, vocab);
}

Seq2SeqExample span_corruption_with_mask(std::span<const int32_t> tokens,
                                         std::span<const uint8_t> noise_mask,
                                         const SpecialTokens& vocab) {
  Seq2SeqExample ex;
  ex.inputs = noise_span_to_unique_sentinel(tokens, noise_mask, vocab);
  ex.targets = nonnoise_span_to_unique_sentinel(tokens, noise_mask, vocab);
  ex.inputs.push_back(vocab.eos_id);
  ex.targets.push_back(vocab.eos_id);
  return ex;
}

Seq2SeqExample span_corruption(std::span<const int32_t> tokens, DataRng& rng,
                               const SpecialTokens& vocab, double noise_density,
                               double mean_noise_span_length) {
  const std::vector<uint8_t> mask = random_spans_noise_mask(
      static_cast<int64_t>(tokens.size()), rng, noise_density, mean_noise_span_length);
  return span_corruption_with_mask(tokens, mask, vocab);
}

SpanLengths random_spans_helper(int64_t inputs_length, double noise_density,
                                double mean_noise_span_length, int64_t extra_tokens_per_span_inputs,
                                int64_t extra_tokens_per_span_targets) {
  check_noise_params("random_spans_helper", noise_density, mean_noise_span_length);
  SP_CHECK(noise_density < 1.0, "[random_spans_helper] noise_density must be below 1, got ",
           noise_density);
  SP_CHECK(inputs_length >= 2, "[random_spans_helper] inputs_length must be at least 2 ",
           "(a token and EOS), got ", inputs_length);
  SP_CHECK(extra_tokens_per_span_inputs >= 0 && extra_tokens_per_span_targets >= 0,
           "[random_spans_helper] extra tokens per span must be >= 0, got ",
           extra_tokens_per_span_inputs, " and ", extra_tokens_per_span_targets);
  // Python's int(round(x)) on float64 values, without the mask's clamps, as in T5.
  const auto lengths_for = [&](int64_t tokens_length) {
    const auto noise =
        static_cast<int64_t>(round_half_even(static_cast<double>(tokens_length) * noise_density));
    const auto spans =
        static_cast<int64_t>(round_half_even(static_cast<double>(noise) / mean_noise_span_length));
    struct {
      int64_t inputs, targets;
    } lengths{tokens_length - noise + spans * extra_tokens_per_span_inputs + 1,
              noise + spans * extra_tokens_per_span_targets + 1};
    return lengths;
  };
  int64_t tokens_length = inputs_length - 1;
  while (lengths_for(tokens_length + 1).inputs <= inputs_length) ++tokens_length;
  SpanLengths out{tokens_length, lengths_for(tokens_length).targets};
  // T5's hack so that targets match a round inputs length at noise density 0.5.
  if (noise_density == 0.5 && out.targets_length > inputs_length) {
    --out.tokens_length;
    --out.targets_length;
  }
  return out;
}

SpanLengths span_corruption_lengths(int64_t inputs_length, double noise_density,
                                    double mean_noise_span_length) {
  SP_CHECK(inputs_length >= 3, "[span_corruption] inputs_length must be at least 3 (a token, ",
           "a sentinel and EOS), got ", inputs_length);
  SpanLengths out =
      raw_length_for_inputs_length(inputs_length, noise_density, mean_noise_span_length);
  // {inputs, targets} of span_corruption on n >= 2 tokens: a drawn mask starts with
  // non-noise and ends with noise, so each side has one sentinel per noise span.
  const auto sizes = [&](int64_t n) -> std::pair<int64_t, int64_t> {
    if (noise_density == 0.0) return {n + 1, 2};  // the tokens; <extra_id_0> alone
    const NoiseSpanCounts c = noise_span_counts(n, noise_density, mean_noise_span_length);
    return {c.num_nonnoise + c.num_spans + 1, c.num_noise + c.num_spans + 1};
  };
  out.tokens_length = std::max<int64_t>(out.tokens_length, 2);
  while (out.tokens_length > 2 && sizes(out.tokens_length).first > inputs_length)
    --out.tokens_length;
  out.targets_length = sizes(out.tokens_length).second;
  return out;
}

}  // namespace sp
