// Resumable pretraining streams (experiments/data/example_stream.h) and the unigram
// baseline.
#include "experiments/data/example_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "experiments/data/unigram_baseline.h"
#include "experiments/objectives/span_corruption.h"
#include "test_util.h"

namespace sp {
namespace {

// Sentinels 1000..1099 above 1000 pieces; document tokens are 3..999.
SpecialTokens small_vocab() {
  SpecialTokens v;
  v.spm_size = 1000;
  return v;
}

// Document i has 5 + (i * 7) % 40 tokens, all distinct across the corpus.
std::shared_ptr<TokenizedDocuments> make_docs(int64_t n) {
  auto docs = std::make_shared<TokenizedDocuments>();
  int32_t next = 3;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int32_t> d(static_cast<size_t>(5 + (i * 7) % 40));
    for (int32_t& t : d) {
      t = next;
      next = next == 999 ? 3 : next + 1;
    }
    docs->add(d);
  }
  return docs;
}

// Undoes span corruption: each sentinel of the inputs replaced by its span of the targets.
std::vector<int32_t> uncorrupt(const Seq2SeqExample& ex, const SpecialTokens& v) {
  std::map<int64_t, std::vector<int32_t>> spans;
  int64_t current = -1;
  for (size_t i = 0; i + 1 < ex.targets.size(); ++i) {
    const int32_t t = ex.targets[i];
    if (v.is_sentinel(t))
      current = v.sentinel_index(t);
    else
      spans[current].push_back(t);
  }
  std::vector<int32_t> out;
  EXPECT_EQ(ex.inputs.back(), v.eos_id);
  for (size_t i = 0; i + 1 < ex.inputs.size(); ++i) {
    const int32_t t = ex.inputs[i];
    if (v.is_sentinel(t)) {
      const auto& s = spans[v.sentinel_index(t)];
      out.insert(out.end(), s.begin(), s.end());
    } else {
      out.push_back(t);
    }
  }
  return out;
}

TEST(DocumentOrder, permutations_per_epoch) {
  DocumentOrder order(50, 3, true);
  std::vector<int64_t> e0, e1;
  for (int64_t i = 0; i < 50; ++i) e0.push_back(order.at(0, i));
  for (int64_t i = 0; i < 50; ++i) e1.push_back(order.at(1, i));
  EXPECT_NE(e0, e1);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(50);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  // Going back to epoch 0 gives the same permutation (it is recomputed, not stored).
  EXPECT_EQ(order.at(0, 17), e0[17]);
  DocumentOrder same(50, 3, true), other(50, 4, true), plain(50, 3, false);
  EXPECT_EQ(same.at(1, 9), e1[9]);
  int differ = 0;
  for (int64_t i = 0; i < 50; ++i) differ += other.at(0, i) != e0[static_cast<size_t>(i)];
  EXPECT_GT(differ, 40);
  EXPECT_EQ(plain.at(5, 12), 12);
}

TEST(SpanCorruptionStream, covers_the_concatenated_stream) {
  const auto docs = make_docs(40);
  SpanCorruptionStreamOptions o;
  o.inputs_length = 64;
  o.shuffle = false;
  o.max_epochs = 1;
  o.vocab = small_vocab();
  SpanCorruptionStream stream(docs, o);
  EXPECT_EQ(stream.piece_length(), raw_length_for_inputs_length(64).tokens_length);
  std::vector<int32_t> all;
  for (int64_t i = 0; i < docs->size(); ++i) {
    const auto d = (*docs)[i];
    all.insert(all.end(), d.begin(), d.end());
  }
  std::vector<int32_t> rebuilt;
  int64_t full = 0;
  while (auto ex = stream.next()) {
    const std::vector<int32_t> piece = uncorrupt(*ex, o.vocab);
    if (static_cast<int64_t>(piece.size()) == stream.piece_length()) {
      ++full;
      EXPECT_EQ(static_cast<int64_t>(ex->inputs.size()), 64);
      EXPECT_EQ(static_cast<int64_t>(ex->targets.size()), stream.targets_length());
    }
    rebuilt.insert(rebuilt.end(), piece.begin(), piece.end());
  }
  EXPECT_EQ(rebuilt, all);
  EXPECT_EQ(full, static_cast<int64_t>(all.size()) / stream.piece_length());
  EXPECT_FALSE(stream.next().has_value());
}

// Takes `cut` examples, saves the state through JSON text, restores it into a new stream
// and checks the next ones equal an uninterrupted stream's.
template <typename Stream, typename Options>
void check_resume(const std::shared_ptr<TokenizedDocuments>& docs, const Options& o, int64_t cut,
                  int64_t more) {
  Stream uninterrupted(docs, o);
  const std::vector<Seq2SeqExample> expected = uninterrupted.take(cut + more);
  Stream first(docs, o);
  EXPECT_EQ(first.take(cut),
            std::vector<Seq2SeqExample>(expected.begin(), expected.begin() + cut));
  const std::string saved = first.state().dump();
  Stream second(docs, o);
  second.set_state(nlohmann::json::parse(saved));
  EXPECT_EQ(second.examples_produced(), cut);
  EXPECT_EQ(second.take(more), std::vector<Seq2SeqExample>(expected.begin() + cut, expected.end()))
      << "resumed at " << cut << " from " << saved;
}

TEST(SpanCorruptionStream, resumes_exactly_across_epochs) {
  const auto docs = make_docs(30);  // 735 tokens: ~10 pieces of 72 per epoch
  SpanCorruptionStreamOptions o;
  o.inputs_length = 64;
  o.seed = 11;
  o.vocab = small_vocab();
  for (int64_t cut : {0, 1, 7, 10, 23})
    check_resume<SpanCorruptionStream>(docs, o, cut, 15);
  SpanCorruptionStream s(docs, o);
  s.take(25);
  EXPECT_GE(s.epoch(), 2);
  // Every example of an endless stream is a full piece, across epoch boundaries too.
  SpanCorruptionStream t(docs, o);
  for (const Seq2SeqExample& ex : t.take(40)) EXPECT_EQ(ex.inputs.size(), 64u);
}

TEST(SpanCorruptionStream, seeds_and_state_checks) {
  const auto docs = make_docs(30);
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.vocab = small_vocab();
  SpanCorruptionStream a(docs, o);
  o.seed = 1;
  SpanCorruptionStream b(docs, o);
  EXPECT_NE(a.take(3), b.take(3));
  EXPECT_THROW_MSG(b.set_state(a.state()), "the state is for seed 0, this stream has seed 1");
  PrefixLmStreamOptions p;
  p.vocab = small_vocab();
  PrefixLmStream c(docs, p);
  EXPECT_THROW_MSG(c.set_state(a.state()), "the state is for objective \"span_corruption\"");
  SpanCorruptionStream d(make_docs(31), o);
  EXPECT_THROW_MSG(d.set_state(b.state()), "corpus of 30 documents, this one has 31");
  auto empty = std::make_shared<TokenizedDocuments>();
  empty->add({});
  EXPECT_THROW_MSG(SpanCorruptionStream(empty, o), "needs a corpus with tokens");
}

TEST(PrefixLmStream, one_document_at_a_time_and_resume) {
  const auto docs = make_docs(25);
  PrefixLmStreamOptions o;
  o.prefix_lm.inputs_length = 16;  // pieces of 15 tokens
  o.shuffle = false;
  o.max_epochs = 1;
  o.vocab = small_vocab();
  PrefixLmStream stream(docs, o);
  std::vector<int32_t> rebuilt;
  int64_t n = 0;
  while (auto ex = stream.next()) {
    ++n;
    EXPECT_LE(ex->inputs.size(), 16u);
    EXPECT_GE(ex->inputs.size(), 2u);  // at least one token before EOS
    EXPECT_GE(ex->targets.size(), 2u);
    rebuilt.insert(rebuilt.end(), ex->inputs.begin(), ex->inputs.end() - 1);
    rebuilt.insert(rebuilt.end(), ex->targets.begin(), ex->targets.end() - 1);
  }
  // Pieces of 15 tokens per document, a single-token tail dropped, as prefix_lm does.
  int64_t expected_pieces = 0;
  std::vector<int32_t> expected_tokens;
  for (int64_t i = 0; i < docs->size(); ++i) {
    const auto d = (*docs)[i];
    for (size_t s = 0; s < d.size(); s += 15) {
      const size_t len = std::min<size_t>(15, d.size() - s);
      if (len < 2) continue;
      ++expected_pieces;
      expected_tokens.insert(expected_tokens.end(), d.begin() + s, d.begin() + s + len);
    }
  }
  EXPECT_EQ(n, expected_pieces);
  EXPECT_EQ(rebuilt, expected_tokens);

  o.shuffle = true;
  o.max_epochs = 0;
  o.seed = 5;
  for (int64_t cut : {0, 1, 2, 9, 40, 41}) check_resume<PrefixLmStream>(docs, o, cut, 20);
  PrefixLmStream endless(docs, o);
  endless.take(200);
  EXPECT_GE(endless.epoch(), 2);
}

TEST(PrefixLmStream, fails_when_nothing_qualifies) {
  auto docs = std::make_shared<TokenizedDocuments>();
  docs->add(std::vector<int32_t>{5});
  docs->add({});
  PrefixLmStreamOptions o;
  o.vocab = small_vocab();
  PrefixLmStream s(docs, o);
  EXPECT_THROW_MSG(s.next(), "no document of 2 yields a prefix-LM example");
}

TEST(UnigramModel, cross_entropy_by_hand) {
  // Targets: ids 3, 3, 4, 1 (EOS twice): counts 3:2 4:1 1:2 of 5 tokens, add-1 over 6 ids.
  const std::vector<Seq2SeqExample> train = {{{7, 1}, {3, 3, 1}}, {{8, 1}, {4, 1}}};
  const UnigramModel m = UnigramModel::fit(train, 6);
  EXPECT_EQ(m.tokens_counted(), 5);
  EXPECT_NEAR(m.log_prob(3), std::log(3.0 / 11.0), 1e-12);
  EXPECT_NEAR(m.log_prob(0), std::log(1.0 / 11.0), 1e-12);
  const std::vector<Seq2SeqExample> val = {{{9, 1}, {3, 5, 1}}};
  EXPECT_NEAR(m.cross_entropy(val),
              -(std::log(3.0 / 11) + std::log(1.0 / 11) + std::log(3.0 / 11)) / 3, 1e-12);
  EXPECT_THROW_MSG(m.cross_entropy({{{1}, {6, 1}}}), "id 6 outside [0, 6)");
  EXPECT_THROW_MSG(UnigramModel::fit(train, 4), "target id 4 outside [0, 4)");
}

}  // namespace
}  // namespace sp
