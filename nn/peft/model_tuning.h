#pragma once
// Model tuning, the paper's baseline: every parameter of the model trains.
//
//   auto mt = make_peft("model_tuning");
//   mt->attach(model);        // unfreezes everything, logs "... (100.0000%)"
//   mt->save(dir);            // peft_model.safetensors holds the full state dict by HF name
//
// No settings. trainable() is the host's named_parameters(), so an optimizer built from it
// updates the model in place, and load() copies a saved state dict back into it.
#include <string>
#include <vector>

#include "nn/peft/peft.h"

namespace sp {

class ModelTuning : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings() { return {}; }
  explicit ModelTuning(const nlohmann::json& settings) : PeftMethod(settings) {}

  std::string name() const override { return "model_tuning"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override;

 private:
  Module* module_ = nullptr;
};

}  // namespace sp
