// PEFT methods prefix tuning, LoRA and IA3 (nn/peft/{prefix_tuning,lora,ia3}) on a tiny T5:
// what trains and what stays frozen, save / load, equivalence with the base model at
// init, merge / unmerge, prefix keys against a hand-computed attention layer and under
// the incremental-decoding cache.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/io/safetensors.h"
#include "models/t5/generation.h"
#include "models/t5/t5_model.h"
#include "nn/optim/adamw.h"
#include "nn/peft/hf_peft_format.h"
#include "nn/peft/ia3.h"
#include "nn/peft/ia3_hf.h"
#include "nn/peft/lora.h"
#include "nn/peft/lora_hf.h"
#include "nn/peft/peft.h"
#include "nn/peft/prefix_tuning.h"
#include "temp_dir.h"
#include "tensor/kernels.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

using nlohmann::json;

// The same weights every time for a given dtype: initialised in f32, then converted.
std::unique_ptr<T5ForConditionalGeneration> tiny_model(DType dtype = DType::f32,
                                                       bool gated = true) {
  auto m = std::make_unique<T5ForConditionalGeneration>(tiny_t5_config(gated));
  Generator gen(7);
  m->init_weights(&gen);
  if (dtype != DType::f32) m->to(dtype);
  return m;
}

Tensor logits_of(const T5ForConditionalGeneration& m, const T5Inputs& in) {
  NoGradGuard no_grad;
  return m.forward(in).logits.to(DType::f32);
}

std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

NamedTensors clone_all(const NamedTensors& ts) {
  NamedTensors out;
  for (const auto& [n, t] : ts) out.emplace_back(n, t.detach().clone());
  return out;
}

std::vector<Tensor> tensors_of(const NamedTensors& ts) {
  std::vector<Tensor> out;
  for (const auto& [n, t] : ts) out.push_back(t);
  return out;
}

