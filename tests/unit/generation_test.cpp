// Greedy generation, rank classification and prompt ensembles against self-consistency:
// a padded batch decoded with the key/value cache equals each example decoded alone by full
// (uncached) forwards, with and without PEFT hooks, in f32 and bf16; and the evaluation
// loop maps predictions back to examples sorted by length.
#include "models/t5/generation.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "experiments/runner/evaluation.h"
#include "models/t5/ensemble.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "nn/peft/peft.h"
#include "quiet_peft_log.h"
#include "tensor/kernels.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

TaskExample example(const std::string& id, const std::string& inputs) {
  TaskExample e;
  e.id = id;
  e.inputs = inputs;
  e.targets = "a";
  return e;
}

std::unique_ptr<T5ForConditionalGeneration> tiny_model(int64_t vocab = 40) {
  T5Config c = tiny_t5_config(/*gated=*/true);
  c.vocab_size = vocab;
  auto m = std::make_unique<T5ForConditionalGeneration>(c);
  Generator gen(7);
  m->init_weights(&gen);
  // A larger eos row makes some rows finish early and others run to the limit.
  NoGradGuard no_grad;
  Tensor eos_row = m->output_weight().slice(0, 1, 2);
  Tensor scaled = (eos_row * 3.0).detach();
  kernels::copy_(eos_row, scaled);
  return m;
}

// Ids in [2, 40) (no pad, no eos) from the test LCG.
std::vector<int64_t> input_of(int64_t n, uint64_t seed) {
  std::vector<int64_t> out;
  for (double x : testing::lcg_values(n, seed))
    out.push_back(2 + static_cast<int64_t>((x + 1) * 19));
  return out;
}

// Greedy by full decoder passes over the whole prefix, one example alone.
std::vector<int64_t> uncached_greedy(const T5ForConditionalGeneration& m,
                                     const std::vector<int64_t>& input, int64_t max_new) {
  NoGradGuard no_grad;
  T5Inputs in;
  in.input_ids = Tensor::from_vector(input, Shape{1, static_cast<int64_t>(input.size())});
  const T5Encoded e = m.encode_inputs(in);
  std::vector<int64_t> prefix{m.config().decoder_start_token_id}, out;
  while (static_cast<int64_t>(out.size()) < max_new) {
    Tensor dec = Tensor::from_vector(prefix, Shape{1, static_cast<int64_t>(prefix.size())});
    const int64_t best =
        argmax(m.lm_logits(m.decode(dec, e.hidden, e.mask)), -1).to_vector<int64_t>().back();
    out.push_back(best);
    prefix.push_back(best);
    if (best == m.config().eos_token_id) break;
  }
  return out;
}

struct GreedyCase {
  std::string name;
  std::string method;  // empty: the bare model
  nlohmann::json settings;
  DType dtype;
};

class CachedGreedy : public ::testing::TestWithParam<GreedyCase> {};

// Lengths 1 .. 37 (past the relative-position range of 16), right-padded in one batch.
TEST_P(CachedGreedy, batch_with_cache_equals_each_example_alone_without_cache) {
  QuietPeftLog quiet;
  const GreedyCase& p = GetParam();
  auto m = tiny_model();
  std::unique_ptr<PeftMethod> method;
  if (!p.method.empty()) {
    method = make_peft(p.method, p.settings);
    method->attach(*m);
  }
  if (p.dtype != DType::f32) m->to(p.dtype);
  m->eval();
  const int64_t B = 12, max_new = 25;
  std::vector<std::vector<int64_t>> inputs;
  size_t L = 0;
  for (int64_t i = 0; i < B; ++i) {
    inputs.push_back(input_of(1 + (i * 7) % 37, 100 + i));
    L = std::max(L, inputs.back().size());
  }
  std::vector<int64_t> ids(B * L, 0), mask(B * L, 0);
  for (int64_t b = 0; b < B; ++b)
    for (size_t j = 0; j < inputs[b].size(); ++j) {
      ids[b * L + j] = inputs[b][j];
      mask[b * L + j] = 1;
    }
  const Shape shape{B, static_cast<int64_t>(L)};
  const auto got = greedy_generate(*m, Tensor::from_vector(ids, shape),
                                   Tensor::from_vector(mask, shape), {.max_new_tokens = max_new});
  ASSERT_EQ(got.size(), static_cast<size_t>(B));
  int64_t finished = 0;
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_EQ(got[b], uncached_greedy(*m, inputs[b], max_new)) << "row " << b;
    finished += !got[b].empty() && got[b].back() == 1;
  }
  // Both kinds of rows occur: some stop at eos while others keep decoding.
  EXPECT_GT(finished, 0);
  EXPECT_LT(finished, B);
  for (int64_t n : {0, 1}) {
    const auto short_run = greedy_generate(*m, Tensor::from_vector(ids, shape),
                                           Tensor::from_vector(mask, shape), {.max_new_tokens = n});
    for (int64_t b = 0; b < B; ++b)
      EXPECT_EQ(short_run[b], std::vector<int64_t>(got[b].begin(), got[b].begin() + n));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Generation, CachedGreedy,
    ::testing::Values(GreedyCase{"bare_f32", "", {}, DType::f32},
                      GreedyCase{"bare_bf16", "", {}, DType::bf16},
                      GreedyCase{"prompt_prefix",
                                 "prompt_tuning",
                                 {{"length", 3}, {"init", "random_uniform"}},
                                 DType::f32},
                      GreedyCase{
                          "prompt_suffix",
                          "prompt_tuning",
                          {{"length", 3}, {"init", "random_uniform"}, {"position", "suffix"}},
                          DType::f32},
                      GreedyCase{"prompt_bf16",
                                 "prompt_tuning",
                                 {{"length", 3}, {"init", "random_uniform"}},
                                 DType::bf16},
                      GreedyCase{"prefix_tuning", "prefix_tuning", {{"length", 3}}, DType::f32}),
    [](const ::testing::TestParamInfo<GreedyCase>& i) { return i.param.name; });

