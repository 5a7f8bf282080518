#include "nn/peft/ia3_hf.h"

#include <algorithm>
#include <regex>
#include <utility>

#include "nn/peft/hf_peft_format.h"
#include "tensor/error.h"

namespace sp {

namespace {

// PEFT's IA3Model._check_target_module_feedforward for a list: any plain name suffix.
bool peft_list_is_feedforward(const nlohmann::json& list, const std::string& module) {
  for (const auto& f : list)
    if (f.is_string() && module.ends_with(f.get<std::string>())) return true;
  return false;
}

}  // namespace

nlohmann::json ia3_hf_config(const Ia3& ia3, const std::string& base_model) {
  using nlohmann::json;
  const std::string tag = "[hf_peft:ia3] adapter_config.json:";
  std::vector<std::string> adapted;
  json ff_modules = json::array();
  for (const auto& [name, a] : ia3.adapters()) {
    adapted.push_back(name);
    if (a->feedforward) ff_modules.push_back(name);
  }
  const json targets = ia3.targets().to_peft_json(adapted);
  const bool by_full_name = targets != ia3.targets().to_peft_json();
  // The feed-forward names that select an attached adapter (a default "wo" with targets
  // k, v only selects none, and PEFT would refuse it as no subset of target_modules); the
  // feed-forward modules' full names when the targets are written as full names.
  json ff = by_full_name ? ff_modules : json::array();
  if (!by_full_name) {
    for (const std::string& f : ia3.feedforward_modules().names) {
      const bool selects =
          std::any_of(ia3.adapters().begin(), ia3.adapters().end(), [&](const auto& a) {
            return a.second->feedforward && TargetModules{{f}, ""}.matches(a.first);
          });
      if (selects) ff.push_back(f);
    }
  }
  for (const auto& [name, a] : ia3.adapters())
    SP_CHECK(peft_list_is_feedforward(ff, name) == a->feedforward, tag, " feedforward_modules ",
             ff.dump(), " as PEFT matches it (a plain name suffix) ",
             a->feedforward ? "misses" : "selects", " ", name,
             ", which softprompt's IA3 scales on its ", a->feedforward ? "input" : "output");
  if (targets.is_array()) {
    for (const auto& f : ff)
      SP_CHECK(std::find(targets.begin(), targets.end(), f) != targets.end(), tag,
               " feedforward_modules entry ", f.dump(), " is not in target_modules ",
               targets.dump(), ", which PEFT refuses (name the module in both the same way)");
  }
  // Every key of IA3Config.to_dict() in PEFT 0.21.2 (json objects sort their keys, as
  // PEFT's json.dumps(sort_keys=True)).
  return {
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model.empty() ? json(nullptr) : json(base_model)},
      {"exclude_modules", nullptr},
      {"fan_in_fan_out", false},
      {"feedforward_modules", ff},
      {"inference_mode", true},
      {"init_ia3_weights", true},
      {"modules_to_save", nullptr},
      {"peft_type", "IA3"},
      {"peft_version", kHfPeftVersion},
      {"revision", nullptr},
      {"target_modules", targets},
      {"task_type", "SEQ_2_SEQ_LM"},
  };
}

NamedTensors ia3_hf_tensors(const Ia3& ia3) {
  NamedTensors out;
  for (const auto& [name, a] : ia3.adapters())
    out.emplace_back(kHfPeftPrefix + name + ".ia3_l", a->l.detach());
  return out;
}

nlohmann::json ia3_settings_from_hf(const nlohmann::json& c,
                                    const std::vector<std::string>& modules) {
  const HfPeftConfig config(c, "ia3", "IA3", "IA3");
  const std::string& tag = config.tag();
  config.refuse("fan_in_fan_out", config.get("fan_in_fan_out") == true, "Conv1D-style weights");
  config.refuse_if_set("modules_to_save", "fully trained modules");
  config.refuse_if_set("exclude_modules", "excluded modules");
  config.refuse_if_set("layers_to_transform", "layer selection");
  // init_ia3_weights = false only changes PEFT's init; the vectors come from the file.

  nlohmann::json s = nlohmann::json::object();
  // null: PEFT fills in its T5 defaults (k, v, wo; feed-forward wo), which are ours.
  config.targets_into(s, /*null_ok=*/true);
  const nlohmann::json ff = config.get("feedforward_modules");
  if (ff.is_string()) {
    // PEFT: re.fullmatch on the module name; ours takes a list, so name the matches.
    std::regex re;
    try {
      re = std::regex(ff.get<std::string>());
    } catch (const std::regex_error& e) {
      fail(str_cat(tag, " feedforward_modules ", ff.dump(), " is not a valid regex: ", e.what()));
    }
    nlohmann::json names = nlohmann::json::array();
    for (const std::string& m : modules)
      if (std::regex_match(m, re)) names.push_back(m);
    s["feedforward_modules"] = names;
  } else if (!ff.is_null()) {
    SP_CHECK(ff.is_array(), tag, " feedforward_modules must be a list or a regex string, got ",
             ff.dump());
    s["feedforward_modules"] = ff;
    // PEFT matches list entries as plain suffixes, we on whole name components: where the
    // two differ on a module in the file, name PEFT's choice module by module.
    bool same = true;
    for (const std::string& m : modules) {
      bool ours = false;
      for (const auto& f : ff)
        ours = ours || (f.is_string() && TargetModules{{f.get<std::string>()}, ""}.matches(m));
      same = same && ours == peft_list_is_feedforward(ff, m);
    }
    if (!same) {
      nlohmann::json names = nlohmann::json::array();
      for (const std::string& m : modules)
        if (peft_list_is_feedforward(ff, m)) names.push_back(m);
      s["feedforward_modules"] = names;
    }
  }
  return s;
}

namespace {

HfPeftAdapter ia3_to_hf(const PeftMethod& m, const HfPeftModelInfo& info) {
  const auto& ia3 = dynamic_cast<const Ia3&>(m);
  SP_CHECK(!ia3.adapters().empty(), "[hf_peft:ia3] export needs an attached method");
  return {ia3_hf_config(ia3, info.base_model_name_or_path), ia3_hf_tensors(ia3)};
}

// PEFT: base_model.model.<module>.ia3_l, in our shapes; ours lack the prefix.
std::pair<nlohmann::json, NamedTensors> ia3_from_hf(const HfPeftAdapter& a,
                                                    const HfPeftModelInfo&) {
  NamedTensors tensors = hf_peft_tensors_as_ours(a.tensors);
  std::vector<std::string> modules;
  const std::string suffix = ".ia3_l";
  for (const auto& [name, t] : tensors)
    if (name.ends_with(suffix)) modules.push_back(name.substr(0, name.size() - suffix.size()));
  return {ia3_settings_from_hf(a.config, modules), tensors};
}

}  // namespace

SP_REGISTER_HF_PEFT(ia3, (HfPeftConverter{"ia3", "IA3", ia3_to_hf, ia3_from_hf}));

}  // namespace sp
