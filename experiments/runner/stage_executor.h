#pragma once
// The runner's seam between orchestration (which stages run, where, cached or not, in what
// order; runner.cpp) and the work itself (training, evaluation; executors.cpp). Tests swap
// in a fake executor to count invocations and simulate interruptions.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/report/results.h"
#include "experiments/spec/spec.h"

namespace sp {

struct StageRequest {
  const ExperimentSpec* spec = nullptr;
  const Trial* trial = nullptr;
  StageKind kind = StageKind::pretrain;
  // The tune stage to run (the trial's own, or one ensemble member); null otherwise.
  const TuneStage* tune = nullptr;
  std::string dir;  // the stage's output directory; exists; may hold an interrupted attempt
  std::string run_dir;  // the run directory (shared inputs such as the corpus live there)
  // The model the stage starts from: the previous stage's model directory (a Hugging Face
  // checkpoint with spiece.model), or empty when the trial's ModelSpec is the start.
  std::string model_dir;
  // eval: the tuned PEFT directories, [0] the trial's own tune, then ensemble members.
  std::vector<std::string> tuned_dirs;
  std::ostream* log = nullptr;
};

struct StageOutput {
  // pretrain / lm_adapt: the model directory the next stage starts from; tune: the PEFT
  // directory (peft_config.json + parameters). Absolute, or relative to the stage dir.
  std::string model_dir;
  // Rows for results.jsonl; the runner fills trial, point, seed, seconds and finished.
  std::vector<ResultRecord> records;
  // Anything worth keeping in DONE. "earlier_seconds": the time earlier processes spent on
  // a stage this one resumed, which the runner adds to the stage's seconds.
  nlohmann::json info = nlohmann::json::object();
};

class StageExecutor {
 public:
  virtual ~StageExecutor() = default;
  // Runs one stage into request.dir, resuming what an interrupted attempt left there.
  // Throws on failure; the runner records it and moves on to the next trial.
  virtual StageOutput run(const StageRequest& request) = 0;
};

// The executor that trains and evaluates for real (executors.cpp).
std::unique_ptr<StageExecutor> make_default_executor();

// StageOutput <-> JSON, as kept in a finished stage's DONE marker.
nlohmann::json stage_output_json(const StageOutput& out);
StageOutput stage_output_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace sp
