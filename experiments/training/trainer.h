#pragma once
// Trainer: the training loop shared by pretraining, LM adaptation, PEFT tuning and anything
// else. The caller implements TrainingJob (the model-specific parts: a micro-batch's loss,
// evaluation, the data stream's state, exporting the model); the trainer owns the loop:
// gradient accumulation, clipping, the optimizer step (lr from the optimizer's schedule),
// NaN/Inf checks, evaluation and early stopping, checkpoints and exact resume, metrics and
// progress.
//
//   MyJob job(...);                                   // : TrainingJob
//   auto trainable = job.trainable();
//   optim::Adafactor opt(tensors_of(trainable), names_of(trainable), {...});
//   opt.set_schedule(optim::Schedule::rsqrt());
//   Trainer trainer({.steps = 1000, .grad_accumulation = 4, .checkpoint_every = 100,
//                    .out_dir = "runs/x"}, job, opt);
//   TrainResult r = trainer.run();   // resumes from runs/x/checkpoints when one exists
//
// Step numbers are 1-based: step s is the s-th optimizer update; "step-<s>" checkpoints
// hold the state after s updates.
//
// One step:  for micro in 0..grad_accumulation-1: loss = job.micro_batch_loss(step, micro),
//            check it is finite, (loss * its weight).backward(); divide the gradients by
//            the weights' sum (with grad_accumulation > 1);
//            check every gradient is finite; clip to clip_global_norm; optimizer.step();
//            zero_grad; log; evaluate when due; checkpoint when due.
// The loss of a micro-batch is its mean (over tokens or examples, the job decides). With
// grad_accumulation > 1 each micro-batch weighs by the terms its mean is over
// (StepResult::loss_terms, a seq2seq job's target tokens; equal weights when the job does
// not count them): the gradients are summed with those weights and divided by the total,
// so N micro-batches update the parameters exactly as one batch of all their examples does,
// the mean over every target token of the batch (Hugging Face's num_items_in_batch; T5X
// sums the micro-batches' token sums). Auxiliary terms such as T5's z-loss are the job's:
// cross_entropy(logits, targets, {.z_loss = 1e-4}) adds it inside the loss it returns, so
// the logged training loss includes it; the job reports the parts (StepResult::loss_parts)
// and train lines carry them too.
//
// Output under out_dir:
//   metrics.jsonl       one JSON object per line, appended; a train line every log_every
//                       steps: {"step", "loss" (mean over the steps since the last line),
//                       "lr", "grad_norm" (before clipping, of the last step), "examples",
//                       "tokens", "examples_per_s", "tokens_per_s", "elapsed_s", and
//                       each of the job's loss parts, "cross_entropy", "z_loss", ...} and an
//                       eval line after each evaluation: {"step", "eval": {metrics},
//                       "best": bool}. On resume, lines after the checkpoint's step are
//                       dropped, so the file never repeats a step.
//   checkpoints/step-<s>/   params.safetensors (the trainable tensors by name),
//                       optimizer.safetensors (Optimizer::state_dict), state.json (step,
//                       generator states, the job's data state, eval history, best metric,
//                       the metrics window, elapsed time). Written to a temporary
//                       directory and renamed, then checkpoints/latest (a one-line pointer)
//                       is replaced atomically: a crash at any point leaves the previous
//                       checkpoint as the one resume picks. Temporary directories left by
//                       a crash are removed on the next run.
//   model/              job.save_model() of the best checkpoint (when evaluation ran and
//                       keep_best) or of the final parameters, written to a temporary
//                       directory and renamed.
//
// Exact resume: restoring a checkpoint restores the trainable parameters, the optimizer
// state, the default generator (dropout masks come from it) and the job's generators, and
// the job's data state, so a run killed at any point and restarted ends with bit-identical
// parameters and the same metrics.jsonl losses as an uninterrupted run. For that the job
// must draw all its randomness from those generators or from state it returns in
// data_state(), and evaluate() must not advance the training stream.
//
// NaN/Inf in a micro-batch's loss or in any gradient stops the run before the update with
// sp::Error "[trainer] step <s>: ..." naming the micro-batch or the parameter; nothing is
// written for that step, so the last checkpoint stays the resume point.
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "experiments/training/metrics_log.h"
#include "nn/optim/optimizer.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sp {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

// The tensors and the names of a name -> tensor list, in order (to build an optimizer).
std::vector<Tensor> tensors_of(const NamedTensorList& named);
std::vector<std::string> names_of(const NamedTensorList& named);

// What one micro-batch contributed.
struct StepResult {
  Tensor loss;           // a scalar to minimise, the mean over the micro-batch, in the graph
  int64_t examples = 0;  // examples in the micro-batch (for examples/s)
  int64_t tokens = 0;    // tokens in the micro-batch (inputs + targets, for tokens/s)
  // How many terms loss is the mean of (a seq2seq loss: the target tokens it counts), so
  // that accumulated micro-batches weigh by it; -1: the micro-batches weigh the same.
  int64_t loss_terms = -1;
  // Named parts of loss's value, for the log (seq2seq jobs with z-loss: "cross_entropy"
  // and "z_loss"): each is logged beside "loss", averaged as loss is.
  std::map<std::string, double> loss_parts = {};
};

