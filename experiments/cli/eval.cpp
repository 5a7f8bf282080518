// `softprompt eval --model DIR --task NAME [--data DIR] [--split S] --prompt DIR | --ensemble
// DIR1,DIR2,...`: a tuned PEFT directory (or an ensemble of them, majority vote) scored on
// a task's split; prints the metrics as one JSON object (a split with unlabelled examples:
// the example counts only).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/runner/evaluation.h"
#include "experiments/runner/model_loading.h"
#include "experiments/tasks/task.h"
#include "experiments/training/dtype_policy.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "nn/peft/peft.h"
#include "nn/peft/prompt_ensemble.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string task;
  std::string data;
  std::string split = "validation";
  std::string prompt;
  std::vector<std::string> ensemble;
  std::string predictions;
  std::string method = "greedy";
  std::string dtype = "f32";
  int64_t batch_size = 32;
  int64_t inputs_length = 512;
  int64_t max_decode_length = 16;
  bool sentinel_targets = false;
  int64_t max_examples = 0;
  bool task_prefix = false;
  uint64_t task_seed = 0;
  std::string task_config;
};

int run_eval(const EvalArgs& a) {
  SP_CHECK(a.prompt.empty() != a.ensemble.empty(),
           "[eval] give exactly one of --prompt DIR or "
           "--ensemble DIR1,DIR2,...");
  const std::vector<std::string> members =
      a.prompt.empty() ? a.ensemble : std::vector<std::string>{a.prompt};
  if (!a.predictions.empty()) {  // before the scoring, not after it
    const std::filesystem::path parent = std::filesystem::absolute(a.predictions).parent_path();
    if (!std::filesystem::is_directory(parent))
      throw UsageError(str_cat("[eval] --predictions ", a.predictions, ": ", parent.string(),
                               " is not a directory"));
  }
  TaskOptions to;
  to.data_dir = a.data;
  to.task_prefix = a.task_prefix;
  to.seed = a.task_seed;
  to.config = a.task_config;
  const auto task = make_task(a.task, to);
  const std::vector<TaskExample> examples = first_examples(task->load(a.split), a.max_examples);
  SP_CHECK(!examples.empty(), "[eval] ", a.task, ": split '", a.split, "' has no examples");

  ModelSpec ms;
  ms.checkpoint = a.model;
  const T5Tokenizer tokenizer = load_stage_tokenizer(a.model, ms, TokenizerSpec{});
  EvalSettings es;
  es.method = a.method;
  es.batch_size = a.batch_size;
  es.inputs_length = a.inputs_length;
  es.max_decode_length = a.max_decode_length;
  if (a.sentinel_targets) es.target_prefix = kSentinelPrefix;
  for (const std::string& w :
       undecodable_label_warnings(tokenizer, task->labels(), es, task->name()))
    std::cerr << "[eval] warning: " << w << "\n";

  std::cerr << "[eval] " << a.task << " " << a.split << ": " << examples.size() << " examples, "
            << es.method << ", " << members.size() << (members.size() == 1 ? " model" : " models")
            << " ...\n";
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::vector<std::string>> member_predictions;
  bool one_pass = false;
  if (members.size() > 1) {
    // Prompt ensembles run in one forward pass per batch; other methods one by one.
    // A config that is missing or not a JSON object goes the one-by-one way, where
    // load_peft reports it with its path.
    std::ifstream config(std::filesystem::path(members[0]) / "peft_config.json");
    const nlohmann::json c =
        config ? nlohmann::json::parse(config, nullptr, false) : nlohmann::json();
    one_pass = c.is_object() && c.contains("method") && c["method"] == "prompt_tuning";
  }
  if (one_pass) {
    auto model = load_stage_model(a.model, ms, 0.0, nullptr);
    auto prompts = load_prompt_ensemble(members, *model);
    if (a.dtype == "bf16") use_bf16_for_inference(*model);
    model->eval();
    member_predictions = predict_ensemble_texts(*model, static_cast<int64_t>(members.size()),
                                                tokenizer, examples, task->labels(), es);
  }
  for (const std::string& dir : one_pass ? std::vector<std::string>{} : members) {
    auto model = load_stage_model(a.model, ms, 0.0, nullptr);
    auto peft = load_peft(dir, *model);
    if (a.dtype == "bf16") use_bf16_for_inference(*model);
    model->eval();
    member_predictions.push_back(predict_texts(*model, tokenizer, examples, task->labels(), es));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << "[eval] scored in " << seconds << " s ("
            << static_cast<double>(examples.size() * members.size()) / std::max(seconds, 1e-9)
            << " examples/s)\n";
  const std::vector<std::string> predictions =
      members.size() > 1 ? majority_votes(member_predictions) : member_predictions[0];
  if (!a.predictions.empty()) write_predictions(a.predictions, examples, predictions);
  nlohmann::json out = nlohmann::json::object();
  // A split whose examples lack labels (SuperGLUE's test files): predictions only.
  const auto unlabelled = std::count_if(examples.begin(), examples.end(),
                                        [](const TaskExample& e) { return !e.labelled(); });
  if (unlabelled > 0) {
    out["unlabelled"] = unlabelled;
  } else {
    out = task->compute_metrics(examples, predictions);
    if (members.size() > 1) {
      nlohmann::json each = nlohmann::json::array();
      for (const auto& p : member_predictions) each.push_back(task->compute_metrics(examples, p));
      out["members"] = each;
    }
  }
  out["examples"] = examples.size();
  std::cout << out.dump() << "\n";
  return 0;
}

std::function<int()> setup_eval(CLI::App& sub) {
  auto a = std::make_shared<EvalArgs>();
  sub.add_option("--model", a->model, "The frozen model's checkpoint directory (with spiece.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub.add_option("--task", a->task, "Task name (softprompt tasks list)")->required();
  sub.add_option("--data", a->data, "The task's data directory (empty for built-in tasks)");
  sub.add_option("--split", a->split, "Split to score")->capture_default_str();
  sub.add_option("--prompt", a->prompt, "A tuned PEFT directory (peft_config.json + parameters)")
      ->check(CLI::ExistingDirectory);
  sub.add_option("--ensemble", a->ensemble,
                 "Several tuned PEFT directories, comma-separated: "
                 "majority vote of their predictions")
      ->delimiter(',')
      ->check(CLI::ExistingDirectory);
  sub.add_option("--predictions", a->predictions,
                 "Also write the predictions as JSON lines {\"id\", \"prediction\", \"target\"}");
  sub.add_option("--method", a->method, "greedy (decode, as T5) or rank_classification")
      ->check(CLI::IsMember({"greedy", "rank_classification"}))
      ->capture_default_str();
  sub.add_option("--dtype", a->dtype, "The backbone's storage and compute dtype")
      ->check(CLI::IsMember({"f32", "bf16"}))
      ->capture_default_str();
  sub.add_option("--batch-size", a->batch_size, "Examples per forward pass")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--inputs-length", a->inputs_length, "Encoder tokens kept per example")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--max-decode-length", a->max_decode_length,
                 "Generated tokens at most, EOS included (greedy; as a tune stage's default "
                 "targets_length: raise it for long answers, ReCoRD's entities)")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--max-examples", a->max_examples,
                 "Score the first N examples only, and the rest of the last one's MultiRC "
                 "question or ReCoRD query (0: all)")
      ->check(non_negative())
      ->capture_default_str();
  sub.add_flag("--task-prefix", a->task_prefix, "Prepend T5's task name to the inputs");
  sub.add_flag("--sentinel-targets", a->sentinel_targets,
               "The prompts were tuned with sentinel_targets (\"span corruption + sentinel\"): "
               "predictions start with <extra_id_0>, which comes off before scoring");
  sub.add_option("--task-seed", a->task_seed, "Seed of tasks that make their data (wordnet_wic)")
      ->capture_default_str();
  sub.add_option("--config", a->task_config, "The task's YAML file (task custom)");
  return [a] { return run_eval(*a); };
}

}  // namespace

SP_REGISTER_COMMAND(eval, "Score tuned prompts (or an ensemble of them) on a task's split",
                    setup_eval);

}  // namespace sp::cli
