// Span corruption as in T5: noise counts, segmentation, sentinels, lengths.
#include "experiments/objectives/span_corruption.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/objectives/token_pieces.h"
#include "test_util.h"

namespace sp {
namespace {

constexpr int32_t kEos = 1;
constexpr int32_t kS0 = 32099;  // <extra_id_0> in T5's vocabulary

// Ids 100, 101, ...: distinct, never EOS or a sentinel, so every token is traceable.
std::vector<int32_t> iota_tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), 100);
  return t;
}

// Runs of equal values in a 0/1 mask: {value, length} pairs.
std::vector<std::pair<int, int64_t>> runs_of(const std::vector<uint8_t>& mask) {
  std::vector<std::pair<int, int64_t>> runs;
  for (const uint8_t m : mask) {
    if (runs.empty() || runs.back().first != m) runs.push_back({m, 0});
    ++runs.back().second;
  }
  return runs;
}

// Undoes span corruption independently of the library: every sentinel in the inputs is
// replaced by what follows the same sentinel in the targets, up to the next sentinel.
std::vector<int32_t> reconstruct(const Seq2SeqExample& ex, const SpecialTokens& vocab) {
  std::map<int32_t, std::vector<int32_t>> filled;
  int32_t current = -1;
  EXPECT_FALSE(ex.targets.empty());
  for (size_t i = 0; i + 1 < ex.targets.size(); ++i) {
    const int32_t id = ex.targets[i];
    if (vocab.is_sentinel(id)) {
      EXPECT_EQ(filled.count(id), 0u) << "sentinel " << id << " twice in the targets";
      current = id;
      filled[id];
    } else {
      EXPECT_NE(current, -1) << "targets do not start with a sentinel";
      filled[current].push_back(id);
    }
  }
  std::vector<int32_t> out;
  for (size_t i = 0; i + 1 < ex.inputs.size(); ++i) {
    const int32_t id = ex.inputs[i];
    if (vocab.is_sentinel(id)) {
      EXPECT_EQ(filled.count(id), 1u) << "sentinel " << id << " missing from the targets";
      out.insert(out.end(), filled[id].begin(), filled[id].end());
      filled.erase(id);
    } else {
      out.push_back(id);
    }
  }
  // A sentinel only in the targets stands for non-noise that closes the sequence.
  for (const auto& [id, ids] : filled) EXPECT_TRUE(ids.empty()) << "unused sentinel " << id;
  return out;
}

TEST(SpanCorruption, round_half_even) {
  EXPECT_EQ(round_half_even(0.5), 0.0);
  EXPECT_EQ(round_half_even(1.5), 2.0);
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(4.5), 4.0);
  EXPECT_EQ(round_half_even(-1.5), -2.0);
  EXPECT_EQ(round_half_even(-2.5), -2.0);
  EXPECT_EQ(round_half_even(2.4999999), 2.0);
  EXPECT_EQ(round_half_even(2.5000001), 3.0);
  EXPECT_EQ(round_half_even(85.2), 85.0);
  EXPECT_EQ(round_half_even(7.0), 7.0);
}

TEST(SpanCorruption, counts_for_568_tokens) {
  const NoiseSpanCounts c = noise_span_counts(568);
  EXPECT_EQ(c.length, 568);
  EXPECT_EQ(c.num_noise, 85);  // round(85.2)
  EXPECT_EQ(c.num_spans, 28);  // round(28.33)
  EXPECT_EQ(c.num_nonnoise, 483);
}

