// Mixed dtypes in one model: a bf16 run that trains some backbone tensors keeps them f32
// (use_bf16_backbone) and the layers compute in bf16 (nn/mixed_dtype.h).
#include "nn/mixed_dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "experiments/training/dtype_policy.h"
#include "models/t5/t5_model.h"
#include "nn/linear.h"
#include "nn/rms_norm.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

using testing::test_tensor;

std::vector<uint32_t> bits_of(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  std::vector<uint32_t> out;
  for (double x : v) {
    const float f = static_cast<float>(x);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    out.push_back(u);
  }
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.to_vector<double>()) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

TEST(MixedDtype, narrower_dtype_and_cast_if_needed) {
  EXPECT_EQ(narrower_dtype(DType::f32, DType::bf16), DType::bf16);
  EXPECT_EQ(narrower_dtype(DType::bf16, DType::f32), DType::bf16);
  EXPECT_EQ(narrower_dtype(DType::f64, DType::f32), DType::f32);
  EXPECT_EQ(narrower_dtype(DType::bf16, DType::f16), DType::bf16);  // same size: the first
  EXPECT_EQ(meeting_dtype(DType::f32, DType::bf16), DType::bf16);
  EXPECT_EQ(meeting_dtype(DType::f16, DType::f64), DType::f16);
  EXPECT_EQ(meeting_dtype(DType::f32, DType::f32), DType::f32);
  EXPECT_EQ(meeting_dtype(DType::f64, DType::f32), std::nullopt);  // no silent f64 -> f32
  EXPECT_EQ(meeting_dtype(DType::bf16, DType::f16), std::nullopt);
  const Tensor x = test_tensor(Shape{3}, 1, DType::f32);
  EXPECT_TRUE(cast_if_needed(x, DType::f32).is_same(x));
  EXPECT_EQ(cast_if_needed(x, DType::bf16).dtype(), DType::bf16);
}

TEST(MixedDtype, linear_with_an_f32_weight_computes_in_bf16_and_sends_an_f32_gradient) {
  Linear lin(8, 5, /*bias=*/true);
  lin.weight = test_tensor(Shape{5, 8}, 2, DType::f32).requires_grad_(true);
  lin.bias = test_tensor(Shape{5}, 3, DType::f32).requires_grad_(true);
  const Tensor x = test_tensor(Shape{2, 3, 8}, 4, DType::bf16);
  const Tensor y = lin.forward(x);
  EXPECT_EQ(y.dtype(), DType::bf16);
  // Exactly the bf16 linear on the rounded weight and bias.
  const Tensor w16 = testing::leaf(kernels::cast(lin.weight.detach(), DType::bf16));
  const Tensor b16 = kernels::cast(lin.bias.detach(), DType::bf16);
  const Tensor ref = linear(x, w16, b16);
  EXPECT_EQ(bits_of(y), bits_of(ref));
  sum(y).backward();
  sum(ref).backward();
  ASSERT_TRUE(lin.weight.grad().defined());
  EXPECT_EQ(lin.weight.grad().dtype(), DType::f32);
  EXPECT_EQ(lin.bias.grad().dtype(), DType::f32);
  EXPECT_EQ(bits_of(lin.weight.grad()), bits_of(w16.grad()));  // bf16 values, widened exactly
}

TEST(MixedDtype, f32_input_to_a_bf16_linear_computes_in_bf16) {
  // transformers' T5 feed-forward casts its input to wo's dtype: the same rule.
  Linear lin(8, 5, /*bias=*/false, DType::bf16);
  lin.weight = test_tensor(Shape{5, 8}, 5, DType::bf16);
  const Tensor x = test_tensor(Shape{4, 8}, 6, DType::f32);
  const Tensor y = lin.forward(x);
  EXPECT_EQ(y.dtype(), DType::bf16);
  EXPECT_EQ(bits_of(y), bits_of(linear(kernels::cast(x, DType::bf16), lin.weight)));
}

// Only a 16-bit side narrows: f64 meeting f32 stays the error it was (a gradcheck in f64
// must not lose precision to a stray f32 weight).
TEST(MixedDtype, f64_and_f32_do_not_meet) {
  Linear lin(4, 3, /*bias=*/false);
  EXPECT_THROW_MSG(lin.forward(test_tensor(Shape{2, 4}, 1, DType::f64)), "dtype mismatch");
}

