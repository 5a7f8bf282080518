// The PEFT registry, settings resolution, parameter counts, save / load, model tuning and
// the T5 host's hook points.
#include "nn/peft/peft.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "models/t5/t5_model.h"
#include "nn/optim/adamw.h"
#include "nn/peft/model_tuning.h"
#include "quiet_peft_log.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

T5Config tiny() {
  T5Config c = tiny_t5_config();
  c.d_kv = 4;
  c.num_layers = 1;
  return c;
}

std::unique_ptr<T5ForConditionalGeneration> tiny_model(uint64_t seed = 3) {
  auto m = std::make_unique<T5ForConditionalGeneration>(tiny());
  Generator gen(seed);
  m->init_weights(&gen);
  return m;
}

T5Inputs batch() {
  T5Inputs in;
  in.input_ids = Tensor::from_vector(std::vector<int64_t>{5, 6, 7, 1, 8, 9, 1, 0}, Shape{2, 4});
  in.attention_mask =
      Tensor::from_vector(std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 4});
  in.labels = Tensor::from_vector(std::vector<int64_t>{3, 1, 4, 1}, Shape{2, 2});
  return in;
}

TEST(Peft, registry_lists_methods_and_suggests_names) {
  std::vector<std::string> names;
  for (const auto& m : peft_methods()) names.push_back(m.name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "prompt_tuning"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "model_tuning"), names.end());
  EXPECT_THROW_MSG(make_peft("promt_tuning"), "unknown method 'promt_tuning'; did you mean 'prompt_tuning'?");
  EXPECT_THROW_MSG(peft_method("zzz"), "known: ");
}

TEST(Peft, settings_resolve_with_defaults_and_type_checks) {
  nlohmann::json s = resolve_peft_settings("prompt_tuning", {{"length", 7}});
  EXPECT_EQ(s["length"], 7);
  EXPECT_EQ(s["init"], "class_labels");
  EXPECT_EQ(s["init_range"], 0.5);
  EXPECT_EQ(s["vocab_top_n"], 5000);
  EXPECT_THROW_MSG(resolve_peft_settings("prompt_tuning", {{"lenght", 7}}),
                   "unknown setting 'lenght'; did you mean 'length'?");
  EXPECT_THROW_MSG(resolve_peft_settings("prompt_tuning", {{"length", "7"}}),
                   "setting 'length' must be an integer");
  EXPECT_THROW_MSG(resolve_peft_settings("prompt_tuning", {{"length", 7.5}}),
                   "setting 'length' must be an integer");
  // A float default takes integers too.
  EXPECT_EQ(resolve_peft_settings("prompt_tuning", {{"init_range", 1}})["init_range"], 1);
  EXPECT_THROW_MSG(resolve_peft_settings("prompt_tuning", {{"class_label_ids", 3}}),
                   "setting 'class_label_ids' must be a list");
  EXPECT_THROW_MSG(resolve_peft_settings("prompt_tuning", nlohmann::json::array()),
                   "settings must be a mapping");
  EXPECT_THROW_MSG(resolve_peft_settings("model_tuning", {{"rank", 4}}),
                   "[peft:model_tuning] unknown setting 'rank'");
}

// A seed is a generator seed: a negative one is refused naming the setting, not wrapped to
// 2^64 - 1; the largest unsigned 64-bit value is a seed like any other.
TEST(Peft, negative_seed_is_refused_naming_the_setting) {
  for (const char* method : {"prompt_tuning", "lora", "prefix_tuning"}) {
    SCOPED_TRACE(method);
    EXPECT_THROW_MSG(make_peft(method, {{"seed", -1}}),
                     std::string("[peft:") + method + "] setting 'seed' must be >= 0, got -1");
    EXPECT_NO_THROW(make_peft(method, {{"seed", UINT64_MAX}}));
  }
}

TEST(Peft, parameter_count_describe) {
  ParameterCount c{10240, 60516864};
  EXPECT_EQ(c.describe(), "10,240 trainable parameters of 60,516,864 (0.0169%)");
  EXPECT_NEAR(c.share(), 10240.0 / 60516864, 1e-15);
  EXPECT_EQ((ParameterCount{5, 5}).describe(), "5 trainable parameters of 5 (100.0000%)");
}

TEST(Peft, attach_logs_and_counts_parameters) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  const int64_t backbone = model->num_parameters();
  EXPECT_EQ(backbone, T5ForConditionalGeneration::count_parameters(tiny()));
  auto pt = make_peft("prompt_tuning", {{"length", 5}, {"init", "random_uniform"}});
  pt->attach(*model);
  EXPECT_EQ(pt->attached_count().trainable, 5 * 16);
  EXPECT_EQ(pt->attached_count().total, backbone + 5 * 16);
  ASSERT_EQ(quiet.lines.size(), 1u);
  EXPECT_EQ(quiet.lines[0], "[peft:prompt_tuning] " + pt->attached_count().describe());
  EXPECT_EQ(model->num_parameters(/*trainable_only=*/true), 0);

  auto model2 = tiny_model();
  auto mt = make_peft("model_tuning");
  mt->attach(*model2);
  EXPECT_EQ(mt->attached_count().trainable, backbone);
  EXPECT_EQ(mt->attached_count().total, backbone);
}

