#pragma once
// LN tuning (Zhao et al. 2023; Hugging Face PEFT's LN_TUNING): only the layer norms' scales
// train, everything else stays frozen. T5's norms are RMSNorm weights, so a T5-base has
// 62 of them, 47k parameters (0.02% of the model).
//
//   auto ln = make_peft("ln_tuning");      // every norm; or target_modules: [final_layer_norm]
//   ln->attach(model);                     // freezes the model, unfreezes the chosen norms
//
// Settings: target_modules (["layer_norm", "final_layer_norm"]: every norm of a T5, names
// matched on their last components as LoRA's; each must name a norm) or target_regex (a
// whole-name regex, of which the norms it matches are tuned).
//
// The norms train in place (the backbone tensors, under their own names), as model tuning
// does: trainable() reads them from the model on every call, so a bf16 run's
// use_bf16_backbone, which keeps them f32 and rebinds them, is seen. save() writes the
// tuned scales; load_peft copies them into a fresh model's norms. Unlike PEFT, which trains
// a copy of each norm beside the original, nothing is kept to undo the tuning.
#include <string>
#include <vector>

#include "nn/peft/peft.h"
#include "nn/peft/target_modules.h"

namespace sp {

class LnTuning : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings();
  explicit LnTuning(const nlohmann::json& settings);

  std::string name() const override { return "ln_tuning"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override;

  const TargetModules& targets() const { return targets_; }
  // The tuned norms' parameter names ("encoder.block.0.layer.0.layer_norm.weight", ...).
  const std::vector<std::string>& tuned_names() const { return names_; }

 private:
  TargetModules targets_;
  Module* module_ = nullptr;
  std::vector<std::string> names_;
};

}  // namespace sp