TEST(SpanCorruption, counts_round_half_to_even) {
  EXPECT_EQ(noise_span_counts(10).num_noise, 2);   // 1.5 -> 2
  EXPECT_EQ(noise_span_counts(30).num_noise, 4);   // 4.5 -> 4
  EXPECT_EQ(noise_span_counts(50).num_noise, 8);   // 7.5 -> 8
  EXPECT_EQ(noise_span_counts(50).num_spans, 3);   // 8 / 3 = 2.67 -> 3
  EXPECT_EQ(noise_span_counts(70).num_noise, 10);  // 10.5 -> 10
  EXPECT_EQ(noise_span_counts(90).num_noise, 14);  // 13.5 -> 14
  // An integer over 3 never ends in .5; mean 2 exercises the rounding of the span count:
  // 5 / 2 = 2.5 -> 2 and 7 / 2 = 3.5 -> 4.
  EXPECT_EQ(noise_span_counts(10, 0.5, 2.0).num_spans, 2);
  EXPECT_EQ(noise_span_counts(14, 0.5, 2.0).num_spans, 4);
}

TEST(SpanCorruption, counts_follow_tensorflow_float32) {
  // 190 * 0.15f is 28.500002 in float32, so T5 draws 29 noise tokens (exact: 28.5 -> 28).
  EXPECT_EQ(noise_span_counts(190).num_noise, 29);
  EXPECT_EQ(noise_span_counts(350).num_noise, 53);  // 52.5 -> 53 in float32
  EXPECT_EQ(noise_span_counts(30).num_noise, 4);    // 4.5 is exact in float32 too
}

TEST(SpanCorruption, counts_clamp_tiny_lengths) {
  for (const int64_t n : {0, 1, 2}) {
    const NoiseSpanCounts c = noise_span_counts(n);
    EXPECT_EQ(c.length, 2) << n;
    EXPECT_EQ(c.num_noise, 1) << n;
    EXPECT_EQ(c.num_spans, 1) << n;
    EXPECT_EQ(c.num_nonnoise, 1) << n;
  }
  const NoiseSpanCounts c3 = noise_span_counts(3);  // 0.45 -> 0 -> clamped to 1
  EXPECT_EQ(c3.num_noise, 1);
  EXPECT_EQ(c3.num_nonnoise, 2);
  // Density 1 still leaves one non-noise token; density 0 counts one noise token (the
  // mask itself returns all zeros before the counts, see zero_noise_density_masks_nothing).
  EXPECT_EQ(noise_span_counts(10, 1.0, 3.0).num_noise, 9);
  EXPECT_EQ(noise_span_counts(10, 0.0, 3.0).num_noise, 1);
}

TEST(SpanCorruption, example_of_568_tokens_gives_512_inputs_and_114_targets) {
  const std::vector<int32_t> tokens = iota_tokens(568);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    DataRng rng(seed);
    const std::vector<uint8_t> mask = random_spans_noise_mask(568, rng);
    ASSERT_EQ(mask.size(), 568u);
    EXPECT_EQ(std::count(mask.begin(), mask.end(), uint8_t{1}), 85);
    const auto runs = runs_of(mask);
    ASSERT_EQ(runs.size(), 56u);  // 28 non-noise + 28 noise spans
    EXPECT_EQ(runs.front().first, 0);
    EXPECT_EQ(runs.back().first, 1);
    const Seq2SeqExample ex = span_corruption_with_mask(tokens, mask);
    EXPECT_EQ(ex.inputs.size(), 512u);
    EXPECT_EQ(ex.targets.size(), 114u);
    // The same through the one-call API with the same stream.
    DataRng again(seed);
    EXPECT_EQ(span_corruption(tokens, again), ex);
  }
}

TEST(SpanCorruption, hand_made_mask) {
  // tokens a..h = 100..107, mask . . N N . . . N
  const std::vector<int32_t> tokens = iota_tokens(8);
  const std::vector<uint8_t> mask = {0, 0, 1, 1, 0, 0, 0, 1};
  const Seq2SeqExample ex = span_corruption_with_mask(tokens, mask);
  EXPECT_EQ(ex.inputs, (std::vector<int32_t>{100, 101, kS0, 104, 105, 106, kS0 - 1, kEos}));
  EXPECT_EQ(ex.targets, (std::vector<int32_t>{kS0, 102, 103, kS0 - 1, 107, kEos}));
  // A mask that starts with noise and ends with non-noise (never drawn, but valid).
  const std::vector<uint8_t> odd = {1, 0, 0, 1, 1, 0};
  const Seq2SeqExample ex2 = span_corruption_with_mask(iota_tokens(6), odd);
  EXPECT_EQ(ex2.inputs, (std::vector<int32_t>{kS0, 101, 102, kS0 - 1, 105, kEos}));
  EXPECT_EQ(ex2.targets, (std::vector<int32_t>{100, kS0, 103, 104, kS0 - 1, kEos}));
}

