// Prompt tuning on the GPU: a tiny T5 with a prompt, trained with Adafactor on CUDA and on
// the CPU from the same init and batches. The CUDA run goes through every piece a real run
// uses: host batches moved by T5's forward, the prompt hook, backward, the finite check,
// clipping and the optimizer's device-generic path.
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include "autograd/ops.h"
#include "experiments/training/dtype_policy.h"
#include "gpu_test_util.h"
#include "models/t5/generation.h"
#include "models/t5/t5_model.h"
#include "nn/optim/adafactor.h"
#include "nn/optim/clip.h"
#include "nn/peft/peft.h"
#include "nn/peft/prompt_tuning.h"
#include "tiny_t5.h"

// GCC 12 warns on designated initializers that leave members to their default initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sp {
namespace {

using sp::testing::to_cpu;

struct TunedModel {
  std::unique_ptr<T5ForConditionalGeneration> model;
  std::unique_ptr<PeftMethod> peft;
};

// The same tiny model and prompt on device: weights initialised on the host, the model
// moved, then the prompt attached (it follows the embedding's device) and its values set
// from the CPU run's so both start from one init.
TunedModel make_run(Device device, const Tensor& prompt_init) {
  TunedModel r;
  r.model = std::make_unique<T5ForConditionalGeneration>(tiny_t5_config(/*gated=*/true));
  Generator gen(7);
  r.model->init_weights(&gen);
  r.model->eval();
  if (!device.is_cpu()) r.model->to(device);
  r.peft = make_peft("prompt_tuning",
                     {{"length", 4}, {"init", "random_uniform"}, {"init_range", 0.5}, {"seed", 3}});
  r.peft->attach(*r.model);
  if (prompt_init.defined()) {
    NoGradGuard no_grad;
    Tensor p = r.peft->trainable().front().second;
    kernels::copy_(p, prompt_init);
  }
  return r;
}

// Host batch s: [3, 6] inputs with padding, [3, 5] labels with ignored positions.
T5Inputs batch(int s) {
  std::vector<int64_t> ids, mask, labels;
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t < 6; ++t) {
      const bool pad = t >= 6 - b;
      ids.push_back(pad ? 0 : 2 + (7 * b + 3 * t + 5 * s) % 37);
      mask.push_back(pad ? 0 : 1);
    }
    for (int64_t t = 0; t < 5; ++t)
      labels.push_back(t >= 5 - b ? -100 : 1 + (11 * b + 2 * t + 3 * s) % 38);
  }
  T5Inputs in;
  in.input_ids = Tensor::from_vector(ids, Shape{3, 6});
  in.attention_mask = Tensor::from_vector(mask, Shape{3, 6});
  in.labels = Tensor::from_vector(labels, Shape{3, 5});
  return in;
}

struct StepLog {
  std::vector<double> losses, norms;
};

StepLog train(TunedModel& r, const optim::AdafactorOptions& options, int steps) {
  const NamedTensors trainable = r.peft->trainable();
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (const auto& [name, t] : trainable) {
    params.push_back(t);
    names.push_back(name);
  }
  optim::Adafactor opt(params, names, options);
  StepLog log;
  for (int s = 0; s < steps; ++s) {
    const Tensor loss = r.model->forward(batch(s)).loss;
    loss.backward();
    log.losses.push_back(loss.item<double>());
    EXPECT_TRUE(optim::check_finite_grads(params, names)) << "step " << s;
    log.norms.push_back(optim::clip_grad_norm(params, 1.0));
    opt.step(0.3);
    opt.zero_grad();
  }
  for (const auto& [name, t] : opt.state_dict())
    if (name != "step") {
      EXPECT_EQ(t.device(), params.front().device()) << name;
    }
  return log;
}

