// Adapters written by Hugging Face PEFT itself (tests/fixtures/peft/native, made by
// scripts/make_peft_native_fixtures.py with PEFT 0.21.2's get_peft_model and
// save_pretrained), imported with import_hf_peft and run against PEFT's logits. Unlike our
// own export (two identical blocks), PEFT's seq2seq prompt_embeddings [2p, D] holds two
// different blocks, of which PeftModelForSeq2SeqLM reads the first; its LoRA factors
// are all nonzero, so a misread factor, name or scale shows in the logits; and its IA3
// vectors are all away from one, so a vector misread or applied on the wrong side shows too;
// its LN tuning norms all differ from the base model's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "models/io/safetensors.h"
#include "models/t5/checkpoint.h"
#include "nn/peft/hf_peft_format.h"
#include "nn/peft/ia3.h"
#include "nn/peft/ln_tuning.h"
#include "nn/peft/lora.h"
#include "nn/peft/prompt_tuning.h"
#include "quiet_peft_log.h"
#include "temp_dir.h"

namespace sp {
namespace {

const std::string kNative = std::string(SP_FIXTURES_DIR) + "/peft/native";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.is_open()) << path;
  return nlohmann::json::parse(in);
}

// One fixture: PEFT's cases and logits, and the base model they were computed on.
struct NativeCases {
  explicit NativeCases(const std::string& method)
      : json(read_json(kNative + "/" + method + "_cases.json")),
        tolerance(json.at("tolerance").get<double>()),
        model_dir(kNative + "/" + json.at("model").get<std::string>()) {}

  size_t size() const { return json.at("cases").size(); }

  // Case i's logits [1, T, V] from model, flattened.
  std::vector<float> logits(const T5ForConditionalGeneration& model, size_t i) const {
    const auto& c = json.at("cases")[i];
    auto ids = c.at("input_ids").get<std::vector<int64_t>>();
    auto dec = c.at("decoder_input_ids").get<std::vector<int64_t>>();
    T5Inputs in;
    in.input_ids = Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())});
    in.decoder_input_ids = Tensor::from_vector(dec, Shape{1, static_cast<int64_t>(dec.size())});
    NoGradGuard no_grad;
    return model.forward(in).logits.to_vector<float>();
  }

  // PEFT's logits for case i, flattened.
  std::vector<float> peft(size_t i) const {
    std::vector<float> out;
    for (const auto& row : json.at("peft_logits")[i])
      for (float v : row.get<std::vector<float>>()) out.push_back(v);
    return out;
  }

  // max |model - PEFT| over case i's logits.
  double diff(const T5ForConditionalGeneration& model, size_t i) const {
    const std::vector<float> got = logits(model, i), want = peft(i);
    EXPECT_EQ(got.size(), want.size()) << "case " << i;
    double worst = 0;
    for (size_t j = 0; j < std::min(got.size(), want.size()); ++j)
      worst = std::max(worst, std::abs(double(got[j]) - double(want[j])));
    return worst;
  }

  // Every case within the tolerance of PEFT's logits.
  void expect_matches(const T5ForConditionalGeneration& model) const {
    for (size_t i = 0; i < size(); ++i) EXPECT_LE(diff(model, i), tolerance) << "case " << i;
  }

  // Every case far from PEFT's logits (the comparison is not vacuous).
  void expect_far_from(const T5ForConditionalGeneration& model) const {
    for (size_t i = 0; i < size(); ++i) EXPECT_GT(diff(model, i), 10 * tolerance) << "case " << i;
  }

  std::unique_ptr<T5ForConditionalGeneration> load_model() const {
    auto model = load_t5(model_dir);
    model->eval();
    return model;
  }

  nlohmann::json json;
  double tolerance;
  std::string model_dir;
};

// Without its adapter the base model's logits are off PEFT's by more than the tolerance in
// every case, for every method: the comparisons below are not vacuous.
TEST(HfPeftNative, every_adapter_changes_the_logits) {
  for (const char* method : {"prompt_tuning", "lora", "ia3", "ln_tuning"}) {
    SCOPED_TRACE(method);
    const NativeCases cases(method);
    cases.expect_far_from(*cases.load_model());
  }
}

// --- prompt tuning ---------------------------------------------------------------------

