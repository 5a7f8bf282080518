// Prefix LM ("LM adaptation") as in T5's prefix_lm.
#include "experiments/objectives/prefix_lm.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <vector>

#include "test_util.h"

namespace sp {
namespace {

constexpr int32_t kEos = 1;

std::vector<int32_t> iota_tokens(int64_t n, int32_t first = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

// inputs and targets without their EOS, joined: the piece they came from.
std::vector<int32_t> rejoin(const Seq2SeqExample& ex) {
  EXPECT_FALSE(ex.inputs.empty());
  EXPECT_FALSE(ex.targets.empty());
  EXPECT_EQ(ex.inputs.back(), kEos);
  EXPECT_EQ(ex.targets.back(), kEos);
  std::vector<int32_t> out(ex.inputs.begin(), ex.inputs.end() - 1);
  out.insert(out.end(), ex.targets.begin(), ex.targets.end() - 1);
  return out;
}

TEST(PrefixLm, split_by_hand) {
  const std::vector<int32_t> piece = {10, 11, 12, 13};
  const Seq2SeqExample ex = prefix_lm_split(piece, 1);
  EXPECT_EQ(ex.inputs, (std::vector<int32_t>{10, kEos}));
  EXPECT_EQ(ex.targets, (std::vector<int32_t>{11, 12, 13, kEos}));
  const Seq2SeqExample ex3 = prefix_lm_split(piece, 3);
  EXPECT_EQ(ex3.inputs, (std::vector<int32_t>{10, 11, 12, kEos}));
  EXPECT_EQ(ex3.targets, (std::vector<int32_t>{13, kEos}));
  SpecialTokens vocab;
  vocab.eos_id = 7;
  const Seq2SeqExample ex0 = prefix_lm_split(piece, 0, vocab);
  EXPECT_EQ(ex0.inputs, (std::vector<int32_t>{7}));
  EXPECT_EQ(ex0.targets, (std::vector<int32_t>{10, 11, 12, 13, 7}));
  EXPECT_THROW_MSG(prefix_lm_split(piece, 5),
                   "[prefix_lm] split point 5 is outside a piece of 4 tokens");
}

TEST(PrefixLm, split_point_is_uniform_in_1_to_n_minus_1) {
  DataRng rng(4);
  std::map<int64_t, int> seen;
  constexpr int kDraws = 24000;
  for (int i = 0; i < kDraws; ++i) ++seen[random_prefix_length(7, rng)];
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen.begin()->first, 1);  // both ends are reached
  EXPECT_EQ(seen.rbegin()->first, 6);
  double chi2 = 0;
  for (const auto& [k, count] : seen) chi2 += (count - 4000.0) * (count - 4000.0) / 4000.0;
  EXPECT_LT(chi2, 20.5);  // 5 degrees of freedom, 0.1% tail
  for (int i = 0; i < 50; ++i) EXPECT_EQ(random_prefix_length(2, rng), 1);
  EXPECT_EQ(random_prefix_length(1, rng), 0);  // T5's value for a one-token piece
  EXPECT_THROW_MSG(random_prefix_length(0, rng),
                   "[prefix_lm] a piece needs at least 1 token, got 0");
}

TEST(PrefixLm, pieces_of_inputs_length_minus_one) {
  // 10 tokens, inputs_length 5: pieces of 4, 4 and 2 tokens.
  const std::vector<int32_t> doc = iota_tokens(10);
  PrefixLmOptions opt;
  opt.inputs_length = 5;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    DataRng rng(seed);
    const std::vector<Seq2SeqExample> exs = prefix_lm(doc, rng, opt);
    ASSERT_EQ(exs.size(), 3u);
    EXPECT_EQ(rejoin(exs[0]), iota_tokens(4, 100));
    EXPECT_EQ(rejoin(exs[1]), iota_tokens(4, 104));
    EXPECT_EQ(rejoin(exs[2]), iota_tokens(2, 108));
    for (const Seq2SeqExample& ex : exs) {
      EXPECT_GE(ex.inputs.size(), 2u);   // k >= 1 plus EOS
      EXPECT_GE(ex.targets.size(), 2u);  // at least one token plus EOS
      EXPECT_LE(ex.inputs.size(), 5u);
    }
    EXPECT_EQ(exs[2].inputs, (std::vector<int32_t>{108, kEos}));
    EXPECT_EQ(exs[2].targets, (std::vector<int32_t>{109, kEos}));
  }
}

TEST(PrefixLm, single_token_tail_is_skipped_unless_asked) {
  const std::vector<int32_t> doc = iota_tokens(9);  // pieces 4, 4, 1
  PrefixLmOptions opt;
  opt.inputs_length = 5;
  DataRng rng(1);
  EXPECT_EQ(prefix_lm(doc, rng, opt).size(), 2u);
  opt.keep_single_token_pieces = true;
  const std::vector<Seq2SeqExample> exs = prefix_lm(doc, rng, opt);
  ASSERT_EQ(exs.size(), 3u);
  EXPECT_EQ(exs[2].inputs, (std::vector<int32_t>{kEos}));
  EXPECT_EQ(exs[2].targets, (std::vector<int32_t>{108, kEos}));
  // A one-token document.
  opt.keep_single_token_pieces = false;
  EXPECT_TRUE(prefix_lm(iota_tokens(1), rng, opt).empty());
  EXPECT_TRUE(prefix_lm(std::vector<int32_t>{}, rng, opt).empty());
}

TEST(PrefixLm, chunk_of_a_long_document) {
  // max_chunk_length 6 over 14 tokens: chunks [0, 6), [6, 12), [12, 14); then pieces of 4.
  const std::vector<int32_t> doc = iota_tokens(14);
  PrefixLmOptions opt;
  opt.inputs_length = 5;
  opt.max_chunk_length = 6;
  std::map<int32_t, int> first;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    DataRng rng(seed);
    const std::vector<Seq2SeqExample> exs = prefix_lm(doc, rng, opt);
    ASSERT_FALSE(exs.empty());
    const int32_t start = exs[0].inputs[0];
    ++first[start];
    if (start == 112) {
      ASSERT_EQ(exs.size(), 1u);
      EXPECT_EQ(rejoin(exs[0]), iota_tokens(2, 112));
    } else {
      ASSERT_EQ(exs.size(), 2u);
      EXPECT_EQ(rejoin(exs[0]), iota_tokens(4, start));
      EXPECT_EQ(rejoin(exs[1]), iota_tokens(2, start + 4));
    }
  }
  EXPECT_EQ(first.size(), 3u);
  for (const auto& [start, count] : first) EXPECT_NEAR(count, 100, 35) << start;
}

