#include "nn/peft/target_modules.h"

#include <algorithm>
#include <regex>
#include <set>

#include "tensor/error.h"

namespace sp {

TargetModules TargetModules::from_settings(const nlohmann::json& names, const nlohmann::json& regex,
                                           const std::string& tag) {
  TargetModules t;
  SP_CHECK(regex.is_string(), tag, " target_regex must be a string, got ", regex.dump());
  t.regex = regex.get<std::string>();
  if (!t.regex.empty()) {
    try {
      std::regex check(t.regex);
    } catch (const std::regex_error& e) {
      fail(str_cat(tag, " target_regex \"", t.regex, "\" is not a valid regex: ", e.what()));
    }
    return t;
  }
  SP_CHECK(names.is_array() && !names.empty(), tag,
           " target_modules must be a non-empty list of module names (or set target_regex), got ",
           names.dump());
  for (size_t i = 0; i < names.size(); ++i) {
    SP_CHECK(names[i].is_string() && !names[i].get<std::string>().empty(), tag, " target_modules[",
             i, "] must be a non-empty string, got ", names[i].dump());
    t.names.push_back(names[i].get<std::string>());
  }
  return t;
}

bool TargetModules::matches(const std::string& module_name) const {
  if (!regex.empty()) return std::regex_match(module_name, std::regex(regex));
  for (const std::string& n : names) {
    if (module_name == n) return true;
    if (module_name.size() > n.size() &&
        module_name.compare(module_name.size() - n.size(), n.size(), n) == 0 &&
        module_name[module_name.size() - n.size() - 1] == '.')
      return true;
  }
  return false;
}

nlohmann::json TargetModules::to_peft_json() const {
  if (!regex.empty()) return regex;
  return names;
}

nlohmann::json TargetModules::to_peft_json(const std::vector<std::string>& adapted) const {
  const auto last = [](const std::string& name) { return name.substr(name.rfind('.') + 1); };
  std::set<std::string> adapted_leaves;
  for (const std::string& a : adapted) adapted_leaves.insert(last(a));
  const bool list_is_exact =
      regex.empty() && std::all_of(names.begin(), names.end(), [&](const std::string& n) {
        return adapted_leaves.count(last(n)) > 0;
      });
  if (list_is_exact) return names;
  return adapted;
}

std::vector<size_t> select_names(const std::vector<std::string>& names,
                                 const TargetModules& targets, const std::string& tag,
                                 const std::string& kind) {
  std::vector<size_t> chosen;
  std::regex re;
  if (!targets.regex.empty()) re = std::regex(targets.regex);
  for (size_t i = 0; i < names.size(); ++i) {
    const bool hit =
        targets.regex.empty() ? targets.matches(names[i]) : std::regex_match(names[i], re);
    if (hit) chosen.push_back(i);
  }
  if (chosen.empty()) {
    std::string some;
    for (size_t i = 0; i < names.size() && i < 4; ++i) some += (i ? ", " : "") + names[i];
    fail(str_cat(tag, " no ", kind, " matches target ", targets.to_peft_json().dump(),
                 names.empty() ? str_cat("; the model has no ", kind)
                               : str_cat("; the model's ", kind, "s are named like ", some)));
  }
  return chosen;
}

void check_free(const std::vector<std::pair<std::string, Linear*>>& chosen,
                const std::string& tag) {
  for (const auto& [name, linear] : chosen)
    SP_CHECK(!linear->adapter, tag, " ", name,
             " already has an adapter (another method is attached)");
}

}  // namespace sp