void expect_cuda_matches_cpu(const optim::AdafactorOptions& options) {
  TunedModel cpu = make_run(Device::cpu(), Tensor());
  const Tensor init = kernels::clone(cpu.peft->trainable().front().second.detach());
  TunedModel gpu = make_run(Device::cuda(0), init);
  const Tensor gpu_prompt = gpu.peft->trainable().front().second;
  ASSERT_TRUE(gpu_prompt.device().is_cuda());
  ASSERT_TRUE(gpu.model->device().is_cuda());

  const StepLog a = train(cpu, options, 5), b = train(gpu, options, 5);
  for (size_t s = 0; s < a.losses.size(); ++s) {
    EXPECT_NEAR(b.losses[s], a.losses[s], 1e-4 * std::fabs(a.losses[s])) << "loss, step " << s;
    EXPECT_NEAR(b.norms[s], a.norms[s], 1e-4 * std::fabs(a.norms[s])) << "grad norm, step " << s;
  }
  sp::testing::expect_close(gpu_prompt.detach(), cpu.peft->trainable().front().second.detach(),
                            1e-4);
}

TEST(TrainGpu, prompt_tuning_adafactor_matches_cpu) {
  SP_REQUIRE_CUDA();
  expect_cuda_matches_cpu({.weight_decay_rate = 1e-5});
}

// The factored moments (the prompt's [1, 4, 16] factors with a small min_dim) and momentum.
TEST(TrainGpu, prompt_tuning_factored_momentum_matches_cpu) {
  SP_REQUIRE_CUDA();
  expect_cuda_matches_cpu({.beta1 = 0.9, .min_dim_size_to_factor = 4});
}

// Every registered PEFT method, 3 Adafactor steps on the device and on the CPU from the same
// init (the CPU run's trainable tensors copied over after attach): the first loss agrees
// within rel_first, the later ones (after updates that amplify differences) within
// rel_later. bf16: as a bf16 run, the frozen backbone in bf16, the model computing in bf16.
void expect_every_method_trains_like_the_cpu(bool bf16, double rel_first, double rel_later) {
  for (const PeftMethodInfo& info : peft_methods()) {
    SCOPED_TRACE(info.name);
    TunedModel runs[2];
    for (int side = 0; side < 2; ++side) {
      TunedModel& r = runs[side];
      r.model = std::make_unique<T5ForConditionalGeneration>(tiny_t5_config(/*gated=*/true));
      Generator gen(7);
      r.model->init_weights(&gen);
      r.model->eval();
      if (side == 1) r.model->to(Device::cuda(0));
      r.peft = make_peft(info.name);
      r.peft->attach(*r.model);
      if (bf16) use_bf16_backbone(*r.model);
    }
    const NamedTensors cpu_params = runs[0].peft->trainable(),
                       gpu_params = runs[1].peft->trainable();
    ASSERT_EQ(gpu_params.size(), cpu_params.size());
    ASSERT_FALSE(gpu_params.empty());
    {
      NoGradGuard no_grad;
      for (size_t i = 0; i < cpu_params.size(); ++i) {
        ASSERT_EQ(gpu_params[i].first, cpu_params[i].first);
        EXPECT_TRUE(gpu_params[i].second.device().is_cuda()) << gpu_params[i].first;
        EXPECT_EQ(gpu_params[i].second.dtype(), DType::f32) << gpu_params[i].first;
        Tensor dst = gpu_params[i].second;
        kernels::copy_(dst, cpu_params[i].second);
      }
    }
    const StepLog a = train(runs[0], {}, 3), b = train(runs[1], {}, 3);
    for (size_t s = 0; s < a.losses.size(); ++s)
      EXPECT_NEAR(b.losses[s], a.losses[s],
                  (s == 0 ? rel_first : rel_later) * std::fabs(a.losses[s]))
          << "loss, step " << s;
  }
}

TEST(TrainGpu, every_peft_method_trains_on_the_device_like_the_cpu) {
  SP_REQUIRE_CUDA();
  expect_every_method_trains_like_the_cpu(/*bf16=*/false, 1e-4, 1e-4);
}

// bf16 matmuls accumulate in another order on each side and round their outputs to 8 bits;
// the bound catches a wrong dtype path (NaN, a lost cast), not the last bits.
TEST(TrainGpu, every_peft_method_trains_in_a_bf16_run_on_the_device_like_the_cpu) {
  SP_REQUIRE_CUDA();
  expect_every_method_trains_like_the_cpu(/*bf16=*/true, 1e-2, 5e-2);
}

