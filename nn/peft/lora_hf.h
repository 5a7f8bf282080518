#pragma once
// LoRA in Hugging Face PEFT's format (PEFT 0.21, seq2seq T5), registered with
// hf_peft_format.h, so export_hf_peft / import_hf_peft handle a Lora like any method:
// DIR/adapter_config.json and DIR/adapter_model.safetensors with
//   base_model.model.<module>.lora_A.weight  [r, in]   f32
//   base_model.model.<module>.lora_B.weight  [out, r]  f32
// (<module> as "encoder.block.0.layer.0.SelfAttention.q"), which PeftModel.from_pretrained
// loads onto the same base checkpoint; we load PEFT's own LoRA adapters for T5 the same way.
// The config carries every field PEFT 0.21 writes, PEFT's defaults for what we lack.
#include <nlohmann/json.hpp>
#include <string>

#include "nn/peft/hf_peft_format.h"
#include "nn/peft/lora.h"

namespace sp {

// adapter_config.json for this LoRA; base_model names the base checkpoint (may be "").
nlohmann::json lora_hf_config(const Lora& lora, const std::string& base_model = "");
// The factors under PEFT's names, in the model's order.
NamedTensors lora_hf_tensors(const Lora& lora);
// Our Lora settings from a PEFT adapter_config.json: r, lora_alpha, lora_dropout and
// target_modules (a list, or a string: a whole-name regex). Throws "[hf_peft:lora] ..."
// for another peft_type or features our LoRA lacks (DoRA, rsLoRA, bias, fan_in_fan_out,
// rank/alpha patterns, layers_to_transform, modules_to_save, exclude_modules).
nlohmann::json lora_settings_from_hf(const nlohmann::json& config);

}  // namespace sp
