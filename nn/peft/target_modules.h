#pragma once
// Which modules a method adapts, chosen by module name as Hugging Face PEFT chooses them
// (LoRA's and IA3's Linear layers, LN tuning's norms): a list of names matches a module whose
// dotted name equals an entry or ends with "." + entry ("q" matches
// "encoder.block.0.layer.0.SelfAttention.q"); a regex matches a module whose whole name matches it
// (re.fullmatch).
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
  // target_modules for an exported adapter whose adapted modules are `adapted`: PEFT wraps
  // every module a target names, whatever its type, so the list is kept only when each
  // entry ends in a name an adapted module ends in ("q", "SelfAttention.q": only linears
  // are so named); a regex, or an entry that names other modules too ("layer_norm", a
  // block), becomes the adapted modules' full names, which select exactly them.
  nlohmann::json to_peft_json(const std::vector<std::string>& adapted) const;
};

// Indices of the names that targets select. Throws when none does, naming the targets and
// a few of the names (kind: what they are, "linear layer").
std::vector<size_t> select_names(const std::vector<std::string>& names,
                                 const TargetModules& targets, const std::string& tag,
                                 const std::string& kind);

// The modules of type M under root that targets select, in registration order; throws as
// select_names when none does.
template <typename M>
std::vector<std::pair<std::string, M*>> select_modules(Module& root, const TargetModules& targets,
                                                       const std::string& tag,
                                                       const std::string& kind) {
  std::vector<std::pair<std::string, M*>> all, chosen;
  std::vector<std::string> names;
  for (auto& [name, module] : root.named_modules())
    if (auto* m = dynamic_cast<M*>(module)) all.emplace_back(name, m), names.push_back(name);
  for (size_t i : select_names(names, targets, tag, kind)) chosen.push_back(all[i]);
  return chosen;
}

// Throws unless every linear in chosen is free of adapters, before a method installs any
// (a failed attach then leaves the model as it was).
void check_free(const std::vector<std::pair<std::string, Linear*>>& chosen, const std::string& tag);

// The Linear layers of root that targets select (LoRA, IA3).
inline std::vector<std::pair<std::string, Linear*>> select_linears(Module& root,
                                                                   const TargetModules& targets,
                                                                   const std::string& tag) {
  return select_modules<Linear>(root, targets, tag, "linear layer");
}

}  // namespace sp