// -100 in a candidate was scored as ignored padding: {-100, 1} competed as {1}.
TEST(Generation, rank_classify_rejects_candidate_ids_outside_the_vocabulary) {
  auto m = tiny_model();
  m->eval();
  EXPECT_THROW_MSG(
      rank_classify(*m, {5, 6, 1}, {{3, 1}, {-100, 1}}),
      "[rank_classify] candidate 1 holds token id -100, outside the vocabulary [0, 40)");
  EXPECT_THROW_MSG(rank_classify(*m, {5, 6, 1}, {{3, 40}}),
                   "[rank_classify] candidate 0 holds token id 40");
  QuietPeftLog quiet;
  auto pt =
      make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}, {"num_prompts", 2}});
  pt->attach(*m);
  EXPECT_THROW_MSG(ensemble_rank_classify(*m, 2, {5, 6, 1}, {{3, 1}, {-100, 1}}),
                   "[ensemble] candidate 1 holds token id -100, outside the vocabulary [0, 40)");
}

// Task ids were dropped when no input hook read them: an "ensemble" of N members was the
// bare model N times, voting unanimously.
TEST(Generation, task_ids_need_a_prompt_method_to_read_them) {
  auto m = tiny_model();
  m->eval();
  const Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{2, 2});
  EXPECT_THROW_MSG(
      greedy_generate(*m, ids, Tensor(), {}, Tensor::from_vector<int64_t>({0, 1})),
      "[T5] task_ids pick each example's prompt, but the model has no PEFT input hook");
  EXPECT_THROW_MSG(ensemble_generate(*m, 3, ids, Tensor()), "no PEFT input hook");
  EXPECT_THROW_MSG(ensemble_rank_classify(*m, 3, {5, 6, 1}, {{3, 1}, {4, 1}}),
                   "no PEFT input hook");
}

// predict_texts sorts examples by length into batches: each prediction lands on its own
// example, for rank classification (labels of different token lengths) and greedy alike.
TEST(Evaluation, predictions_follow_the_examples_through_length_sorted_batches) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  auto m = tiny_model(tok.vocab_size());
  m->eval();
  const std::vector<std::string> texts = {"a long premise about the weather today and tomorrow",
                                          "short",
                                          "hi there",
                                          "medium length input here",
                                          "x",
                                          "the quick brown fox jumps over the lazy dog"};
  std::vector<TaskExample> examples;
  for (size_t i = 0; i < texts.size(); ++i)
    examples.push_back(example(std::to_string(i), texts[i]));
  const std::vector<std::string> labels = {"a", "b", "entailment", "c d"};
  std::vector<std::vector<int64_t>> candidates;
  for (const std::string& l : labels) candidates.push_back(tok.encode(l));
  ASSERT_NE(candidates[0].size(), candidates[3].size());
  EvalSettings s;
  s.method = "rank_classification";
  s.batch_size = 8;  // two examples per batch of 4 label rows
  const auto ranked = predict_texts(*m, tok, examples, labels, s);
  ASSERT_GT(std::set<std::string>(ranked.begin(), ranked.end()).size(), 1u);  // can tell rows apart
  s.method = "greedy";
  s.max_decode_length = 6;
  const auto greedy = predict_texts(*m, tok, examples, labels, s);
  DecodeOptions d;
  d.stop_at_eos = true;
  d.keep_sentinels = true;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int64_t> ids = tok.encode(texts[i], true, s.inputs_length);
    EXPECT_EQ(ranked[i], labels[rank_classify(*m, ids, candidates)]) << texts[i];
    const auto out =
        greedy_generate(*m, Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())}),
                        Tensor(), {.max_new_tokens = 6});
    std::string text = tok.decode(out[0], d);
    text.erase(0, text.find_first_not_of(' '));
    EXPECT_EQ(greedy[i], text.substr(0, text.find_last_not_of(' ') + 1)) << texts[i];
  }
}