TEST(SpanCorruption, tiny_lengths_are_exact) {
  DataRng rng(7);
  const Seq2SeqExample e0 = span_corruption(iota_tokens(0), rng);
  EXPECT_EQ(e0.inputs, (std::vector<int32_t>{kEos}));
  EXPECT_EQ(e0.targets, (std::vector<int32_t>{kEos}));
  // Length 1 draws a mask for 2 tokens, [. N], and keeps its first entry.
  const Seq2SeqExample e1 = span_corruption(iota_tokens(1), rng);
  EXPECT_EQ(e1.inputs, (std::vector<int32_t>{100, kEos}));
  EXPECT_EQ(e1.targets, (std::vector<int32_t>{kS0, kEos}));
  const Seq2SeqExample e2 = span_corruption(iota_tokens(2), rng);
  EXPECT_EQ(e2.inputs, (std::vector<int32_t>{100, kS0, kEos}));
  EXPECT_EQ(e2.targets, (std::vector<int32_t>{kS0, 101, kEos}));
  const Seq2SeqExample e3 = span_corruption(iota_tokens(3), rng);
  EXPECT_EQ(e3.inputs, (std::vector<int32_t>{100, 101, kS0, kEos}));
  EXPECT_EQ(e3.targets, (std::vector<int32_t>{kS0, 102, kEos}));
}

TEST(SpanCorruption, every_token_appears_once_across_inputs_and_targets) {
  const SpecialTokens vocab;
  std::vector<int64_t> lengths;
  for (int64_t n = 0; n <= 64; ++n) lengths.push_back(n);
  for (const int64_t n : {100, 189, 190, 191, 284, 333, 568, 1137}) lengths.push_back(n);
  for (const int64_t n : lengths) {
    const std::vector<int32_t> tokens = iota_tokens(n);
    for (uint64_t seed = 0; seed < 12; ++seed) {
      DataRng rng(seed, static_cast<uint64_t>(n));
      const std::vector<uint8_t> mask = random_spans_noise_mask(n, rng);
      ASSERT_EQ(mask.size(), static_cast<size_t>(n));
      const Seq2SeqExample ex = span_corruption_with_mask(tokens, mask);
      ASSERT_EQ(ex.inputs.back(), kEos);
      ASSERT_EQ(ex.targets.back(), kEos);
      EXPECT_EQ(reconstruct(ex, vocab), tokens) << "length " << n << " seed " << seed;
      if (n >= 2) {
        const NoiseSpanCounts c = noise_span_counts(n);
        EXPECT_EQ(mask.front(), 0) << n;
        EXPECT_EQ(mask.back(), 1) << n;
        EXPECT_EQ(std::count(mask.begin(), mask.end(), uint8_t{1}), c.num_noise) << n;
        EXPECT_EQ(runs_of(mask).size(), static_cast<size_t>(2 * c.num_spans)) << n;
        EXPECT_EQ(static_cast<int64_t>(ex.inputs.size()), c.num_nonnoise + c.num_spans + 1);
        EXPECT_EQ(static_cast<int64_t>(ex.targets.size()), c.num_noise + c.num_spans + 1);
        EXPECT_EQ(ex.targets.front(), kS0);
      }
    }
  }
}