std::vector<std::string> names_of(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = values(a), y = values(b);
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("sp_peftm_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

// Fills t in place with deterministic values in [lo, hi).
void fill_values(Tensor& t, uint64_t seed, double lo, double hi) {
  NoGradGuard no_grad;
  Tensor v = sp::testing::test_tensor(t.shape(), seed, DType::f32, (hi - lo) / 2, (hi + lo) / 2);
  kernels::copy_(t, v);
}

// --- every method ----------------------------------------------------------------------

struct MethodCase {
  std::string label;
  std::string method;
  json settings;
};

std::ostream& operator<<(std::ostream& os, const MethodCase& c) { return os << c.label; }

class PeftMethodsEach : public ::testing::TestWithParam<MethodCase> {};

TEST_P(PeftMethodsEach, one_step_changes_only_the_method_parameters) {
  const MethodCase& c = GetParam();
  for (DType dtype : {DType::f32, DType::bf16}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto model = tiny_model(dtype);
    auto method = make_peft(c.method, c.settings);
    method->attach(*model);
    NamedTensors params = method->trainable();
    ASSERT_FALSE(params.empty());
    int64_t numel = 0;
    for (const auto& [n, t] : params) {
      EXPECT_TRUE(t.requires_grad()) << n;
      EXPECT_EQ(t.dtype(), DType::f32) << n << ": method parameters train in f32";
      numel += t.numel();
    }
    EXPECT_EQ(method->attached_count().trainable, numel);
    const NamedTensors backbone_before = clone_all(model->named_parameters());
    const NamedTensors params_before = clone_all(params);

    optim::AdamW opt(tensors_of(params), names_of(params), {.weight_decay = 0.0});
    Tensor loss = model->forward(tiny_t5_batch()).loss;
    loss.backward();
    for (const auto& [n, t] : model->named_parameters()) {
      EXPECT_FALSE(t.requires_grad()) << n;
      EXPECT_FALSE(t.grad().defined()) << n << " got a gradient buffer";
    }
    double grad_norm = 0;
    for (const auto& [n, t] : params)
      if (t.grad().defined())
        for (double g : values(t.grad())) grad_norm += g * g;
    EXPECT_GT(grad_norm, 0);
    opt.step(1e-2);

    const NamedTensors backbone_after = model->named_parameters();
    ASSERT_EQ(backbone_after.size(), backbone_before.size());
    for (size_t i = 0; i < backbone_after.size(); ++i)
      EXPECT_EQ(values(backbone_after[i].second), values(backbone_before[i].second))
          << backbone_after[i].first << " changed";
    bool changed = false;
    for (size_t i = 0; i < params.size(); ++i)
      changed = changed || values(params[i].second) != values(params_before[i].second);
    EXPECT_TRUE(changed);

    // Optimizer state exists for the method's parameters only.
    const std::vector<std::string> param_names = names_of(params);
    const std::set<std::string> own(param_names.begin(), param_names.end());
    for (const auto& [key, t] : opt.state_dict()) {
      if (key == "step") continue;
      const std::string param = key.substr(0, key.rfind('.'));
      EXPECT_TRUE(own.count(param)) << "optimizer state " << key;
    }
  }
}

TEST_P(PeftMethodsEach, save_then_load_reproduces_outputs) {
  const MethodCase& c = GetParam();
  const T5Inputs in = tiny_t5_batch();
  auto model = tiny_model();
  auto method = make_peft(c.method, c.settings);
  method->attach(*model);
  // Move off the init (LoRA's B = 0, IA3's ones) so the round trip carries real values.
  NamedTensors params = method->trainable();
  optim::AdamW opt(tensors_of(params), names_of(params), {.weight_decay = 0.0});
  for (int i = 0; i < 2; ++i) {
    model->forward(in).loss.backward();
    opt.step(5e-2);
    opt.zero_grad();
  }
  model->eval();  // LoRA dropout is on in training
  const Tensor expected = logits_of(*model, in);
  const std::string dir = temp_dir("save_" + c.label);
  method->save(dir);
  EXPECT_TRUE(std::filesystem::exists(dir + "/peft_config.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/peft_model.safetensors"));

  auto fresh = tiny_model();
  fresh->eval();
  const Tensor base = logits_of(*fresh, in);
  EXPECT_GT(max_abs_diff(base, expected), 1e-4) << "the trained method changed nothing";
  auto loaded = load_peft(dir, *fresh);
  EXPECT_EQ(loaded->name(), c.method);
  EXPECT_EQ(values(logits_of(*fresh, in)), values(expected));
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Methods, PeftMethodsEach,
    ::testing::Values(MethodCase{"lora", "lora", {{"rank", 2}, {"alpha", 4.0}}},
                      MethodCase{"lora_dropout_all_linears",
                                 "lora",
                                 {{"rank", 3},
                                  {"dropout", 0.2},
                                  {"target_regex", ".*\\.(q|k|v|o|wi_0|wi_1|wo)"}}},
                      MethodCase{"prefix", "prefix_tuning", {{"length", 3}}},
                      MethodCase{"prefix_mlp",
                                 "prefix_tuning",
                                 {{"length", 3}, {"reparameterize", true}, {"hidden", 8}}},
                      MethodCase{"ia3", "ia3", json::object()}),
    [](const ::testing::TestParamInfo<MethodCase>& i) { return i.param.label; });

// --- LoRA ------------------------------------------------------------------------------

TEST(PeftLora, targets_match_the_last_name_components) {
  auto model = tiny_model();
  Lora lora(resolve_peft_settings("lora", {{"rank", 2}, {"target_modules", {"o"}}}));
  lora.attach(*model);
  // "o" is SelfAttention.o / EncDecAttention.o, never DenseReluDense.wo.
  ASSERT_EQ(lora.adapters().size(), 2u + 2u * 2u);
  for (const auto& [name, a] : lora.adapters()) {
    EXPECT_EQ(name.substr(name.size() - 2), ".o") << name;
    EXPECT_EQ(a->A.shape(), (Shape{2, 12}));
    EXPECT_EQ(a->B.shape(), (Shape{16, 2}));
  }
  EXPECT_EQ(lora.trainable()[0].first, "encoder.block.0.layer.0.SelfAttention.o.lora_A.weight");

  auto regex_model = tiny_model();
  Lora by_regex(resolve_peft_settings(
      "lora", {{"target_regex", "decoder\\.block\\.1\\..*EncDecAttention\\.(q|v)"}}));
  by_regex.attach(*regex_model);
  ASSERT_EQ(by_regex.adapters().size(), 2u);
  EXPECT_EQ(by_regex.adapters()[0].first, "decoder.block.1.layer.1.EncDecAttention.q");

  auto none = tiny_model();
  Lora nothing(resolve_peft_settings("lora", {{"target_modules", {"query"}}}));
  EXPECT_THROW_MSG(nothing.attach(*none), "no linear layer matches target [\"query\"]");
  EXPECT_THROW_MSG(make_peft("lora", {{"rank", 0}}),
                   "[peft:lora] rank must be in [1, 65536], got 0");
  EXPECT_THROW_MSG(make_peft("lora", {{"rank", 1000000000000}}),
                   "[peft:lora] rank must be in [1, 65536], got 1000000000000");
  EXPECT_THROW_MSG(make_peft("lora", {{"target_modules", {"q", 3}}}),
                   "target_modules[1] must be a non-empty string");
}

TEST(PeftLora, init_is_peft_kaiming_uniform_and_zero_b) {
  auto model = tiny_model();
  auto method = make_peft("lora", {{"rank", 4}, {"seed", 3}});
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  const double bound = 1.0 / std::sqrt(16.0);
  double sum_sq = 0;
  int64_t n = 0;
  for (const auto& [name, a] : lora.adapters()) {
    for (double x : values(a->A)) {
      EXPECT_LE(std::abs(x), bound);
      sum_sq += x * x;
      ++n;
    }
    for (double x : values(a->B)) EXPECT_EQ(x, 0.0);
    EXPECT_DOUBLE_EQ(a->scale, 8.0 / 4.0);
  }
  // uniform(-b, b) has variance b^2 / 3.
  EXPECT_NEAR(sum_sq / n, bound * bound / 3, 0.2 * bound * bound / 3);
  // The seed decides the init.
  auto other = tiny_model();
  auto again = make_peft("lora", {{"rank", 4}, {"seed", 3}});
  again->attach(*other);
  EXPECT_EQ(values(again->trainable()[0].second), values(method->trainable()[0].second));
}

TEST(PeftLora, zero_b_equals_the_base_model_in_f32_and_bf16) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    auto model = tiny_model(dtype);
    const Tensor base = logits_of(*model, tiny_t5_batch());
    auto method = make_peft("lora", {{"rank", 2}, {"target_modules", {"q", "k", "v", "wo"}}});
    method->attach(*model);
    EXPECT_EQ(values(logits_of(*model, tiny_t5_batch())), values(base)) << dtype_name(dtype);
  }
}

TEST(PeftLora, merge_and_unmerge) {
  auto model = tiny_model();
  auto method =
      make_peft("lora", {{"rank", 3}, {"alpha", 6.0}, {"target_modules", {"q", "v", "wi_0"}}});
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  uint64_t seed = 100;
  for (auto& [name, a] : lora.adapters()) fill_values(a->B, seed++, -0.5, 0.5);
  const T5Inputs in = tiny_t5_batch();
  const NamedTensors weights_before = clone_all(model->named_parameters());
  const Tensor with_adapters = logits_of(*model, in);

  lora.merge();
  EXPECT_TRUE(lora.merged());
  const Tensor merged = logits_of(*model, in);
  EXPECT_LT(max_abs_diff(merged, with_adapters), 1e-4);
  // The merged weight is W + scale * B A.
  const auto& [name0, a0] = lora.adapters()[0];
  const Tensor* w0 = model->find_parameter(name0 + ".weight");
  Tensor expected_w0;
  for (const auto& [n, t] : weights_before)
    if (n == name0 + ".weight") expected_w0 = t;
  const std::vector<double> a = values(a0->A), b = values(a0->B), w = values(expected_w0),
                            got = values(*w0);
  const int64_t out = a0->B.size(0), r = a0->A.size(0), inf = a0->A.size(1);
  for (int64_t i = 0; i < out; ++i)
    for (int64_t j = 0; j < inf; ++j) {
      double d = 0;
      for (int64_t k = 0; k < r; ++k) d += b[i * r + k] * a[k * inf + j];
      EXPECT_NEAR(got[i * inf + j], w[i * inf + j] + 2.0 * d, 1e-5);
    }
  lora.merge();  // idempotent
  EXPECT_LT(max_abs_diff(logits_of(*model, in), with_adapters), 1e-4);

  lora.unmerge();
  EXPECT_FALSE(lora.merged());
  const NamedTensors weights_after = model->named_parameters();
  for (size_t i = 0; i < weights_after.size(); ++i)
    EXPECT_LT(max_abs_diff(weights_after[i].second, weights_before[i].second), 1e-6)
        << weights_after[i].first;
  // The weights are back to within rounding (above), so the logits are as close as the merged
  // model's: a forgotten or doubled unmerge moves them by the update itself, orders more.
  EXPECT_LT(max_abs_diff(logits_of(*model, in), with_adapters), 1e-4);
}

