// `softprompt tune --model DIR --task NAME [--data DIR] --method prompt_tuning --set k=v ...
// --out DIR`: one tuning run from flags, the runner's tune stage without a spec. --set
// takes the training keys below and, for any other key, a setting of the PEFT method
// (checked by the method: an unknown key fails with a did-you-mean).
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/runner/stage_executor.h"
#include "experiments/spec/spec.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct TuneArgs {
  std::string model;
  std::string task;
  std::string data;
  std::string method = "prompt_tuning";
  std::vector<std::string> sets;
  std::string out;
  std::string dtype = "f32";
  std::string device = "cpu";
};

nlohmann::json typed(const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return text;
  }
}

template <typename T>
T as(const std::string& key, const nlohmann::json& v) {
  try {
    return v.get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(str_cat("[tune] --set ", key, "=", v.dump(), ": wrong type for this key"));
  }
}

// A seed: an integer >= 0 (a negative one would wrap around as unsigned).
uint64_t seed_value(const std::string& key, const nlohmann::json& v) {
  const int64_t seed = as<int64_t>(key, v);
  SP_CHECK(seed >= 0, "[tune] --set ", key, "=", seed, ": must be >= 0");
  return static_cast<uint64_t>(seed);
}

// The spec's ranges for stages.tune (experiments/spec/trial_parse.cpp), checked before
// anything loads: a zero length would otherwise train on empty sequences without a word.
void check_ranges(const TuneStage& ts) {
  auto check = [](bool ok, const char* key, int64_t value, const char* expected) {
    SP_CHECK(ok, "[tune] --set ", key, "=", value, ": must be ", expected);
  };
  check(ts.steps > 0, "steps", ts.steps, "positive");
  check(ts.batch_size > 0, "batch_size", ts.batch_size, "positive");
  check(ts.grad_accumulation > 0, "grad_accumulation", ts.grad_accumulation, "positive");
  SP_CHECK(ts.batch_size % ts.grad_accumulation == 0,
           "[tune] --set grad_accumulation=", ts.grad_accumulation, ": must divide batch_size (",
           ts.batch_size, ")");
  check(ts.inputs_length >= 2, "inputs_length", ts.inputs_length, ">= 2 (a token and EOS)");
  check(ts.targets_length >= 1, "targets_length", ts.targets_length, ">= 1");
  check(ts.eval_every >= 0, "eval_every", ts.eval_every, ">= 0 (0: only at the end)");
  check(ts.early_stopping_patience >= 0, "early_stopping_patience", ts.early_stopping_patience,
        ">= 0 (0: off)");
  check(ts.max_train_examples >= 0, "max_train_examples", ts.max_train_examples, ">= 0 (0: all)");
  check(ts.max_eval_examples >= 0, "max_eval_examples", ts.max_eval_examples, ">= 0 (0: all)");
  check(ts.checkpoint_every >= 0, "checkpoint_every", ts.checkpoint_every, ">= 0");
  check(ts.log_every > 0, "log_every", ts.log_every, "positive");
}

// One training key of --set: converts the value and stores it in the stage.
using Setter = std::function<void(TuneStage&, const std::string& key, const nlohmann::json&)>;

// A setter for the field field_of(stage) returns, of that field's type.
template <typename FieldOf>
Setter into(FieldOf field_of) {
  return [field_of](TuneStage& ts, const std::string& key, const nlohmann::json& v) {
    auto& field = field_of(ts);
    field = as<std::remove_reference_t<decltype(field)>>(key, v);
  };
}

