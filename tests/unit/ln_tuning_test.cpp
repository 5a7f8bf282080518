// LN tuning (nn/peft/ln_tuning.h) on a tiny T5: only the norms train, in f32 and in a bf16
// run (the norms kept f32 inside a bf16 backbone), save / load, target selection and the
// Hugging Face PEFT export / import.
#include "nn/peft/ln_tuning.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "experiments/training/dtype_policy.h"
#include "models/io/safetensors.h"
#include "models/t5/t5_model.h"
#include "nn/optim/adamw.h"
#include "nn/peft/hf_peft_format.h"
#include "quiet_peft_log.h"
#include "temp_dir.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

using nlohmann::json;

// 2 encoder blocks (2 norms each), 2 decoder blocks (3 each), 2 final norms.
constexpr size_t kNorms = 2 * 2 + 2 * 3 + 2;

std::unique_ptr<T5ForConditionalGeneration> tiny_model(uint64_t seed = 7) {
  auto m = std::make_unique<T5ForConditionalGeneration>(tiny_t5_config(/*gated=*/true));
  Generator gen(seed);
  m->init_weights(&gen);
  m->eval();
  return m;
}

std::vector<float> logits_of(const T5ForConditionalGeneration& m) {
  NoGradGuard no_grad;
  return m.forward(tiny_t5_batch()).logits.to(DType::f32).to_vector<float>();
}

// Every parameter's values by name, widened to f32.
std::map<std::string, std::vector<float>> snapshot(const Module& m) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : m.named_parameters())
    out[name] = t.to(DType::f32).to_vector<float>();
  return out;
}

// One AdamW step on the method's trainable tensors; returns the names whose values changed.
std::set<std::string> train_one_step(T5ForConditionalGeneration& model, const PeftMethod& ln) {
  const NamedTensors tr = ln.trainable();
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (const auto& [n, t] : tr) params.push_back(t), names.push_back(n);
  optim::AdamW opt(params, names, {.weight_decay = 0});
  const auto before = snapshot(model);
  const Tensor loss = model.forward(tiny_t5_batch()).loss;
  EXPECT_TRUE(std::isfinite(loss.item()));
  loss.backward();
  opt.step(0.01);
  std::set<std::string> changed;
  for (const auto& [name, values] : snapshot(model))
    if (values != before.at(name)) changed.insert(name);
  return changed;
}

TEST(LnTuning, trains_only_the_norms_and_round_trips) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto ln = make_peft("ln_tuning");
  ln->attach(*model);
  const NamedTensors tr = ln->trainable();
  ASSERT_EQ(tr.size(), kNorms);
  std::set<std::string> norms;
  for (const auto& [name, t] : tr) {
    EXPECT_TRUE(name.ends_with("layer_norm.weight")) << name;
    EXPECT_EQ(t.shape(), (Shape{16}));
    norms.insert(name);
  }
  EXPECT_EQ(ln->parameter_count(*model).trainable, static_cast<int64_t>(kNorms) * 16);
  for (const auto& [name, t] : model->named_parameters())
    EXPECT_EQ(t.requires_grad(), norms.count(name) == 1) << name;

  EXPECT_EQ(train_one_step(*model, *ln), norms);  // every norm moved, nothing else did
  for (const auto& [name, t] : model->named_parameters()) {
    if (!norms.count(name)) {
      EXPECT_FALSE(t.grad().defined()) << name;
    }
  }

  TempDir dir;
  ln->save(dir.path.string());
  const std::vector<float> tuned = logits_of(*model);
  auto fresh = tiny_model();
  EXPECT_NE(logits_of(*fresh), tuned);
  auto again = load_peft(dir.path.string(), *fresh);
  EXPECT_EQ(again->name(), "ln_tuning");
  EXPECT_EQ(logits_of(*fresh), tuned);
}

// A bf16 run keeps the tuned norms f32 inside a bf16 backbone; the step runs in bf16 and
// changes the norms only.
TEST(LnTuning, trains_f32_norms_in_a_bf16_backbone) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto ln = make_peft("ln_tuning");
  ln->attach(*model);
  use_bf16_backbone(*model);
  EXPECT_EQ(model->dtype(), DType::bf16);
  std::set<std::string> norms;
  for (const auto& [name, t] : ln->trainable()) {
    EXPECT_EQ(t.dtype(), DType::f32) << name;
    norms.insert(name);
  }
  ASSERT_EQ(norms.size(), kNorms);
  EXPECT_EQ(model->forward(tiny_t5_batch()).logits.dtype(), DType::bf16);
  EXPECT_EQ(train_one_step(*model, *ln), norms);
  for (const auto& [name, t] : model->named_parameters())
    EXPECT_EQ(t.dtype(), norms.count(name) ? DType::f32 : DType::bf16) << name;
}

