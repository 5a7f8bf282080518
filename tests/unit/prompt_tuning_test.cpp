// Prompt tuning: inits, the joined input, mixed-task batches, ensembles, bf16 backbones.
#include "nn/peft/prompt_tuning.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "autograd/ops.h"
#include "models/t5/ensemble.h"
#include "models/t5/generation.h"
#include "nn/optim/adamw.h"
#include "nn/peft/neighbors.h"
#include "nn/peft/prompt_ensemble.h"
#include "quiet_peft_log.h"
#include "tensor/kernels.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

T5Config tiny() {
  T5Config c = tiny_t5_config(/*gated=*/true);
  c.vocab_size = 48;
  c.d_kv = 4;
  return c;
}

std::unique_ptr<T5ForConditionalGeneration> tiny_model(uint64_t seed = 7,
                                                       DType dtype = DType::f32) {
  auto m = std::make_unique<T5ForConditionalGeneration>(tiny());
  Generator gen(seed);
  m->init_weights(&gen);
  if (dtype != DType::f32) m->to(dtype);
  m->eval();
  return m;
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("sp_prompt_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

std::vector<float> row(const Tensor& t, int64_t i) {
  return cast(t.select(0, i), DType::f32).to_vector<float>();
}

// The index of the embedding row equal to v, or -1.
int64_t find_row(const Tensor& emb, const std::vector<float>& v) {
  for (int64_t i = 0; i < emb.size(0); ++i)
    if (row(emb, i) == v) return i;
  return -1;
}

PromptTuning& as_prompt(PeftMethod& m) { return dynamic_cast<PromptTuning&>(m); }

TEST(PromptTuning, random_uniform_init_in_range_and_seeded) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto a =
      make_peft("prompt_tuning",
                {{"length", 6}, {"init", "random_uniform"}, {"init_range", 0.25}, {"seed", 3}});
  a->attach(*model);
  const Tensor& p = as_prompt(*a).prompt();
  EXPECT_EQ(p.shape(), (Shape{1, 6, 16}));
  EXPECT_EQ(p.dtype(), DType::f32);
  EXPECT_TRUE(p.requires_grad());
  std::vector<float> v = p.to_vector<float>();
  float lo = 1, hi = -1;
  for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_GE(lo, -0.25f);
  EXPECT_LE(hi, 0.25f);
  EXPECT_LT(lo, -0.15f);  // spread over the range, not a constant
  EXPECT_GT(hi, 0.15f);
  auto model2 = tiny_model();
  auto b =
      make_peft("prompt_tuning",
                {{"length", 6}, {"init", "random_uniform"}, {"init_range", 0.25}, {"seed", 3}});
  b->attach(*model2);
  EXPECT_EQ(as_prompt(*b).prompt().to_vector<float>(), v);
}

TEST(PromptTuning, sampled_vocab_rows_are_distinct_top_n_rows) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning",
                     {{"length", 10}, {"init", "sampled_vocab"}, {"vocab_top_n", 12}, {"seed", 1}});
  m->attach(*model);
  const Tensor& p = as_prompt(*m).prompt();
  std::set<int64_t> seen;
  for (int64_t i = 0; i < 10; ++i) {
    const int64_t id = find_row(model->shared.weight, row(p.select(0, 0), i));
    EXPECT_GE(id, 0) << "position " << i << " is not an embedding row";
    EXPECT_LT(id, 12) << "position " << i << " is outside the top 12";
    EXPECT_EQ(id, as_prompt(*m).init_ids()[0][i]);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10u) << "without replacement";
}

TEST(PromptTuning, sampled_vocab_with_replacement_past_n_and_ranked_ids) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  // vocab_ids ranks the vocabulary: the top 3 are ids 40, 41, 42.
  auto m = make_peft("prompt_tuning", {{"length", 8},
                                       {"init", "sampled_vocab"},
                                       {"vocab_top_n", 3},
                                       {"vocab_ids", {40, 41, 42, 0, 1}}});
  m->attach(*model);
  for (int64_t i = 0; i < 8; ++i) {
    const int64_t id = find_row(model->shared.weight, row(as_prompt(*m).prompt().select(0, 0), i));
    EXPECT_TRUE(id == 40 || id == 41 || id == 42) << id;
  }
}

