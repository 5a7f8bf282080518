#include "experiments/runner/model_loading.h"

#include <filesystem>

#include "models/t5/checkpoint.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "tensor/backend.h"
#include "tensor/cuda_hooks.h"
#include "tensor/error.h"
#include "tensor/random.h"

namespace sp {

namespace fs = std::filesystem;

std::string base_checkpoint_dir(const std::string& model_dir, const ModelSpec& model) {
  return model_dir.empty() ? model.checkpoint : model_dir;
}

T5Config preset_config(const ModelSpec& model) {
  SP_CHECK(!model.preset.empty(), "[run] the model has neither a preset nor a checkpoint");
  T5Config config = T5Config::preset(model.preset);
  if (!model.config.empty()) {
    nlohmann::json merged = nlohmann::json::parse(config.to_json());
    merged.merge_patch(model.config);
    config = T5Config::from_json(merged.dump(), "model.config");
  }
  return config;
}

void check_model_device(const ModelSpec& model) {
  const Device d = model.device;
  if (d.is_cpu()) return;
  SP_CHECK(cuda_available(), "[run] model.device: ", d.str(),
           " is not usable: ", cuda_unavailable_reason());
  const int count = cuda_device_count();
  SP_CHECK(d.index >= 0 && d.index < count, "[run] model.device: ", d.str(),
           " is not usable: ", count, " CUDA device(s) visible");
}

std::unique_ptr<T5ForConditionalGeneration> load_stage_model(const std::string& model_dir,
                                                             const ModelSpec& model, double dropout,
                                                             Generator* dropout_gen) {
  check_model_device(model);
  const std::string dir = base_checkpoint_dir(model_dir, model);
  if (dir.empty()) {
    T5Config config = preset_config(model);
    config.dropout_rate = dropout;
    auto m = std::make_unique<T5ForConditionalGeneration>(config, DType::f32, dropout_gen);
    Generator init(model.init_seed);
    m->init_weights(&init);
    if (!model.device.is_cpu()) m->to(model.device);
    return m;
  }
  T5LoadOptions load;
  load.dropout_gen = dropout_gen;
  load.dropout_rate = dropout;
  auto m = load_t5(dir, load);
  if (!model.device.is_cpu()) m->to(model.device);
  return m;
}

std::string stage_tokenizer_file(const std::string& model_dir, const ModelSpec& model,
                                 const TokenizerSpec& tokenizer) {
  if (tokenizer.source == "file") return tokenizer.path;
  // A trained vocabulary travels with the checkpoints of the stages that trained on it.
  const std::string dir = base_checkpoint_dir(model_dir, model);
  SP_CHECK(!dir.empty(),
           "[run] no tokenizer: the model is a preset with no stage before "
           "this one; set tokenizer.source: file and tokenizer.path");
  const fs::path path = fs::path(dir) / "spiece.model";
  SP_CHECK(fs::exists(path), "[run] no tokenizer: ", path.string(),
           " does not exist (set tokenizer.source: file and tokenizer.path)");
  return path.string();
}

T5Tokenizer load_stage_tokenizer(const std::string& model_dir, const ModelSpec& model,
                                 const TokenizerSpec& tokenizer) {
  T5TokenizerOptions options;
  options.extra_ids = tokenizer.extra_ids;
  T5Tokenizer t = T5Tokenizer::load(stage_tokenizer_file(model_dir, model, tokenizer), options);
  const std::string dir = base_checkpoint_dir(model_dir, model);
  const fs::path config = fs::path(dir) / "config.json";
  if (dir.empty())
    t.check_fits(preset_config(model).vocab_size, "preset " + model.preset);
  else
    t.check_fits(T5Config::from_file(config.string()).vocab_size, config.string());
  return t;
}

}  // namespace sp