TEST(MixedDtype, rms_norm_with_an_f32_weight_keeps_the_stream_in_bf16) {
  RMSNorm norm(8);
  norm.weight = test_tensor(Shape{8}, 7, DType::f32, 0.5, 1.0).requires_grad_(true);
  const Tensor x = testing::leaf(test_tensor(Shape{3, 8}, 8, DType::bf16));
  const Tensor y = norm.forward(x);
  EXPECT_EQ(y.dtype(), DType::bf16);
  // One rounding: the f32 product, cast to bf16.
  const Tensor ref = kernels::cast(rms_norm(x.detach(), norm.weight.detach()), DType::bf16);
  EXPECT_EQ(bits_of(y), bits_of(ref));
  sum(y).backward();
  ASSERT_TRUE(norm.weight.grad().defined());
  EXPECT_EQ(norm.weight.grad().dtype(), DType::f32);
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  // A bf16 weight with an f32 input keeps Hugging Face's rule: the output has its dtype.
  RMSNorm half(8, 1e-6, DType::bf16);
  EXPECT_EQ(half.forward(test_tensor(Shape{3, 8}, 9, DType::f32)).dtype(), DType::bf16);
}

// A bf16 run (use_bf16_backbone) that trains the T5 tensors whose names contain `part`
// (f32) with the rest frozen in bf16, against the same model entirely in bf16.
struct SubsetCase {
  const char* label;
  const char* part;
  bool gated;        // gated: untied lm_head; otherwise the head is the shared embedding
  bool same_logits;  // the trained tensors are only cast where used: bit-identical logits
};

void PrintTo(const SubsetCase& c, std::ostream* os) { *os << c.label; }

class TrainedSubsetInBf16 : public ::testing::TestWithParam<SubsetCase> {};