struct EvalResult {
  std::map<std::string, double> metrics;  // must contain TrainerOptions::metric when set
};

class TrainingJob {
 public:
  virtual ~TrainingJob() = default;

  // The loss of micro-batch `micro` (0 .. grad_accumulation - 1) of step `step` (1-based).
  // Called in order; the job advances its data stream itself.
  virtual StepResult micro_batch_loss(int64_t step, int64_t micro) = 0;

  // Evaluates the current parameters; nullopt when the job has no evaluation. Called with
  // the model in eval mode (see set_training) and must not touch the training data stream.
  virtual std::optional<EvalResult> evaluate(int64_t step) { return std::nullopt; }

  // The tensors the optimizer trains, with unique names: they are saved in checkpoints
  // and restored in place. Must be the optimizer's parameters, in the same order.
  virtual NamedTensorList trainable() = 0;

  // The data stream's position (epoch, index, shuffling and noise RNG states, ...) as JSON,
  // and its restoration: after restore_data_state(data_state()) taken at step s, the
  // micro-batches of step s + 1 onwards are the ones an uninterrupted run would see.
  virtual nlohmann::json data_state() = 0;
  virtual void restore_data_state(const nlohmann::json& state) = 0;

  // What evaluate() scores on (its split, method, examples), as JSON that changes when the
  // evaluation set does; null when not tracked. A checkpoint keeps it, and a resume that
  // evaluates on another set is refused: its best and early stopping would compare scores
  // of two sets.
  virtual nlohmann::json evaluation_identity() { return nullptr; }

  // Writes the model as the job's users want it (a Hugging Face checkpoint, a PEFT
  // directory, ...) into dir, which exists and is empty. The trainable tensors hold the
  // parameters to export when it is called.
  virtual void save_model(const std::string& dir) = 0;

  // Generators besides sp::default_generator() whose state a checkpoint must keep (a
  // model's own dropout generator, say), by unique name ("default" is taken).
  virtual std::vector<std::pair<std::string, Generator*>> generators() { return {}; }

  // Switches the model between training (dropout on) and evaluation: the trainer calls
  // set_training(true) before the first step, and set_training(false) before evaluate()
  // and set_training(true) after it.
  virtual void set_training(bool training) {}
};

enum class ProgressMode {
  automatic,  // a live "\r" line when stderr is a terminal, else plain lines
  live,       // the live line whatever stderr is
  plain,      // a line on stderr every log_every steps
  off,
};

struct TrainerOptions {
  int64_t steps = 0;              // optimizer updates in total (a resumed run continues to it)
  int64_t grad_accumulation = 1;  // micro-batches per update
  int64_t log_every = 10;         // metrics.jsonl train lines and plain progress lines
  int64_t eval_every = 0;         // steps between evaluations; 0: only at the end
  bool eval_at_end = true;        // evaluate after the last step (when not just done)
  int64_t checkpoint_every = 0;   // steps between checkpoints; 0: only the final one
  int64_t keep_last = 2;          // the newest checkpoints kept (>= 1), plus the best
  // Checkpoint at every new best evaluation, keep the best one and export it at the end.
  bool keep_best = true;
  int64_t early_stopping_patience = 0;  // stop after this many evals without improvement; 0: off
  // The eval metric that ranks evaluations; empty: the first of the first result, by name.
  std::string metric;
  bool higher_is_better = true;
  double min_improvement = 0;   // a new best must beat the old by more than this
  double clip_global_norm = 0;  // 0: off
  // Stop (with a checkpoint) once the run's wall time, earlier processes included, reaches
  // this; 0: off. A run stopped so continues when run again with a larger budget (or 0).
  // Its evaluation at the stop (eval_at_end), when off the eval_every schedule, is reported
  // but does not rank: neither a new best nor a step toward early stopping.
  double max_seconds = 0;
  std::string out_dir;       // required
  bool export_model = true;  // call job.save_model into out_dir/model at the end
  ProgressMode progress = ProgressMode::automatic;
  // Seeds sp::default_generator() at the start of a fresh run; nullopt leaves it as the
  // caller set it (a resumed run always restores it from the checkpoint).
  std::optional<uint64_t> seed;
};

struct TrainResult {
  int64_t steps_done = 0;                // the last step trained (== options.steps unless stopped)
  int64_t resumed_from = 0;              // the checkpoint step this run resumed from (0: fresh)
  std::string stop_reason;               // "steps", "early_stopping", "max_seconds"
  double final_loss = 0;                 // mean loss of the last log window
  std::optional<EvalResult> final_eval;  // the last evaluation
  std::optional<double> best_metric;     // the best value of options.metric
  int64_t best_step = 0;                 // the step it came from (0: no evaluation)
  std::string model_dir;                 // out_dir/model when exported, else empty
  std::string last_checkpoint;           // the directory of the latest checkpoint
  // Wall time of the earlier processes this run resumed from (their training, evaluations
  // and checkpoints; 0 for a fresh run): with this process's, the run's whole time.
  double earlier_seconds = 0;
};

