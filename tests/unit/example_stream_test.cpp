// Resumable pretraining streams (experiments/data/example_stream.h), their block shuffle
// (shuffled_stream.h) and the unigram baseline.
#include "experiments/data/example_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>

#include "experiments/data/shuffled_stream.h"
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
  EXPECT_EQ(first.take(cut), std::vector<Seq2SeqExample>(expected.begin(), expected.begin() + cut));
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
  for (int64_t cut : {0, 1, 7, 10, 23}) check_resume<SpanCorruptionStream>(docs, o, cut, 15);
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

// Short inputs lengths, where random_spans_helper's piece gives one input too many (it
// ignores the mask's minimum of one span), and 172, where float32 gives 2 more targets.
TEST(SpanCorruptionStream, examples_fit_inputs_length_and_targets_length) {
  const auto docs = make_docs(30);
  for (const int64_t L : {4, 5, 6, 7, 8, 9, 32, 172}) {
    SpanCorruptionStreamOptions o;
    o.inputs_length = L;
    o.vocab = small_vocab();
    SpanCorruptionStream stream(docs, o);
    for (const Seq2SeqExample& ex : stream.take(60)) {
      ASSERT_LE(static_cast<int64_t>(ex.inputs.size()), L) << "inputs_length " << L;
      ASSERT_EQ(static_cast<int64_t>(ex.targets.size()), stream.targets_length())
          << "inputs_length " << L;
      // Every sentinel of the targets is in the inputs: nothing needs truncating.
      EXPECT_EQ(uncorrupt(ex, o.vocab).size(), static_cast<size_t>(stream.piece_length()));
    }
  }
}

// A state carries the settings its position depends on; restoring it under other ones
// would continue some other stream without a word.
TEST(SpanCorruptionStream, state_from_another_configuration_is_refused) {
  const auto docs = make_docs(30);
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.vocab = small_vocab();
  SpanCorruptionStream saved(docs, o);
  saved.take(3);
  const nlohmann::json state = saved.state();
  {
    SpanCorruptionStreamOptions other = o;
    other.inputs_length = 64;
    SpanCorruptionStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state),
                     "the state is for inputs_length 32, this stream has inputs_length 64");
  }
  {
    SpanCorruptionStreamOptions other = o;
    other.noise_density = 0.3;
    SpanCorruptionStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state), "the state is for noise_density 0.15");
  }
  {
    SpanCorruptionStreamOptions other = o;
    other.mean_noise_span_length = 2.0;
    SpanCorruptionStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state), "the state is for mean_noise_span_length 3");
  }
  {
    SpanCorruptionStreamOptions other = o;
    other.shuffle = false;
    SpanCorruptionStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state),
                     "the state is for shuffle true, this stream has shuffle false");
  }
  // As many documents, other tokens.
  auto changed = std::make_shared<TokenizedDocuments>();
  for (int64_t i = 0; i < docs->size(); ++i) {
    const auto d = (*docs)[i];
    changed->add(i == 4 ? d.subspan(1) : d);
  }
  SpanCorruptionStream s(changed, o);
  EXPECT_THROW_MSG(s.set_state(state),
                   "the state is for a corpus of 715 tokens, this one has 714 (the data changed)");
  // The same settings restore.
  SpanCorruptionStream same(docs, o);
  same.set_state(state);
  EXPECT_EQ(same.take(2), saved.take(2));
}

TEST(SpanCorruptionStream, malformed_state_gives_a_clear_error) {
  const auto docs = make_docs(30);
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.vocab = small_vocab();
  SpanCorruptionStream a(docs, o), b(docs, o);
  nlohmann::json state = a.state();
  state.erase("offset");
  EXPECT_THROW_MSG(b.set_state(state), "[data] the stream state has no integer \"offset\"");
  state = a.state();
  state["epoch"] = "two";
  EXPECT_THROW_MSG(b.set_state(state), "[data] the stream state has no integer \"epoch\"");
  // A state from before the settings were recorded (seed and documents only) restores.
  state = a.state();
  for (const char* key :
       {"tokens", "shuffle", "inputs_length", "noise_density", "mean_noise_span_length"})
    state.erase(key);
  EXPECT_NO_THROW(b.set_state(state));
  state = a.state();
  state["seed"] = "zero";
  EXPECT_THROW_MSG(b.set_state(state), "the state is for seed \"zero\", this stream has seed 0");
  PrefixLmStreamOptions p;
  p.vocab = small_vocab();
  PrefixLmStream c(docs, p);
  nlohmann::json ps = c.state();
  ps.erase("within");
  EXPECT_THROW_MSG(c.set_state(ps), "[data] the stream state has no integer \"within\"");
}