TEST(SpanCorruption, segmentation_parts_are_positive_and_sum_up) {
  DataRng rng(3);
  for (int64_t n = 1; n <= 40; ++n) {
    for (int64_t k = 1; k <= n; ++k) {
      const std::vector<int64_t> parts = random_segmentation(n, k, rng);
      ASSERT_EQ(parts.size(), static_cast<size_t>(k));
      EXPECT_EQ(std::accumulate(parts.begin(), parts.end(), int64_t{0}), n);
      for (const int64_t p : parts) EXPECT_GE(p, 1);
    }
  }
  EXPECT_EQ(random_segmentation(5, 5, rng), (std::vector<int64_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(random_segmentation(5, 1, rng), (std::vector<int64_t>{5}));
}

TEST(SpanCorruption, segmentation_is_a_uniform_composition) {
  // 7 items in 3 parts: C(6, 2) = 15 compositions, each with probability 1/15.
  constexpr int kDraws = 30000;
  std::map<std::vector<int64_t>, int> seen;
  DataRng rng(11);
  for (int i = 0; i < kDraws; ++i) ++seen[random_segmentation(7, 3, rng)];
  ASSERT_EQ(seen.size(), 15u);
  const double expected = kDraws / 15.0;
  double chi2 = 0;
  for (const auto& [parts, count] : seen)
    chi2 += (count - expected) * (count - expected) / expected;
  // 14 degrees of freedom: 36.1 is the 0.1% tail.
  EXPECT_LT(chi2, 36.1);

  // 6 items in 4 parts: C(5, 3) = 10 compositions.
  std::map<std::vector<int64_t>, int> seen2;
  for (int i = 0; i < kDraws; ++i) ++seen2[random_segmentation(6, 4, rng)];
  ASSERT_EQ(seen2.size(), 10u);
  const double expected2 = kDraws / 10.0;
  double chi2b = 0;
  for (const auto& [parts, count] : seen2)
    chi2b += (count - expected2) * (count - expected2) / expected2;
  EXPECT_LT(chi2b, 27.9);  // 9 degrees of freedom, 0.1% tail
}

TEST(SpanCorruption, span_lengths_match_the_configured_mean) {
  // Over many lengths the mean noise span is num_noise / num_spans ~ 3; per span length
  // the distribution is the marginal of a uniform composition: for n items in k parts,
  // P(part = j) = C(n - j - 1, k - 2) / C(n - 1, k - 1).
  int64_t noise_tokens = 0, noise_spans = 0;
  std::map<int64_t, int64_t> histogram;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    DataRng rng(seed, 1);
    const std::vector<uint8_t> mask = random_spans_noise_mask(568, rng);
    for (const auto& [value, len] : runs_of(mask)) {
      if (value != 1) continue;
      noise_tokens += len;
      ++noise_spans;
      ++histogram[len];
    }
  }
  EXPECT_NEAR(static_cast<double>(noise_tokens) / static_cast<double>(noise_spans), 3.0, 0.05);
  const auto log_choose = [](double n, double k) {
    return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
  };
  const double n = 85, k = 28;
  for (int64_t j = 1; j <= 6; ++j) {
    const double p = std::exp(log_choose(n - j - 1, k - 2) - log_choose(n - 1, k - 1));
    const double expected = p * static_cast<double>(noise_spans);
    const double sigma = std::sqrt(expected * (1 - p));
    EXPECT_NEAR(static_cast<double>(histogram[j]), expected, 4 * sigma) << "span length " << j;
  }
  // Mean over lengths from 100 to 2000: the rounding keeps it close to 3.
  int64_t total_noise = 0, total_spans = 0;
  for (int64_t len = 100; len <= 2000; len += 7) {
    const NoiseSpanCounts c = noise_span_counts(len);
    total_noise += c.num_noise;
    total_spans += c.num_spans;
  }
  EXPECT_NEAR(static_cast<double>(total_noise) / static_cast<double>(total_spans), 3.0, 0.02);
}

TEST(SpanCorruption, noise_density_is_configurable) {
  DataRng rng(5);
  const std::vector<uint8_t> mask = random_spans_noise_mask(1000, rng, 0.3, 8.0);
  EXPECT_EQ(std::count(mask.begin(), mask.end(), uint8_t{1}), 300);
  EXPECT_EQ(runs_of(mask).size(), 2u * 38u);  // round(300 / 8) = round(37.5) = 38
}

TEST(SpanCorruption, deterministic_by_seed_and_offset) {
  DataRng a(42, 3), b(42, 3), c(43, 3), d(42, 4);
  const auto ma = random_spans_noise_mask(568, a);
  EXPECT_EQ(ma, random_spans_noise_mask(568, b));
  EXPECT_NE(ma, random_spans_noise_mask(568, c));
  EXPECT_NE(ma, random_spans_noise_mask(568, d));
  // Resuming from a saved state continues the same sequence of masks.
  DataRng e(42, 3);
  random_spans_noise_mask(568, e);
  const DataRngState saved = e.state();
  const auto next = random_spans_noise_mask(300, e);
  DataRng f(saved);
  EXPECT_EQ(random_spans_noise_mask(300, f), next);
}

TEST(SpanCorruption, random_spans_helper_lengths) {
  EXPECT_EQ(raw_length_for_inputs_length(512).tokens_length, 568);
  EXPECT_EQ(raw_length_for_inputs_length(512).targets_length, 114);
  EXPECT_EQ(raw_length_for_inputs_length(256).tokens_length, 284);
  EXPECT_EQ(raw_length_for_inputs_length(256).targets_length, 58);
  EXPECT_EQ(raw_length_for_inputs_length(1024).tokens_length, 1137);
  EXPECT_EQ(raw_length_for_inputs_length(1024).targets_length, 229);
  // The pieces it asks for produce exactly those lengths, and one more token overflows.
  for (const int64_t L : {256, 512, 1024}) {
    const SpanLengths s = raw_length_for_inputs_length(L);
    DataRng rng(9);
    const Seq2SeqExample ex = span_corruption(iota_tokens(s.tokens_length), rng);
    EXPECT_EQ(static_cast<int64_t>(ex.inputs.size()), L);
    EXPECT_EQ(static_cast<int64_t>(ex.targets.size()), s.targets_length);
    const Seq2SeqExample longer = span_corruption(iota_tokens(s.tokens_length + 1), rng);
    EXPECT_GT(static_cast<int64_t>(longer.inputs.size()), L);
  }
  // Noise density 0.5: T5 trims one token so that targets fit a round inputs length.
  const SpanLengths half = random_spans_helper(512, 0.5, 3.0);
  EXPECT_EQ(half.tokens_length, 766);
  EXPECT_EQ(half.targets_length, 512);
}

// T5's random_spans_noise_mask returns an all-false mask at noise density 0 (before any
// clamp): the inputs are the tokens, the targets one sentinel for the single non-noise run.
TEST(SpanCorruption, zero_noise_density_masks_nothing) {
  for (const int64_t n : {0, 1, 2, 3, 10, 568}) {
    DataRng rng(3);
    const std::vector<uint8_t> mask = random_spans_noise_mask(n, rng, 0.0);
    EXPECT_EQ(mask, std::vector<uint8_t>(static_cast<size_t>(n), 0)) << n;
    EXPECT_EQ(rng.state().counter, 0u) << "no draws for an empty mask";
  }
  DataRng rng(3);
  const Seq2SeqExample ex = span_corruption(iota_tokens(5), rng, {}, 0.0);
  EXPECT_EQ(ex.inputs, (std::vector<int32_t>{100, 101, 102, 103, 104, kEos}));
  EXPECT_EQ(ex.targets, (std::vector<int32_t>{kS0, kEos}));
}

// span_corruption_lengths: the piece length and targets length of the examples actually
// drawn, where random_spans_helper's float64 prediction without the mask's clamps is off.
TEST(SpanCorruption, lengths_of_the_examples_actually_drawn) {
  // Where the helper is right, the same numbers.
  for (const int64_t L : {256, 512, 1024}) {
    const SpanLengths helper = raw_length_for_inputs_length(L);
    const SpanLengths exact = span_corruption_lengths(L);
    EXPECT_EQ(exact.tokens_length, helper.tokens_length) << L;
    EXPECT_EQ(exact.targets_length, helper.targets_length) << L;
  }
  // Inputs length 6: the helper asks for 6 tokens (1 noise token, round(1 / 3) = 0 spans),
  // but the mask has at least one span: 5 + 1 + EOS = 7 inputs. 5 tokens fit.
  EXPECT_EQ(raw_length_for_inputs_length(6).tokens_length, 6);
  EXPECT_EQ(span_corruption_lengths(6).tokens_length, 5);
  EXPECT_EQ(span_corruption_lengths(6).targets_length, 3);
  // 172: float32 rounds 190 * 0.15 up to 29 noise tokens in 10 spans: 40 targets, not 38.
  EXPECT_EQ(raw_length_for_inputs_length(172).targets_length, 38);
  EXPECT_EQ(span_corruption_lengths(172).tokens_length, 190);
  EXPECT_EQ(span_corruption_lengths(172).targets_length, 40);
  EXPECT_EQ(span_corruption_lengths(100, 0.0).tokens_length, 99);
  EXPECT_EQ(span_corruption_lengths(100, 0.0).targets_length, 2);
  struct Setting {
    double density, mean;
  };
  SpecialTokens vocab;
  vocab.num_sentinels = 1000;  // mean 1 at 1200 makes about 200 spans
  for (const Setting s : {Setting{0.15, 3.0}, Setting{0.3, 8.0}, Setting{0.5, 3.0},
                          Setting{0.0, 3.0}, Setting{0.15, 1.0}}) {
    for (int64_t L = 3; L <= 1200; ++L) {
      const SpanLengths lengths = span_corruption_lengths(L, s.density, s.mean);
      DataRng rng(static_cast<uint64_t>(L));
      const Seq2SeqExample ex =
          span_corruption(iota_tokens(lengths.tokens_length), rng, vocab, s.density, s.mean);
      ASSERT_LE(static_cast<int64_t>(ex.inputs.size()), L)
          << "inputs_length " << L << " density " << s.density << " mean " << s.mean;
      ASSERT_EQ(static_cast<int64_t>(ex.targets.size()), lengths.targets_length)
          << "inputs_length " << L << " density " << s.density << " mean " << s.mean;
    }
  }
  // The shorter tail of a finite stream fits too: the sizes never shrink as pieces grow.
  for (int64_t L = 3; L <= 1200; ++L) {
    const SpanLengths lengths = span_corruption_lengths(L);
    for (int64_t n = 2; n <= lengths.tokens_length; ++n) {
      const NoiseSpanCounts c = noise_span_counts(n);
      ASSERT_LE(c.num_nonnoise + c.num_spans + 1, L) << n << " tokens, inputs_length " << L;
      ASSERT_LE(c.num_noise + c.num_spans + 1, lengths.targets_length)
          << n << " tokens, inputs_length " << L;
    }
  }
  EXPECT_THROW_MSG(span_corruption_lengths(2),
                   "[span_corruption] inputs_length must be at least 3");
}

TEST(SpanCorruption, errors) {
  DataRng rng(1);
  EXPECT_THROW_MSG(random_spans_noise_mask(10, rng, 1.5),
                   "[random_spans_noise_mask] noise_density must be in [0, 1], got 1.5");
  EXPECT_THROW_MSG(random_spans_noise_mask(10, rng, 0.15, 0.0),
                   "mean_noise_span_length must be positive, got 0");
  EXPECT_THROW_MSG(random_spans_noise_mask(10, rng, 0.9, 1.0),
                   "[random_spans_noise_mask] 9 noise spans need as many noise and non-noise "
                   "tokens, but length 10 gives 9 noise and 1 non-noise");
  EXPECT_THROW_MSG(random_segmentation(3, 4, rng),
                   "[random_segmentation] 3 items cannot form 4 non-empty segments");
  EXPECT_THROW_MSG(random_segmentation(3, 0, rng), "cannot form 0 non-empty segments");
  const std::vector<uint8_t> short_mask = {0, 1};
  EXPECT_THROW_MSG(span_corruption_with_mask(iota_tokens(3), short_mask),
                   "[span_corruption] tokens has 3 ids but the noise mask has 2");
  std::vector<uint8_t> alternating(202);
  for (size_t i = 0; i < alternating.size(); ++i) alternating[i] = i % 2;
  EXPECT_THROW_MSG(span_corruption_with_mask(iota_tokens(202), alternating),
                   "[span_corruption] 101 spans need 101 sentinels but the vocabulary has 100");
  EXPECT_THROW_MSG(random_spans_helper(1),
                   "[random_spans_helper] inputs_length must be at least 2");
  EXPECT_THROW_MSG(random_spans_helper(512, 1.0), "noise_density must be below 1, got 1");
}

TEST(SpanCorruption, custom_vocabulary_sentinels) {
  SpecialTokens vocab;
  vocab.eos_id = 2;
  vocab.spm_size = 500;
  vocab.num_sentinels = 10;
  const std::vector<uint8_t> mask = {0, 1, 0, 1};
  const Seq2SeqExample ex = span_corruption_with_mask(iota_tokens(4), mask, vocab);
  EXPECT_EQ(ex.inputs, (std::vector<int32_t>{100, 509, 102, 508, 2}));
  EXPECT_EQ(ex.targets, (std::vector<int32_t>{509, 101, 508, 103, 2}));
}

TEST(TokenPieces, split_tokens_and_stream) {
  const std::vector<int32_t> tokens = iota_tokens(10);
  const auto pieces = split_tokens(tokens, 4);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], (std::vector<int32_t>{100, 101, 102, 103}));
  EXPECT_EQ(pieces[2], (std::vector<int32_t>{108, 109}));
  EXPECT_TRUE(split_tokens(std::vector<int32_t>{}, 4).empty());

  // Documents without EOS, concatenated without separator, cut every 4 tokens.
  TokenStreamSplitter splitter(4);
  EXPECT_TRUE(splitter.push(std::vector<int32_t>{1, 2, 3}).empty());
  auto got = splitter.push(std::vector<int32_t>{4, 5, 6, 7, 8, 9, 10, 11, 12, 13});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(got[1], (std::vector<int32_t>{5, 6, 7, 8}));
  EXPECT_EQ(got[2], (std::vector<int32_t>{9, 10, 11, 12}));
  EXPECT_EQ(splitter.pending(), (std::vector<int32_t>{13}));
  // Resuming from the saved tail continues the same pieces.
  TokenStreamSplitter resumed(4);
  resumed.set_pending(splitter.pending());
  const auto a = splitter.push(std::vector<int32_t>{14, 15, 16});
  const auto b = resumed.push(std::vector<int32_t>{14, 15, 16});
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], (std::vector<int32_t>{13, 14, 15, 16}));
  EXPECT_TRUE(splitter.push(std::vector<int32_t>{}).empty());
  splitter.push(std::vector<int32_t>{17, 18});
  EXPECT_EQ(splitter.flush(), (std::vector<int32_t>{17, 18}));
  EXPECT_TRUE(splitter.flush().empty());
  EXPECT_THROW_MSG(TokenStreamSplitter(0),
                   "[TokenStreamSplitter] piece_length must be >= 1, got 0");
  EXPECT_THROW_MSG(resumed.set_pending(iota_tokens(4)), "a saved tail of 4 tokens");
}

