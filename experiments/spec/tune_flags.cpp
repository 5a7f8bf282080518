#include "experiments/spec/tune_flags.h"

#include <algorithm>
#include <map>

#include "experiments/spec/scalar.h"
#include "experiments/spec/trial_parse.h"
#include "experiments/spec/yaml_tree.h"
#include "nn/peft/peft.h"
#include "tensor/error.h"

namespace sp {
namespace {

// Flat --set names for keys inside stages.tune.optimizer.
const std::map<std::string, std::vector<std::string>>& optimizer_shorthands() {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"optimizer", {"optimizer", "name"}},
      {"lr", {"optimizer", "lr"}},
      {"weight_decay", {"optimizer", "weight_decay"}},
      {"clip_global_norm", {"optimizer", "clip_global_norm"}},
      {"schedule", {"optimizer", "schedule", "kind"}},
      {"warmup_steps", {"optimizer", "schedule", "warmup_steps"}},
  };
  return keys;
}

// Keys of stages.tune that the command's own flags set (peft.KEY: a method setting).
const std::map<std::string, std::string>& flag_keys() {
  static const std::map<std::string, std::string> keys = {{"task", "--task"},
                                                          {"data_dir", "--data"},
                                                          {"peft", "--method and --set KEY=VALUE"},
                                                          {"peft.method", "--method"}};
  return keys;
}

// The method's setting names (none for an unknown method: the parser reports that).
std::vector<std::string> method_settings(const std::string& method) {
  std::vector<std::string> keys;
  for (const PeftMethodInfo& info : peft_methods())
    if (info.name == method)
      for (const PeftSetting& s : info.settings()) keys.push_back(s.key);
  return keys;
}

bool contains(const std::vector<std::string>& list, const std::string& key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

// Where a --set key goes inside stages.tune.
std::vector<std::string> stage_path(const SetFlag& set, const std::vector<std::string>& settings) {
  std::string dotted;
  for (const std::string& part : set.path) dotted += (dotted.empty() ? "" : ".") + part;
  if (auto it = flag_keys().find(dotted); it != flag_keys().end())
    fail_at(set.loc, str_cat("'", dotted, "' is given by ", it->second));
  const std::string& key = set.path[0];
  if (set.path.size() > 1) return set.path;
  if (auto it = optimizer_shorthands().find(key); it != optimizer_shorthands().end())
    return it->second;
  const std::vector<std::string> stage_keys = tune_set_keys();
  if (contains(stage_keys, key)) return set.path;
  if (contains(settings, key)) return {"peft", key};
  // A setting named like a training key (seed) is reached as peft.<name>.
  std::vector<std::string> known = stage_keys;
  for (const std::string& s : settings) known.push_back(contains(stage_keys, s) ? "peft." + s : s);
  fail_at(set.loc,
          str_cat("unknown key '", key, "': not a training key nor a setting of the method",
                  suggestion_suffix(key, known)));
}

SpecNode scalar(const std::string& text, const std::string& where) {
  return SpecNode::make_scalar(text, {where, 0, 0}, /*quoted=*/true);
}

SpecNode number(int64_t value) {
  return SpecNode::make_scalar(std::to_string(value), {"softprompt tune's default", 0, 0});
}

}  // namespace

std::vector<std::string> tune_set_keys() {
  std::vector<std::string> keys;
  for (const std::string& key : tune_stage_keys())
    if (!flag_keys().count(key) && !optimizer_shorthands().count(key)) keys.push_back(key);
  for (const auto& [key, path] : optimizer_shorthands()) keys.push_back(key);
  return keys;
}

Trial tune_trial(const TuneFlags& flags) {
  SpecNode root = SpecNode::make_map({"softprompt tune", 0, 0});
  auto set = [&root](std::vector<std::string> path, SpecNode value) {
    const SourceLocation loc = value.loc;
    set_dotted(root, path, std::move(value), loc);
  };
  set({"model", "checkpoint"}, scalar(flags.model, "--model " + flags.model));
  set({"model", "dtype"}, scalar(flags.dtype, "--dtype " + flags.dtype));
  set({"model", "device"}, scalar(flags.device, "--device " + flags.device));
  const std::vector<std::string> tune = {"stages", "tune"};
  auto in_tune = [&tune](const std::vector<std::string>& path) {
    std::vector<std::string> full = tune;
    full.insert(full.end(), path.begin(), path.end());
    return full;
  };
  set(in_tune({"task"}), scalar(flags.task, "--task " + flags.task));
  if (!flags.data.empty()) set(in_tune({"data_dir"}), scalar(flags.data, "--data " + flags.data));
  set(in_tune({"peft", "method"}), scalar(flags.method, "--method " + flags.method));
  // A short run by default; everything else defaults as in a spec (docs/experiments.md).
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, int64_t>>{{"steps", 1000},
                                                    {"batch_size", 8},
                                                    {"inputs_length", 256},
                                                    {"targets_length", 8},
                                                    {"eval_every", 100},
                                                    {"checkpoint_every", 100}})
    set(in_tune({key}), number(value));
  const std::vector<std::string> settings = method_settings(flags.method);
  for (const std::string& text : flags.sets) {
    SetFlag s = parse_set_flag(text, "steps=100");
    set_dotted(root, in_tune(stage_path(s, settings)), std::move(s.value), s.loc);
  }
  std::vector<std::string> warnings;
  Trial trial = parse_trial(root, {true, &warnings});
  trial.id = "tune";
  return trial;
}

}  // namespace sp