TEST(PromptTuning, class_label_positions_are_averaged_label_embeddings) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning", {{"length", 5},
                                       {"init", "class_labels"},
                                       {"vocab_top_n", 20},
                                       {"class_label_ids", {{3, 4}, {9}}}});
  m->attach(*model);
  const Tensor p = as_prompt(*m).prompt().select(0, 0);
  const Tensor& e = model->shared.weight;
  std::vector<float> want(16);
  for (int d = 0; d < 16; ++d) want[d] = (row(e, 3)[d] + row(e, 4)[d]) / 2;
  testing::expect_values(p.select(0, 0), std::vector<double>(want.begin(), want.end()), 1e-6);
  EXPECT_EQ(row(p, 1), row(e, 9));
  for (int64_t i = 2; i < 5; ++i) {
    const int64_t id = find_row(e, row(p, i));
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 20);
  }
  EXPECT_EQ(as_prompt(*m).init_ids()[0][0], -1);
}

TEST(PromptTuning, class_labels_beyond_length_dropped_with_warning) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m =
      make_peft("prompt_tuning",
                {{"length", 2}, {"init", "class_labels"}, {"class_label_ids", {{5}, {6}, {7}}}});
  m->attach(*model);
  const Tensor p = as_prompt(*m).prompt().select(0, 0);
  EXPECT_EQ(row(p, 0), row(model->shared.weight, 5));
  EXPECT_EQ(row(p, 1), row(model->shared.weight, 6));
  bool warned = false;
  for (const auto& l : quiet.lines) warned |= l.find("are dropped") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(PromptTuning, text_init_repeats_the_text) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m =
      make_peft("prompt_tuning", {{"length", 5}, {"init", "text"}, {"init_text_ids", {11, 12}}});
  m->attach(*model);
  const Tensor p = as_prompt(*m).prompt().select(0, 0);
  const int64_t want[] = {11, 12, 11, 12, 11};
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(row(p, i), row(model->shared.weight, want[i]));
}

TEST(PromptTuning, bad_settings_name_the_key) {
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"init", "sampled_vocb"}}),
                   "did you mean 'sampled_vocab'");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"position", "middle"}}), "'position'");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"length", 0}}),
                   "'length' must be in [1, 65536], got 0");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"length", 2147483647}}),
                   "'length' must be in [1, 65536], got 2147483647");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"num_prompts", 1000000}}),
                   "'num_prompts' must be in [1, 65536]");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"init", "text"}}), "init_text_ids");
  EXPECT_THROW_MSG(make_peft("prompt_tuning", {{"class_label_ids", {1, 2}}}), "class_label_ids");
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning", {{"init", "text"}, {"init_text_ids", {99}}});
  EXPECT_THROW_MSG(m->attach(*model), "token id 99");
}

