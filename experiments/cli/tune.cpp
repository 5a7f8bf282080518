// `softprompt tune --model DIR --task NAME [--data DIR] --method prompt_tuning --set k=v ...
// --out DIR`: one tuning run from flags, the runner's tune stage without a spec. The flags
// become a spec's trial (experiments/spec/tune_flags.h), validated by the spec's parser.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/runner/stage_executor.h"
#include "experiments/spec/spec.h"
#include "experiments/spec/tune_flags.h"
#include "experiments/training/checkpoint_dir.h"
#include "models/io/atomic_file.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

namespace fs = std::filesystem;

// What a tune run computes, for comparing a rerun into the same --out with: the model, its
// dtype and the tune stage's settings, less those a resumed run may change (more steps, the
// evaluation and early-stopping schedule; the trainer reports a changed optimizer).
nlohmann::json tune_setup(const TuneFlags& flags, const Trial& trial) {
  nlohmann::json stage = trial.stage_json(StageKind::tune);
  for (const char* key :
       {"steps", "eval_every", "early_stopping_patience", "optimizer", "grad_accumulation"})
    stage.erase(key);
  return {{"model", fs::weakly_canonical(flags.model).string()},
          {"dtype", flags.dtype},
          {"stage", stage}};
}

// Refuses an --out that holds checkpoints of a run with other settings (it would resume or
// report that run's numbers as this one's); records this run's setup otherwise.
void check_same_setup(const std::string& out_dir, const nlohmann::json& setup) {
  const fs::path path = fs::path(out_dir) / "tune_setup.json";
  const bool trained =
      !checkpoint_dir::list_steps((fs::path(out_dir) / "checkpoints").string()).empty();
  if (trained && fs::exists(path)) {
    const nlohmann::json before =
        nlohmann::json::parse(read_file(path.string(), "[tune]"), nullptr, false);
    const nlohmann::json a = before.is_object() ? before.flatten() : nlohmann::json::object();
    const nlohmann::json b = setup.flatten();
    std::string changed;
    auto note = [&](const std::string& key) {
      std::string dotted = key.substr(1);
      std::replace(dotted.begin(), dotted.end(), '/', '.');
      changed += str_cat(changed.empty() ? "" : ", ", dotted, " ",
                         a.contains(key) ? a[key].dump() : "(unset)", " -> ",
                         b.contains(key) ? b[key].dump() : "(unset)");
    };
    for (const auto& [key, value] : b.items())
      if (!a.contains(key) || a[key] != value) note(key);
    for (const auto& [key, value] : a.items())
      if (!b.contains(key)) note(key);
    if (!changed.empty())
      throw UsageError(str_cat("[tune] ", out_dir, " holds a run with other settings (", changed,
                               "): give another --out, or delete it to start over"));
  }
  write_file_atomic(path.string(), setup.dump(2) + "\n", "[tune]");
}

int run_tune(const TuneFlags& flags, const std::string& out_dir) {
  cli::device_from_flag("tune", flags.device);  // usable here, before anything loads
  ExperimentSpec spec;
  spec.name = "tune";
  try {
    spec.trials.push_back(tune_trial(flags));
  } catch (const Error& e) {
    throw UsageError(e.what());  // a flag or --set the spec's parser refused
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  SP_CHECK(!ec, "[tune] cannot create --out ", out_dir, ": ", ec.message());
  check_same_setup(out_dir, tune_setup(flags, spec.trials[0]));
  StageRequest req;
  req.spec = &spec;
  req.trial = &spec.trials[0];
  req.kind = StageKind::tune;
  req.tune = &*spec.trials[0].tune;
  req.dir = out_dir;
  req.model_dir = flags.model;
  req.log = &std::cerr;
  const StageOutput out = make_default_executor()->run(req);
  nlohmann::json summary = {{"peft_dir", out.model_dir}, {"info", out.info}};
  if (!out.records.empty()) {
    summary["metrics"] = out.records[0].metrics;
    summary["step"] = out.records[0].step;
    summary["trainable_params"] = out.records[0].trainable_params;
    summary["trainable_share"] = out.records[0].trainable_share;
  }
  std::cout << summary.dump() << "\n";
  return 0;
}

std::function<int()> setup_tune(CLI::App& sub) {
  auto flags = std::make_shared<TuneFlags>();
  auto out_dir = std::make_shared<std::string>();
  sub.add_option("--model", flags->model,
                 "The frozen model's checkpoint directory (with spiece.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub.add_option("--task", flags->task, "Task name (softprompt tasks list)")->required();
  sub.add_option("--data", flags->data, "The task's data directory (empty for built-in tasks)");
  sub.add_option("--method", flags->method, "PEFT method (prompt_tuning, model_tuning, lora, ...)")
      ->capture_default_str();
  std::string keys;
  for (const std::string& key : tune_set_keys()) keys += (keys.empty() ? "" : " ") + key;
  sub.add_option("--set", flags->sets,
                 str_cat("key=value, repeatable, as in a spec's stages.tune (defaults there, but "
                         "steps=1000 batch_size=8 inputs_length=256 targets_length=8 "
                         "eval_every=100 checkpoint_every=100). Training keys: ",
                         keys,
                         "; a dotted path inside stages.tune (optimizer.decay_rate=0.9); any other "
                         "key is a setting of the method (length=20, init=class_labels, ...; "
                         "peft.seed=1 where a training key has the name)"));
  sub.add_option("--out", *out_dir,
                 "Output directory (checkpoints, metrics.jsonl, model/); an "
                 "interrupted run there resumes")
      ->required();
  sub.add_option("--device", flags->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--dtype", flags->dtype,
                 "Frozen backbone storage and compute dtype (what trains stays f32)")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  return [flags, out_dir] { return run_tune(*flags, *out_dir); };
}

}  // namespace

SP_REGISTER_COMMAND(tune, "Tune a PEFT method on a task from flags (one run, no spec)", setup_tune);

}  // namespace sp::cli