TEST(HfPeftNative, prompt_tuning_import_reproduces_peft_logits) {
  QuietPeftLog quiet;
  const NativeCases cases("prompt_tuning");
  auto model = cases.load_model();
  auto m = import_hf_peft(kNative + "/prompt_tuning", *model);
  ASSERT_EQ(m->name(), "prompt_tuning");
  EXPECT_EQ(dynamic_cast<PromptTuning&>(*m).length(), 3);
  cases.expect_matches(*model);
}

// PEFT's two blocks differ; the import takes the first, bit for bit, and the same file with
// the blocks swapped gives other logits than PEFT's.
TEST(HfPeftNative, prompt_tuning_reads_the_first_block) {
  QuietPeftLog quiet;
  const NativeCases cases("prompt_tuning");
  const int64_t p = 3, d = 16;
  const Tensor emb = SafetensorsFile::open(kNative + "/prompt_tuning/adapter_model.safetensors")
                         .tensor("prompt_embeddings", DType::f32);
  ASSERT_EQ(emb.shape(), (Shape{2 * p, d}));
  const std::vector<float> rows = emb.to_vector<float>();
  const std::vector<float> first(rows.begin(), rows.begin() + p * d);
  const std::vector<float> second(rows.begin() + p * d, rows.end());
  for (int64_t j = 0; j < p * d; ++j) ASSERT_NE(first[j], second[j]) << "element " << j;

  auto model = cases.load_model();
  auto m = import_hf_peft(kNative + "/prompt_tuning", *model);
  const Tensor& prompt = dynamic_cast<PromptTuning&>(*m).prompt();
  EXPECT_EQ(prompt.shape(), (Shape{1, p, d}));
  EXPECT_EQ(prompt.to_vector<float>(), first);

  TempDir dir;
  std::filesystem::copy_file(kNative + "/prompt_tuning/adapter_config.json",
                             dir / "adapter_config.json");
  std::vector<float> swapped = second;
  swapped.insert(swapped.end(), first.begin(), first.end());
  save_safetensors(dir / "adapter_model.safetensors",
                   {{"prompt_embeddings", Tensor::from_vector(swapped, Shape{2 * p, d})}});
  auto model2 = cases.load_model();
  auto m2 = import_hf_peft(dir.path.string(), *model2);
  EXPECT_EQ(dynamic_cast<PromptTuning&>(*m2).prompt().to_vector<float>(), second);
  cases.expect_far_from(*model2);
}

// --- LoRA ------------------------------------------------------------------------------

TEST(HfPeftNative, lora_import_reproduces_peft_logits) {
  QuietPeftLog quiet;
  const NativeCases cases("lora");
  auto model = cases.load_model();
  auto m = import_hf_peft(kNative + "/lora", *model);
  ASSERT_EQ(m->name(), "lora");
  const auto& lora = dynamic_cast<Lora&>(*m);
  EXPECT_EQ(lora.rank(), 2);
  EXPECT_DOUBLE_EQ(lora.alpha(), 4.0);
  // q and v of 2 encoder + 4 decoder attentions, wo of 4 blocks: each with PEFT's factors.
  ASSERT_EQ(lora.adapters().size(), 2u * 6u + 4u);
  const SafetensorsFile file = SafetensorsFile::open(kNative + "/lora/adapter_model.safetensors");
  EXPECT_EQ(file.size(), 2 * lora.adapters().size());
  int wo = 0;
  for (const auto& [name, a] : lora.adapters()) {
    SCOPED_TRACE(name);
    wo += name.ends_with(".wo");
    const std::string key = "base_model.model." + name;
    EXPECT_EQ(a->A.to_vector<float>(),
              file.tensor(key + ".lora_A.weight", DType::f32).to_vector<float>());
    const std::vector<float> b = a->B.to_vector<float>();
    EXPECT_EQ(b, file.tensor(key + ".lora_B.weight", DType::f32).to_vector<float>());
    EXPECT_TRUE(std::none_of(b.begin(), b.end(), [](float v) { return v == 0.0f; }));
  }
  EXPECT_EQ(wo, 4);
  cases.expect_matches(*model);
}

// --- IA3 -------------------------------------------------------------------------------

