#include "models/t5/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "models/io/atomic_file.h"
#include "models/io/sharded.h"
#include "tensor/kernels.h"

namespace sp {

namespace {
const char* kLegacyCrossBias =
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight";

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// torch's name of a floating dtype, as config.json's torch_dtype spells it.
const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::f64: return "float64";
    default: fail(str_cat("[save_t5] ", dtype_name(dtype), " is not a floating dtype"));
  }
}

// The name the checkpoint stores the shared embedding under (shared.weight or one of the
// embed_tokens aliases), or "" when it has none.
std::string shared_source(const CheckpointReader& reader) {
  for (const char* name :
       {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"})
    if (reader.contains(name)) return name;
  return "";
}

// Whether the checkpoint's lm_head.weight is a copy of its shared embedding (a tied model
// saved with the duplicate).
bool head_duplicates_shared(const CheckpointReader& reader) {
  const std::string shared = shared_source(reader);
  if (shared.empty() || !reader.contains("lm_head.weight") ||
      reader.info("lm_head.weight").shape != reader.info(shared).shape)
    return false;
  return reader.tensor("lm_head.weight", DType::f32).to_vector<float>() ==
         reader.tensor(shared, DType::f32).to_vector<float>();
}

// load_t5_weights from an open reader. head_duplicate: head_duplicates_shared(reader) when
// the caller has compared the two already (the comparison reads both tensors in full).
T5LoadReport load_weights(T5ForConditionalGeneration& model, const CheckpointReader& reader,
                          const std::string& dir, bool strict, std::optional<bool> head_duplicate) {
  T5LoadReport r;
  r.warnings = reader.warnings();
  for (const std::string& w : r.warnings)
    std::cerr << "[load_t5] " << dir << ": warning: " << w << "\n";

  // Where each model tensor comes from in the checkpoint.
  std::unordered_map<std::string, std::string> source;
  std::unordered_set<std::string> used;
  const bool tied = model.config().tie_word_embeddings;
  NamedTensors targets = model.state_dict();
  for (const auto& [name, t] : targets) {
    const std::string src =
        name == "shared.weight" ? shared_source(reader) : (reader.contains(name) ? name : "");
    if (src.empty()) {
      r.missing.push_back(name);
      continue;
    }
    used.insert(src);
    const SafetensorsEntry& stored = reader.info(src);
    std::vector<int64_t> want(t.shape().begin(), t.shape().end());
    if (stored.shape != want) {
      r.mismatched.push_back(
          str_cat(name, ": expected ", shape_str(want), ", got ", shape_str(stored.shape)));
      continue;
    }
    if (!is_floating_dtype_name(stored.dtype)) {
      r.mismatched.push_back(str_cat(name, ": expected a floating dtype, got ", stored.dtype));
      continue;
    }
    source.emplace(name, src);
  }
  // A tied model's head is shared.weight: a stored lm_head.weight is a duplicate to ignore
  // only when it equals that; otherwise it is the checkpoint's own head (transformers 5 saves
  // T5 1.1 so, with tie_word_embeddings: true), which a tied model cannot hold.
  bool own_head = false;
  for (const std::string& name : reader.names()) {
    if (used.count(name)) continue;
    const bool alias =
        name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight";
    const bool head = tied && name == "lm_head.weight";
    if (head && !head_duplicate) head_duplicate = head_duplicates_shared(reader);
    if (alias || name == kLegacyCrossBias || (head && *head_duplicate)) {
      r.ignored.push_back(name);
    } else {
      r.unexpected.push_back(name);
      own_head = own_head || head;
    }
  }
  if (strict && (!r.missing.empty() || !r.unexpected.empty() || !r.mismatched.empty())) {
    fail(str_cat("[load_t5] ", dir, ": checkpoint does not match the T5 config:",
                 list_name_mismatches(r.missing, r.unexpected, r.mismatched),
                 own_head ? "\n  the checkpoint has its own lm_head.weight but the model is tied "
                            "(tie_word_embeddings): build it untied, as load_t5 does"
                          : ""));
  }

  NoGradGuard no_grad;
  std::unordered_map<std::string, Tensor*> slots;
  for (auto& [name, slot] : model.tensor_slots()) slots.emplace(name, slot);
  for (const auto& [name, src] : source) {
    Tensor* dst = slots.at(name);
    Tensor value = reader.tensor(src, dst->dtype());
    Tensor target = dst->detach();
    kernels::copy_(target, value);
  }
  return r;
}

}  // namespace

T5LoadReport load_t5_weights(T5ForConditionalGeneration& model, const std::string& dir,
                             bool strict) {
  return load_weights(model, CheckpointReader::open(dir), dir, strict, std::nullopt);
}

std::unique_ptr<T5ForConditionalGeneration> load_t5(const std::string& dir,
                                                    const T5LoadOptions& options,
                                                    T5LoadReport* report) {
  SP_CHECK(is_floating(options.dtype) && options.dtype != DType::f64,
           "[load_t5] dtype must be f32, bf16 or f16, got ", dtype_name(options.dtype));
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  T5Config config = T5Config::from_file(config_path);
  // As transformers 5 decides (and 4 for every hub checkpoint): the head is lm_head.weight
  // when the checkpoint has one, else shared.weight, whatever tie_word_embeddings says.
  // The output scale stays as the config gives it. A stored head that duplicates the
  // embedding of a config that says tied computes the same either way and loads tied, so
  // that save_t5 writes it as transformers 4 reads it too (an untied config with the output
  // scale is one transformers 4 would read without the scale).
  const CheckpointReader reader = CheckpointReader::open(dir);
  std::optional<bool> head_duplicate;  // compared only where it decides the tie
  if (config.tie_word_embeddings && reader.contains("lm_head.weight"))
    head_duplicate = head_duplicates_shared(reader);
  const bool untied_without_head =
      !config.tie_word_embeddings && !reader.contains("lm_head.weight");
  config.tie_word_embeddings = !reader.contains("lm_head.weight") || head_duplicate.value_or(false);
  if (options.dropout_rate) {
    config.dropout_rate = *options.dropout_rate;
    config.validate(config_path);
  }
  auto model =
      std::make_unique<T5ForConditionalGeneration>(config, options.dtype, options.dropout_gen);
  T5LoadReport r = load_weights(*model, reader, dir, options.strict, head_duplicate);
  if (untied_without_head) {
    r.warnings.push_back(
        "config.json says tie_word_embeddings: false but the checkpoint has no lm_head.weight: "
        "the head is shared.weight, as transformers 5 loads it (transformers 4 would leave an "
        "untrained head)");
    std::cerr << "[load_t5] " << dir << ": warning: " << r.warnings.back() << "\n";
  }
  if (report) *report = std::move(r);
  return model;
}

void save_t5(const T5ForConditionalGeneration& model, const std::string& dir,
             std::optional<DType> dtype, uint64_t max_shard_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SP_CHECK(!ec, "[save_t5] cannot create the directory ", dir, ": ", ec.message());
  NamedTensors tensors;
  {
    NoGradGuard no_grad;
    for (auto& [name, t] : model.state_dict()) {
      Tensor v = t.detach();
      if (dtype && is_floating(v.dtype()) && v.dtype() != *dtype) v = kernels::cast(v, *dtype);
      tensors.emplace_back(name, v);
    }
  }
  CheckpointSaveOptions opts;
  opts.max_shard_bytes = max_shard_bytes;
  save_checkpoint(dir, tensors, opts);
  // As transformers writes it: the dtype the weights were saved in, which
  // from_pretrained(torch_dtype="auto") loads them as.
  nlohmann::json config = nlohmann::json::parse(model.config().to_json());
  for (const auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    config["torch_dtype"] = torch_dtype_name(t.dtype());
    break;
  }
  AtomicFile file((std::filesystem::path(dir) / "config.json").string(), "[save_t5]");
  file.write(config.dump(2) + "\n");
  file.commit();
  if (const std::string w = hf4_misread_warning(model.config()); !w.empty())
    std::fprintf(stderr, "[save_t5] %s: %s\n", dir.c_str(), w.c_str());
}

std::string hf4_misread_warning(const T5Config& config) {
  if (config.scale_decoder_outputs == config.tie_word_embeddings) return "";
  const bool tied = config.tie_word_embeddings;
  return str_cat("a ", tied ? "tied" : "untied", " model ", tied ? "without" : "with",
                 " the d_model^-0.5 output scale: config.json says so with "
                 "scale_decoder_outputs, which transformers 5 reads; transformers 4 ignores it "
                 "and computes the logits ",
                 tied ? "with" : "without", " the scale");
}

}  // namespace sp