TEST_P(TrainedSubsetInBf16, runs_in_bf16_and_trains_the_f32_tensors) {
  const SubsetCase& c = GetParam();
  const T5Config config = tiny_t5_config(c.gated);
  T5ForConditionalGeneration f32_model(config);
  Generator gen(11);
  f32_model.init_weights(&gen);
  // Layer norms away from 1, so casting them is not trivially exact.
  for (auto& [name, slot] : f32_model.tensor_slots())
    if (name.find("layer_norm") != std::string::npos)
      *slot = test_tensor(slot->shape(), name.size(), DType::f32, 0.2, 1.0).requires_grad_(true);

  T5ForConditionalGeneration all_bf16(config), mixed(config);
  all_bf16.load_state_dict(f32_model.state_dict());
  mixed.load_state_dict(f32_model.state_dict());
  all_bf16.to(DType::bf16);
  all_bf16.requires_grad_(false);
  mixed.requires_grad_(false);
  int chosen = 0;
  for (auto& [name, slot] : mixed.tensor_slots())
    if (name.find(c.part) != std::string::npos) slot->requires_grad_(true), ++chosen;
  ASSERT_GT(chosen, 0) << c.part;
  use_bf16_backbone(mixed);

  EXPECT_EQ(mixed.dtype(), DType::bf16);
  for (const auto& [name, p] : mixed.named_parameters())
    EXPECT_EQ(p.dtype(), p.requires_grad() ? DType::f32 : DType::bf16) << name;

  const Tensor ids = Tensor::from_vector<int64_t>({5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  const Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  const Tensor labels = Tensor::from_vector<int64_t>({3, 4, 1, 7, 1, -100}, Shape{2, 3});
  const T5Output want = all_bf16.forward({ids, Tensor(), mask, Tensor(), Tensor(), labels});
  const T5Output got = mixed.forward({ids, Tensor(), mask, Tensor(), Tensor(), labels});
  EXPECT_EQ(got.logits.dtype(), DType::bf16);
  EXPECT_EQ(got.encoder_hidden_states.dtype(), DType::bf16);
  if (c.same_logits) {
    EXPECT_EQ(bits_of(got.logits), bits_of(want.logits));
  } else {
    EXPECT_LT(max_abs_diff(got.logits, want.logits), 0.03 * max_abs(want.logits));
  }

  // Gradients: f32, and within bf16's noise of the f32 model's (the model wholly in bf16
  // is as far: up to 7% of the largest element in these tensors).
  got.loss.backward();
  f32_model.forward({ids, Tensor(), mask, Tensor(), Tensor(), labels}).loss.backward();
  std::map<std::string, Tensor> exact;
  for (const auto& [name, p] : f32_model.named_parameters()) exact[name] = p.grad();
  for (const auto& [name, p] : mixed.named_parameters()) {
    if (!p.requires_grad()) {
      EXPECT_FALSE(p.grad().defined()) << name;
      continue;
    }
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().dtype(), DType::f32) << name;
    const Tensor& ref = exact.at(name);
    ASSERT_GT(max_abs(ref), 0) << name;
    EXPECT_LE(max_abs_diff(p.grad(), ref), 0.1 * max_abs(ref)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    T5, TrainedSubsetInBf16,
    ::testing::Values(SubsetCase{"layer_norms", "layer_norm", true, false},
                      SubsetCase{"queries", "SelfAttention.q.weight", true, true},
                      SubsetCase{"feed_forward_out", "DenseReluDense.wo.weight", true, true},
                      SubsetCase{"relative_attention_bias", "relative_attention_bias", true, true},
                      SubsetCase{"untied_embedding", "shared.weight", true, true},
                      SubsetCase{"untied_head", "lm_head.weight", true, true},
                      SubsetCase{"tied_embedding", "shared.weight", false, true},
                      // Model tuning: every weight f32, the model in mixed precision.
                      SubsetCase{"everything", "", true, false}),
    [](const ::testing::TestParamInfo<SubsetCase>& info) { return info.param.label; });

// The compute dtype only narrows: asking a bf16 model for f32 keeps bf16 (an f32 stream
// through bf16 norms would turn bf16 halfway).
TEST(MixedDtype, compute_dtype_never_widens_the_parameters) {
  T5ForConditionalGeneration m(tiny_t5_config(true));
  EXPECT_EQ(m.dtype(), DType::f32);
  m.set_compute_dtype(DType::bf16);
  EXPECT_EQ(m.dtype(), DType::bf16);
  m.to(DType::bf16);
  m.set_compute_dtype(DType::f32);
  EXPECT_EQ(m.dtype(), DType::bf16);
  EXPECT_THROW_MSG(m.set_compute_dtype(DType::i64), "[T5] the compute dtype must be floating");
}

// Evaluation inside a mixed-precision run (f32 weights, bf16 compute) casts each weight
// once per cache instead of once per forward, with the same logits to the bit; with grad
// mode on nothing is cached, and caches nest.
TEST(MixedDtype, weight_cast_cache_casts_each_weight_once_and_changes_no_result) {
  T5ForConditionalGeneration m(tiny_t5_config(true));
  Generator gen(5);
  m.init_weights(&gen);
  m.set_compute_dtype(DType::bf16);
  const T5Inputs batch = tiny_t5_batch();
  NoGradGuard no_grad;
  const std::vector<uint32_t> uncached = bits_of(m.forward(batch).logits);
  int64_t linears = 0;
  for (const auto& [name, p] : m.named_parameters())
    linears += p.dim() == 2 && name != "shared.weight" &&
               name.find("relative_attention") == std::string::npos;
  {
    WeightCastCache casts;
    EXPECT_EQ(WeightCastCache::current(), &casts);
    EXPECT_EQ(bits_of(m.forward(batch).logits), uncached);
    EXPECT_EQ(casts.size(), linears);  // every Linear and the untied head, once
    EXPECT_EQ(bits_of(m.forward(batch).logits), uncached);
    EXPECT_EQ(casts.size(), linears);
    {
      WeightCastCache inner;
      EXPECT_EQ(WeightCastCache::current(), &inner);
      GradMode::set_enabled(true);
      m.forward(batch);
      GradMode::set_enabled(false);
      EXPECT_EQ(inner.size(), 0);  // training casts through autograd, every time
    }
    EXPECT_EQ(WeightCastCache::current(), &casts);
  }
  EXPECT_EQ(WeightCastCache::current(), nullptr);
}

// Evaluation in bf16 stores the whole backbone in bf16, tuned tensors too, so no weight is
// cast again on every forward (a bf16 run's model tuning trains f32 weights).
TEST(MixedDtype, inference_in_bf16_casts_every_backbone_weight_once) {
  T5ForConditionalGeneration m(tiny_t5_config(true));
  Generator gen(5);
  m.init_weights(&gen);
  m.requires_grad_(true);  // as model tuning leaves it
  EXPECT_EQ(use_bf16_for_inference(m), static_cast<int64_t>(m.named_parameters().size()));
  EXPECT_EQ(m.dtype(), DType::bf16);
  for (const auto& [name, p] : m.named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::bf16) << name;
    EXPECT_FALSE(p.requires_grad()) << name;
  }
}

}  // namespace
}  // namespace sp
