#pragma once
// ExperimentSpec: an experiment YAML parsed, merged, swept and validated into typed trials
// that the runner (experiments/runner/runner.h) executes. Nothing here runs anything.
//
//   SpecLoadOptions opts;  opts.sets = {"stages.tune.steps=100"};
//   ExperimentSpec spec = load_spec("experiments/specs/quickstart.yaml", opts);
//   for (const Trial& t : spec.trials)           // t.id: "length=20,init=class_labels,seed=1"
//     for (StageKind k : t.stage_order())        // pretrain, lm_adapt, tune, eval (those present)
//       cache_dir(k, t.stage_hash(k));
//
// A stage's hash covers its own canonical_json() (every resolved value, defaults included,
// nothing that cannot change its result such as device or log cadence) and the hash of the
// stage it starts from (or of the model / tokenizer / corpus it starts from), so two trials
// share a stage exactly when it would compute the same thing. docs/experiments.md is the
// key reference; every key below is documented there with its YAML name.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"

namespace sp {

enum class StageKind { pretrain, lm_adapt, tune, eval };
const char* stage_kind_name(StageKind kind);  // "pretrain", "lm_adapt", "tune", "eval"
// The version of the code that computes a stage of this kind (its history is beside the
// definition in spec_json.cpp). It enters the stage's hash, so a change to the code that
// changes what a stage computes from the same configuration bumps it, and stages cached and
// trials finished by the earlier code run again instead of being reused.
int stage_code_version(StageKind kind);

// optim::Schedule's parameters; the peak rate is OptimizerSpec::lr.
struct ScheduleSpec {
  std::string kind = "constant";  // constant | rsqrt | linear | cosine | step
  int64_t warmup_steps = 0;
  double warmup_init = 0.0;      // warm-up starts at warmup_init * lr
  double final_fraction = 0.0;   // linear, cosine: the rate at the last step, times lr
  int64_t rsqrt_offset = 10000;  // rsqrt: lr / sqrt(max(rsqrt_start_step + step, offset))
  int64_t rsqrt_start_step = 0;  // rsqrt: the steps a continued schedule has behind it
  int64_t decay_every = 1;       // step: multiply by decay_factor every decay_every steps
  double decay_factor = 1.0;
  nlohmann::json canonical_json() const;
};

struct OptimizerSpec {
  std::string name = "adafactor";  // adafactor | adamw | sgd
  double lr = 0.3;
  ScheduleSpec schedule;
  double weight_decay = 0.0;      // adafactor: T5X's decay (not scaled by lr); adamw: decoupled
  double clip_global_norm = 0.0;  // the trainer's gradient clipping; 0: off
  // adafactor
  double decay_rate = 0.8;
  double clipping_threshold = 1.0;  // update clipping; 0: off
  bool multiply_by_parameter_scale = false;
  bool factored = true;
  // adafactor (momentum, unset = none), adamw (default 0.9), sgd: ignored
  std::optional<double> beta1;
  double beta2 = 0.999;   // adamw
  double epsilon = 1e-8;  // adamw
  double momentum = 0.0;  // sgd
  // Only the keys that apply to `name` are in it.
  nlohmann::json canonical_json() const;
};

// T5 1.1's pretraining optimizer, the default of the pretrain and lm_adapt stages and of
// `softprompt pretrain` / `lm-adapt`: Adafactor as T5X pretrains (factored, parameter
// scaling, decay rate 0.8, update clipping 1) at lr / sqrt(max(step, 10000)) with lr 1, no
// weight decay.
inline OptimizerSpec t5_pretraining_optimizer() {
  OptimizerSpec o;
  o.name = "adafactor";
  o.lr = 1.0;
  o.schedule.kind = "rsqrt";
  o.schedule.rsqrt_offset = 10000;
  o.multiply_by_parameter_scale = true;
  return o;
}

// The settings every training stage shares.
struct LoopSpec {
  int64_t steps = 0;              // optimizer updates
  int64_t batch_size = 32;        // examples (sequences) per update, all micro-batches together
  int64_t grad_accumulation = 1;  // micro-batches per update; divides batch_size
  int64_t inputs_length = 512;    // encoder tokens, EOS included
  int64_t targets_length = 114;   // decoder tokens, EOS included
  OptimizerSpec optimizer;
  uint64_t seed = 0;     // data order, noise, dropout, initialisation
  double dropout = 0.0;  // the model's dropout_rate while training
  double z_loss = 1e-4;
  int64_t checkpoint_every = 0;  // 0: only the final checkpoint (not hashed)
  int64_t log_every = 10;        // not hashed
};

// Span-corruption pretraining of the model (T5 1.1's objective), packed.
struct PretrainStage : LoopSpec {
  std::string objective = "span_corruption";  // span_corruption | prefix_lm
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
  bool pack = true;
  int64_t shuffle_buffer = 1000;  // examples shuffled together after they are made; 0: none
  std::string hash;               // filled by the loader
  std::string depends_on;         // the hash this stage starts from (the model's origin)
  nlohmann::json canonical_json() const;
};

// LM adaptation: T5's prefix-LM objective, continuing from the stage before (or the
// model's checkpoint). Absent from a trial when steps is 0.
struct LmAdaptStage : LoopSpec {
  bool pack = true;
  int64_t shuffle_buffer = 1000;
  std::string hash;
  std::string depends_on;
  nlohmann::json canonical_json() const;
};

// A PEFT method and its settings, defaults merged (nn/peft's registry validates them).
struct PeftSpec {
  std::string method = "prompt_tuning";
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json canonical_json() const;
};

// A task of experiments/tasks and its TaskOptions. YAML keys (flat, in the stage):
// task, data_dir, task_prefix, task_config, task_seed.
struct TaskOptions;  // experiments/tasks/task.h

struct TaskSpec {
  std::string name;          // a registered task name (lower case)
  std::string data_dir;      // the task's files; empty: the task's default (built-in tasks)
  bool task_prefix = false;  // prepend T5's task name (off in the paper)
  std::string config;        // custom tasks: their YAML file
  uint64_t seed = 0;         // tasks that make their data (wordnet_wic)
  nlohmann::json canonical_json() const;
  TaskOptions options() const;  // what make_task takes
};

// Tuning a PEFT method (or the whole model: method model_tuning) on a task.
struct TuneStage : LoopSpec {
  TaskSpec task;
  // "Span corruption + sentinel": <extra_id_0> in front of every target, stripped from
  // predictions (for span-corruption checkpoints).
  bool sentinel_targets = false;
  PeftSpec peft;
  DType trainable_dtype = DType::f32;
  std::string train_split = "train";      // e.g. "train32" (a few-shot file DIR/train32.jsonl)
  std::string eval_split = "validation";  // early stopping / best checkpoint selection
  std::string eval_method = "greedy";     // greedy | rank_classification
  int64_t eval_every = 0;                 // 0: once, at the end (a spec's default: 1000)
  int64_t early_stopping_patience = 0;    // evaluations without improvement; 0: off
  std::string metric;                     // empty: the task's primary metric
  int64_t max_train_examples = 0;         // 0: all
  int64_t max_eval_examples = 0;          // 0: all
  std::string hash;
  std::string depends_on;
  nlohmann::json canonical_json() const;
};

// Zero-shot evaluation of the tuned model on another task (domain shift, QQP <-> MRPC).
struct TransferSpec {
  TaskSpec task;
  std::vector<std::string> splits = {"validation"};
  // Model output -> the evaluated task's label ("duplicate" -> "equivalent"); a prediction
  // not in the map is scored as it is.
  std::map<std::string, std::string> label_map;
  nlohmann::json canonical_json() const;
};

// Final evaluation of the tuned model on its task (and any transfer tasks).
struct EvalStage {
  std::vector<std::string> splits = {"validation"};
  std::string method = "greedy";  // greedy | rank_classification
  int64_t batch_size = 32;
  int64_t max_decode_length = 0;  // resolved: 0 in YAML means tune.targets_length
  int64_t max_examples = 0;       // 0: all
  // > 1: Trial::ensemble holds this many tuned prompts (tune seeds seed .. seed + n - 1),
  // evaluated in one batch with majority voting; each member is also scored alone.
  int64_t ensemble = 1;
  int64_t prompt_neighbors = 0;  // > 0: cosine top-k vocabulary neighbours of each prompt row
  std::vector<TransferSpec> transfer;
  std::string hash;
  std::string depends_on;  // the tune hash (ensemble members' hashes enter this stage's hash)
  nlohmann::json canonical_json() const;
};

// The model a trial starts from: a preset initialised at random (to be pretrained) or a
// Hugging Face checkpoint directory.
struct ModelSpec {
  std::string preset;      // T5Config::preset name; exclusive with checkpoint
  std::string checkpoint;  // a directory with config.json and weights
  nlohmann::json config = nlohmann::json::object();  // T5Config keys over the preset
  uint64_t init_seed = 0;                            // random initialisation of a preset
  DType dtype = DType::f32;       // frozen backbone storage and compute dtype: f32 | bf16
  Device device = Device::cpu();  // cpu | cuda (not hashed)
  nlohmann::json canonical_json() const;
};

struct TokenizerSpec {
  // checkpoint: the checkpoint's spiece.model; file: `path`; train: a unigram vocabulary
  // trained on the corpus (stored with the first stage that needs it).
  std::string source = "checkpoint";
  std::string path;
  int64_t vocab_size = 32000;             // train: SentencePiece pieces (sentinels excluded)
  int64_t input_sentence_size = 1000000;  // train: sentences sampled; 0: all
  int64_t extra_ids = 100;                // <extra_id_N> sentinels
  nlohmann::json canonical_json() const;
};

struct CorpusSpec {
  std::string builtin;             // "wordnet" (Debian wordnet-base); exclusive with files
  std::vector<std::string> files;  // text or jsonl files, or directories of them
  std::string format = "lines";    // lines | paragraphs | jsonl
  std::string jsonl_field = "text";
  int64_t max_documents = 0;  // 0: all
  nlohmann::json canonical_json() const;
};

struct Trial {
  std::string id;  // "length=20,init=class_labels,seed=1"; "default" without a sweep
  // Every swept key (dotted, as in the YAML) and its value as text, in sweep order.
  std::vector<std::pair<std::string, std::string>> sweep_point;
  uint64_t seed = 0;  // == tune->seed when there is a tune stage
  // The spec's `tags:` (free labels for reports, e.g. size: base; never hashed): sweeping
  // tags.size next to model.checkpoint gives plots a readable axis.
  std::map<std::string, std::string> tags;
  ModelSpec model;
  TokenizerSpec tokenizer;
  CorpusSpec corpus;
  std::optional<PretrainStage> pretrain;
  std::optional<LmAdaptStage> lm_adapt;
  std::optional<TuneStage> tune;
  std::optional<EvalStage> eval;
  // eval->ensemble > 1: the tuned members, [0] == *tune, then seeds + 1, + 2, ... (each
  // with its own hash, so members shared with other trials are trained once).
  std::vector<TuneStage> ensemble;

