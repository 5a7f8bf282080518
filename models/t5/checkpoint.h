#pragma once
// T5 checkpoints as transformers writes them: a directory with config.json and
// model.safetensors (or model.safetensors.index.json with shards).
//
// The head: lm_head.weight when the checkpoint has it, else shared.weight (transformers 5
// unties exactly then; hub configs of untied models say tie_word_embeddings: false).
// Name mapping on load: shared.weight may come as shared.weight, encoder.embed_tokens.weight
// or decoder.embed_tokens.weight (aliases); the unused
// legacy decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight is ignored.
// Everything else must match by name and shape: strict loading throws one sp::Error listing
// every missing, unexpected and mis-shaped tensor.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/t5/t5_model.h"

namespace sp {

struct T5LoadOptions {
  DType dtype = DType::f32;  // f32 or bf16 (f16 loads but is unsafe for T5)
  bool strict = true;        // false: missing tensors keep their init, unexpected ones are skipped
  Generator* dropout_gen = nullptr;
  // The dropout rate to train with, over config.json's (hub configs say 0.1); unset: the
  // config's.
  std::optional<double> dropout_rate;
};

struct T5LoadReport {
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<std::string> mismatched;  // "name: expected [..], got [..]"
  std::vector<std::string> ignored;     // aliases and legacy names, as listed above
  // What the checkpoint reader noticed in a sharded index (a tensor outside the weight_map
  // or in two shards, a wrong total_size); each is also printed to stderr.
  std::vector<std::string> warnings;
};

// Loads dir/config.json and the weights. report (when given) receives the name lists.
std::unique_ptr<T5ForConditionalGeneration> load_t5(const std::string& dir,
                                                    const T5LoadOptions& options = {},
                                                    T5LoadReport* report = nullptr);

// Loads weights from dir into an existing model of the same configuration. A tied model
// ignores a stored lm_head.weight only when it equals shared.weight; a head of its own is
// unexpected (load_t5 builds such a checkpoint's model untied).
T5LoadReport load_t5_weights(T5ForConditionalGeneration& model, const std::string& dir,
                             bool strict = true);

// Writes dir/model.safetensors (shards above max_shard_bytes) and then dir/config.json,
// each atomically, in transformers' layout. The embed_tokens aliases are not written:
// transformers ties them to shared.weight on load. dtype: the stored dtype (default: the
// model's).
// A model whose output scale does not follow its tying (tied without the scale, or untied
// with it) is saved as transformers 5 reads it, and save_t5 prints
// hf4_misread_warning's line on stderr: transformers 4 derives the scale from the tying.
void save_t5(const T5ForConditionalGeneration& model, const std::string& dir,
             std::optional<DType> dtype = std::nullopt, uint64_t max_shard_bytes = 5'000'000'000);

// What transformers 4 gets wrong reading a model of this config ("" when nothing).
std::string hf4_misread_warning(const T5Config& config);

}  // namespace sp
