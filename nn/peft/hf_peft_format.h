#pragma once
// Export and import in Hugging Face PEFT's format: DIR/adapter_config.json and
// DIR/adapter_model.safetensors, with the keys, shapes and config fields PEFT 0.21 writes
// for a seq2seq (T5) model, so `PeftModel.from_pretrained(t5, DIR)` loads our adapters and
// we load theirs.
//
//   export_hf_peft(*method, model, "out/hf");                 // method attached to model
//   auto m = import_hf_peft("out/hf", model);                 // made, attached, loaded
//
// Each method that has a PEFT counterpart registers one converter (in its own file, beside
// the method):
//
//   SP_REGISTER_HF_PEFT(lora, (HfPeftConverter{"lora", "LORA", lora_to_hf, lora_from_hf}));
//
// Prompt tuning (PROMPT_TUNING, task_type SEQ_2_SEQ_LM): one tensor "prompt_embeddings"
// [num_virtual_tokens * num_transformer_submodules, d_model] f32, where
// num_transformer_submodules is 2 for seq2seq. PeftModelForSeq2SeqLM uses only the first
// num_virtual_tokens rows, prepended to the encoder input, in forward() and generate();
// the second block (a decoder copy that PEFT's prompt-learning machinery sizes for every
// seq2seq method) is never read for prompt tuning. We write our prompt into both blocks
// and import the first.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "nn/peft/peft.h"

namespace sp {

// The PEFT version whose format we write ("peft_version" in the config).
inline constexpr const char* kHfPeftVersion = "0.21.2";

// The prefix PEFT gives every adapter tensor of a PeftModel wrapping a model.
inline constexpr const char* kHfPeftPrefix = "base_model.model.";

// A PEFT adapter_config.json read key by key by a converter's from_hf. Errors start
// "[hf_peft:<method>] adapter_config.json:".
class HfPeftConfig {
 public:
  // Throws unless config is a JSON object whose peft_type is peft_type. display names the
  // method in refusals ("LoRA").
  HfPeftConfig(const nlohmann::json& config, const std::string& method,
               const std::string& peft_type, std::string display);
  const std::string& tag() const { return tag_; }
  // The value of key, null when absent.
  nlohmann::json get(const char* key) const;
  // Throws "<key> = <value>: <what> is not supported by softprompt's <display>" if present.
  void refuse(const char* key, bool present, const char* what) const;
  // The same when key is given at all (not absent, not null).
  void refuse_if_set(const char* key, const char* what) const;
  // target_modules into our settings: a string is target_regex (a whole-name regex), a list
  // target_modules; null leaves both out when null_ok (PEFT's defaults), else throws.
  void targets_into(nlohmann::json& settings, bool null_ok) const;

 private:
  const nlohmann::json& config_;
  std::string tag_;
  std::string display_;
};

// adapter_model.safetensors's tensors under our names (kHfPeftPrefix removed where present;
// names that fit no parameter are reported by load_state) and in f32.
NamedTensors hf_peft_tensors_as_ours(const NamedTensors& tensors);

// What PEFT's config records about the base model (its _prepare_prompt_learning_config).
struct HfPeftModelInfo {
  int64_t num_layers = 0;  // encoder layers (T5's config.num_layers)
  int64_t num_attention_heads = 0;
  int64_t token_dim = 0;                // d_model
  std::string base_model_name_or_path;  // empty: null
};
// Read from a host's attention sites and model_dim().
HfPeftModelInfo hf_peft_model_info(PeftHost& host);

struct HfPeftAdapter {
  nlohmann::json config;  // adapter_config.json
  NamedTensors tensors;   // adapter_model.safetensors, in this order
};

struct HfPeftConverter {
  std::string method;     // our registry name ("prompt_tuning")
  std::string peft_type;  // PEFT's ("PROMPT_TUNING")
  // An attached method -> PEFT's config and tensors. Throws for settings PEFT cannot hold.
  std::function<HfPeftAdapter(const PeftMethod&, const HfPeftModelInfo&)> to_hf;
  // PEFT's config and tensors -> {our settings, our tensors by trainable() name}.
  std::function<std::pair<nlohmann::json, NamedTensors>(const HfPeftAdapter&,
                                                        const HfPeftModelInfo&)>
      from_hf;
};

struct HfPeftRegistrar {
  explicit HfPeftRegistrar(HfPeftConverter converter);
};

// The converter for our method name or PEFT's peft_type; throws listing the known ones.
const HfPeftConverter& hf_peft_converter_for_method(std::string_view method);
const HfPeftConverter& hf_peft_converter_for_type(std::string_view peft_type);

// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically).
void export_hf_peft(const PeftMethod& method, PeftHost& host, const std::string& dir,
                    const std::string& base_model_name_or_path = "");
// Reads them, makes our method, attaches it to host and loads the tensors.
std::unique_ptr<PeftMethod> import_hf_peft(const std::string& dir, PeftHost& host);

}  // namespace sp

#define SP_REGISTER_HF_PEFT(id, converter) \
  static const ::sp::HfPeftRegistrar sp_hf_peft_registrar_##id(converter)