TEST(HfPeftNative, ia3_import_reproduces_peft_logits) {
  QuietPeftLog quiet;
  const NativeCases cases("ia3");
  auto model = cases.load_model();
  auto m = import_hf_peft(kNative + "/ia3", *model);
  ASSERT_EQ(m->name(), "ia3");
  const auto& ia3 = dynamic_cast<Ia3&>(*m);
  // k and v of 2 encoder + 4 decoder attentions scale their output ([out, 1]); wo of 4
  // blocks scales its input ([1, in]): each with PEFT's vector, bit for bit.
  ASSERT_EQ(ia3.adapters().size(), 2u * 6u + 4u);
  const SafetensorsFile file = SafetensorsFile::open(kNative + "/ia3/adapter_model.safetensors");
  EXPECT_EQ(file.size(), ia3.adapters().size());
  int wo = 0;
  for (const auto& [name, a] : ia3.adapters()) {
    SCOPED_TRACE(name);
    const bool ff = name.ends_with(".wo");
    wo += ff;
    EXPECT_EQ(a->feedforward, ff);
    EXPECT_EQ(a->l.shape()[ff ? 1 : 0], a->l.numel());
    const std::vector<float> l = a->l.to_vector<float>();
    EXPECT_EQ(l, file.tensor("base_model.model." + name + ".ia3_l", DType::f32).to_vector<float>());
    EXPECT_TRUE(std::none_of(l.begin(), l.end(), [](float v) { return v == 1.0f; }));
  }
  EXPECT_EQ(wo, 4);
  cases.expect_matches(*model);
}

// PEFT's file with each attention's k and v vectors swapped (same shapes) imports, and gives
// other logits than PEFT's: each vector must reach its own module. With feedforward_modules
// emptied (wo scaling its output, [d_model, 1]) PEFT's [1, d_ff] wo vectors do not fit.
TEST(HfPeftNative, ia3_vectors_go_to_their_own_modules) {
  QuietPeftLog quiet;
  const NativeCases cases("ia3");
  const SafetensorsFile file = SafetensorsFile::open(kNative + "/ia3/adapter_model.safetensors");
  NamedTensors swapped;
  for (const std::string& key : file.names()) {
    std::string from = key;
    const size_t at = key.rfind(".k.ia3_l");
    const size_t av = key.rfind(".v.ia3_l");
    if (at != std::string::npos) from.replace(at, 2, ".v");
    if (av != std::string::npos) from.replace(av, 2, ".k");
    swapped.emplace_back(key, file.tensor(from, DType::f32));
  }
  TempDir dir;
  std::filesystem::copy_file(kNative + "/ia3/adapter_config.json", dir / "adapter_config.json");
  save_safetensors(dir / "adapter_model.safetensors", swapped);
  auto model = cases.load_model();
  auto m = import_hf_peft(dir.path.string(), *model);
  ASSERT_EQ(dynamic_cast<Ia3&>(*m).adapters().size(), 2u * 6u + 4u);
  cases.expect_far_from(*model);

  nlohmann::json config = read_json(kNative + "/ia3/adapter_config.json");
  config["feedforward_modules"] = nlohmann::json::array();
  TempDir dir2;
  dir2.write("adapter_config.json", config.dump(2));
  std::filesystem::copy_file(kNative + "/ia3/adapter_model.safetensors",
                             dir2 / "adapter_model.safetensors");
  auto model2 = cases.load_model();
  EXPECT_THROW(
      {
        try {
          import_hf_peft(dir2.path.string(), *model2);
        } catch (const std::exception& e) {
          EXPECT_NE(std::string(e.what()).find("DenseReluDense.wo.ia3_l: expected [16, 1], got "
                                               "[1, 32]"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      std::exception);
}

// --- LN tuning -------------------------------------------------------------------------

TEST(HfPeftNative, ln_tuning_import_reproduces_peft_logits) {
  QuietPeftLog quiet;
  const NativeCases cases("ln_tuning");
  auto model = cases.load_model();
  auto m = import_hf_peft(kNative + "/ln_tuning", *model);
  ASSERT_EQ(m->name(), "ln_tuning");
  // Every norm of 2 encoder and 2 decoder blocks and both final norms, PEFT's values.
  const NamedTensors tuned = m->trainable();
  ASSERT_EQ(tuned.size(), 2u * 2u + 1u + 2u * 3u + 1u);
  const SafetensorsFile file =
      SafetensorsFile::open(kNative + "/ln_tuning/adapter_model.safetensors");
  EXPECT_EQ(file.size(), tuned.size());
  for (const auto& [name, t] : tuned) {
    SCOPED_TRACE(name);
    const std::string norm = name.substr(0, name.size() - std::string(".weight").size());
    EXPECT_EQ(t.to_vector<float>(),
              file.tensor("base_model.model." + norm + ".ln_tuning_layers.weight", DType::f32)
                  .to_vector<float>());
  }
  cases.expect_matches(*model);
}

}  // namespace
}  // namespace sp
