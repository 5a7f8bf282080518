#pragma once
// `softprompt tune`'s flags as a spec: a checkpoint model and one tune stage, written as a
// YAML tree and read by the spec's own parser (trial_parse.h). So `tune --set` takes the
// keys, defaults, ranges and checks of stages.tune, and its errors name the flag:
//
//   --set dropout=1: stages.tune.dropout must be in [0, 1)
#include <string>
#include <vector>

#include "experiments/spec/spec.h"

namespace sp {

struct TuneFlags {
  std::string model;  // a checkpoint directory
  std::string task;
  std::string data;  // the task's data directory (empty for built-in tasks)
  std::string method = "prompt_tuning";
  std::string dtype = "f32";
  std::string device = "cpu";
  // key=value: a key of stages.tune (steps=100), a shorthand for an optimizer key (lr=0.3),
  // a dotted path inside stages.tune (optimizer.decay_rate=0.9), or a setting of the method
  // (length=20; peft.seed=1 where a training key has the same name).
  std::vector<std::string> sets;
};

// The trial the flags describe (id "tune"), validated as a spec's; throws sp::Error.
Trial tune_trial(const TuneFlags& flags);

// The --set keys besides the method's settings, for the help text.
std::vector<std::string> tune_set_keys();

}  // namespace sp
