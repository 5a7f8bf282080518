#include "nn/peft/lora_hf.h"

#include <utility>

#include "autograd/grad_mode.h"
#include "nn/peft/hf_peft_format.h"

namespace sp {

nlohmann::json lora_hf_config(const Lora& lora, const std::string& base_model) {
  using nlohmann::json;
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
      {"target_modules", lora.targets().to_peft_json()},
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
  const std::string tag = "[hf_peft:lora] adapter_config.json:";
  SP_CHECK(c.is_object(), tag, " expected a JSON object");
  auto get = [&](const char* key) { return c.contains(key) ? c.at(key) : nlohmann::json(); };
  SP_CHECK(get("peft_type") == "LORA", tag, " peft_type is ", get("peft_type").dump(),
           ", expected \"LORA\"");
  auto unsupported = [&](const char* key, bool present, const char* what) {
    SP_CHECK(!present, tag, " ", key, " = ", get(key).dump(), ": ", what,
             " is not supported by softprompt's LoRA");
  };
  unsupported("use_dora", get("use_dora") == true, "DoRA");
  unsupported("use_rslora", get("use_rslora") == true, "rank-stabilised scaling");
  unsupported("bias", !get("bias").is_null() && get("bias") != "none", "training biases");
  unsupported("lora_bias", get("lora_bias") == true, "a bias on lora_B");
  unsupported("fan_in_fan_out", get("fan_in_fan_out") == true, "Conv1D-style weights");
  unsupported("rank_pattern", !get("rank_pattern").is_null() && !get("rank_pattern").empty(),
              "per-module ranks");
  unsupported("alpha_pattern", !get("alpha_pattern").is_null() && !get("alpha_pattern").empty(),
              "per-module alphas");
  unsupported("layers_to_transform", !get("layers_to_transform").is_null(), "layer selection");
  unsupported("modules_to_save", !get("modules_to_save").is_null(), "fully trained modules");
  unsupported("exclude_modules", !get("exclude_modules").is_null(), "excluded modules");
  // Inits that only set A and B load as saved; PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA
  // rewrite the base weights when PEFT loads the adapter, which W + B A here would miss.
  const nlohmann::json init = get("init_lora_weights");
  const bool base_kept = init.is_null() || init.is_boolean() || init == "gaussian" || init == "eva";
  SP_CHECK(base_kept, tag, " init_lora_weights = ", init.dump(),
           ": PEFT rewrites the base model's weights when it loads such an adapter, so its "
           "factors do not apply to the original checkpoint; save it converted (PEFT's "
           "save_pretrained with path_initial_model_for_weight_conversion) and import that");

  nlohmann::json s = nlohmann::json::object();
  SP_CHECK(get("r").is_number_integer(), tag, " r must be an integer, got ", get("r").dump());
  s["rank"] = get("r");
  SP_CHECK(get("lora_alpha").is_number(), tag, " lora_alpha must be a number, got ",
           get("lora_alpha").dump());
  s["alpha"] = get("lora_alpha").get<double>();
  if (get("lora_dropout").is_number()) s["dropout"] = get("lora_dropout").get<double>();
  const nlohmann::json t = get("target_modules");
  if (t.is_string()) {
    s["target_regex"] = t;
  } else {
    SP_CHECK(t.is_array(), tag, " target_modules must be a list or a regex string, got ", t.dump());
    s["target_modules"] = t;
  }
  return s;
}

namespace {

HfPeftAdapter lora_to_hf(const PeftMethod& m, const HfPeftModelInfo& info) {
  const auto& lora = dynamic_cast<const Lora&>(m);
  SP_CHECK(!lora.adapters().empty(), "[hf_peft:lora] export needs an attached method");
  return {lora_hf_config(lora, info.base_model_name_or_path), lora_hf_tensors(lora)};
}

std::pair<nlohmann::json, NamedTensors> lora_from_hf(const HfPeftAdapter& a,
                                                     const HfPeftModelInfo&) {
  NamedTensors tensors;
  const std::string prefix = kHfPeftPrefix;
  NoGradGuard no_grad;
  for (const auto& [n, t] : a.tensors) {
    // PEFT: base_model.model.<module>.lora_{A,B}.weight; ours lack the prefix. Names that do
    // not fit are reported by load_state with the expected ones.
    const std::string own = n.rfind(prefix, 0) == 0 ? n.substr(prefix.size()) : n;
    tensors.emplace_back(own, t.dtype() == DType::f32 ? t : t.to(DType::f32));
  }
  return {lora_settings_from_hf(a.config), tensors};
}

}  // namespace

SP_REGISTER_HF_PEFT(lora, (HfPeftConverter{"lora", "LORA", lora_to_hf, lora_from_hf}));

}  // namespace sp
