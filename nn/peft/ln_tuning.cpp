#include "nn/peft/ln_tuning.h"

#include <set>

#include "nn/rms_norm.h"
#include "tensor/error.h"

namespace sp {

std::vector<PeftSetting> LnTuning::settings() {
  return {
      {"target_modules", nlohmann::json::array({"layer_norm", "final_layer_norm"}),
       "norms to tune, matched on the last components of their names (PEFT's convention)"},
      {"target_regex", "",
       "a regex the whole module name must match; overrides target_modules when set"},
  };
}

LnTuning::LnTuning(const nlohmann::json& s)
    : PeftMethod(s),
      targets_(TargetModules::from_settings(s.at("target_modules"), s.at("target_regex"),
                                            "[peft:ln_tuning]")) {}

void LnTuning::attach(PeftHost& host) {
  SP_CHECK(module_ == nullptr, "[peft:ln_tuning] attach() runs once per method object");
  Module& model = host.module();
  model.requires_grad_(false);
  const auto norms = select_modules<RMSNorm>(model, targets_, "[peft:ln_tuning]", "norm");
  // Every name of a list must select a norm: a misspelled or non-norm entry would otherwise
  // be dropped without a word (PEFT would wrap whatever module it names).
  for (const std::string& target : targets_.names) {
    bool hit = false;
    for (const auto& [name, norm] : norms) hit = hit || TargetModules{{target}, ""}.matches(name);
    SP_CHECK(hit, "[peft:ln_tuning] target_modules entry \"", target,
             "\" names no norm (T5's are layer_norm and final_layer_norm)");
  }
  for (auto& [name, norm] : norms) {
    norm->weight.requires_grad_(true);
    names_.push_back(name.empty() ? "weight" : name + ".weight");
  }
  module_ = &model;
  attached(host);
}

NamedTensors LnTuning::trainable() const {
  SP_CHECK(module_ != nullptr, "[peft:ln_tuning] trainable() before attach()");
  const std::set<std::string> wanted(names_.begin(), names_.end());
  NamedTensors out;
  for (auto& [name, t] : module_->named_parameters())
    if (wanted.count(name)) out.emplace_back(name, t);
  return out;
}

SP_REGISTER_PEFT(ln_tuning, "layer-norm tuning: only the norms' scales train (PEFT's LN tuning)",
                 LnTuning);

}  // namespace sp