// One evaluation as kept in the history.
struct EvalRecord {
  int64_t step = 0;
  EvalResult result;
};

class Trainer {
 public:
  // Checks the options and that job.trainable() matches the optimizer's parameters (same
  // tensors, same order); the optimizer must have a schedule. Nothing is read or written
  // until run().
  Trainer(TrainerOptions options, TrainingJob& job, optim::Optimizer& optimizer);

  // Trains to options.steps (or an earlier stop), resuming from the latest checkpoint in
  // out_dir when there is one. A finished run's directory returns its result again
  // without training. Leaves the trainable tensors holding the exported parameters (the
  // best checkpoint's when it was exported).
  TrainResult run();

  const TrainerOptions& options() const { return options_; }
  const std::vector<EvalRecord>& eval_history() const { return history_; }

  // Paths, for tools and tests.
  std::string checkpoints_dir() const;
  std::string metrics_path() const;
  // The directory checkpoints/latest points at, or empty when there is none.
  std::string latest_checkpoint() const;

 private:
  struct Window {  // metrics accumulated since the last train line
    double loss_sum = 0;
    std::map<std::string, double> part_sums;
    int64_t steps = 0;
    int64_t examples = 0;
    int64_t tokens = 0;
    double seconds = 0;  // spent in training steps (not evaluation or checkpoints)
  };
  struct StepStats {
    double loss = 0;  // mean over the micro-batches
    std::map<std::string, double> parts;  // each as loss
    int64_t examples = 0;
    int64_t tokens = 0;
    double lr = 0;
    double grad_norm = 0;
  };

  void check_trainable_matches_optimizer();
  // Restores the checkpoint of step `step` in dir; its state.json must say the same step.
  void restore(const std::string& dir, int64_t step);
  // The options a checkpoint's state.json records that this run sets otherwise (empty when
  // none): "schedule constant(0.3) -> constant(0.1)", for the line a resumed run prints.
  std::string changed_options(const nlohmann::json& saved) const;
  // Throws when the checkpoint's best was of another metric or direction than this run's:
  // the best checkpoint and early stopping would compare unlike values.
  void check_best_tracking(const nlohmann::json& state, const std::string& state_path) const;
  // Throws when the checkpoint's evaluations were of another set than the job's now
  // (TrainingJob::evaluation_identity).
  void check_evaluation_identity(const nlohmann::json& state, const std::string& state_path);
  void restore_state(const std::string& dir, const nlohmann::json& state);
  StepStats train_step(int64_t step);
  // nullopt: the job has no evaluation; else whether the result is a new best. An
  // evaluation that does not rank is recorded but leaves the best and the patience alone.
  std::optional<bool> evaluate_and_record(int64_t step, bool ranks);
  // The latest evaluation's metrics.jsonl line and progress output.
  void record_eval_line(int64_t step, bool best);
  // Removes out_dir/model (export_model) before the checkpoint that finishes the run: an
  // export from an earlier stop of this directory is stale, and a crash before the new
  // export must leave none, so that the next run exports again.
  void remove_stale_export();
  void write_train_line(int64_t step, const StepStats& last);
  void write_checkpoint(int64_t step, bool finished);
  void prune_checkpoints();
  void load_params(const std::string& dir);
  void export_model();
  void show_progress(int64_t step, const StepStats& last, bool line_due);
  void show_eval(int64_t step, const EvalResult& result, bool new_best);
  double elapsed_seconds() const;
  nlohmann::json generator_states();
  void restore_generators(const nlohmann::json& states, const std::string& dir);
  TrainResult result() const;

  TrainerOptions options_;
  TrainingJob& job_;
  optim::Optimizer& optimizer_;
  NamedTensorList trainable_;
  std::vector<std::string> names_;
  MetricsLog metrics_;

  int64_t step_ = 0;
  int64_t resumed_from_ = 0;
  bool finished_ = false;
  std::string stop_reason_;
  std::string metric_;  // the metric that ranks evaluations, once known
  std::vector<EvalRecord> history_;
  std::optional<double> best_metric_;
  int64_t best_step_ = 0;
  int64_t evals_since_best_ = 0;
  Window window_;
  double last_window_loss_ = 0;
  double elapsed_before_ = 0;  // seconds trained before this process (from the checkpoint)
  std::chrono::steady_clock::time_point started_;
  // Progress display.
  bool live_ = false;
  bool plain_ = false;
  bool live_line_open_ = false;
  int64_t steps_this_run_ = 0;
  double train_seconds_this_run_ = 0;
  std::chrono::steady_clock::time_point last_live_;
  std::string model_dir_;
};

}  // namespace sp
