// Prompt tuning in Hugging Face PEFT's format, against what PEFT computed
// (tests/fixtures/peft/prompt_tuning, written by scripts/verify_peft_export.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "models/io/safetensors.h"
#include "models/t5/checkpoint.h"
#include "nn/peft/hf_peft_format.h"
#include "nn/peft/prompt_tuning.h"
#include "quiet_peft_log.h"
#include "test_util.h"

namespace sp {
namespace {

const std::string kDir = std::string(SP_FIXTURES_DIR) + "/peft/prompt_tuning";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.is_open()) << path;
  return nlohmann::json::parse(in);
}

// Every case's logits against PEFT's.
void expect_peft_logits(const T5ForConditionalGeneration& model) {
  const nlohmann::json c = read_json(kDir + "/cases.json");
  const double tol = c["tolerance"].get<double>();
  NoGradGuard no_grad;
  for (size_t i = 0; i < c["cases"].size(); ++i) {
    auto ids = c["cases"][i]["input_ids"].get<std::vector<int64_t>>();
    auto dec = c["cases"][i]["decoder_input_ids"].get<std::vector<int64_t>>();
    T5Inputs in;
    in.input_ids = Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())});
    in.decoder_input_ids = Tensor::from_vector(dec, Shape{1, static_cast<int64_t>(dec.size())});
    std::vector<float> got = model.forward(in).logits.to_vector<float>();
    std::vector<float> want;
    for (const auto& row : c["peft_logits"][i])
      for (float v : row.get<std::vector<float>>()) want.push_back(v);
    ASSERT_EQ(got.size(), want.size()) << "case " << i;
    double worst = 0;
    for (size_t j = 0; j < got.size(); ++j) worst = std::max(worst, std::abs(double(got[j]) - want[j]));
    EXPECT_LE(worst, tol) << "case " << i;
  }
}

TEST(HfPeftPrompt, our_prompt_matches_peft_logits) {
  QuietPeftLog quiet;
  auto model = load_t5(kDir + "/model");
  auto m = load_peft(kDir + "/prompt", *model);
  expect_peft_logits(*model);
  // Without the prompt the logits differ: the comparison above is not vacuous.
  model->set_input_hook(nullptr);
  const nlohmann::json c = read_json(kDir + "/cases.json");
  T5Inputs in;
  auto ids = c["cases"][0]["input_ids"].get<std::vector<int64_t>>();
  auto dec = c["cases"][0]["decoder_input_ids"].get<std::vector<int64_t>>();
  in.input_ids = Tensor::from_vector(ids, Shape{1, static_cast<int64_t>(ids.size())});
  in.decoder_input_ids = Tensor::from_vector(dec, Shape{1, static_cast<int64_t>(dec.size())});
  NoGradGuard no_grad;
  EXPECT_NE(model->forward(in).logits.to_vector<float>()[0],
            c["peft_logits"][0][0][0].get<float>());
}

TEST(HfPeftPrompt, export_writes_what_peft_reads) {
  QuietPeftLog quiet;
  auto model = load_t5(kDir + "/model");
  auto m = load_peft(kDir + "/prompt", *model);
  const std::string out = (std::filesystem::temp_directory_path() /
                           ("sp_hf_prompt_" + std::to_string(::getpid()))).string();
  export_hf_peft(*m, *model, out);
  EXPECT_EQ(read_json(out + "/adapter_config.json"), read_json(kDir + "/hf/adapter_config.json"));
  SafetensorsFile got = SafetensorsFile::open(out + "/adapter_model.safetensors");
  SafetensorsFile want = SafetensorsFile::open(kDir + "/hf/adapter_model.safetensors");
  ASSERT_EQ(got.names(), std::vector<std::string>{"prompt_embeddings"});
  EXPECT_EQ(got.tensor("prompt_embeddings").shape(), (Shape{6, 16}));
  EXPECT_EQ(got.tensor("prompt_embeddings").to_vector<float>(),
            want.tensor("prompt_embeddings").to_vector<float>());
  std::filesystem::remove_all(out);
}

TEST(HfPeftPrompt, import_reproduces_peft_logits) {
  QuietPeftLog quiet;
  auto model = load_t5(kDir + "/model");
  auto m = import_hf_peft(kDir + "/hf", *model);
  EXPECT_EQ(m->name(), "prompt_tuning");
  EXPECT_EQ(dynamic_cast<PromptTuning&>(*m).length(), 3);
  expect_peft_logits(*model);
}

// PEFT writes null for config fields it leaves unset: a null num_transformer_submodules or
// token_dim takes PEFT's seq2seq default (or no check), and a null or non-string task_type
// gets our message, not a JSON type error.
TEST(HfPeftPrompt, null_config_fields_take_defaults_or_clear_errors) {
  QuietPeftLog quiet;
  auto model = load_t5(kDir + "/model");
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("sp_hf_prompt_null_" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kDir + "/hf/adapter_model.safetensors",
                             dir + "/adapter_model.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  const nlohmann::json config = read_json(kDir + "/hf/adapter_config.json");
  auto write = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json c = config;
    c[key] = value;
    std::ofstream(dir + "/adapter_config.json") << c.dump();
  };
  for (const char* key : {"num_transformer_submodules", "token_dim"}) {
    SCOPED_TRACE(key);
    write(key, nullptr);
    auto m = import_hf_peft(dir, *model);
    EXPECT_EQ(dynamic_cast<PromptTuning&>(*m).length(), 3);
    expect_peft_logits(*model);
    model->set_input_hook(nullptr);
  }
  write("task_type", nullptr);
  EXPECT_THROW_MSG(import_hf_peft(dir, *model), "task_type null is not SEQ_2_SEQ_LM");
  write("task_type", 3);
  EXPECT_THROW_MSG(import_hf_peft(dir, *model), "task_type 3 is not SEQ_2_SEQ_LM");
  write("num_transformer_submodules", "2");
  EXPECT_THROW_MSG(import_hf_peft(dir, *model),
                   "num_transformer_submodules must be an integer, got \"2\"");
  write("token_dim", 8);
  EXPECT_THROW_MSG(import_hf_peft(dir, *model), "token_dim 8 differs from the model's d_model 16");
  std::filesystem::remove_all(dir);
}

TEST(HfPeftPrompt, settings_peft_cannot_hold_are_refused) {
  QuietPeftLog quiet;
  auto model = load_t5(kDir + "/model");
  auto suffix = make_peft("prompt_tuning", {{"length", 2}, {"position", "suffix"}, {"init", "random_uniform"}});
  suffix->attach(*model);
  EXPECT_THROW_MSG(export_hf_peft(*suffix, *model, "/tmp/unused"), "suffix");
  auto model2 = load_t5(kDir + "/model");
  auto multi = make_peft("prompt_tuning", {{"length", 2}, {"num_prompts", 2}, {"init", "random_uniform"}});
  multi->attach(*model2);
  EXPECT_THROW_MSG(export_hf_peft(*multi, *model2, "/tmp/unused"), "one prompt per adapter");
  EXPECT_THROW_MSG(hf_peft_converter_for_type("PROMPT_TUNNING"), "did you mean 'PROMPT_TUNING'");
  EXPECT_THROW_MSG(hf_peft_converter_for_type("PREFIX_TUNING"),
                   "no Hugging Face PEFT converter for peft_type 'PREFIX_TUNING'");
}

}  // namespace
}  // namespace sp