TEST(Peft, model_tuning_trains_everything_and_round_trips) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  model->requires_grad_(false);  // attach must unfreeze
  auto mt = make_peft("model_tuning");
  mt->attach(*model);
  NamedTensors tr = mt->trainable();
  EXPECT_EQ(tr.size(), model->named_parameters().size());
  EXPECT_EQ(tr[0].first, "shared.weight");
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (auto& [n, t] : tr) params.push_back(t), names.push_back(n);
  optim::AdamW opt(params, names, {.weight_decay = 0});
  NamedTensors before;
  for (auto& [n, t] : tr) before.emplace_back(n, t.clone());
  model->forward(batch()).loss.backward();
  opt.step(0.01);
  int changed = 0;
  for (size_t i = 0; i < tr.size(); ++i)
    changed += tr[i].second.to_vector<float>() != before[i].second.to_vector<float>();
  EXPECT_GT(changed, static_cast<int>(tr.size()) / 2);

  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("sp_peft_mt_" + std::to_string(::getpid()))).string();
  mt->save(dir);
  std::vector<float> logits = model->forward(batch()).logits.to_vector<float>();
  auto model2 = tiny_model(99);
  auto again = load_peft(dir, *model2);
  EXPECT_EQ(model2->forward(batch()).logits.to_vector<float>(), logits);
  std::filesystem::remove_all(dir);
}

TEST(Peft, load_errors_name_the_problem) {
  QuietPeftLog quiet;
  auto model = tiny_model();
  auto pt = make_peft("prompt_tuning", {{"length", 2}, {"init", "random_uniform"}});
  pt->attach(*model);
  EXPECT_THROW_MSG(pt->load_state({{"promt", Tensor::zeros(Shape{1, 2, 16})}}), "promt");
  const std::string name = pt->trainable().front().first;
  EXPECT_THROW_MSG(
      pt->load_state({{name, Tensor::zeros(Shape{1, 2, 16}, DType::i32)}}),
      "[peft:prompt_tuning] tensor " + name + " is i32: a trained tensor must be floating point");
  std::vector<float> values(32, 0.5f);
  values[3] = std::nanf("");
  values[9] = INFINITY;
  EXPECT_THROW_MSG(pt->load_state({{name, Tensor::from_vector(values, Shape{1, 2, 16})}}),
                   "[peft:prompt_tuning] tensor " + name +
                       " holds 2 NaN or infinite values of 32: it comes from a run that diverged");
  pt->load_state({{name, Tensor::full(Shape{1, 2, 16}, 0.25, DType::bf16)}});  // converted
  EXPECT_EQ(pt->trainable().front().second.to_vector<float>(), std::vector<float>(32, 0.25f));
  EXPECT_THROW_MSG(load_peft("/nonexistent/dir", *model), "cannot open /nonexistent/dir/peft_config.json");
  {  // a model checkpoint where a tuned directory belongs is named as such
    const std::filesystem::path model_dir = std::filesystem::temp_directory_path() /
                                            ("sp_peft_model_dir_" + std::to_string(::getpid()));
    std::filesystem::create_directories(model_dir);
    std::ofstream(model_dir / "config.json") << "{}";
    EXPECT_THROW_MSG(load_peft(model_dir.string(), *model),
                     "this is a model checkpoint (config.json), not a tuned PEFT directory");
    std::filesystem::remove_all(model_dir);
  }
  EXPECT_THROW_MSG(pt->attach(*model), "once");
}

TEST(Peft, host_offers_linears_and_attention_sites) {
  auto model = tiny_model();
  auto linears = named_linears(*model);
  ASSERT_FALSE(linears.empty());
  EXPECT_EQ(linears[0].first, "encoder.block.0.layer.0.SelfAttention.q");
  EXPECT_EQ(linears[0].second, &model->encoder.block[0]->self_attention->SelfAttention.q);
  std::vector<AttentionSite> sites = model->attention_sites();
  ASSERT_EQ(sites.size(), 1u + 2u * 2u);
  EXPECT_EQ(sites[0].name, "encoder.block.0.layer.0.SelfAttention");
  EXPECT_FALSE(sites[0].is_decoder);
  EXPECT_EQ(sites[2].name, "decoder.block.0.layer.1.EncDecAttention");
  EXPECT_TRUE(sites[2].is_cross_attention);
  EXPECT_EQ(sites[2].num_heads, 2);
  EXPECT_EQ(sites[2].d_kv, 4);
  EXPECT_EQ(&model->module(), static_cast<Module*>(model.get()));
  EXPECT_TRUE(model->input_embedding().is_same(model->shared.weight));
}

}  // namespace
}  // namespace sp