TEST(TokenPieces, select_random_chunk_picks_aligned_chunks_uniformly) {
  const std::vector<int32_t> tokens = iota_tokens(10);
  DataRng rng(2);
  std::map<int32_t, int> first_ids;
  for (int i = 0; i < 3000; ++i) {
    const auto chunk = select_random_chunk(tokens, 4, rng);
    ++first_ids[chunk.front()];
    EXPECT_EQ(chunk.size(), chunk.front() == 108 ? 2u : 4u);
  }
  ASSERT_EQ(first_ids.size(), 3u);
  for (const int32_t start : {100, 104, 108}) EXPECT_NEAR(first_ids[start], 1000, 120);
  EXPECT_EQ(select_random_chunk(tokens, 65536, rng).size(), 10u);
  const DataRngState before = rng.state();
  EXPECT_TRUE(select_random_chunk(std::vector<int32_t>{}, 4, rng).empty());
  EXPECT_EQ(rng.state(), before);
}

// CMake passes the folder; without it, tests/fixtures next to this file's folder (a path
// cannot go through the file name itself, so its last component is dropped first).
std::string fixtures_dir() {
#ifdef SP_FIXTURES_DIR
  return SP_FIXTURES_DIR;
#else
  const std::string file = __FILE__;
  return file.substr(0, file.find_last_of('/')) + "/../fixtures";
#endif
}