TEST(PrefixLm, deterministic_and_resumable) {
  const std::vector<int32_t> doc = iota_tokens(600);
  DataRng a(5, 2), b(5, 2);
  const auto ea = prefix_lm(doc, a);
  EXPECT_EQ(ea, prefix_lm(doc, b));
  ASSERT_EQ(ea.size(), 2u);  // 511 + 89
  EXPECT_EQ(ea[0].inputs.size() + ea[0].targets.size(), 513u);
  const DataRngState saved = a.state();
  const auto next = prefix_lm(doc, a);
  DataRng c(saved);
  EXPECT_EQ(prefix_lm(doc, c), next);
  bool differs = false;
  for (uint64_t seed = 6; seed < 10 && !differs; ++seed) {
    DataRng d(seed, 2);
    differs = prefix_lm(doc, d) != ea;
  }
  EXPECT_TRUE(differs);
}

TEST(PrefixLm, errors) {
  DataRng rng(0);
  PrefixLmOptions opt;
  opt.inputs_length = 2;
  EXPECT_THROW_MSG(
      prefix_lm(iota_tokens(5), rng, opt),
      "[prefix_lm] inputs_length must be at least 3 (a piece of 2 tokens plus EOS), got 2");
  opt.keep_single_token_pieces = true;
  EXPECT_EQ(prefix_lm(iota_tokens(5), rng, opt).size(), 5u);
  opt.inputs_length = 8;
  opt.max_chunk_length = 0;
  EXPECT_THROW_MSG(prefix_lm(iota_tokens(5), rng, opt),
                   "[select_random_chunk] max_length must be >= 1, got 0");
}

}  // namespace
}  // namespace sp