// A bf16 layer with f32 factors: y + d in f32, rounded once to bf16 (PEFT: bf16 + f32
// promotes), not d rounded to bf16 and then added in bf16.
TEST(PeftLora, a_bf16_layer_adds_the_update_in_f32_and_rounds_once) {
  Linear base(32, 48, false, DType::bf16);
  fill_values(base.weight, 1, -0.5, 0.5);
  LoraAdapter lora(32, 48, 4, 0.75, 0.0, std::make_shared<Generator>(2));
  fill_values(lora.B, 3, -0.5, 0.5);
  const Tensor x = sp::testing::test_tensor({16, 32}, 4, DType::bf16);
  NoGradGuard no_grad;
  const Tensor y = base.base_forward(x);
  const Tensor d = linear(linear(cast(x, DType::f32), lora.A), lora.B) * 0.75;
  const Tensor once = cast(cast(y, DType::f32) + d, DType::bf16);
  const Tensor twice = y + cast(d, DType::bf16);
  ASSERT_NE(values(once), values(twice));  // the test tells the two apart
  EXPECT_EQ(values(lora.forward(x, base)), values(once));
}

// Dropout acts on the low-rank path's input only, scaled by 1 / (1 - p), in training; the
// base path sees x unchanged (PEFT: lora_B(lora_A(dropout(x))) beside base_layer(x)).
TEST(PeftLora, dropout_acts_on_the_low_rank_input_only) {
  Linear base(8, 6, false);
  fill_values(base.weight, 5, -0.5, 0.5);
  auto gen = std::make_shared<Generator>(9);
  LoraAdapter lora(8, 6, 2, 1.0, 0.5, gen);
  fill_values(lora.B, 6, -0.5, 0.5);
  const Tensor x = sp::testing::test_tensor({4, 8}, 7, DType::f32);
  NoGradGuard no_grad;
  base.eval();
  const Tensor eval_out = lora.forward(x, base);
  EXPECT_LT(max_abs_diff(eval_out, base.base_forward(x) + linear(linear(x, lora.A), lora.B)), 1e-6);
  base.train();
  Generator replay = *gen;  // the adapter's next dropout draw, replayed
  const Tensor h = dropout(x, 0.5, true, &replay);
  EXPECT_LT(
      max_abs_diff(lora.forward(x, base), base.base_forward(x) + linear(linear(h, lora.A), lora.B)),
      1e-6);
  // Some elements dropped, the kept ones doubled.
  const std::vector<double> hv = values(h), xv = values(x);
  int dropped = 0;
  for (size_t i = 0; i < hv.size(); ++i) {
    if (hv[i] == 0)
      ++dropped;
    else
      EXPECT_NEAR(hv[i], 2 * xv[i], 1e-6);
  }
  EXPECT_GT(dropped, 0);
}

// An untied lm_head is a Linear like any other: an adapter on it changes the logits (the
// head used to bypass Linear::forward, so the adapter counted parameters and did nothing),
// and merging keeps them.
TEST(PeftLora, an_adapter_on_the_untied_lm_head_applies_and_merges) {
  auto model = tiny_model();  // gated: untied head
  const T5Inputs in = tiny_t5_batch();
  const Tensor base = logits_of(*model, in);
  auto method = make_peft("lora", {{"rank", 2}, {"alpha", 4.0}, {"target_modules", {"lm_head"}}});
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  ASSERT_EQ(lora.adapters().size(), 1u);
  EXPECT_EQ(lora.adapters()[0].first, "lm_head");
  fill_values(lora.adapters()[0].second->B, 7, -0.5, 0.5);
  const Tensor adapted = logits_of(*model, in);
  EXPECT_GT(max_abs_diff(adapted, base), 1e-3);
  lora.merge();
  EXPECT_LT(max_abs_diff(logits_of(*model, in), adapted), 1e-4);
}

// Loading factors into a merged LoRA: the merged weights must carry the loaded B A, not the
// one merged before, and unmerge() must then give back the base weights.
TEST(PeftLora, load_while_merged_uses_the_loaded_factors) {
  const json settings = {{"rank", 2}, {"alpha", 4.0}, {"target_modules", {"q", "v", "wo"}}};
  auto reference = tiny_model();
  auto want = make_peft("lora", settings);
  want->attach(*reference);
  NamedTensors loaded = clone_all(want->trainable());
  uint64_t seed = 40;
  for (auto& [n, t] : loaded) fill_values(t, seed++, -0.4, 0.4);
  want->load_state(loaded);
  const Tensor expected = logits_of(*reference, tiny_t5_batch());

  auto model = tiny_model();
  const NamedTensors base = clone_all(model->named_parameters());
  auto method = make_peft("lora", settings);
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  for (auto& [name, a] : lora.adapters()) fill_values(a->B, seed++, -0.4, 0.4);
  lora.merge();
  method->load_state(loaded);
  EXPECT_TRUE(lora.merged());
  EXPECT_LT(max_abs_diff(logits_of(*model, tiny_t5_batch()), expected), 1e-4);
  lora.unmerge();
  EXPECT_LT(max_abs_diff(logits_of(*model, tiny_t5_batch()), expected), 1e-5);
  const NamedTensors after = model->named_parameters();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_LT(max_abs_diff(after[i].second, base[i].second), 1e-6) << after[i].first;
  // A failed load leaves the merged model as it was.
  lora.merge();
  EXPECT_THROW_MSG(method->load_state({}), "do not match");
  EXPECT_TRUE(lora.merged());
  EXPECT_LT(max_abs_diff(logits_of(*model, tiny_t5_batch()), expected), 1e-4);
}

