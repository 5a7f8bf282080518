#pragma once
// One sweep point's merged YAML tree -> a validated Trial (everything but its id, sweep
// point and hashes, which the loader fills). The schema of the spec lives here: every key
// a spec accepts is read by this file, with its default and its checks.
#include <string>
#include <vector>

#include "experiments/spec/spec.h"
#include "experiments/spec/yaml_tree.h"

namespace sp {

struct TrialParseContext {
  bool check_paths = true;             // missing paths: errors (true) or warnings (false)
  std::vector<std::string>* warnings;  // where warnings go (deduplicated by the loader)
};

// The top-level keys the loader consumes itself (name, description, extends, vars, sweep)
// are accepted; anything else unknown is an error.
Trial parse_trial(const SpecNode& root, const TrialParseContext& context);

// Rejects unknown top-level keys (did-you-mean); parse_trial does so first too. The loader
// calls it before its own checks of the sweep against the stages.
void check_spec_keys(const SpecNode& root);

// The keys stages.tune accepts, as its parser reads them (so the list cannot drift from it).
std::vector<std::string> tune_stage_keys();

// The vocabulary size a preset model gets with a tokenizer trained here: the pieces plus
// the sentinels, rounded up to a multiple of 128 (T5's 32000 + 100 -> 32128).
int64_t model_vocab_size(int64_t pieces, int64_t extra_ids);

}  // namespace sp
