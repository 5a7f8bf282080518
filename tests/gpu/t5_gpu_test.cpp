// The tiny T5 (tests/tiny_t5.h) with the same weights on the CPU and on the GPU: logits,
// loss and the gradient of every parameter agree (f32, 1e-4 relative norm error: a whole
// model's worth of differently ordered f32 sums, each op within 1e-5).
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "gpu_test_util.h"
#include "models/t5/t5_model.h"
#include "tiny_t5.h"

namespace sp {
namespace {

using sp::testing::expect_close;
using sp::testing::to_gpu;

constexpr double kModelTol = 1e-4;

// Model weights from one seeded init on the host; moved when device is CUDA. dropout_gen
// (when given) drives the dropout masks: the same seed on both devices gives the same masks.
std::unique_ptr<T5ForConditionalGeneration> make_model(const T5Config& c, Device device,
                                                       Generator* dropout_gen) {
  auto m = std::make_unique<T5ForConditionalGeneration>(c, DType::f32, dropout_gen);
  Generator gen(11);
  m->init_weights(&gen);
  if (device.is_cuda()) m->to(device);
  return m;
}

// [3, 7] inputs with padding at the end of rows 1 and 2, [3, 5] labels with ignored tails.
T5Inputs batch(int64_t vocab, Device device) {
  std::vector<int64_t> ids, mask, labels;
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t < 7; ++t) {
      const bool pad = t >= 7 - 2 * b;
      ids.push_back(pad ? 0 : 2 + (7 * b + 3 * t) % (vocab - 2));
      mask.push_back(pad ? 0 : 1);
    }
    for (int64_t t = 0; t < 5; ++t)
      labels.push_back(t >= 5 - b ? -100 : 1 + (11 * b + 2 * t) % (vocab - 1));
  }
  T5Inputs in;
  in.input_ids = Tensor::from_vector(ids, Shape{3, 7});
  in.attention_mask = Tensor::from_vector(mask, Shape{3, 7});
  in.labels = Tensor::from_vector(labels, Shape{3, 5});
  if (device.is_cuda()) {
    in.input_ids = to_gpu(in.input_ids);
    in.attention_mask = to_gpu(in.attention_mask);
    in.labels = to_gpu(in.labels);
  }
  return in;
}

// One forward + backward on each device; compares logits, loss and every gradient.
void check_model(const T5Config& c, bool train, const std::string& what) {
  SCOPED_TRACE(what);
  Generator cpu_drop(5), gpu_drop(5);
  auto cpu = make_model(c, Device::cpu(), &cpu_drop);
  auto gpu = make_model(c, Device::cuda(0), &gpu_drop);
  cpu->train(train);
  gpu->train(train);
  for (const auto& [name, t] : gpu->named_parameters())
    ASSERT_TRUE(t.device().is_cuda()) << name << " stayed on " << t.device();

  const T5Output oc = cpu->forward(batch(c.vocab_size, Device::cpu()));
  const T5Output og = gpu->forward(batch(c.vocab_size, Device::cuda(0)));
  ASSERT_TRUE(og.logits.device().is_cuda());
  {
    SCOPED_TRACE("encoder states");
    expect_close(og.encoder_hidden_states, oc.encoder_hidden_states, kModelTol);
  }
  {
    SCOPED_TRACE("logits");
    expect_close(og.logits, oc.logits, kModelTol);
  }
  {
    SCOPED_TRACE("loss");
    expect_close(og.loss, oc.loss, kModelTol);
  }
  oc.loss.backward();
  og.loss.backward();
  const NamedTensors pc = cpu->named_parameters(), pg = gpu->named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  int compared = 0;
  for (size_t i = 0; i < pc.size(); ++i) {
    SCOPED_TRACE("gradient of " + pc[i].first);
    ASSERT_EQ(pc[i].first, pg[i].first);
    const Tensor gc = pc[i].second.grad(), gg = pg[i].second.grad();
    ASSERT_EQ(gc.defined(), gg.defined());
    if (!gc.defined()) continue;
    EXPECT_TRUE(gg.device().is_cuda());
    expect_close(gg, gc, kModelTol);
    ++compared;
  }
  // Every parameter takes part in the loss (the relative bias of both stacks too).
  EXPECT_EQ(compared, static_cast<int>(pc.size()));
}

TEST(T5Gpu, GatedUntiedMatchesCpu) {
  SP_REQUIRE_CUDA();
  check_model(tiny_t5_config(/*gated=*/true), /*train=*/false, "gated-gelu, untied head");
}

TEST(T5Gpu, ReluTiedScaledMatchesCpu) {
  SP_REQUIRE_CUDA();
  check_model(tiny_t5_config(/*gated=*/false), /*train=*/false, "relu, tied scaled head");
}

TEST(T5Gpu, TrainModeDropoutMatchesCpu) {
  SP_REQUIRE_CUDA();
  // Dropout masks come from Philox at the same states on both devices.
  T5Config c = tiny_t5_config(/*gated=*/true);
  c.dropout_rate = 0.1;
  check_model(c, /*train=*/true, "gated-gelu, dropout 0.1");
}

TEST(T5Gpu, LongerSequencesMatchCpu) {
  SP_REQUIRE_CUDA();
  // More positions than the bidirectional exact buckets: the logarithmic buckets and the
  // largest-distance clamp both occur (max_distance 16).
  T5Config c = tiny_t5_config(/*gated=*/true);
  auto cpu = make_model(c, Device::cpu(), nullptr);
  auto gpu = make_model(c, Device::cuda(0), nullptr);
  cpu->eval();
  gpu->eval();
  std::vector<int64_t> ids, labels;
  for (int64_t i = 0; i < 2 * 40; ++i) ids.push_back(1 + (i * 13) % 39);
  for (int64_t i = 0; i < 2 * 24; ++i) labels.push_back(1 + (i * 7) % 39);
  T5Inputs in;
  in.input_ids = Tensor::from_vector(ids, Shape{2, 40});
  in.labels = Tensor::from_vector(labels, Shape{2, 24});
  T5Inputs ing;
  ing.input_ids = to_gpu(in.input_ids);
  ing.labels = to_gpu(in.labels);
  const T5Output oc = cpu->forward(in);
  const T5Output og = gpu->forward(ing);
  expect_close(og.logits, oc.logits, kModelTol);
  expect_close(og.loss, oc.loss, kModelTol);
  oc.loss.backward();
  og.loss.backward();
  const NamedTensors pc = cpu->named_parameters(), pg = gpu->named_parameters();
  for (size_t i = 0; i < pc.size(); ++i) {
    SCOPED_TRACE("gradient of " + pc[i].first);
    ASSERT_TRUE(pg[i].second.grad().defined());
    expect_close(pg[i].second.grad(), pc[i].second.grad(), kModelTol);
  }
}

}  // namespace
}  // namespace sp