TEST(PeftLora, bf16_backbone_trains_f32_factors) {
  auto model = tiny_model(DType::bf16);
  auto method = make_peft("lora", {{"rank", 2}});
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  for (auto& [name, a] : lora.adapters()) fill_values(a->B, 5, -0.2, 0.2);
  Tensor loss = model->forward(tiny_t5_batch()).loss;
  EXPECT_EQ(loss.dtype(), DType::f32);
  loss.backward();
  for (const auto& [name, a] : lora.adapters()) {
    ASSERT_TRUE(a->A.grad().defined()) << name;
    EXPECT_EQ(a->A.grad().dtype(), DType::f32);
    EXPECT_EQ(a->B.grad().dtype(), DType::f32);
  }
}

TEST(PeftLora, hugging_face_peft_export_round_trip) {
  auto model = tiny_model();
  auto method = make_peft("lora", {{"rank", 2}, {"alpha", 16.0}, {"dropout", 0.05}});
  method->attach(*model);
  auto& lora = dynamic_cast<Lora&>(*method);
  uint64_t seed = 40;
  for (auto& [name, a] : lora.adapters()) fill_values(a->B, seed++, -0.3, 0.3);
  model->eval();
  const Tensor expected = logits_of(*model, tiny_t5_batch());
  const std::string dir = temp_dir("hf_lora");
  export_hf_peft(lora, *model, dir, "google/t5-small-lm-adapt");

  // The names and shapes PEFT 0.21 writes for T5 (checked against its save_pretrained).
  SafetensorsFile f = SafetensorsFile::open(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.size(), 2u * (2 + 2 * 2) * 2);  // q, v of 2 encoder + 4 decoder attentions
  const auto& a = f.info("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(a.dtype, "F32");
  EXPECT_EQ(
      f.info("base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight").shape,
      (std::vector<int64_t>{12, 2}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  std::ifstream cfg_in(dir + "/adapter_config.json");
  const json cfg = json::parse(cfg_in);
  EXPECT_EQ(cfg.at("peft_type"), "LORA");
  EXPECT_EQ(cfg.at("task_type"), "SEQ_2_SEQ_LM");
  EXPECT_EQ(cfg.at("r"), 2);
  EXPECT_EQ(cfg.at("lora_alpha"), 16);
  EXPECT_TRUE(cfg.at("lora_alpha").is_number_integer());
  EXPECT_DOUBLE_EQ(cfg.at("lora_dropout").get<double>(), 0.05);
  EXPECT_EQ(cfg.at("target_modules"), json({"q", "v"}));
  EXPECT_EQ(cfg.at("base_model_name_or_path"), "google/t5-small-lm-adapt");
  EXPECT_EQ(cfg.at("bias"), "none");
  EXPECT_FALSE(cfg.at("use_rslora").get<bool>());

  auto fresh = tiny_model();
  fresh->eval();
  auto imported = import_hf_peft(dir, *fresh);
  ASSERT_EQ(imported->name(), "lora");
  EXPECT_DOUBLE_EQ(dynamic_cast<Lora&>(*imported).alpha(), 16.0);
  EXPECT_DOUBLE_EQ(dynamic_cast<Lora&>(*imported).dropout(), 0.05);
  EXPECT_EQ(values(logits_of(*fresh, tiny_t5_batch())), values(expected));

  json bad = cfg;
  bad["use_dora"] = true;
  EXPECT_THROW_MSG(lora_settings_from_hf(bad), "use_dora = true: DoRA is not supported");
  // Inits that leave the base weights alone import; those PEFT applies to the base refuse.
  for (const json& init :
       {json(true), json(false), json("gaussian"), json("eva"), json("orthogonal")}) {
    bad = cfg;
    bad["init_lora_weights"] = init;
    EXPECT_NO_THROW(lora_settings_from_hf(bad)) << init.dump();
  }
  for (const char* init : {"pissa", "pissa_niter_4", "olora", "corda", "loftq", "lora_ga"}) {
    bad = cfg;
    bad["init_lora_weights"] = init;
    EXPECT_THROW_MSG(lora_settings_from_hf(bad), "init_lora_weights = \"" + std::string(init) +
                                                     "\": PEFT rewrites the base model's weights");
  }
  // Settings that change where or how the update applies (PEFT 0.17+ writes them as null).
  for (const auto& [key, value] : {std::pair{"alora_invocation_tokens", json({5, 6})},
                                   std::pair{"target_parameters", json({"q.weight"})},
                                   std::pair{"layer_replication", json({{0, 2}})}}) {
    bad = cfg;
    bad[key] = value;
    EXPECT_THROW_MSG(lora_settings_from_hf(bad), std::string(key) + " = " + value.dump());
  }
  bad = cfg;
  bad["target_modules"] = ".*\\.q";
  EXPECT_EQ(lora_settings_from_hf(bad).at("target_regex"), ".*\\.q");
  bad["peft_type"] = "IA3";
  EXPECT_THROW_MSG(lora_settings_from_hf(bad), "peft_type is \"IA3\"");

  // An adapter tensor stored as integers is refused, not cast to f32 and loaded.
  NamedTensors stored;
  for (const auto& n : f.names()) stored.emplace_back(n, f.tensor(n, DType::f32));
  stored[0].second = stored[0].second.to(DType::i64);
  save_safetensors(dir + "/adapter_model.safetensors", stored);
  auto fresh2 = tiny_model();
  EXPECT_THROW_MSG(import_hf_peft(dir, *fresh2), "tensor " + stored[0].first +
                                                     " is I64: a trained adapter tensor must be "
                                                     "floating point");
  std::filesystem::remove_all(dir);
}

// tests/fixtures/peft_lora_adapter_config.json is what PEFT 0.21.2 wrote for
// get_peft_model(t5, LoraConfig(task_type="SEQ_2_SEQ_LM", r=4, lora_alpha=8,
// lora_dropout=0.1)).save_pretrained(dir): we read it and write the same file.
TEST(PeftLora, hugging_face_peft_config_matches_peft_0_21) {
  std::ifstream in(std::string(SP_FIXTURES_DIR) + "/peft_lora_adapter_config.json");
  ASSERT_TRUE(in.is_open());
  const json theirs = json::parse(in);
  const json settings = lora_settings_from_hf(theirs);
  EXPECT_EQ(settings.at("rank"), 4);
  EXPECT_DOUBLE_EQ(settings.at("alpha").get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(settings.at("dropout").get<double>(), 0.1);
  EXPECT_EQ(settings.at("target_modules"), json({"q", "v"}));
  auto model = tiny_model();
  Lora lora(resolve_peft_settings("lora", settings));
  lora.attach(*model);
  EXPECT_EQ(lora_hf_config(lora), theirs);
}

// PEFT wraps every module a target names, whatever its type: a selector that also names
// norms or blocks (a regex, "layer_norm") is exported as the adapted linears' full names,
// which PEFT matches to exactly those; a list of linear names stays as written.
TEST(PeftLora, hugging_face_export_names_exactly_the_adapted_modules) {
  auto model = tiny_model();
  Lora by_regex(resolve_peft_settings("lora", {{"target_regex", "encoder\\.block\\.0\\..*"}}));
  by_regex.attach(*model);
  std::vector<std::string> adapted;
  for (const auto& [name, a] : by_regex.adapters()) adapted.push_back(name);
  ASSERT_FALSE(adapted.empty());
  EXPECT_EQ(lora_hf_config(by_regex).at("target_modules"), json(adapted));

  auto model2 = tiny_model();
  Lora with_norm(resolve_peft_settings("lora", {{"target_modules", {"q", "layer_norm"}}}));
  with_norm.attach(*model2);
  const json targets = lora_hf_config(with_norm).at("target_modules");
  ASSERT_EQ(targets.size(), with_norm.adapters().size());  // the q linears, by full name
  for (const auto& t : targets) EXPECT_TRUE(t.get<std::string>().ends_with(".q")) << t;

  auto model3 = tiny_model();
  Lora plain(resolve_peft_settings("lora", {{"target_modules", {"SelfAttention.q", "v"}}}));
  plain.attach(*model3);
  EXPECT_EQ(lora_hf_config(plain).at("target_modules"), json({"SelfAttention.q", "v"}));

  auto model4 = tiny_model();
  Ia3 ia3(resolve_peft_settings("ia3", {{"target_regex", ".*\\.(k|wo)"}}));
  ia3.attach(*model4);
  const json cfg = ia3_hf_config(ia3);
  EXPECT_EQ(cfg.at("target_modules").size(), ia3.adapters().size());
  for (const auto& f : cfg.at("feedforward_modules")) {
    EXPECT_TRUE(f.get<std::string>().ends_with(".wo")) << f;
    EXPECT_NE(std::find(cfg.at("target_modules").begin(), cfg.at("target_modules").end(), f),
              cfg.at("target_modules").end());
  }
  EXPECT_FALSE(cfg.at("feedforward_modules").empty());
}

// --- IA3 -------------------------------------------------------------------------------

TEST(PeftIa3, ones_equal_the_base_model_in_f32_and_bf16) {
  for (DType dtype : {DType::f32, DType::bf16}) {
    auto model = tiny_model(dtype);
    const Tensor base = logits_of(*model, tiny_t5_batch());
    auto method = make_peft("ia3");
    method->attach(*model);
    EXPECT_EQ(values(logits_of(*model, tiny_t5_batch())), values(base)) << dtype_name(dtype);
  }
}

TEST(PeftIa3, vectors_scale_keys_values_and_the_feed_forward_activation) {
  auto model = tiny_model();
  auto method = make_peft("ia3");
  method->attach(*model);
  const NamedTensors p = method->trainable();
  // k and v of 2 encoder + 4 decoder attentions, wo of 4 blocks.
  ASSERT_EQ(p.size(), 2u * 6u + 4u);
  EXPECT_EQ(p[0].first, "encoder.block.0.layer.0.SelfAttention.k.ia3_l");
  EXPECT_EQ(p[0].second.shape(), (Shape{12, 1}));  // [out, 1]
  EXPECT_EQ(p[2].first, "encoder.block.0.layer.1.DenseReluDense.wo.ia3_l");
  EXPECT_EQ(p[2].second.shape(), (Shape{1, 24}));  // [1, in]
  EXPECT_EQ(method->attached_count().trainable, 12 * (6 * 2) + 24 * 4);

  // A scaling of k's output by s equals k's weight rows scaled by s (checked on one layer).
  auto& ia3 = dynamic_cast<Ia3&>(*method);
  Linear& k = model->encoder.block[0]->self_attention->SelfAttention.k;
  Tensor l = p[0].second;
  fill_values(l, 9, 0.5, 1.5);
  Tensor x = sp::testing::test_tensor(Shape{3, 16}, 4, DType::f32);
  const Tensor y = k.forward(x);
  const std::vector<double> s = values(l), base = values(k.base_forward(x)), got = values(y);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 12; ++j) EXPECT_NEAR(got[i * 12 + j], base[i * 12 + j] * s[j], 1e-6);

  // Merge folds every vector into its weight; unmerge restores them.
  uint64_t seed = 20;
  for (auto& [n, t] : method->trainable()) fill_values(t, seed++, 0.5, 1.5);
  const T5Inputs in = tiny_t5_batch();
  const Tensor live = logits_of(*model, in);
  const NamedTensors before = clone_all(model->named_parameters());
  ia3.merge();
  EXPECT_LT(max_abs_diff(logits_of(*model, in), live), 1e-4);
  for (const auto& [n, t] : before) {
    if (n == "encoder.block.0.layer.0.SelfAttention.k.weight") {
      EXPECT_NE(values(k.weight), values(t)) << "merge left k's weight as it was";
    }
  }
  ia3.unmerge();
  const NamedTensors after = model->named_parameters();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_LT(max_abs_diff(after[i].second, before[i].second), 1e-6) << after[i].first;
}

// The same for IA3: vectors loaded into a merged model replace the merged ones.
// A feedforward_modules entry that names no linear (a typo) would scale the target's
// output instead of its input: refused.
TEST(PeftIa3, a_feedforward_entry_naming_no_linear_is_refused) {
  auto model = tiny_model();
  EXPECT_THROW_MSG(make_peft("ia3", {{"feedforward_modules", {"w0"}}})->attach(*model),
                   "feedforward_modules entry 'w0' names no linear layer of the model");
  EXPECT_TRUE(model->find_parameter("shared.weight")->requires_grad());  // left as it was
  // "wo" outside target_modules [k, v] is allowed (it names linears, none of them targets).
  EXPECT_NO_THROW(make_peft("ia3", {{"target_modules", {"k", "v"}}})->attach(*model));
}

// LoRA on [q, k] over IA3 on k fails at k without installing LoRA on q first: the model
// takes the corrected settings afterwards.
TEST(PeftLora, a_failed_attach_installs_nothing) {
  auto model = tiny_model();
  auto ia3 = make_peft(
      "ia3", {{"target_modules", {"k"}}, {"feedforward_modules", nlohmann::json::array()}});
  ia3->attach(*model);
  EXPECT_THROW_MSG(make_peft("lora", {{"target_modules", {"q", "k"}}})->attach(*model),
                   "SelfAttention.k already has an adapter");
  auto lora = make_peft("lora", {{"target_modules", {"q"}}});
  EXPECT_NO_THROW(lora->attach(*model));
  EXPECT_EQ(lora->trainable().size(), 2u * 6u);  // A and B on 6 attentions' q
}

TEST(PeftIa3, load_while_merged_uses_the_loaded_vectors) {
  auto reference = tiny_model();
  auto want = make_peft("ia3");
  want->attach(*reference);
  NamedTensors loaded = clone_all(want->trainable());
  uint64_t seed = 60;
  for (auto& [n, t] : loaded) fill_values(t, seed++, 0.5, 1.5);
  want->load_state(loaded);
  const Tensor expected = logits_of(*reference, tiny_t5_batch());

  auto model = tiny_model();
  const NamedTensors base = clone_all(model->named_parameters());
  auto method = make_peft("ia3");
  method->attach(*model);
  for (auto& [n, t] : method->trainable()) fill_values(t, seed++, 0.5, 1.5);
  auto& ia3 = dynamic_cast<Ia3&>(*method);
  ia3.merge();
  method->load_state(loaded);
  EXPECT_TRUE(ia3.merged());
  EXPECT_LT(max_abs_diff(logits_of(*model, tiny_t5_batch()), expected), 1e-4);
  ia3.unmerge();
  const NamedTensors after = model->named_parameters();
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_LT(max_abs_diff(after[i].second, base[i].second), 1e-5) << after[i].first;
}

TEST(PeftIa3, hugging_face_peft_export_round_trip) {
  auto model = tiny_model();
  auto method = make_peft("ia3");
  method->attach(*model);
  auto& ia3 = dynamic_cast<Ia3&>(*method);
  uint64_t seed = 80;
  for (auto& [name, a] : ia3.adapters()) fill_values(a->l, seed++, 0.5, 1.5);
  model->eval();
  const Tensor expected = logits_of(*model, tiny_t5_batch());
  const std::string dir = temp_dir("hf_ia3");
  export_hf_peft(ia3, *model, dir, "google/t5-small-lm-adapt");

  // The names and shapes PEFT 0.21 writes for T5 (checked against its save_pretrained).
  SafetensorsFile f = SafetensorsFile::open(dir + "/adapter_model.safetensors");
  EXPECT_EQ(f.size(), 2u * 6u + 4u);  // k, v of 2 encoder + 4 decoder attentions, wo of 4
  const auto& k = f.info("base_model.model.encoder.block.0.layer.0.SelfAttention.k.ia3_l");
  EXPECT_EQ(k.shape, (std::vector<int64_t>{12, 1}));
  EXPECT_EQ(k.dtype, "F32");
  EXPECT_EQ(f.info("base_model.model.decoder.block.1.layer.2.DenseReluDense.wo.ia3_l").shape,
            (std::vector<int64_t>{1, 24}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  std::ifstream cfg_in(dir + "/adapter_config.json");
  const json cfg = json::parse(cfg_in);
  // Exactly the keys of IA3Config(task_type="SEQ_2_SEQ_LM").to_dict() in PEFT 0.21.2.
  std::set<std::string> keys;
  for (const auto& [key, v] : cfg.items()) keys.insert(key);
  EXPECT_EQ(keys,
            (std::set<std::string>{"auto_mapping", "base_model_name_or_path", "exclude_modules",
                                   "fan_in_fan_out", "feedforward_modules", "inference_mode",
                                   "init_ia3_weights", "modules_to_save", "peft_type",
                                   "peft_version", "revision", "target_modules", "task_type"}));
  EXPECT_EQ(cfg.at("peft_type"), "IA3");
  EXPECT_EQ(cfg.at("task_type"), "SEQ_2_SEQ_LM");
  EXPECT_EQ(cfg.at("target_modules"), json({"k", "v", "wo"}));
  EXPECT_EQ(cfg.at("feedforward_modules"), json({"wo"}));
  EXPECT_EQ(cfg.at("base_model_name_or_path"), "google/t5-small-lm-adapt");

  auto fresh = tiny_model();
  fresh->eval();
  auto imported = import_hf_peft(dir, *fresh);
  ASSERT_EQ(imported->name(), "ia3");
  EXPECT_EQ(values(logits_of(*fresh, tiny_t5_batch())), values(expected));

  json bad = cfg;
  bad["fan_in_fan_out"] = true;
  EXPECT_THROW_MSG(ia3_settings_from_hf(bad),
                   "[hf_peft:ia3] adapter_config.json: fan_in_fan_out = true: Conv1D-style "
                   "weights is not supported by softprompt's IA3");
  for (const char* key : {"modules_to_save", "exclude_modules", "layers_to_transform"}) {
    bad = cfg;
    bad[key] = json({"lm_head"});
    EXPECT_THROW_MSG(ia3_settings_from_hf(bad), std::string(key) + " = [\"lm_head\"]");
  }
  bad = cfg;
  bad["init_ia3_weights"] = false;  // only PEFT's init; the vectors come from the file
  EXPECT_NO_THROW(ia3_settings_from_hf(bad));
  bad = cfg;
  bad["target_modules"] = ".*\\.(k|wo)";
  bad["feedforward_modules"] = ".*\\.wo";
  const json s = ia3_settings_from_hf(bad, {"encoder.block.0.layer.0.SelfAttention.k",
                                            "encoder.block.0.layer.1.DenseReluDense.wo"});
  EXPECT_EQ(s.at("target_regex"), ".*\\.(k|wo)");
  EXPECT_EQ(s.at("feedforward_modules"), json({"encoder.block.0.layer.1.DenseReluDense.wo"}));
  bad["peft_type"] = "LORA";
  EXPECT_THROW_MSG(ia3_settings_from_hf(bad), "peft_type is \"LORA\"");
  std::filesystem::remove_all(dir);
}

// tests/fixtures/peft/native/ia3/adapter_config.json is what PEFT 0.21.2 wrote for
// get_peft_model(t5, IA3Config(task_type="SEQ_2_SEQ_LM")).save_pretrained(dir) (its T5
// defaults, in its set order): we read it and write the same file.
TEST(PeftIa3, hugging_face_peft_config_matches_peft_0_21) {
  std::ifstream in(std::string(SP_FIXTURES_DIR) + "/peft/native/ia3/adapter_config.json");
  ASSERT_TRUE(in.is_open());
  const json theirs = json::parse(in);
  const json settings = ia3_settings_from_hf(theirs);
  EXPECT_EQ(settings.at("target_modules"), json({"wo", "k", "v"}));
  EXPECT_EQ(settings.at("feedforward_modules"), json({"wo"}));
  auto model = tiny_model();
  Ia3 ia3(resolve_peft_settings("ia3", settings));
  ia3.attach(*model);
  EXPECT_EQ(ia3_hf_config(ia3, theirs.at("base_model_name_or_path")), theirs);

  // Targets k, v with the default feed-forward "wo" attach no feed-forward vector: PEFT
  // would refuse "wo" as no subset of target_modules, so it is left out.
  auto model2 = tiny_model();
  Ia3 kv(resolve_peft_settings("ia3", {{"target_modules", {"k", "v"}}}));
  kv.attach(*model2);
  EXPECT_EQ(ia3_hf_config(kv).at("feedforward_modules"), json::array());
}

// --- prefix tuning ---------------------------------------------------------------------

TEST(PeftPrefix, attention_matches_a_hand_computed_layer) {
  auto model = tiny_model();
  auto method = make_peft("prefix_tuning", {{"length", 2}, {"seed", 5}});
  method->attach(*model);
  auto& prefix = dynamic_cast<PrefixTuning&>(*method);
  const T5Attention& attn = model->encoder.block[0]->self_attention->SelfAttention;
  ASSERT_TRUE(attn.kv_hook);

  const int64_t B = 2, T = 3, D = 16, H = 2, dk = 6, P = 2, I = H * dk, S = P + T;
  Tensor x = sp::testing::test_tensor(Shape{B, T, D}, 11, DType::f32);
  Tensor mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 0}, Shape{B, T});
  Tensor bias = attn.compute_bias(T, T, true) +
                t5_additive_mask(mask, T, T, false, 0, DType::f32, Device::cpu());  // [B, H, T, T]
  const std::vector<double> got = values(attn.forward(x, bias));

  // By hand: keys and values are the prefix rows then the projected tokens; the prefix
  // columns of the bias are 0.
  NamedTensors pre = prefix.prefixes();
  ASSERT_EQ(pre[0].first, "encoder.block.0.layer.0.SelfAttention.prefix_key");
  const std::vector<double> pk = values(pre[0].second), pv = values(pre[1].second);
  const std::vector<double> xs = values(x), wq = values(attn.q.weight), wk = values(attn.k.weight),
                            wv = values(attn.v.weight), wo = values(attn.o.weight),
                            bs = values(bias);
  auto project = [&](const std::vector<double>& w, int64_t b, int64_t t, int64_t col) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += xs[(b * T + t) * D + d] * w[col * D + d];
    return s;
  };
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> ctx(T * I, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> score(S);
        for (int64_t s = 0; s < S; ++s) {
          double v = 0;
          for (int64_t e = 0; e < dk; ++e) {
            const int64_t col = h * dk + e;
            const double key = s < P ? pk[s * I + col] : project(wk, b, s - P, col);
            v += project(wq, b, t, col) * key;
          }
          score[s] = v + (s < P ? 0.0 : bs[((b * H + h) * T + t) * T + (s - P)]);
        }
        double mx = score[0], z = 0;
        for (double v : score) mx = std::max(mx, v);
        for (double& v : score) z += (v = std::exp(v - mx));
        for (int64_t e = 0; e < dk; ++e) {
          const int64_t col = h * dk + e;
          double c = 0;
          for (int64_t s = 0; s < S; ++s)
            c += score[s] / z * (s < P ? pv[s * I + col] : project(wv, b, s - P, col));
          ctx[t * I + col] = c;
        }
      }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) {
        double y = 0;
        for (int64_t i = 0; i < I; ++i) y += ctx[t * I + i] * wo[d * I + i];
        EXPECT_NEAR(got[(b * T + t) * D + d], y, 1e-5) << "b " << b << " t " << t << " d " << d;
      }
  }
}