// The training keys --set understands; the rest go to the PEFT method.
const std::map<std::string, Setter>& training_keys() {
  using T = TuneStage;
  static const std::map<std::string, Setter> keys = {
      {"steps", into([](T & t) -> auto& { return t.steps; })},
      {"batch_size", into([](T & t) -> auto& { return t.batch_size; })},
      {"grad_accumulation", into([](T & t) -> auto& { return t.grad_accumulation; })},
      {"inputs_length", into([](T & t) -> auto& { return t.inputs_length; })},
      {"targets_length", into([](T & t) -> auto& { return t.targets_length; })},
      {"seed",
       [](T& t, const std::string& k, const nlohmann::json& v) { t.seed = seed_value(k, v); }},
      {"dropout", into([](T & t) -> auto& { return t.dropout; })},
      {"z_loss", into([](T & t) -> auto& { return t.z_loss; })},
      {"checkpoint_every", into([](T & t) -> auto& { return t.checkpoint_every; })},
      {"log_every", into([](T & t) -> auto& { return t.log_every; })},
      {"eval_every", into([](T & t) -> auto& { return t.eval_every; })},
      {"eval_split", into([](T & t) -> auto& { return t.eval_split; })},
      {"eval_method", into([](T & t) -> auto& { return t.eval_method; })},
      {"early_stopping_patience", into([](T & t) -> auto& { return t.early_stopping_patience; })},
      {"metric", into([](T & t) -> auto& { return t.metric; })},
      {"max_train_examples", into([](T & t) -> auto& { return t.max_train_examples; })},
      {"max_eval_examples", into([](T & t) -> auto& { return t.max_eval_examples; })},
      {"optimizer", into([](T & t) -> auto& { return t.optimizer.name; })},
      {"lr", into([](T & t) -> auto& { return t.optimizer.lr; })},
      {"weight_decay", into([](T & t) -> auto& { return t.optimizer.weight_decay; })},
      {"clip_global_norm", into([](T & t) -> auto& { return t.optimizer.clip_global_norm; })},
      {"schedule", into([](T & t) -> auto& { return t.optimizer.schedule.kind; })},
      {"warmup_steps", into([](T & t) -> auto& { return t.optimizer.schedule.warmup_steps; })},
      {"task_prefix", into([](T & t) -> auto& { return t.task.task_prefix; })},
      {"task_config", into([](T & t) -> auto& { return t.task.config; })},
      {"task_seed",
       [](T& t, const std::string& k, const nlohmann::json& v) { t.task.seed = seed_value(k, v); }},
      {"train_split", into([](T & t) -> auto& { return t.train_split; })},
  };
  return keys;
}

void apply_set(TuneStage& ts, const std::string& key, const nlohmann::json& v) {
  const auto it = training_keys().find(key);
  if (it != training_keys().end()) {
    it->second(ts, key, v);
  } else {
    ts.peft.settings[key] = v;
  }
}

std::string training_key_list() {
  std::string out;
  for (const auto& [key, setter] : training_keys()) out += (out.empty() ? "" : " ") + key;
  return out;
}

int run_tune(const TuneArgs& a) {
  ExperimentSpec spec;
  spec.name = "tune";
  Trial trial;
  trial.id = "tune";
  trial.model.checkpoint = a.model;
  trial.model.dtype = a.dtype == "bf16" ? DType::bf16 : DType::f32;
  trial.model.device = cli::device_from_flag("tune", a.device);
  TuneStage ts;
  ts.task.name = a.task;
  ts.task.data_dir = a.data;
  ts.peft.method = a.method;
  ts.steps = 1000;
  ts.batch_size = 8;
  ts.inputs_length = 256;
  ts.targets_length = 8;
  ts.eval_every = 100;
  ts.checkpoint_every = 100;
  for (const std::string& s : a.sets) {
    const size_t eq = s.find('=');
    SP_CHECK(eq != std::string::npos && eq > 0, "[tune] --set expects key=value, got '", s, "'");
    apply_set(ts, s.substr(0, eq), typed(s.substr(eq + 1)));
  }
  check_ranges(ts);
  trial.seed = ts.seed;
  trial.tune = ts;
  spec.trials.push_back(trial);

  std::filesystem::create_directories(a.out);
  StageRequest req;
  req.spec = &spec;
  req.trial = &spec.trials[0];
  req.kind = StageKind::tune;
  req.tune = &*spec.trials[0].tune;
  req.dir = a.out;
  req.model_dir = a.model;
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
  auto a = std::make_shared<TuneArgs>();
  sub.add_option("--model", a->model, "The frozen model's checkpoint directory (with spiece.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub.add_option("--task", a->task, "Task name (softprompt tasks list)")->required();
  sub.add_option("--data", a->data, "The task's data directory (empty for built-in tasks)");
  sub.add_option("--method", a->method, "PEFT method (prompt_tuning, model_tuning, lora, ...)")
      ->capture_default_str();
  sub.add_option(
      "--set", a->sets,
      str_cat("key=value, repeatable. Training keys: ", training_key_list(),
              "; any other key is a setting of the method (length=20, init=class_labels, ...)"));
  sub.add_option("--out", a->out,
                 "Output directory (checkpoints, metrics.jsonl, model/); an "
                 "interrupted run there resumes")
      ->required();
  sub.add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  sub.add_option("--dtype", a->dtype, "Frozen backbone dtype")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  return [a] { return run_tune(*a); };
}

}  // namespace

SP_REGISTER_COMMAND(tune, "Tune a PEFT method on a task from flags (one run, no spec)", setup_tune);

}  // namespace sp::cli