// The hook's output equals joining the prompt by hand, and the encoder mask covers it.
TEST(PromptTuning, prefix_and_suffix_join_with_mask) {
  Tensor prompts = testing::test_tensor(Shape{1, 2, 3}, 1, DType::f32);
  Tensor embeds = testing::test_tensor(Shape{2, 3, 3}, 2, DType::f32);
  Tensor mask = Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1, 0, 0}, Shape{2, 3});
  auto [pre, pre_mask] = join_prompt(prompts, embeds, mask, Tensor(), PromptPosition::prefix);
  EXPECT_EQ(pre.shape(), (Shape{2, 5, 3}));
  EXPECT_EQ(pre_mask.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(row(pre.select(0, 1), 1), row(prompts.select(0, 0), 1));
  EXPECT_EQ(row(pre.select(0, 1), 2), row(embeds.select(0, 1), 0));
  auto [suf, suf_mask] = join_prompt(prompts, embeds, mask, Tensor(), PromptPosition::suffix);
  EXPECT_EQ(suf_mask.to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  // Row 1 has one token: the prompt follows it, then the two pads.
  EXPECT_EQ(row(suf.select(0, 1), 0), row(embeds.select(0, 1), 0));
  EXPECT_EQ(row(suf.select(0, 1), 1), row(prompts.select(0, 0), 0));
  EXPECT_EQ(row(suf.select(0, 1), 2), row(prompts.select(0, 0), 1));
  EXPECT_EQ(row(suf.select(0, 1), 3), row(embeds.select(0, 1), 1));
  EXPECT_EQ(row(suf.select(0, 0), 3), row(prompts.select(0, 0), 0));
  // Before the last token (the EOS, in T5's inputs): row 0 = t0 t1 P0 P1 t2, row 1 = P0 P1 t0.
  auto [eos, eos_mask] =
      join_prompt(prompts, embeds, mask, Tensor(), PromptPosition::suffix_before_eos);
  EXPECT_EQ(eos_mask.to_vector<int64_t>(), suf_mask.to_vector<int64_t>());
  const std::vector<std::pair<Tensor, int64_t>> row0 = {{embeds.select(0, 0), 0},
                                                        {embeds.select(0, 0), 1},
                                                        {prompts.select(0, 0), 0},
                                                        {prompts.select(0, 0), 1},
                                                        {embeds.select(0, 0), 2}};
  for (int64_t j = 0; j < 5; ++j)
    EXPECT_EQ(row(eos.select(0, 0), j), row(row0[j].first, row0[j].second)) << j;
  EXPECT_EQ(row(eos.select(0, 1), 0), row(prompts.select(0, 0), 0));
  EXPECT_EQ(row(eos.select(0, 1), 1), row(prompts.select(0, 0), 1));
  EXPECT_EQ(row(eos.select(0, 1), 2), row(embeds.select(0, 1), 0));
  EXPECT_EQ(row(eos.select(0, 1), 3), row(embeds.select(0, 1), 1));  // padding follows
  Tensor left = Tensor::from_vector(std::vector<int64_t>{0, 1, 1, 1, 1, 1}, Shape{2, 3});
  EXPECT_THROW_MSG(join_prompt(prompts, embeds, left, Tensor(), PromptPosition::suffix),
                   "right-padded");
}

TEST(PromptTuning, model_output_equals_inputs_embeds_with_prompt) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  Tensor mask = Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{3, 1, 4, 1}, Shape{2, 2});
  NoGradGuard no_grad;
  // Reference: the prompt joined by hand, run on the bare model.
  auto m = make_peft("prompt_tuning", {{"length", 3}, {"init", "sampled_vocab"}});
  m->attach(*model);
  Tensor prompt = as_prompt(*m).prompt().select(0, 0).detach();
  T5Inputs in{.input_ids = ids, .attention_mask = mask, .labels = labels};
  T5Output hooked = model->forward(in);
  model->set_input_hook(nullptr);
  T5Inputs manual;
  manual.inputs_embeds = cat({prompt.unsqueeze(0).expand(Shape{2, 3, 16}), model->embed(ids)}, 1);
  manual.attention_mask = cat({Tensor::ones(Shape{2, 3}, DType::i64), mask}, 1);
  manual.labels = labels;
  T5Output want = model->forward(manual);
  EXPECT_EQ(hooked.logits.to_vector<float>(), want.logits.to_vector<float>());
  EXPECT_EQ(hooked.encoder_hidden_states.shape(), (Shape{2, 7, 16}));
}

// One optimizer step changes the prompt only; the backbone gets no gradients.
TEST(PromptTuning, step_changes_only_the_prompt) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  model->train();
  NamedTensors before;
  for (auto& [n, t] : model->named_parameters()) before.emplace_back(n, t.clone());
  auto m = make_peft("prompt_tuning", {{"length", 4}, {"init", "random_uniform"}});
  m->attach(*model);
  Tensor prompt0 = as_prompt(*m).prompt().clone();
  NamedTensors tr = m->trainable();
  ASSERT_EQ(tr.size(), 1u);
  optim::AdamW opt({tr[0].second}, {tr[0].first}, {.weight_decay = 0});
  T5Inputs in;
  in.input_ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1}, Shape{1, 4});
  in.labels = Tensor::from_vector(std::vector<int64_t>{3, 1}, Shape{1, 2});
  model->forward(in).loss.backward();
  for (auto& [n, t] : model->named_parameters())
    EXPECT_FALSE(t.grad().defined()) << n << " got a gradient";
  ASSERT_TRUE(as_prompt(*m).prompt().grad().defined());
  EXPECT_EQ(as_prompt(*m).prompt().grad().dtype(), DType::f32);
  opt.step(0.1);
  for (auto& [n, s] : opt.state_dict())
    EXPECT_TRUE(n == "step" || n.rfind("prompt.", 0) == 0) << "state " << n;
  auto params = model->named_parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_EQ(params[i].second.to_vector<float>(), before[i].second.to_vector<float>())
        << params[i].first << " changed";
  EXPECT_NE(as_prompt(*m).prompt().to_vector<float>(), prompt0.to_vector<float>());
}