TEST(PeftPrefix, chosen_layers_and_parameter_names) {
  auto model = tiny_model();
  auto method = make_peft("prefix_tuning", {{"length", 4}, {"attention", {"decoder_cross"}}});
  method->attach(*model);
  const NamedTensors p = method->trainable();
  ASSERT_EQ(p.size(), 4u);  // 2 decoder blocks x (key, value)
  EXPECT_EQ(p[0].first, "decoder.block.0.layer.1.EncDecAttention.prefix_key");
  EXPECT_EQ(p[3].first, "decoder.block.1.layer.1.EncDecAttention.prefix_value");
  EXPECT_EQ(p[0].second.shape(), (Shape{4, 12}));
  EXPECT_FALSE(model->encoder.block[0]->self_attention->SelfAttention.kv_hook);
  EXPECT_FALSE(model->decoder.block[0]->self_attention->SelfAttention.kv_hook);
  EXPECT_TRUE(model->decoder.block[0]->cross_attention->EncDecAttention.kv_hook);
  EXPECT_THROW_MSG(make_peft("prefix_tuning", {{"attention", {"encoder_cross"}}}),
                   "attention[0] is \"encoder_cross\"");
  EXPECT_THROW_MSG(make_peft("prefix_tuning", {{"length", 0}}),
                   "length must be in [1, 65536], got 0");
  EXPECT_THROW_MSG(make_peft("prefix_tuning", {{"hidden", 65537}}),
                   "hidden must be in [1, 65536], got 65537");
}