TEST(LnTuning, targets_choose_the_norms) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto finals = make_peft("ln_tuning", {{"target_modules", {"final_layer_norm"}}});
  finals->attach(*model);
  const NamedTensors tr = finals->trainable();
  ASSERT_EQ(tr.size(), 2u);
  EXPECT_EQ(tr[0].first, "encoder.final_layer_norm.weight");
  EXPECT_EQ(tr[1].first, "decoder.final_layer_norm.weight");

  auto model2 = tiny_model();
  auto encoder = make_peft("ln_tuning", {{"target_regex", "encoder\\..*"}});
  encoder->attach(*model2);
  EXPECT_EQ(encoder->trainable().size(), 2u * 2u + 1u);
  // PEFT would wrap every module the regex names; the export names the five norms instead.
  TempDir dir;
  export_hf_peft(*encoder, *model2, dir.path.string());
  std::ifstream in(dir / "adapter_config.json");
  EXPECT_EQ(nlohmann::json::parse(in).at("target_modules").size(), 5u);
  auto fresh = tiny_model();
  EXPECT_EQ(import_hf_peft(dir.path.string(), *fresh)->trainable().size(), 5u);

  auto model3 = tiny_model();
  auto none = make_peft("ln_tuning", {{"target_modules", {"q"}}});
  EXPECT_THROW_MSG(none->attach(*model3),
                   "[peft:ln_tuning] no norm matches target [\"q\"]; the model's norms are named "
                   "like encoder.block.0.layer.0.layer_norm");
  auto model4 = tiny_model();
  auto typo = make_peft("ln_tuning", {{"target_modules", {"layer_norm", "wo"}}});
  EXPECT_THROW_MSG(typo->attach(*model4),
                   "[peft:ln_tuning] target_modules entry \"wo\" names no "
                   "norm (T5's are layer_norm and final_layer_norm)");
  EXPECT_THROW_MSG(make_peft("ln_tuning", {{"target_modules", json::array()}}),
                   "target_modules must be a non-empty list");
}

TEST(LnTuning, hugging_face_peft_export_round_trip) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto ln = make_peft("ln_tuning");
  ln->attach(*model);
  train_one_step(*model, *ln);
  const std::vector<float> tuned = logits_of(*model);
  TempDir dir;
  export_hf_peft(*ln, *model, dir.path.string(), "google/t5-small-lm-adapt");

  // The names, shapes and config PEFT 0.21 writes for T5 (checked against its save_pretrained).
  const SafetensorsFile f = SafetensorsFile::open(dir / "adapter_model.safetensors");
  EXPECT_EQ(f.size(), kNorms);
  const auto& w =
      f.info("base_model.model.encoder.block.0.layer.0.layer_norm.ln_tuning_layers.weight");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{16}));
  EXPECT_EQ(w.dtype, "F32");
  f.info("base_model.model.decoder.final_layer_norm.ln_tuning_layers.weight");
  std::ifstream in(dir / "adapter_config.json");
  const nlohmann::json cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg.at("peft_type"), "LN_TUNING");
  EXPECT_EQ(cfg.at("task_type"), "SEQ_2_SEQ_LM");
  // The tuned norms by full name, which PEFT matches exactly (a list or regex that also
  // named other modules would make PEFT wrap those too).
  ASSERT_EQ(cfg.at("target_modules").size(), kNorms);
  EXPECT_EQ(cfg.at("target_modules")[0], "encoder.block.0.layer.0.layer_norm");
  EXPECT_EQ(cfg.at("target_modules")[kNorms - 1], "decoder.final_layer_norm");
  EXPECT_EQ(cfg.at("base_model_name_or_path"), "google/t5-small-lm-adapt");

  auto fresh = tiny_model();
  auto imported = import_hf_peft(dir.path.string(), *fresh);
  EXPECT_EQ(imported->name(), "ln_tuning");
  EXPECT_EQ(logits_of(*fresh), tuned);

  // What our LN tuning cannot hold is refused by name.
  nlohmann::json excluded = cfg;
  excluded["exclude_modules"] = {"final_layer_norm"};
  std::ofstream(dir / "adapter_config.json") << excluded.dump();
  auto fresh2 = tiny_model();
  EXPECT_THROW_MSG(import_hf_peft(dir.path.string(), *fresh2), "exclude_modules");
}

}  // namespace
}  // namespace sp