// Greedy predictions keep sentinels, so a span-corruption model that answers in its
// pretraining format predicts no label; only the target prefix a "+ sentinel" run tuned the
// model to emit first comes off.
TEST(Evaluation, prediction_text_keeps_sentinels_but_the_target_prefix) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const auto ids = [&](const std::string& text) { return tok.encode(text, true); };
  EXPECT_EQ(prediction_text(tok, ids("<extra_id_0> True <extra_id_1>"), ""),
            "<extra_id_0> True <extra_id_1>");
  EXPECT_EQ(prediction_text(tok, ids("<extra_id_0> True"), "<extra_id_0> "), "True");
  EXPECT_EQ(prediction_text(tok, ids("<extra_id_0> True <extra_id_1>"), "<extra_id_0> "),
            "True <extra_id_1>");
  EXPECT_EQ(prediction_text(tok, ids("True"), "<extra_id_0> "), "True");
  std::vector<int64_t> past_eos = ids("False");
  for (int64_t id : ids("True")) past_eos.push_back(id);
  EXPECT_EQ(prediction_text(tok, past_eos, ""), "False");  // up to the first EOS
  // unk, and an id past the vocabulary (read as unk, as seqio does), stay: no clean label.
  for (const int64_t odd : {int64_t{2}, tok.vocab_size() + 3}) {
    std::vector<int64_t> with_odd = ids("True");
    with_odd.insert(with_odd.end() - 1, odd);
    const std::string text = prediction_text(tok, with_odd, "");
    EXPECT_TRUE(text.starts_with("True") && text.ends_with("<unk>")) << odd << ": " << text;
  }
}

// Labels greedy decoding can never give are named before any work.
TEST(Evaluation, undecodable_labels_are_warned_about) {
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  EvalSettings es;
  es.max_decode_length = 64;
  EXPECT_TRUE(undecodable_label_warnings(tok, {"True", "False"}, es, "t").empty());
  // A trailing space never comes back.
  std::vector<std::string> w = undecodable_label_warnings(tok, {"True", "no "}, es, "t");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("label \"no \" decodes as \"no\""), std::string::npos) << w[0];
  // Too long for the decode length, the target prefix counted.
  es.max_decode_length = static_cast<int64_t>(tok.encode("False", true).size());
  EXPECT_TRUE(undecodable_label_warnings(tok, {"False"}, es, "t").empty());
  es.target_prefix = kSentinelPrefix;
  w = undecodable_label_warnings(tok, {"False"}, es, "t");
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(w[0].find("greedy decoding generates"), std::string::npos) << w[0];
  es.method = "rank_classification";
  EXPECT_TRUE(undecodable_label_warnings(tok, {"no "}, es, "t").empty());
}

// An ensemble of two prompts in one pass: member m's predictions equal its prompt's alone,
// for both methods, in the examples' order.
TEST(Evaluation, ensemble_members_equal_their_prompts_alone) {
  QuietPeftLog quiet;
  const T5Tokenizer tok =
      T5Tokenizer::load(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model");
  const std::vector<std::string> texts = {"a long premise about the weather today and tomorrow",
                                          "short", "hi there", "x", "medium length input"};
  std::vector<TaskExample> examples;
  for (size_t i = 0; i < texts.size(); ++i)
    examples.push_back(example(std::to_string(i), texts[i]));
  const std::vector<std::string> labels = {"a", "b", "c", "d"};
  auto ensemble = tiny_model(tok.vocab_size());
  auto both = make_peft(
      "prompt_tuning",
      {{"length", 2}, {"init", "random_uniform"}, {"init_range", 2.0}, {"num_prompts", 2}});
  both->attach(*ensemble);
  ensemble->eval();
  const Tensor prompts = both->trainable()[0].second.detach();
  for (const std::string method : {"greedy", "rank_classification"}) {
    EvalSettings s;
    s.method = method;
    s.batch_size = 2;
    s.max_decode_length = 5;
    const auto members = predict_ensemble_texts(*ensemble, 2, tok, examples, labels, s);
    ASSERT_EQ(members.size(), 2u);
    EXPECT_NE(members[0], members[1]) << method << ": the members must differ to tell them apart";
    for (int64_t k = 0; k < 2; ++k) {
      auto alone = tiny_model(tok.vocab_size());
      auto one = make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}});
      one->attach(*alone);
      one->load_state({{"prompt", prompts.narrow(0, k, 1).contiguous()}});
      alone->eval();
      EXPECT_EQ(members[k], predict_texts(*alone, tok, examples, labels, s)) << method << " " << k;
    }
  }
}

}  // namespace
}  // namespace sp