// A second prefix (or prompt) method on one model would silently replace the first's hooks,
// leaving its parameters without gradients.
TEST(PeftPrefix, a_second_method_on_one_model_is_refused) {
  auto model = tiny_model();
  make_peft("prefix_tuning", {{"length", 2}, {"attention", {"decoder_cross"}}})->attach(*model);
  EXPECT_THROW_MSG(make_peft("prefix_tuning", {{"length", 2}})->attach(*model),
                   "decoder.block.0.layer.1.EncDecAttention already has prefixes");
  // Other layers are free.
  EXPECT_NO_THROW(
      make_peft("prefix_tuning", {{"length", 2}, {"attention", {"encoder_self"}}})->attach(*model));
  make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}})->attach(*model);
  EXPECT_THROW_MSG(
      make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}})->attach(*model),
      "the model already has a prompt");
}

// The merged save writes the tensors before the config: a save that fails at the tensors
// leaves the directory's config as it was.
TEST(PeftPrefix, a_failed_merged_save_keeps_the_old_config) {
  TempDir dir;
  const std::string out = dir / "prefix";
  auto model = tiny_model();
  auto direct = make_peft("prefix_tuning", {{"length", 2}});
  direct->attach(*model);
  direct->save(out);
  const std::string config = read_text(out + "/peft_config.json");
  // The tensors' file cannot be replaced: a non-empty directory stands in its place.
  std::filesystem::remove(out + "/peft_model.safetensors");
  std::filesystem::create_directories(out + "/peft_model.safetensors/x");
  auto model2 = tiny_model();
  auto mlp = make_peft("prefix_tuning", {{"length", 3}, {"reparameterize", true}, {"hidden", 4}});
  mlp->attach(*model2);
  EXPECT_ANY_THROW(mlp->save(out));
  EXPECT_EQ(read_text(out + "/peft_config.json"), config);
}