// Optimizer state written from the GPU (as a checkpoint does: to the host) and loaded back
// lands on the parameter's device and continues the same trajectory.
TEST(TrainGpu, optimizer_state_round_trips_through_the_host) {
  SP_REQUIRE_CUDA();
  Tensor p =
      sp::testing::to_gpu(sp::testing::random_cpu({8, 130}, DType::f32, 5)).requires_grad_(true);
  Tensor q = kernels::clone(p.detach()).requires_grad_(true);
  optim::Adafactor a({p}, {"w"}, {.beta1 = 0.9, .min_dim_size_to_factor = 8});
  optim::Adafactor a2({q}, {"w"}, {.beta1 = 0.9, .min_dim_size_to_factor = 8});
  p.set_grad(sp::testing::to_gpu(sp::testing::random_cpu({8, 130}, DType::f32, 6)));
  a.step(0.1);
  optim::StateDict host;
  for (const auto& [name, t] : a.state_dict()) host.emplace_back(name, to_cpu(t));
  {
    NoGradGuard no_grad;
    kernels::copy_(q, p);
  }
  a2.load_state_dict(host);
  for (const auto& [name, t] : a2.state_dict())
    if (name != "step") {
      EXPECT_TRUE(t.device().is_cuda()) << name;
    }
  const Tensor g = sp::testing::to_gpu(sp::testing::random_cpu({8, 130}, DType::f32, 7));
  p.set_grad(g);
  q.set_grad(kernels::clone(g));
  a.step(0.1);
  a2.step(0.1);
  sp::testing::expect_bitwise(q.detach(), to_cpu(p.detach()));
}

// Evaluation on the device: scoring, rank classification and greedy decoding from host
// ids, through the prompt hook, give the CPU's results.
TEST(TrainGpu, scoring_and_generation_match_cpu) {
  SP_REQUIRE_CUDA();
  TunedModel cpu = make_run(Device::cpu(), Tensor());
  TunedModel gpu = make_run(Device::cuda(0), cpu.peft->trainable().front().second.detach());
  const T5Inputs in = batch(2);
  const std::vector<SequenceScore> a =
      score_sequences(*cpu.model, in.input_ids, in.attention_mask, in.labels);
  const std::vector<SequenceScore> b =
      score_sequences(*gpu.model, in.input_ids, in.attention_mask, in.labels);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].num_tokens, a[i].num_tokens);
    EXPECT_NEAR(b[i].logprob, a[i].logprob, 1e-4 * std::fabs(a[i].logprob)) << "row " << i;
  }
  const std::vector<std::vector<int64_t>> candidates = {{5, 6, 1}, {7, 1}, {9, 10, 11, 1}};
  std::vector<SequenceScore> ra, rb;
  const int64_t on_gpu = rank_classify(*gpu.model, {3, 4, 5, 6}, candidates, &rb);
  const int64_t on_cpu = rank_classify(*cpu.model, {3, 4, 5, 6}, candidates, &ra);
  for (size_t i = 0; i < ra.size(); ++i)
    EXPECT_NEAR(rb[i].logprob, ra[i].logprob, 1e-4 * std::fabs(ra[i].logprob)) << "candidate " << i;
  // The same choice, unless the CPU's best two are within the tolerance above (the GPU sums
  // in another order, so a near-tie may go either way).
  std::vector<double> best;
  for (const SequenceScore& s : ra) best.push_back(s.logprob);
  std::sort(best.begin(), best.end(), std::greater<>());
  if (best[0] - best[1] > 2e-4 * std::fabs(best[0])) {
    EXPECT_EQ(on_gpu, on_cpu);
  }
  GenerateOptions options;
  options.max_new_tokens = 6;
  EXPECT_EQ(greedy_generate(*gpu.model, in.input_ids, in.attention_mask, options),
            greedy_generate(*cpu.model, in.input_ids, in.attention_mask, options));
}

}  // namespace
}  // namespace sp