TEST(PrefixLmStream, state_from_another_configuration_is_refused) {
  const auto docs = make_docs(30);
  PrefixLmStreamOptions o;
  o.prefix_lm.inputs_length = 16;
  o.vocab = small_vocab();
  PrefixLmStream saved(docs, o);
  saved.take(5);
  const nlohmann::json state = saved.state();
  {
    PrefixLmStreamOptions other = o;
    other.prefix_lm.inputs_length = 8;
    PrefixLmStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state),
                     "the state is for inputs_length 16, this stream has inputs_length 8");
  }
  {
    PrefixLmStreamOptions other = o;
    other.prefix_lm.max_chunk_length = 10;
    PrefixLmStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state), "the state is for max_chunk_length 65536");
  }
  {
    PrefixLmStreamOptions other = o;
    other.prefix_lm.keep_single_token_pieces = true;
    PrefixLmStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state), "the state is for keep_single_token_pieces false");
  }
  {
    PrefixLmStreamOptions other = o;
    other.shuffle = false;
    PrefixLmStream s(docs, other);
    EXPECT_THROW_MSG(s.set_state(state), "the state is for shuffle true");
  }
  PrefixLmStream same(docs, o);
  same.set_state(state);
  EXPECT_EQ(same.take(3), saved.take(3));
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

// One document yields examples, the others none: shuffled, it can be the first of one
// epoch and the last of the next, 2n - 1 documents apart. That is no reason to fail.
TEST(PrefixLmStream, one_productive_document_among_empty_ones_is_enough) {
  for (const bool keep : {false, true}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      auto docs = std::make_shared<TokenizedDocuments>();
      docs->add(std::vector<int32_t>{5, 6, 7});
      for (int i = 0; i < 4; ++i)
        docs->add(keep ? std::vector<int32_t>{} : std::vector<int32_t>{8});
      PrefixLmStreamOptions o;
      o.prefix_lm.inputs_length = 4;  // the document is one piece of 3 tokens
      o.prefix_lm.keep_single_token_pieces = keep;
      o.seed = seed;
      o.vocab = small_vocab();
      PrefixLmStream s(docs, o);
      std::vector<Seq2SeqExample> got;
      ASSERT_NO_THROW(got = s.take(12)) << "seed " << seed << " keep " << keep;
      EXPECT_EQ(got.size(), 12u);
    }
  }
}

// --- BlockShuffledStream -------------------------------------------------------------

// A span-corruption stream over make_docs(30), shuffled in blocks of `block`.
std::unique_ptr<BlockShuffledStream> shuffled(int64_t block, uint64_t seed, int64_t max_epochs) {
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.seed = seed;
  o.max_epochs = max_epochs;
  o.vocab = small_vocab();
  return std::make_unique<BlockShuffledStream>(
      std::make_unique<SpanCorruptionStream>(make_docs(30), o), block, seed);
}

