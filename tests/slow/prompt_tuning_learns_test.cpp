// Prompt tuning learns a small synthetic task on a frozen random tiny T5: the label depends
// on the first input token, and for the second task of a mixed-task batch the mapping is
// reversed, so one frozen model must serve both through the per-example prompt.
#include <gtest/gtest.h>

#include <random>

#include "autograd/ops.h"
#include "models/t5/generation.h"
#include "nn/optim/adamw.h"
#include "nn/peft/prompt_tuning.h"
#include "quiet_peft_log.h"
#include "test_util.h"

namespace sp {
namespace {

constexpr int64_t kYes = 21, kNo = 22;

struct Data {
  std::vector<std::vector<int64_t>> inputs;
  std::vector<int64_t> tasks;
  std::vector<int64_t> labels;  // kYes or kNo
};

// Task 0: first token 4 -> kYes, 5 -> kNo. Task 1: the reverse.
Data make_data(int64_t n, int64_t num_tasks, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Data d;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t first = 4 + static_cast<int64_t>(rng() % 2);
    std::vector<int64_t> ids = {first};
    for (int j = 0; j < 3; ++j) ids.push_back(6 + static_cast<int64_t>(rng() % 14));
    ids.push_back(1);
    const int64_t task = i % num_tasks;
    d.inputs.push_back(ids);
    d.tasks.push_back(task);
    d.labels.push_back((first == 4) != (task == 1) ? kYes : kNo);
  }
  return d;
}

double accuracy(const T5ForConditionalGeneration& model, const Data& d, bool with_tasks) {
  int correct = 0;
  for (size_t i = 0; i < d.inputs.size(); ++i) {
    const int64_t pick = rank_classify(model, d.inputs[i], {{kYes, 1}, {kNo, 1}}, nullptr,
                                       with_tasks ? d.tasks[i] : -1);
    correct += (pick == 0 ? kYes : kNo) == d.labels[i];
  }
  return static_cast<double>(correct) / d.inputs.size();
}

double train(int64_t num_tasks, int64_t steps) {
  T5Config c;
  c.vocab_size = 32;
  c.d_model = 32;
  c.d_kv = 8;
  c.num_heads = 4;
  c.d_ff = 64;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.dropout_rate = 0.0;
  c.feed_forward_proj = "gated-gelu";
  c.tie_word_embeddings = c.scale_decoder_outputs = false;
  T5ForConditionalGeneration model(c);
  Generator gen(11);
  model.init_weights(&gen);
  auto m = make_peft("prompt_tuning", {{"length", 5},
                                       {"init", "sampled_vocab"},
                                       {"num_prompts", num_tasks},
                                       {"seed", 1}});
  {
    QuietPeftLog quiet;
    m->attach(model);
  }
  NamedTensors tr = m->trainable();
  optim::AdamW opt({tr[0].second}, {tr[0].first}, {.weight_decay = 0});

  const Data train_data = make_data(32, num_tasks, 1);
  const int64_t B = static_cast<int64_t>(train_data.inputs.size());
  std::vector<int64_t> ids, labels;
  for (int64_t i = 0; i < B; ++i) {
    ids.insert(ids.end(), train_data.inputs[i].begin(), train_data.inputs[i].end());
    labels.push_back(train_data.labels[i]);
    labels.push_back(1);
  }
  T5Inputs in;
  in.input_ids = Tensor::from_vector(ids, Shape{B, 5});
  in.labels = Tensor::from_vector(labels, Shape{B, 2});
  if (num_tasks > 1) in.task_ids = Tensor::from_vector(train_data.tasks);
  for (int64_t step = 0; step < steps; ++step) {
    model.forward(in).loss.backward();
    opt.step(0.1);
    opt.zero_grad();
  }
  return accuracy(model, make_data(32, num_tasks, 2), num_tasks > 1);
}

TEST(PromptTuningLearns, synthetic_task_to_100_percent) { EXPECT_EQ(train(1, 300), 1.0); }

TEST(PromptTuningLearns, mixed_tasks_to_100_percent) { EXPECT_EQ(train(2, 300), 1.0); }

}  // namespace
}  // namespace sp