// The prompt joins the input embeddings before the encoder's embedding dropout, as in HF's
// T5Stack (inputs_embeds) and the paper's code: in training, the prompt entries dropout
// zeroes get exactly zero gradient, about half of them at rate 0.5. Joined after the
// dropout, every entry would get a gradient.
TEST(PromptTuning, the_prompt_goes_through_the_embedding_dropout) {
  QuietPeftLog quiet;
  T5Config c = tiny();
  c.dropout_rate = 0.5;
  Generator dropout_gen(3);
  T5ForConditionalGeneration model(c, DType::f32, &dropout_gen);
  Generator init(7);
  model.init_weights(&init);
  model.train();
  auto m = make_peft("prompt_tuning", {{"length", 8}, {"init", "random_uniform"}});
  m->attach(model);
  T5Inputs in;
  in.input_ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1}, Shape{1, 4});
  in.labels = Tensor::from_vector(std::vector<int64_t>{3, 1}, Shape{1, 2});
  model.forward(in).loss.backward();
  const std::vector<float> g = as_prompt(*m).prompt().grad().to_vector<float>();
  const auto zeros = std::count(g.begin(), g.end(), 0.0f);
  ASSERT_EQ(g.size(), 8u * 16u);
  EXPECT_GT(zeros, 32) << "too few prompt entries dropped";
  EXPECT_LT(zeros, 96) << "too many prompt entries dropped";
  // Without dropout (eval mode) every entry has a gradient.
  Tensor prompt = as_prompt(*m).prompt();  // a handle on the same tensor
  prompt.zero_grad();
  model.eval();
  model.forward(in).loss.backward();
  const std::vector<float> dense = as_prompt(*m).prompt().grad().to_vector<float>();
  EXPECT_EQ(std::count(dense.begin(), dense.end(), 0.0f), 0);
}

TEST(PromptTuning, save_then_load_reproduces_outputs) {
  QuietPeftLog quiet;
  const std::string dir = temp_dir("save");
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning", {{"length", 3}, {"init", "random_uniform"}, {"seed", 5}});
  m->attach(*model);
  // Moved off its initial values (as training would), so that what loads is the saved
  // prompt, not the same seed's init again.
  const Tensor trained = sp::testing::test_tensor(as_prompt(*m).prompt().shape(), 11, DType::f32);
  {
    Tensor prompt = as_prompt(*m).prompt().detach();
    kernels::copy_(prompt, trained);
  }
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1}, Shape{1, 4});
  auto want = greedy_generate(*model, ids, Tensor(), {.max_new_tokens = 4});
  T5Inputs in{.input_ids = ids,
              .labels = Tensor::from_vector(std::vector<int64_t>{3, 1}, Shape{1, 2})};
  std::vector<float> logits = model->forward(in).logits.to_vector<float>();
  m->save(dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/peft_config.json"));

  auto model2 = tiny_model();
  auto again = load_peft(dir, *model2);
  EXPECT_EQ(again->name(), "prompt_tuning");
  EXPECT_EQ(again->settings()["seed"], 5);
  EXPECT_EQ(as_prompt(*again).prompt().to_vector<float>(), trained.to_vector<float>());
  EXPECT_EQ(model2->forward(in).logits.to_vector<float>(), logits);
  EXPECT_EQ(greedy_generate(*model2, ids, Tensor(), {.max_new_tokens = 4}), want);
  // A prompt of another length does not load.
  auto model3 = tiny_model();
  auto other = make_peft("prompt_tuning", {{"length", 4}, {"init", "random_uniform"}});
  other->attach(*model3);
  EXPECT_THROW_MSG(other->load(dir), "prompt: expected [1, 4, 16], got [1, 3, 16]");
  std::filesystem::remove_all(dir);
}

