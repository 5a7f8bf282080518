#include "nn/peft/lora_hf.h"

#include <utility>

#include "nn/peft/hf_peft_format.h"

namespace sp {

nlohmann::json lora_hf_config(const Lora& lora, const std::string& base_model) {
  using nlohmann::json;
  std::vector<std::string> adapted;
  for (const auto& [name, a] : lora.adapters()) adapted.push_back(name);
  // Every key of LoraConfig.to_dict() in PEFT 0.21.2, PEFT's defaults where softprompt has
  // no counterpart (json objects sort their keys, as PEFT's json.dumps(sort_keys=True)).
  json c = {
      {"alora_invocation_tokens", nullptr},
      {"alpha_pattern", json::object()},
      {"arrow_config", nullptr},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model.empty() ? json(nullptr) : json(base_model)},
      {"bias", "none"},
      {"corda_config", nullptr},
      {"ensure_weight_tying", false},
      {"eva_config", nullptr},
      {"exclude_modules", nullptr},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"kasa_config", nullptr},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", json::object()},
      {"lora_alpha", lora.alpha()},
      {"lora_bias", false},
      {"lora_dropout", lora.dropout()},
      {"lora_ga_config", nullptr},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"monteclora_config", nullptr},
      {"peft_type", "LORA"},
      {"peft_version", kHfPeftVersion},
      {"qalora_group_size", 16},
      {"r", lora.rank()},
      {"rank_pattern", json::object()},
      {"revision", nullptr},
      {"target_modules", lora.targets().to_peft_json(adapted)},
      {"target_parameters", nullptr},
      {"task_type", "SEQ_2_SEQ_LM"},
      {"trainable_token_indices", nullptr},
      {"use_bdlora", nullptr},
      {"use_dora", false},
      {"use_qalora", false},
      {"use_rslora", false},
      {"velora_config", nullptr},
  };
  // PEFT writes an integral alpha as an integer (lora_alpha: int = 8).
  if (lora.alpha() == static_cast<double>(static_cast<int64_t>(lora.alpha())))
    c["lora_alpha"] = static_cast<int64_t>(lora.alpha());
  return c;
}

NamedTensors lora_hf_tensors(const Lora& lora) {
  NamedTensors out;
  for (const auto& [name, a] : lora.adapters()) {
    out.emplace_back(kHfPeftPrefix + name + ".lora_A.weight", a->A.detach());
    out.emplace_back(kHfPeftPrefix + name + ".lora_B.weight", a->B.detach());
  }
  return out;
}

nlohmann::json lora_settings_from_hf(const nlohmann::json& c) {
  const HfPeftConfig config(c, "lora", "LORA", "LoRA");
  const std::string& tag = config.tag();
  config.refuse("use_dora", config.get("use_dora") == true, "DoRA");
  config.refuse("use_rslora", config.get("use_rslora") == true, "rank-stabilised scaling");
  config.refuse("bias", !config.get("bias").is_null() && config.get("bias") != "none",
                "training biases");
  config.refuse("lora_bias", config.get("lora_bias") == true, "a bias on lora_B");
  config.refuse("fan_in_fan_out", config.get("fan_in_fan_out") == true, "Conv1D-style weights");
  config.refuse("rank_pattern",
                !config.get("rank_pattern").is_null() && !config.get("rank_pattern").empty(),
                "per-module ranks");
  config.refuse("alpha_pattern",
                !config.get("alpha_pattern").is_null() && !config.get("alpha_pattern").empty(),
                "per-module alphas");
  config.refuse_if_set("layers_to_transform", "layer selection");
  config.refuse_if_set("modules_to_save", "fully trained modules");
  config.refuse_if_set("exclude_modules", "excluded modules");
  config.refuse_if_set("alora_invocation_tokens", "activated LoRA (after invocation tokens only)");
  config.refuse_if_set("target_parameters", "LoRA on parameters rather than modules");
  config.refuse_if_set("layer_replication", "layer replication");
  // Inits that only set A and B load as saved (orthogonal too: PEFT's orthogonal_init sets
  // the factors alone); PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA rewrite the base weights when
  // PEFT loads the adapter, which W + B A here would miss.
  const nlohmann::json init = config.get("init_lora_weights");
  const bool base_kept = init.is_null() || init.is_boolean() || init == "gaussian" ||
                         init == "eva" || init == "orthogonal";
  SP_CHECK(base_kept, tag, " init_lora_weights = ", init.dump(),
           ": PEFT rewrites the base model's weights when it loads such an adapter, so its "
           "factors do not apply to the original checkpoint; save it converted (PEFT's "
           "save_pretrained with path_initial_model_for_weight_conversion) and import that");

  nlohmann::json s = nlohmann::json::object();
  SP_CHECK(config.get("r").is_number_integer(), tag, " r must be an integer, got ",
           config.get("r").dump());
  s["rank"] = config.get("r");
  SP_CHECK(config.get("lora_alpha").is_number(), tag, " lora_alpha must be a number, got ",
           config.get("lora_alpha").dump());
  s["alpha"] = config.get("lora_alpha").get<double>();
  if (config.get("lora_dropout").is_number())
    s["dropout"] = config.get("lora_dropout").get<double>();
  config.targets_into(s, /*null_ok=*/false);
  return s;
}

namespace {

HfPeftAdapter lora_to_hf(const PeftMethod& m, const HfPeftModelInfo& info) {
  const auto& lora = dynamic_cast<const Lora&>(m);
  SP_CHECK(!lora.adapters().empty(), "[hf_peft:lora] export needs an attached method");
  return {lora_hf_config(lora, info.base_model_name_or_path), lora_hf_tensors(lora)};
}

// PEFT: base_model.model.<module>.lora_{A,B}.weight; ours lack the prefix.
std::pair<nlohmann::json, NamedTensors> lora_from_hf(const HfPeftAdapter& a,
                                                     const HfPeftModelInfo&) {
  return {lora_settings_from_hf(a.config), hf_peft_tensors_as_ours(a.tensors)};
}

}  // namespace

SP_REGISTER_HF_PEFT(lora, (HfPeftConverter{"lora", "LORA", lora_to_hf, lora_from_hf}));

}  // namespace sp
