// LN tuning in Hugging Face PEFT's format (PEFT 0.21, seq2seq T5), registered with
// hf_peft_format.h: DIR/adapter_config.json (peft_type LN_TUNING) and
// DIR/adapter_model.safetensors with
//   base_model.model.<norm>.ln_tuning_layers.weight  [d_model]
// (<norm> as "encoder.block.0.layer.0.layer_norm"): PEFT trains a copy of each norm under
// ln_tuning_layers; ours trains the norm itself, saved as "<norm>.weight". The exported
// target_modules lists the tuned norms by full name.
#include <string>
#include <utility>

#include "nn/peft/hf_peft_format.h"
#include "nn/peft/ln_tuning.h"
#include "tensor/error.h"

namespace sp {
namespace {

constexpr const char* kOurSuffix = ".weight";
constexpr const char* kPeftSuffix = ".ln_tuning_layers.weight";

std::string replace_suffix(const std::string& name, const std::string& from,
                           const std::string& to) {
  return name.ends_with(from) ? name.substr(0, name.size() - from.size()) + to : name;
}

// The tuned norms by full module name: PEFT wraps every module a target names, whatever
// its type, so a regex such as "encoder\..*" would select more there than here; full
// names select exactly these.
nlohmann::json tuned_modules(const LnTuning& ln) {
  nlohmann::json names = nlohmann::json::array();
  for (const std::string& n : ln.tuned_names()) names.push_back(replace_suffix(n, kOurSuffix, ""));
  return names;
}

HfPeftAdapter ln_tuning_to_hf(const PeftMethod& m, const HfPeftModelInfo& info) {
  const auto& ln = dynamic_cast<const LnTuning&>(m);
  SP_CHECK(!ln.tuned_names().empty(), "[hf_peft:ln_tuning] export needs an attached method");
  using nlohmann::json;
  HfPeftAdapter a;
  // Every key of LNTuningConfig.to_dict() in PEFT 0.21.2.
  a.config = {
      {"auto_mapping", nullptr},
      {"base_model_name_or_path",
       info.base_model_name_or_path.empty() ? json(nullptr) : json(info.base_model_name_or_path)},
      {"exclude_modules", nullptr},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"peft_type", "LN_TUNING"},
      {"peft_version", kHfPeftVersion},
      {"revision", nullptr},
      {"target_modules", tuned_modules(ln)},
      {"task_type", "SEQ_2_SEQ_LM"},
  };
  for (const auto& [name, t] : ln.trainable())
    a.tensors.emplace_back(kHfPeftPrefix + replace_suffix(name, kOurSuffix, kPeftSuffix),
                           t.detach());
  return a;
}

std::pair<nlohmann::json, NamedTensors> ln_tuning_from_hf(const HfPeftAdapter& a,
                                                          const HfPeftModelInfo&) {
  const HfPeftConfig config(a.config, "ln_tuning", "LN_TUNING", "LN tuning");
  config.refuse_if_set("modules_to_save", "fully trained modules");
  config.refuse_if_set("exclude_modules", "excluded modules");
  nlohmann::json settings = nlohmann::json::object();
  config.targets_into(settings, /*null_ok=*/true);  // null: PEFT's T5 default, ours too
  NamedTensors tensors;
  for (auto& [name, t] : hf_peft_tensors_as_ours(a.tensors))
    tensors.emplace_back(replace_suffix(name, kPeftSuffix, kOurSuffix), t);
  return {settings, tensors};
}

}  // namespace

SP_REGISTER_HF_PEFT(ln_tuning, (HfPeftConverter{"ln_tuning", "LN_TUNING", ln_tuning_to_hf,
                                                ln_tuning_from_hf}));

}  // namespace sp