TEST(BlockShuffledStream, each_block_is_a_permutation_of_the_inner_block) {
  constexpr int64_t kBlock = 8;
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.max_epochs = 1;
  o.vocab = small_vocab();
  SpanCorruptionStream plain(make_docs(30), o);
  const std::vector<Seq2SeqExample> made = plain.take(1000);
  auto stream = shuffled(kBlock, 0, 1);
  const std::vector<Seq2SeqExample> got = stream->take(1000);
  ASSERT_EQ(got.size(), made.size());
  ASSERT_GT(made.size() % static_cast<size_t>(kBlock), 0u);  // the last block is shorter
  int moved_blocks = 0;
  for (size_t start = 0; start < made.size(); start += static_cast<size_t>(kBlock)) {
    const size_t end = std::min(made.size(), start + static_cast<size_t>(kBlock));
    std::vector<Seq2SeqExample> a(made.begin() + start, made.begin() + end);
    std::vector<Seq2SeqExample> b(got.begin() + start, got.begin() + end);
    moved_blocks += a != b;
    const auto key = [](const Seq2SeqExample& x, const Seq2SeqExample& y) {
      return std::tie(x.inputs, x.targets) < std::tie(y.inputs, y.targets);
    };
    std::sort(a.begin(), a.end(), key);
    std::sort(b.begin(), b.end(), key);
    EXPECT_EQ(a, b) << "block starting at " << start;
  }
  EXPECT_GE(moved_blocks, static_cast<int>(made.size() / static_cast<size_t>(kBlock)) - 1);
  EXPECT_FALSE(stream->next().has_value());
  EXPECT_FALSE(stream->next().has_value());
  EXPECT_EQ(stream->examples_produced(), static_cast<int64_t>(made.size()));
  // The order is the seed's.
  EXPECT_EQ(shuffled(kBlock, 0, 1)->take(20),
            std::vector<Seq2SeqExample>(got.begin(), got.begin() + 20));
  EXPECT_NE(shuffled(kBlock, 1, 1)->take(20), shuffled(kBlock, 0, 1)->take(20));
}

TEST(BlockShuffledStream, resumes_exactly_inside_a_block_and_at_its_end) {
  const std::vector<Seq2SeqExample> expected = shuffled(5, 3, 0)->take(40);
  for (int64_t cut : {0, 1, 4, 5, 6, 23}) {
    auto first = shuffled(5, 3, 0);
    first->take(cut);
    const std::string saved = first->state().dump();
    auto second = shuffled(5, 3, 0);
    second->set_state(nlohmann::json::parse(saved));
    EXPECT_EQ(second->examples_produced(), cut);
    EXPECT_EQ(second->take(15),
              std::vector<Seq2SeqExample>(expected.begin() + cut, expected.begin() + cut + 15))
        << "resumed at " << cut << " from " << saved;
  }
  // At the end of a finite stream, the state restores the end.
  auto done = shuffled(5, 3, 1);
  done->take(1000);
  auto again = shuffled(5, 3, 1);
  again->set_state(done->state());
  EXPECT_FALSE(again->next().has_value());
}

TEST(BlockShuffledStream, state_from_another_configuration_is_refused) {
  auto five = shuffled(5, 0, 0);
  five->take(3);
  EXPECT_THROW_MSG(shuffled(6, 0, 0)->set_state(five->state()),
                   "the state is for shuffle_buffer 5, this stream has shuffle_buffer 6");
  EXPECT_THROW_MSG(shuffled(5, 2, 0)->set_state(five->state()), "this stream has seed 2");
  SpanCorruptionStreamOptions o;
  o.inputs_length = 32;
  o.vocab = small_vocab();
  SpanCorruptionStream plain(make_docs(30), o);
  EXPECT_THROW_MSG(plain.set_state(five->state()),
                   "shuffles its examples in blocks of 5; this one does not (shuffle_buffer 0): "
                   "give the same shuffle_buffer to resume");
  EXPECT_THROW_MSG(five->set_state(plain.state()),
                   "does not shuffle its examples; this one shuffles blocks of 5");
  nlohmann::json bad = five->state();
  bad["position"] = 9;
  EXPECT_THROW_MSG(shuffled(5, 0, 0)->set_state(bad), "position 9 is past its block of 5");
  nlohmann::json unread = shuffled(5, 0, 0)->state();  // before the first block
  unread["position"] = 2;
  EXPECT_THROW_MSG(shuffled(5, 0, 0)->set_state(unread), "shuffled stream state out of range");
  EXPECT_THROW_MSG(
      BlockShuffledStream(std::make_unique<SpanCorruptionStream>(make_docs(3), o), 1, 0),
      "a shuffle block must hold 2 to 100000 examples, got 1");
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