TEST(PeftPrefix, mlp_merge_keeps_outputs_and_drops_the_mlp) {
  auto model = tiny_model();
  auto method =
      make_peft("prefix_tuning", {{"length", 3}, {"reparameterize", true}, {"hidden", 10}});
  method->attach(*model);
  auto& prefix = dynamic_cast<PrefixTuning&>(*method);
  NamedTensors p = method->trainable();
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].first, "prefix_mlp.embedding");
  EXPECT_EQ(p[0].second.shape(), (Shape{3, 16}));
  // 2 encoder self + 2 decoder self + 2 cross sites, keys and values of 2 x 6 each.
  EXPECT_EQ(p[3].second.shape(), (Shape{6 * 2 * 12, 10}));
  const Tensor before = logits_of(*model, tiny_t5_batch());
  prefix.merge();
  EXPECT_FALSE(prefix.reparameterized());
  p = method->trainable();
  ASSERT_EQ(p.size(), 12u);
  EXPECT_EQ(p[0].first, "encoder.block.0.layer.0.SelfAttention.prefix_key");
  EXPECT_TRUE(p[0].second.requires_grad());
  EXPECT_LT(max_abs_diff(logits_of(*model, tiny_t5_batch()), before), 1e-5);
}

TEST(PeftPrefix, greedy_generate_with_the_cache_equals_full_decoding) {
  auto model = tiny_model();
  const T5Inputs in = tiny_t5_batch();
  const int64_t steps = 6;
  const auto base_tokens = greedy_generate(*model, in.input_ids, in.attention_mask, {steps});
  auto method = make_peft("prefix_tuning", {{"length", 3}, {"init_std", 2.0}, {"seed", 1}});
  method->attach(*model);
  const auto cached = greedy_generate(*model, in.input_ids, in.attention_mask, {steps});

  // Without the cache: the whole decoder input again at every step, as transformers does
  // with use_cache=False; finished rows are fed pad like greedy_generate feeds them.
  NoGradGuard no_grad;
  T5Encoded enc = model->encode_inputs(in);
  const int64_t B = 2;
  std::vector<std::vector<int64_t>> seqs(B, {0}), out(B);
  std::vector<bool> done(B, false);
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> flat;
    for (auto& s : seqs) flat.insert(flat.end(), s.begin(), s.end());
    Tensor ids = Tensor::from_vector(flat, Shape{B, step + 1});
    Tensor logits = model->lm_logits(model->decode(ids, enc.hidden, enc.mask));  // [B, t, V]
    std::vector<int64_t> best = argmax(logits.select(1, step), -1).to_vector<int64_t>();
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) {
        seqs[b].push_back(0);
        continue;
      }
      seqs[b].push_back(best[b]);
      out[b].push_back(best[b]);
      done[b] = best[b] == 1;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  EXPECT_EQ(cached, out);
  EXPECT_NE(cached, base_tokens) << "the prefix should change what this model generates";
}

}  // namespace
}  // namespace sp
