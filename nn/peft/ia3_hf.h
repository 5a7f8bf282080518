#pragma once
// IA3 in Hugging Face PEFT's format (PEFT 0.21, seq2seq T5), registered with
// hf_peft_format.h, so export_hf_peft / import_hf_peft handle an Ia3 like any method:
// DIR/adapter_config.json and DIR/adapter_model.safetensors with
//   base_model.model.<module>.ia3_l  [out, 1]  f32  (k, v: the output is scaled)
//   base_model.model.<module>.ia3_l  [1, in]   f32  (feed-forward wo: the input is scaled)
// (<module> as "encoder.block.0.layer.0.SelfAttention.k"), our own shapes, which
// PeftModel.from_pretrained loads onto the same base checkpoint; we load PEFT's own IA3
// adapters for T5 the same way. The config carries every field PEFT 0.21 writes.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/peft/ia3.h"

namespace sp {

// adapter_config.json for this IA3; base_model names the base checkpoint (may be "").
// Throws when PEFT would pick other feed-forward modules than ours (it matches a
// feedforward_modules list as plain name suffixes) or would refuse the lists
// (feedforward_modules must be a subset of a target_modules list).
nlohmann::json ia3_hf_config(const Ia3& ia3, const std::string& base_model = "");
// The vectors under PEFT's names, in the model's order.
NamedTensors ia3_hf_tensors(const Ia3& ia3);
// Our Ia3 settings from a PEFT adapter_config.json: target_modules (a list, or a string: a
// whole-name regex) and feedforward_modules (null: PEFT's T5 defaults, ours too). modules
// are the adapted modules' names (those in the adapter file): a feedforward_modules regex,
// or a list that PEFT's suffix match reads otherwise than our whole-component match, becomes
// the list of the modules it selects. Throws "[hf_peft:ia3] ..." for another peft_type or
// features our IA3 lacks (fan_in_fan_out, modules_to_save, exclude_modules,
// layers_to_transform). init_ia3_weights is ignored: the vectors come from the file.
nlohmann::json ia3_settings_from_hf(const nlohmann::json& config,
                                    const std::vector<std::string>& modules = {});

}  // namespace sp