// A batch with task ids equals each example run with its own prompt alone.
TEST(PromptTuning, mixed_batch_equals_per_prompt_runs) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning",
                     {{"length", 3}, {"init", "random_uniform"}, {"num_prompts", 3}, {"seed", 2}});
  m->attach(*model);
  Tensor ids =
      Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1, 8, 9, 1, 0, 10, 1, 0, 0}, Shape{3, 4});
  Tensor mask =
      Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0}, Shape{3, 4});
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{3, 1, 4, 1, 2, 1}, Shape{3, 2});
  const std::vector<int64_t> task = {2, 0, 1};
  NoGradGuard no_grad;
  T5Inputs in{.input_ids = ids,
              .attention_mask = mask,
              .labels = labels,
              .task_ids = Tensor::from_vector(task)};
  std::vector<float> mixed = model->forward(in).logits.to_vector<float>();
  auto gen = greedy_generate(*model, ids, mask, {.max_new_tokens = 3}, in.task_ids);
  auto scores = score_sequences(*model, ids, mask, labels, in.task_ids);
  const int64_t per = 2 * 48;
  for (int64_t b = 0; b < 3; ++b) {
    T5Inputs one{.input_ids = ids.slice(0, b, b + 1),
                 .attention_mask = mask.slice(0, b, b + 1),
                 .labels = labels.slice(0, b, b + 1),
                 .task_ids = Tensor::from_vector(std::vector<int64_t>{task[b]})};
    std::vector<float> alone = model->forward(one).logits.to_vector<float>();
    for (int64_t i = 0; i < per; ++i) EXPECT_NEAR(mixed[b * per + i], alone[i], 1e-5);
    auto g = greedy_generate(*model, one.input_ids, one.attention_mask, {.max_new_tokens = 3},
                             one.task_ids);
    EXPECT_EQ(gen[b], g[0]);
    auto s = score_sequences(*model, one.input_ids, one.attention_mask, one.labels, one.task_ids);
    EXPECT_NEAR(scores[b].logprob, s[0].logprob, 1e-4);
  }
  T5Inputs none{.input_ids = ids, .labels = labels};
  EXPECT_THROW_MSG(model->forward(none), "needs task_ids");
  in.task_ids = Tensor::from_vector(std::vector<int64_t>{0, 3, 1});
  EXPECT_THROW_MSG(model->forward(in), "task id 3 is outside [0, 3)");
}

TEST(PromptTuning, ensemble_equals_majority_of_members) {
  QuietPeftLog quiet;
  const std::string root = temp_dir("ensemble");
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  Tensor mask = Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  const std::vector<std::vector<int64_t>> candidates = {{3, 1}, {4, 1}, {12, 13, 1}};
  std::vector<std::string> dirs;
  std::vector<std::vector<std::vector<int64_t>>> member_gen;
  std::vector<std::vector<int64_t>> member_rank;
  for (int k = 0; k < 3; ++k) {
    auto model = tiny_model();
    auto m =
        make_peft("prompt_tuning",
                  {{"length", 2}, {"init", "random_uniform"}, {"init_range", 2.0}, {"seed", k}});
    m->attach(*model);
    dirs.push_back(root + "/p" + std::to_string(k));
    m->save(dirs.back());
    member_gen.push_back(greedy_generate(*model, ids, mask, {.max_new_tokens = 3}));
    member_rank.push_back({rank_classify(*model, {5, 6, 7, 1}, candidates)});
  }
  auto model = tiny_model();
  auto ens = load_prompt_ensemble(dirs, *model);
  EXPECT_EQ(ens->num_prompts(), 3);
  std::vector<std::vector<std::vector<int64_t>>> members;
  auto voted = ensemble_generate(*model, 3, ids, mask, {.max_new_tokens = 3}, &members);
  EXPECT_EQ(members, member_gen);
  EXPECT_EQ(voted, majority_vote(member_gen));
  std::vector<int64_t> choices;
  int64_t best = ensemble_rank_classify(*model, 3, {5, 6, 7, 1}, candidates, &choices);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(choices[k], member_rank[k][0]);
  EXPECT_EQ(best, majority_vote(member_rank)[0]);
  // A mixed-task run's directory holds a prompt per task: not one member each.
  {
    auto host = tiny_model();
    auto two =
        make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}, {"num_prompts", 2}});
    two->attach(*host);
    two->save(root + "/two");
    auto again = tiny_model();
    EXPECT_THROW_MSG(load_prompt_ensemble({dirs[0], root + "/two"}, *again),
                     "/two holds 2 prompts (a mixed-task run?): an ensemble member is one prompt");
  }
  std::filesystem::remove_all(root);
}