  std::vector<StageKind> stage_order() const;
  bool has(StageKind kind) const;
  const std::string& stage_hash(StageKind kind) const;  // throws for an absent stage
  nlohmann::json stage_json(StageKind kind) const;      // canonical_json of that stage
  // The hash the first stage starts from: model + tokenizer + corpus origin.
  std::string origin_hash() const;
};

struct ExperimentSpec {
  std::string name;  // runs/<name> by default
  std::string description;
  std::string source;                       // the YAML file (as given)
  std::map<std::string, std::string> vars;  // resolved: default < environment < --set
  // The swept dotted keys that name trials (sweep.hide left out), "seed" last if swept:
  // what reports group by. Trial::sweep_point also holds the hidden ones.
  std::vector<std::string> sweep_keys;
  std::string plot_x;  // sweep.x: the swept key reports put on the x axis; "" = choose
  // Swept keys that take their values together: each sweep.zip group, each grid key alone
  // (hidden keys included). Reports draw no series for a key swept with the x axis.
  std::vector<std::vector<std::string>> sweep_groups;
  std::vector<Trial> trials;
  // Problems that do not stop a dry run (a missing data directory); on a real load with
  // check_paths these are errors instead.
  std::vector<std::string> warnings;
  nlohmann::json resolved;  // the merged YAML tree after vars and --set, for reports
};

struct SpecLoadOptions {
  std::vector<std::string> sets;  // "dotted.key=value", applied in order after the files
  // Variable values that beat the environment (tests); the process environment is read
  // when read_environment is true.
  std::map<std::string, std::string> env;
  bool read_environment = true;
  // Missing files and directories are errors; false (dry run) records them as warnings.
  bool check_paths = true;
};

// Parses, merges (extends:), substitutes variables, applies --set, expands the sweep and
// validates every trial. Throws sp::Error "FILE:LINE:COL: message" on the first problem.
ExperimentSpec load_spec(const std::string& path, const SpecLoadOptions& options = {});
// The same from text; source names it in messages, and `extends:` and ${SPEC_DIR} are
// relative to its directory, e.g. parse_spec(text, "/tmp/x.yaml"). Data and checkpoint
// paths are used as written (relative ones: to the working directory).
ExperimentSpec parse_spec(const std::string& yaml_text, const std::string& source,
                          const SpecLoadOptions& options = {});

// What --dry-run prints: the trials, their stages and each stage's hash.
std::string describe_trials(const ExperimentSpec& spec);

}  // namespace sp
