#pragma once
// Which Linear layers a method wraps, chosen by module name as Hugging Face PEFT chooses
// them (LoRA, IA3): a list of names matches a module whose dotted name equals an entry or
// ends with "." + entry ("q" matches "encoder.block.0.layer.0.SelfAttention.q"); a regex
// matches a module whose whole name matches it (re.fullmatch).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "nn/linear.h"
#include "nn/module.h"

namespace sp {

struct TargetModules {
  std::vector<std::string> names;  // used when regex is empty
  std::string regex;

  // From a settings list of strings and a regex string; tag names the method in errors
  // ("[peft:lora] target_modules[1] must be a string, got 3").
  static TargetModules from_settings(const nlohmann::json& names, const nlohmann::json& regex,
                                     const std::string& tag);
  bool matches(const std::string& module_name) const;
  // The list, or the regex string, as PEFT's adapter_config.json writes target_modules.
  nlohmann::json to_peft_json() const;
};

// The Linear layers of root that targets select, in registration order. Throws naming the
// targets and a few of the model's linear names when nothing matches.
std::vector<std::pair<std::string, Linear*>> select_linears(Module& root,
                                                            const TargetModules& targets,
                                                            const std::string& tag);

}  // namespace sp