TEST(PromptTuning, majority_vote_ties_go_to_the_lowest_member) {
  EXPECT_EQ(majority_vote<int>({{1, 2, 3}, {2, 2, 4}, {2, 5, 6}}), (std::vector<int>{2, 2, 3}));
  EXPECT_EQ(majority_vote<int>({{7}, {8}}), (std::vector<int>{7}));
  EXPECT_EQ(majority_vote<int>({{7}, {8}, {8}, {7}}), (std::vector<int>{7}));
}

// A prompt sampled from the vocabulary has each position's source piece as its nearest
// neighbour, at cosine 1.
TEST(PromptTuning, nearest_neighbors_find_the_init_pieces) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto m = make_peft("prompt_tuning", {{"length", 4}, {"init", "sampled_vocab"}, {"seed", 9}});
  m->attach(*model);
  auto nn = nearest_neighbors(as_prompt(*m).prompt().select(0, 0), model->shared.weight, 3);
  ASSERT_EQ(nn.size(), 4u);
  for (int64_t i = 0; i < 4; ++i) {
    ASSERT_EQ(nn[i].size(), 3u);
    EXPECT_EQ(nn[i][0].id, as_prompt(*m).init_ids()[0][i]);
    EXPECT_NEAR(nn[i][0].cosine, 1.0, 1e-5);
    EXPECT_GE(nn[i][0].cosine, nn[i][1].cosine);
    EXPECT_GE(nn[i][1].cosine, nn[i][2].cosine);
  }
  // Hand-checked: [1, 0] is nearest [2, 0] (cosine 1), then [1, 1] (0.7071), not [0, 3].
  Tensor table = Tensor::from_vector(std::vector<float>{0, 3, 1, 1, 2, 0}, Shape{3, 2});
  auto small =
      nearest_neighbors(Tensor::from_vector(std::vector<float>{1, 0}, Shape{1, 2}), table, 2);
  EXPECT_EQ(small[0][0].id, 2);
  EXPECT_EQ(small[0][1].id, 1);
  EXPECT_NEAR(small[0][1].cosine, std::sqrt(0.5), 1e-6);
  EXPECT_EQ(nearest_neighbors(Tensor::from_vector(std::vector<float>{1, 0}, Shape{1, 2}), table, 2,
                              2)[0][0]
                .id,
            1);
  // A non-finite embedding row (cosine NaN) ranks after every finite one.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor broken = Tensor::from_vector(std::vector<float>{nan, 1, 0, 3, nan, 0, 1, 1}, Shape{4, 2});
  auto ranked =
      nearest_neighbors(Tensor::from_vector(std::vector<float>{1, 0}, Shape{1, 2}), broken, 4);
  ASSERT_EQ(ranked[0].size(), 4u);
  EXPECT_EQ(ranked[0][0].id, 3);
  EXPECT_EQ(ranked[0][1].id, 1);
  EXPECT_TRUE(std::isnan(ranked[0][2].cosine) && std::isnan(ranked[0][3].cosine));
}

// A bf16 backbone: the prompt stays f32 and its gradient arrives in f32.
TEST(PromptTuning, bf16_backbone_keeps_an_f32_prompt) {
  QuietPeftLog quiet;
  auto model = tiny_model(7, DType::bf16);
  auto m = make_peft("prompt_tuning", {{"length", 3}, {"init", "sampled_vocab"}});
  m->attach(*model);
  EXPECT_EQ(as_prompt(*m).prompt().dtype(), DType::f32);
  T5Inputs in;
  in.input_ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1}, Shape{1, 4});
  in.labels = Tensor::from_vector(std::vector<int64_t>{3, 1}, Shape{1, 2});
  model->forward(in).loss.backward();
  ASSERT_TRUE(as_prompt(*m).prompt().grad().defined());
  EXPECT_EQ(as_prompt(*m).prompt().grad().dtype(), DType::f32);
  for (auto& [n, t] : model->named_parameters()) EXPECT_FALSE(t.grad().defined()) << n;
}

}  // namespace
}  // namespace sp