// Fixture from scripts/make_span_counts_fixture.py: T5's counting formulas transcribed
// in NumPy (float32 for the mask as TensorFlow computes it, Python round for the helper).
std::vector<int64_t> json_int_array(const std::string& text, size_t& pos, const std::string& key) {
  const size_t at = text.find("\"" + key + "\"", pos);
  EXPECT_NE(at, std::string::npos) << key;
  if (at == std::string::npos) return {};
  const size_t open = text.find('[', at);
  const size_t close = text.find(']', open);
  pos = close;
  std::vector<int64_t> values;
  std::stringstream ss(text.substr(open + 1, close - open - 1));
  std::string item;
  while (std::getline(ss, item, ',')) values.push_back(std::stoll(item));
  return values;
}

double json_number(const std::string& text, size_t& pos, const std::string& key) {
  const size_t at = text.find("\"" + key + "\"", pos);
  EXPECT_NE(at, std::string::npos) << key;
  if (at == std::string::npos) return 0;
  const size_t colon = text.find(':', at);
  pos = colon;
  return std::stod(text.substr(colon + 1, 32));
}

TEST(SpanCorruption, counts_match_numpy_transcription_of_t5) {
  const std::string path = fixtures_dir() + "/span_counts.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  size_t pos = 0;
  int configs = 0;
  while (text.find("\"noise_density\"", pos) != std::string::npos) {
    const double density = json_number(text, pos, "noise_density");
    const double mean = json_number(text, pos, "mean_noise_span_length");
    const auto first_length = static_cast<int64_t>(json_number(text, pos, "first_length"));
    const std::vector<int64_t> noise = json_int_array(text, pos, "num_noise");
    const std::vector<int64_t> spans = json_int_array(text, pos, "num_spans");
    const auto first_inputs = static_cast<int64_t>(json_number(text, pos, "first_inputs_length"));
    const std::vector<int64_t> tokens_length = json_int_array(text, pos, "tokens_length");
    const std::vector<int64_t> targets_length = json_int_array(text, pos, "targets_length");
    ASSERT_EQ(noise.size(), spans.size());
    ASSERT_EQ(tokens_length.size(), targets_length.size());
    ASSERT_GT(noise.size(), 100u);
    for (size_t i = 0; i < noise.size(); ++i) {
      const int64_t length = first_length + static_cast<int64_t>(i);
      const NoiseSpanCounts c = noise_span_counts(length, density, mean);
      ASSERT_EQ(c.num_noise, noise[i]) << "length " << length << " density " << density;
      ASSERT_EQ(c.num_spans, spans[i]) << "length " << length << " density " << density;
    }
    for (size_t i = 0; i < tokens_length.size(); ++i) {
      const int64_t inputs_length = first_inputs + static_cast<int64_t>(i);
      const SpanLengths s = random_spans_helper(inputs_length, density, mean);
      ASSERT_EQ(s.tokens_length, tokens_length[i]) << "inputs_length " << inputs_length;
      ASSERT_EQ(s.targets_length, targets_length[i]) << "inputs_length " << inputs_length;
    }
    ++configs;
  }
  EXPECT_EQ(configs, 3);
}

}  // namespace
}  // namespace sp
