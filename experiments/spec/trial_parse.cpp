#include "experiments/spec/trial_parse.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "experiments/data/shuffled_stream.h"
#include "experiments/objectives/span_corruption.h"
#include "experiments/spec/map_reader.h"
#include "experiments/spec/scalar.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/task_io.h"
#include "models/t5/config.h"
#include "nn/peft/peft.h"
#include "tensor/error.h"
#include "tensor/suggest.h"

namespace sp {

int64_t model_vocab_size(int64_t pieces, int64_t extra_ids) {
  return (pieces + extra_ids + 127) / 128 * 128;
}

namespace {

namespace fs = std::filesystem;

// A missing file or directory: an error, or a warning in a dry run (ctx.check_paths false).
void missing_path(const TrialParseContext& ctx, const SourceLocation& loc,
                  const std::string& message) {
  if (ctx.check_paths) fail_at(loc, message);
  ctx.warnings->push_back(loc.str() + ": " + message);
}

void check_path(const TrialParseContext& ctx, const SourceLocation& loc, const std::string& what,
                const std::string& path, bool want_dir) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  const bool ok = want_dir ? fs::is_directory(path, ec) : exists;
  if (ok) return;
  missing_path(ctx, loc,
               str_cat(what, " '", path, "' ", exists ? "is not a directory" : "does not exist"));
}

// The tune stage trains on train_split and scores eval_split, so both need labels. Only a
// test split may lack them (split_may_be_unlabelled: SuperGLUE's and GLUE's have none), so
// such a split is read now, before any stage runs, and refused when an example has none.
void check_split_labelled(const Task& task, const std::string& split, const std::string& what,
                          const SourceLocation& loc) {
  if (!split_may_be_unlabelled(split)) return;
  const std::vector<TaskExample> examples = task.load(split);
  const auto no_label = [](const TaskExample& e) { return !e.labelled(); };
  const auto first = std::find_if(examples.begin(), examples.end(), no_label);
  if (first == examples.end()) return;
  const auto unlabelled = std::count_if(first, examples.end(), no_label);
  fail_at(loc, str_cat(what, ": ", task.name(), " split '", split, "' has ", unlabelled, " of ",
                       examples.size(), " examples without a label (the first: ", first->id,
                       "); the tune stage trains on and scores labelled examples only. A split "
                       "without labels can be predicted under stages.eval.splits"));
}

// Refuses splits the task cannot load (a file missing from data_dir, a name the task does
// not have) before any work starts, as missing paths: what names the key, loc locates it.
// A data_dir or task_config that is missing was reported already.
// evaluated: the "<task>-<split>" the trial's eval stage has already named: each is one
// predictions file and one results record. nullptr for the tune stage's splits, which are
// trained on or scored and so must have labels (check_split_labelled).
void check_task_splits(const TaskSpec& t, const std::vector<std::string>& splits,
                       const std::string& what, const SourceLocation& loc,
                       const TrialParseContext& ctx, std::set<std::string>* evaluated = nullptr) {
  std::error_code ec;
  if (!t.data_dir.empty() && !fs::is_directory(t.data_dir, ec)) return;
  if (!t.config.empty() && !fs::exists(t.config, ec)) return;
  const std::unique_ptr<Task> task = make_task(t.name, t.options());
  for (const std::string& split : splits) {
    bool found = true;
    try {
      task->split_file(split);
    } catch (const Error& e) {
      missing_path(ctx, loc, str_cat(what, ": ", e.what()));
      found = false;
    }
    if (found && evaluated == nullptr) check_split_labelled(*task, split, what, loc);
    const std::string stem = task->name() + "-" + split;
    if (evaluated != nullptr && !evaluated->insert(stem).second)
      fail_at(loc, str_cat(what, ": ", task->name(), " split '", split,
                           "' is evaluated twice in this trial; its predictions (", stem,
                           ".jsonl) and results would overwrite each other"));
  }
}

// A split name must be a string: an unquoted 5 or true is a spec error, not a split.
void check_split_node(const SpecNode& node, const std::string& what) {
  if (node.kind_name() != "string")
    fail_at(node.loc, str_cat(what, " must be a split name (a string), got ", node.kind_name(),
                              " '", node.text(), "'"));
}

std::string split_name(MapReader& r, const std::string& key, const std::string& default_value) {
  if (const SpecNode* v = r.get(key); v && v->is_scalar()) check_split_node(*v, r.full(key));
  return r.string(key, default_value);
}

// A split name or a list of them, at least one.
std::vector<std::string> split_names(MapReader& r, const std::string& key,
                                     std::vector<std::string> default_value) {
  if (const SpecNode* v = r.get(key)) {
    if (v->is_scalar()) check_split_node(*v, r.full(key));
    if (v->is_list())
      for (size_t i = 0; i < v->items.size(); ++i)
        check_split_node(v->items[i], str_cat(r.full(key), "[", i, "]"));
  }
  std::vector<std::string> names = r.strings(key, std::move(default_value));
  r.check(!names.empty(), key, "must name at least one split");
  return names;
}

// steps: the stage's, which a linear or cosine decay's warm-up must end before.
ScheduleSpec parse_schedule(MapReader& parent, const ScheduleSpec& d, int64_t steps) {
  static const std::vector<std::string> kinds = {"constant", "rsqrt", "linear", "cosine", "step"};
  ScheduleSpec s = d;
  const SpecNode* node = parent.get("schedule");
  if (node && node->is_scalar()) {  // "schedule: constant" is short for {kind: constant}
    s.kind = parent.choice("schedule", d.kind, kinds);
    return s;
  }
  MapReader r(node, parent.full("schedule"), parent.loc("schedule"));
  s.kind = r.choice("kind", d.kind, kinds);
  s.warmup_steps = r.integer("warmup_steps", d.warmup_steps);
  r.check(s.warmup_steps >= 0, "warmup_steps", "must be >= 0");
  s.warmup_init = r.number("warmup_init", d.warmup_init);
  r.check(s.warmup_init >= 0 && s.warmup_init <= 1, "warmup_init", "must be in [0, 1]");
  // Each kind's own keys are read only for that kind; another kind's is an error saying so.
  if (s.kind == "linear" || s.kind == "cosine") {
    s.final_fraction = r.number("final_fraction", d.final_fraction);
    r.check(s.final_fraction >= 0 && s.final_fraction <= 1, "final_fraction", "must be in [0, 1]");
    r.check(steps == 0 || s.warmup_steps < steps, "warmup_steps",
            str_cat("(", s.warmup_steps, ") must be below the stage's steps (", steps, "): a ",
                    s.kind, " decay starts where the warm-up ends"));
  } else {
    r.applies_only_to("final_fraction", "schedule kinds linear and cosine", s.kind);
  }
  if (s.kind == "rsqrt") {
    s.rsqrt_offset = r.integer("rsqrt_offset", d.rsqrt_offset);
    r.check(s.rsqrt_offset >= 1, "rsqrt_offset", "must be >= 1");
    s.rsqrt_start_step = r.integer("rsqrt_start_step", d.rsqrt_start_step);
    r.check(s.rsqrt_start_step >= 0, "rsqrt_start_step", "must be >= 0");
  } else {
    for (const char* key : {"rsqrt_offset", "rsqrt_start_step"})
      r.applies_only_to(key, "schedule kind rsqrt", s.kind);
  }
  if (s.kind == "step") {
    s.decay_every = r.integer("decay_every", d.decay_every);
    r.check(s.decay_every >= 1, "decay_every", "must be >= 1");
    s.decay_factor = r.number("decay_factor", d.decay_factor);
    r.check(s.decay_factor > 0 && s.decay_factor <= 1, "decay_factor", "must be in (0, 1]");
  } else {
    for (const char* key : {"decay_every", "decay_factor"})
      r.applies_only_to(key, "schedule kind step", s.kind);
  }
  r.finish();
  return s;
}

OptimizerSpec parse_optimizer(MapReader& parent, const OptimizerSpec& d, int64_t steps) {
  MapReader r = parent.map("optimizer");
  OptimizerSpec o = d;
  o.name = r.choice("name", d.name, {"adafactor", "adamw", "sgd"});
  o.lr = r.number("lr", d.lr);
  r.check(o.lr > 0, "lr", "must be positive");
  o.schedule = parse_schedule(r, d.schedule, steps);
  o.weight_decay = r.number("weight_decay", d.weight_decay);
  r.check(o.weight_decay >= 0 && o.weight_decay < 1, "weight_decay", "must be in [0, 1)");
  o.clip_global_norm = r.number("clip_global_norm", d.clip_global_norm);
  r.check(o.clip_global_norm >= 0, "clip_global_norm", "must be >= 0 (0: off)");
  // Only the chosen optimizer's own keys are read; another's is an error saying so.
  for (const char* key :
       {"decay_rate", "clipping_threshold", "multiply_by_parameter_scale", "factored"})
    r.applies_only_to(key, "optimizer adafactor", o.name);
  r.applies_only_to("beta1", "optimizers adafactor and adamw", o.name);
  for (const char* key : {"beta2", "epsilon"}) r.applies_only_to(key, "optimizer adamw", o.name);
  r.applies_only_to("momentum", "optimizer sgd", o.name);
  if (o.name == "adafactor") {
    o.decay_rate = r.number("decay_rate", d.decay_rate);
    r.check(o.decay_rate > 0 && o.decay_rate <= 1, "decay_rate", "must be in (0, 1]");
    o.clipping_threshold = r.number("clipping_threshold", d.clipping_threshold);
    r.check(o.clipping_threshold >= 0, "clipping_threshold", "must be >= 0 (0: off)");
    o.multiply_by_parameter_scale =
        r.boolean("multiply_by_parameter_scale", d.multiply_by_parameter_scale);
    o.factored = r.boolean("factored", d.factored);
    const std::optional<double> beta1 = r.optional_number("beta1");
    o.beta1 = beta1 ? beta1 : d.beta1;
  } else if (o.name == "adamw") {
    o.beta1 = r.number("beta1", d.beta1.value_or(0.9));
    o.beta2 = r.number("beta2", d.beta2);
    r.check(o.beta2 >= 0 && o.beta2 < 1, "beta2", "must be in [0, 1)");
    o.epsilon = r.number("epsilon", d.epsilon);
    r.check(o.epsilon > 0, "epsilon", "must be positive");
  } else {
    o.beta1.reset();
    o.momentum = r.number("momentum", d.momentum);
    r.check(o.momentum >= 0 && o.momentum < 1, "momentum", "must be in [0, 1)");
  }
  if (o.beta1) r.check(*o.beta1 >= 0 && *o.beta1 < 1, "beta1", "must be in [0, 1)");
  r.finish();
  return o;
}

// The LoopSpec keys; steps may be 0 (skip the stage) when allow_zero_steps.
void parse_loop(MapReader& r, LoopSpec& s, const LoopSpec& d, bool allow_zero_steps) {
  s.steps = r.integer("steps", d.steps);
  if (allow_zero_steps)
    r.check(s.steps >= 0, "steps", str_cat("must be >= 0 (0 skips the stage), got ", s.steps));
  else
    r.check(s.steps > 0, "steps", str_cat("must be positive, got ", s.steps));
  s.batch_size = r.integer("batch_size", d.batch_size);
  r.check(s.batch_size > 0, "batch_size", str_cat("must be positive, got ", s.batch_size));
  s.grad_accumulation = r.integer("grad_accumulation", d.grad_accumulation);
  r.check(s.grad_accumulation > 0, "grad_accumulation", "must be positive");
  s.inputs_length = r.integer("inputs_length", d.inputs_length);
  r.check(s.inputs_length >= 2, "inputs_length", "must be >= 2 (a token and EOS)");
  s.targets_length = r.integer("targets_length", d.targets_length);
  r.check(s.targets_length >= 1, "targets_length", "must be >= 1");
  s.optimizer = parse_optimizer(r, d.optimizer, s.steps);
  const int64_t seed = r.integer("seed", static_cast<int64_t>(d.seed));
  r.check(seed >= 0, "seed", "must be >= 0");
  s.seed = static_cast<uint64_t>(seed);
  s.dropout = r.number("dropout", d.dropout);
  r.check(s.dropout >= 0 && s.dropout < 1, "dropout", "must be in [0, 1)");
  s.z_loss = r.number("z_loss", d.z_loss);
  r.check(s.z_loss >= 0, "z_loss", "must be >= 0");
  s.checkpoint_every = r.integer("checkpoint_every", d.checkpoint_every);
  r.check(s.checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0: only at the end)");
  s.log_every = r.integer("log_every", d.log_every);
  r.check(s.log_every > 0, "log_every", "must be positive");
}

// parse_loop's check of two keys together, after the stage's finish() (see MapReader):
// `batch_sise: 8` is then an unknown key, not the default batch size that
// grad_accumulation does not divide.
void check_loop(const MapReader& r, const LoopSpec& s) {
  r.check_against(
      s.batch_size % s.grad_accumulation == 0, "grad_accumulation", "batch_size",
      str_cat("(", s.grad_accumulation, ") must divide batch_size (", s.batch_size, ")"));
}

// The defaults both pretraining stages share: batch 128 and the pretraining optimizer.
template <typename Stage>
Stage pretraining_defaults() {
  Stage d;
  d.batch_size = 128;
  d.optimizer = t5_pretraining_optimizer();
  return d;
}

// The loop of a pretraining stage, with what both check beside it: packing (always on),
// example shuffling and run_pretraining's minimum inputs length, for either objective.
template <typename Stage>
void parse_pretraining_loop(MapReader& r, Stage& s, const Stage& d) {
  s.pack = r.boolean("pack", d.pack);
  r.check(s.pack, "pack", "must be true: pretraining always packs its examples");
  s.shuffle_buffer = r.integer("shuffle_buffer", d.shuffle_buffer);
  r.check(s.shuffle_buffer == 0 || (s.shuffle_buffer >= 2 && s.shuffle_buffer <= kMaxShuffleBlock),
          "shuffle_buffer",
          str_cat("must be 0 (no shuffling) or 2 to ", kMaxShuffleBlock, " examples"));
  parse_loop(r, s, d, true);
  r.check(s.inputs_length >= 4, "inputs_length",
          str_cat("must be >= 4 for pretraining, got ", s.inputs_length));
}

// The reader of stages.<key>, or nullopt when the spec has no such stage.
std::optional<MapReader> stage_reader(MapReader& stages, const char* key) {
  if (!stages.has(key)) {
    stages.get(key);
    return std::nullopt;
  }
  return stages.map(key);
}

std::optional<PretrainStage> parse_pretrain(MapReader& stages) {
  std::optional<MapReader> reader = stage_reader(stages, "pretrain");
  if (!reader) return std::nullopt;
  MapReader& r = *reader;
  const PretrainStage d = pretraining_defaults<PretrainStage>();
  PretrainStage s;
  s.objective = r.choice("objective", d.objective, {"span_corruption", "prefix_lm"});
  if (s.objective == "span_corruption") {
    s.noise_density = r.number("noise_density", d.noise_density);
    r.check(s.noise_density > 0 && s.noise_density < 1, "noise_density", "must be in (0, 1)");
    s.mean_noise_span_length = r.number("mean_noise_span_length", d.mean_noise_span_length);
    r.check(s.mean_noise_span_length >= 1, "mean_noise_span_length", "must be >= 1");
  } else {
    for (const char* key : {"noise_density", "mean_noise_span_length"})
      r.applies_only_to(key, "objective span_corruption", s.objective);
  }
  parse_pretraining_loop(r, s, d);
  r.finish();
  check_loop(r, s);
  if (s.objective == "span_corruption") {
    // The targets follow from the inputs length: what the pretraining stream's pieces give.
    r.check_against(!r.has("targets_length"), "targets_length", "objective",
                    "applies to prefix_lm only: span corruption's targets follow from "
                    "inputs_length");
    s.targets_length =
        span_corruption_lengths(s.inputs_length, s.noise_density, s.mean_noise_span_length)
            .targets_length;
  } else if (!r.has("targets_length")) {
    s.targets_length = s.inputs_length;
  }
  if (s.steps == 0) return std::nullopt;
  return s;
}

std::optional<LmAdaptStage> parse_lm_adapt(MapReader& stages) {
  std::optional<MapReader> reader = stage_reader(stages, "lm_adapt");
  if (!reader) return std::nullopt;
  MapReader& r = *reader;
  const LmAdaptStage d = pretraining_defaults<LmAdaptStage>();
  LmAdaptStage s;
  parse_pretraining_loop(r, s, d);
  r.finish();
  check_loop(r, s);
  // prefix_lm splits one piece of inputs_length - 1 tokens: the targets can be as long.
  if (!r.has("targets_length")) s.targets_length = s.inputs_length;
  if (s.steps == 0) return std::nullopt;
  return s;
}

// The task keys of a tune stage or a transfer entry; check_task_given() follows the map's
// finish().
TaskSpec parse_task(MapReader& r, const TrialParseContext& ctx) {
  TaskSpec t;
  t.name = ascii_lowercase(r.string("task", ""));
  const std::vector<std::string> known = task_names();
  if (r.has("task") && !known.empty() &&
      std::find(known.begin(), known.end(), t.name) == known.end())
    r.fail("task", str_cat("has no task '", t.name, "'", suggestion_suffix(t.name, known)));
  t.data_dir = r.string("data_dir", "");
  if (!t.data_dir.empty()) check_path(ctx, r.loc("data_dir"), "data_dir", t.data_dir, true);
  t.task_prefix = r.boolean("task_prefix", false);
  t.config = r.string("task_config", "");
  if (!t.config.empty()) check_path(ctx, r.loc("task_config"), "task_config", t.config, false);
  const int64_t seed = r.integer("task_seed", 0);
  r.check(seed >= 0, "task_seed", "must be >= 0");
  t.seed = static_cast<uint64_t>(seed);
  return t;
}

// After the map's finish() (see MapReader): `tsk: rte` is an unknown key, not a missing task.
void check_task_given(const MapReader& r) {
  r.check(r.has("task"), "task", "is required (a task name such as rte or wordnet_wic)");
}

// value as a setting whose default (or preset value) is like reads it: an integer for a
// float setting is that float (init_range: 1, initializer_factor: 1), so it hashes as one.
nlohmann::json as_number_kind_of(const nlohmann::json& like, nlohmann::json value) {
  if (like.is_number_float() && value.is_number_integer()) return value.get<double>();
  return value;
}

bool same_json_kind(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number_integer()) return b.is_number_integer();
  if (a.is_number()) return b.is_number();
  if (a.is_null()) return true;  // an optional setting: any value, the method checks it
  return a.type() == b.type();
}

// Whether the method accepts these settings (defaults filled in).
bool peft_accepts(const PeftMethodInfo& info, const nlohmann::json& given) {
  try {
    info.make(resolve_peft_settings(info.name, given));
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The given setting a method's error is about, so it is located where that value was
// written (a file line or a --set flag): the first key whose default makes the rest
// acceptable, else the first key the method rejects alone; nullopt when neither.
std::optional<std::string> peft_culprit(const PeftMethodInfo& info, const nlohmann::json& given) {
  for (const auto& item : given.items()) {
    nlohmann::json rest = given;
    rest.erase(item.key());
    if (peft_accepts(info, rest)) return item.key();
  }
  for (const auto& item : given.items())
    if (!peft_accepts(info, nlohmann::json{{item.key(), item.value()}})) return item.key();
  return std::nullopt;
}

// The method's keys come from nn/peft's registry: unknown keys and wrong kinds are
// reported here at their line; values the method rejects (its constructor) at the value
// the error is about (peft_culprit), else at the map.
PeftSpec parse_peft(MapReader& tune) {
  MapReader r = tune.map("peft");
  PeftSpec p;
  std::vector<std::string> methods;
  for (const PeftMethodInfo& info : peft_methods()) methods.push_back(info.name);
  p.method = r.choice("method", "prompt_tuning", methods);
  const PeftMethodInfo& info = peft_method(p.method);
  nlohmann::json given = nlohmann::json::object();
  for (const PeftSetting& s : info.settings()) {
    const SpecNode* v = r.get(s.key);
    if (!v) continue;
    nlohmann::json value = v->to_json();
    if (!same_json_kind(s.default_value, value))
      r.fail(s.key, str_cat("must be ",
                            s.default_value.is_number_integer() ? "an integer"
                            : s.default_value.is_number()       ? "a number"
                            : s.default_value.is_boolean()      ? "true or false"
                            : s.default_value.is_string()       ? "a string"
                                                                : "a list",
                            " (like its default ", s.default_value.dump(), "), got ",
                            v->kind_name(), " '", v->text(), "'"));
    given[s.key] = as_number_kind_of(s.default_value, std::move(value));
  }
  r.finish();
  try {
    p.settings = resolve_peft_settings(p.method, given);
    info.make(p.settings);  // the method's own checks of the values
  } catch (const Error& e) {
    const std::optional<std::string> key = peft_culprit(info, given);
    if (key) fail_at(r.loc(*key), str_cat(r.full(*key), ": ", e.what()));
    fail_at(tune.key_loc("peft"), str_cat(r.path(), ": ", e.what()));
  }
  return p;
}

TuneStage parse_tune(MapReader& r, const TrialParseContext& ctx) {
  TuneStage d;
  d.steps = 30000;
  d.batch_size = 32;
  d.targets_length = 16;
  d.dropout = 0.1;
  d.checkpoint_every = 1000;
  d.optimizer.weight_decay = 1e-5;  // the paper's prompt tuning: Adafactor, lr 0.3, constant
  TuneStage s;
  s.task = parse_task(r, ctx);
  s.sentinel_targets = r.boolean("sentinel_targets", false);
  s.peft = parse_peft(r);
  parse_loop(r, s, d, false);
  s.train_split = split_name(r, "train_split", "train");
  s.eval_split = split_name(r, "eval_split", "validation");
  s.eval_method = r.choice("eval_method", "greedy", {"greedy", "rank_classification"});
  s.eval_every = r.integer("eval_every", 1000);
  r.check(s.eval_every >= 0, "eval_every", "must be >= 0 (0: only at the end)");
  s.early_stopping_patience = r.integer("early_stopping_patience", 0);
  r.check(s.early_stopping_patience >= 0, "early_stopping_patience", "must be >= 0 (0: off)");
  s.metric = r.string("metric", "");
  s.max_train_examples = r.integer("max_train_examples", 0);
  r.check(s.max_train_examples >= 0, "max_train_examples", "must be >= 0 (0: all)");
  s.max_eval_examples = r.integer("max_eval_examples", 0);
  r.check(s.max_eval_examples >= 0, "max_eval_examples", "must be >= 0 (0: all)");
  r.finish();
  check_task_given(r);
  check_loop(r, s);
  if (s.early_stopping_patience > 0) {
    r.check_against(s.eval_every > 0, "eval_every", "early_stopping_patience",
                    "must be positive when early_stopping_patience is set");
    r.check_against(s.eval_every <= s.steps, "eval_every", "steps",
                    str_cat("(", s.eval_every, ") is more than steps (", s.steps,
                            "): early stopping would never evaluate"));
  }
  return s;
}

TransferSpec parse_transfer(const SpecNode& node, const std::string& path,
                            const TrialParseContext& ctx) {
  MapReader r(&node, path);
  TransferSpec t;
  t.task = parse_task(r, ctx);
  t.splits = split_names(r, "splits", t.splits);
  MapReader labels = r.map("label_map");
  if (labels.node())
    for (const SpecNode::Entry& e : labels.node()->entries)
      t.label_map[e.key] = node_string(e.value, labels.full(e.key));
  r.finish();
  check_task_given(r);
  return t;
}

EvalStage parse_eval(MapReader& r, const TuneStage& tune, const TrialParseContext& ctx) {
  EvalStage s;
  s.splits = split_names(r, "splits", s.splits);
  s.method = r.choice("method", s.method, {"greedy", "rank_classification"});
  s.batch_size = r.integer("batch_size", s.batch_size);
  r.check(s.batch_size > 0, "batch_size", "must be positive");
  s.max_decode_length = r.integer("max_decode_length", 0);
  r.check(s.max_decode_length >= 0, "max_decode_length", "must be >= 0 (0: tune's targets_length)");
  if (s.max_decode_length == 0) s.max_decode_length = tune.targets_length;
  s.max_examples = r.integer("max_examples", 0);
  r.check(s.max_examples >= 0, "max_examples", "must be >= 0 (0: all)");
  s.ensemble = r.integer("ensemble", 1);
  r.check(s.ensemble >= 1, "ensemble", "must be >= 1 (the number of prompts voted)");
  s.prompt_neighbors = r.integer("prompt_neighbors", 0);
  r.check(s.prompt_neighbors >= 0, "prompt_neighbors", "must be >= 0 (0: off)");
  if (s.prompt_neighbors > 0)
    r.check(tune.peft.method == "prompt_tuning", "prompt_neighbors",
            str_cat("needs peft method prompt_tuning, not ", tune.peft.method));
  if (const SpecNode* list = r.get("transfer")) {
    if (!list->is_list()) r.fail("transfer", "must be a list of tasks");
    for (size_t i = 0; i < list->items.size(); ++i)
      s.transfer.push_back(
          parse_transfer(list->items[i], str_cat(r.full("transfer"), ".", i), ctx));
  }
  r.finish();
  return s;
}

Device parse_device(MapReader& r) {
  const std::string text = r.string("device", "cpu");
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0)
    if (auto index = parse_int_text(text.substr(5)); index && *index >= 0)
      return Device::cuda(static_cast<int>(*index));
  r.fail("device", str_cat("has no value '", text, "'", suggestion_suffix(text, {"cpu", "cuda"}),
                           " (or cuda:N)"));
}

ModelSpec parse_model(MapReader& root, const TrialParseContext& ctx) {
  MapReader r = root.map("model");
  ModelSpec m;
  m.preset = r.string("preset", "");
  m.checkpoint = r.string("checkpoint", "");
  const int64_t seed = r.integer("init_seed", 0);
  r.check(seed >= 0, "init_seed", "must be >= 0");
  m.init_seed = static_cast<uint64_t>(seed);
  m.dtype = dtype_from_name(r.choice("dtype", "f32", {"f32", "bf16"}));
  m.device = parse_device(r);
  r.declare({"config"});  // read once the tokenizer is known (resolve_model_config)
  // Before "give exactly one": `chekpoint:` is then reported as the typo it is.
  r.finish();
  if (m.preset.empty() == m.checkpoint.empty())
    fail_at(m.preset.empty() ? r.loc("preset") : r.conflict_loc("checkpoint", "preset"),
            "model.preset and model.checkpoint: give exactly one (a preset to train from "
            "scratch, or a Hugging Face checkpoint directory)");
  if (!m.preset.empty()) {
    const std::vector<std::string> presets = T5Config::preset_names();
    if (std::find(presets.begin(), presets.end(), m.preset) == presets.end())
      r.fail("preset",
             str_cat("has no value '", m.preset, "'", suggestion_suffix(m.preset, presets)));
  } else {
    check_path(ctx, r.loc("checkpoint"), "model.checkpoint", m.checkpoint, true);
    r.check_against(!r.has("init_seed"), "init_seed", "checkpoint",
                    "applies to presets only: a checkpoint brings its own weights");
    r.check_against(!r.has("config"), "config", "checkpoint",
                    "applies to presets only: a checkpoint brings its own config.json");
  }
  return m;
}

// A preset's full T5Config as JSON with model.config's keys over it (each must be a
// T5Config key), validated by T5Config itself.
// pretrained: a pretrain or lm_adapt stage builds the model, its vocab_size from the tokenizer.
nlohmann::json resolve_model_config(MapReader& model, int64_t default_vocab, bool pretrained) {
  MapReader r = model.map("config");
  // Every stage builds its model with its own dropout (stages.*.dropout).
  r.check(!r.has("dropout_rate"), "dropout_rate",
          "is set by each stage's dropout (stages.pretrain.dropout, stages.tune.dropout, ...)");
  if (pretrained)
    r.check(!r.has("vocab_size"), "vocab_size",
            "is set by the pretraining stage that builds the model: the tokenizer's pieces + "
            "100 sentinels, rounded up to a multiple of 128");
  const std::string preset = model.string("preset", "");
  nlohmann::json config = nlohmann::json::parse(T5Config::preset(preset).to_json());
  if (default_vocab > 0) config["vocab_size"] = default_vocab;
  std::vector<std::string> keys;
  for (const auto& item : config.items()) keys.push_back(item.key());
  if (r.node()) {
    for (const SpecNode::Entry& e : r.node()->entries) {
      if (std::find(keys.begin(), keys.end(), e.key) == keys.end())
        fail_at(e.key_loc, str_cat("unknown key '", e.key, "' in ", r.path(), " (T5Config)",
                                   suggestion_suffix(e.key, keys)));
      config[e.key] = as_number_kind_of(config[e.key], e.value.to_json());
    }
  }
  try {
    T5Config::from_json(config.dump(), r.path()).validate(r.path());
  } catch (const Error& e) {
    fail_at(r.node() ? r.node()->loc : model.loc("preset"), e.what());
  }
  return config;
}

// pretrains: the trial has a pretrain or lm_adapt stage.
TokenizerSpec parse_tokenizer(MapReader& root, const ModelSpec& model, bool pretrains,
                              const TrialParseContext& ctx) {
  MapReader r = root.map("tokenizer");
  TokenizerSpec t;
  const std::string default_source = !model.checkpoint.empty() ? "checkpoint"
                                     : r.has("path")           ? "file"
                                                               : "train";
  t.source = r.choice("source", default_source, {"checkpoint", "file", "train"});
  if (t.source == "file")
    t.path = r.string("path", "");
  else
    r.applies_only_to("path", "source file", t.source);
  if (t.source == "train") {
    t.vocab_size = r.integer("vocab_size", t.vocab_size);
    r.check(t.vocab_size >= 16, "vocab_size", "must be >= 16");
    t.input_sentence_size = r.integer("input_sentence_size", t.input_sentence_size);
    r.check(t.input_sentence_size == 0 || t.input_sentence_size > 100, "input_sentence_size",
            "must be 0 (all) or more than 100 (SentencePiece samples no fewer)");
  } else {
    for (const char* key : {"vocab_size", "input_sentence_size"})
      r.applies_only_to(key, "source train", t.source);
  }
  t.extra_ids = r.integer("extra_ids", t.extra_ids);
  r.check(t.extra_ids >= 0, "extra_ids", "must be >= 0");
  // The checks against the model, the stages and a required key follow finish(), so that
  // `pth: x.model` is reported as an unknown key rather than as a missing path.
  r.finish();
  if (t.source == "checkpoint")
    r.check(!model.checkpoint.empty(), "source",
            "is checkpoint but the model is a preset: give tokenizer.path or source: train");
  // The trained vocabulary is stored with the models of the stages that train on the corpus.
  if (t.source == "train")
    r.check(pretrains, "source",
            "is train, which needs a pretrain or lm_adapt stage (the vocabulary is trained "
            "with their corpus); tuning a preset without one needs tokenizer.path");
  if (t.source == "file") {
    r.check(r.has("path"), "path", "is required with source: file (a spiece.model)");
    check_path(ctx, r.loc("path"), "tokenizer.path", t.path, false);
  }
  // run_pretraining tokenizes with T5's 100 sentinels, and sizes a new model by them.
  r.check(!pretrains || t.extra_ids == 100, "extra_ids",
          str_cat("must be 100 with a pretrain or lm_adapt stage (pretraining uses T5's 100 "
                  "sentinels), got ",
                  t.extra_ids));
  return t;
}

CorpusSpec parse_corpus(MapReader& root, bool needed, const TrialParseContext& ctx) {
  MapReader r = root.map("corpus");
  CorpusSpec c;
  if (!needed && !r.node()) return c;
  c.builtin = r.string("builtin", "");
  c.files = r.strings("files", {});
  c.format = r.choice("format", c.format, {"lines", "paragraphs", "jsonl"});
  c.jsonl_field = r.string("jsonl_field", c.jsonl_field);
  c.max_documents = r.integer("max_documents", 0);
  r.check(c.max_documents >= 0, "max_documents", "must be >= 0 (0: all)");
  // Before "give exactly one": `file:` is then reported as the typo it is.
  r.finish();
  if (needed)
    if (c.builtin.empty() == c.files.empty())
      fail_at(c.builtin.empty() ? r.loc("files") : r.conflict_loc("builtin", "files"),
              "corpus.builtin and corpus.files: give exactly one (pretraining, LM adaptation "
              "and tokenizer training read the corpus)");
  if (!c.builtin.empty())
    r.check(c.builtin == "wordnet", "builtin",
            str_cat("has no corpus '", c.builtin, "'", suggestion_suffix(c.builtin, {"wordnet"})));
  if (const SpecNode* files = r.get("files")) {
    for (size_t i = 0; i < c.files.size(); ++i) {
      const SourceLocation loc = files->is_list() ? files->items[i].loc : files->loc;
      check_path(ctx, loc, "corpus file", c.files[i], false);
    }
  }
  return c;
}

// Every split the trial's stages load must be loadable; checked once the rest of the spec
// is valid. A default split's problem is located at data_dir (or the task).
void check_trial_splits(const SpecNode& root_node, const Trial& t, const TrialParseContext& ctx) {
  if (!t.tune) return;
  MapReader stages = MapReader(&root_node, "").map("stages");
  MapReader tune = stages.map("tune");
  const SourceLocation task_loc = tune.loc(tune.has("data_dir") ? "data_dir" : "task");
  for (const auto& [key, split] : {std::pair{"train_split", t.tune->train_split},
                                   std::pair{"eval_split", t.tune->eval_split}}) {
    check_task_splits(t.tune->task, {split}, tune.full(key),
                      tune.has(key) ? tune.loc(key) : task_loc, ctx);
  }
  if (!t.eval) return;
  MapReader eval = stages.map("eval");
  std::set<std::string> evaluated;
  check_task_splits(t.tune->task, t.eval->splits, eval.full("splits"), eval.loc("splits"), ctx,
                    &evaluated);
  for (size_t i = 0; i < t.eval->transfer.size(); ++i) {
    MapReader transfer(&eval.get("transfer")->items[i], str_cat(eval.full("transfer"), ".", i));
    check_task_splits(t.eval->transfer[i].task, t.eval->transfer[i].splits, transfer.full("splits"),
                      transfer.loc("splits"), ctx, &evaluated);
  }
}

// stages.tune.metric must be one the task reports, known before any stage trains. A
// task_config that is missing was reported already.
void check_tune_metric(const SpecNode& root_node, const Trial& t) {
  if (!t.tune || t.tune->metric.empty()) return;
  std::error_code ec;
  if (!t.tune->task.config.empty() && !fs::exists(t.tune->task.config, ec)) return;
  const std::unique_ptr<Task> task = make_task(t.tune->task.name, t.tune->task.options());
  MapReader tune = MapReader(&root_node, "").map("stages").map("tune");
  check_metric_name(task->name(), task->metric_names(), t.tune->metric,
                    str_cat(tune.loc("metric").str(), ": ", tune.full("metric")));
}

// The spec's top-level keys, checked for unknown ones before anything is read (see
// MapReader): `stage:` for `stages:` would otherwise read as a spec without stages.
MapReader spec_root_reader(const SpecNode& root_node) {
  MapReader root(&root_node, "");
  root.declare({"name", "description", "extends", "vars", "sweep", "tags", "stages", "model",
                "tokenizer", "corpus"});
  root.finish();
  return root;
}

}  // namespace

void check_spec_keys(const SpecNode& root) { spec_root_reader(root); }

std::vector<std::string> tune_stage_keys() {
  SpecNode stage = SpecNode::make_map({});
  set_dotted(stage, {"task"}, SpecNode::make_scalar(task_names().front(), {}), {});
  std::vector<std::string> warnings;
  MapReader r(&stage, "stages.tune");
  parse_tune(r, {false, &warnings});
  return r.known();
}

Trial parse_trial(const SpecNode& root_node, const TrialParseContext& ctx) {
  MapReader root = spec_root_reader(root_node);
  Trial t;
  if (MapReader tags = root.map("tags"); tags.node())
    for (const SpecNode::Entry& e : tags.node()->entries)
      t.tags[e.key] = node_string(e.value, tags.full(e.key));
  // Likewise the stages, before "needs stages.tune" and "is missing" (`tunee:`).
  MapReader stages = root.map("stages");
  stages.declare({"pretrain", "lm_adapt", "tune", "eval"});
  stages.finish();
  t.pretrain = parse_pretrain(stages);
  t.lm_adapt = parse_lm_adapt(stages);
  if (std::optional<MapReader> r = stage_reader(stages, "tune")) t.tune = parse_tune(*r, ctx);
  if (stages.has("eval")) {
    stages.check(t.tune.has_value(), "eval",
                 "needs stages.tune: the task and the tuned parameters come from it");
  }
  if (std::optional<MapReader> r = stage_reader(stages, "eval"))
    t.eval = parse_eval(*r, *t.tune, ctx);
  stages.check(t.pretrain || t.lm_adapt || t.tune, "tune",
               "is missing: a spec needs at least one stage with steps (pretrain, lm_adapt, tune)");
  if (t.tune) t.seed = t.tune->seed;

  t.model = parse_model(root, ctx);
  if (!t.model.preset.empty() && (t.pretrain || t.lm_adapt)) {
    const char* first = t.pretrain ? "pretrain" : "lm_adapt";
    root.map("model").check(t.model.init_seed == 0, "init_seed",
                            str_cat("is not used: the ", first,
                                    " stage initialises the preset "
                                    "from stages.",
                                    first, ".seed; set that instead"));
  }
  t.tokenizer = parse_tokenizer(root, t.model, t.pretrain || t.lm_adapt, ctx);
  const bool corpus_needed = t.pretrain || t.lm_adapt || t.tokenizer.source == "train";
  t.corpus = parse_corpus(root, corpus_needed, ctx);
  if (!t.model.preset.empty()) {
    MapReader model = root.map("model");
    const int64_t vocab = t.tokenizer.source == "train"
                              ? model_vocab_size(t.tokenizer.vocab_size, t.tokenizer.extra_ids)
                              : 0;
    t.model.config = resolve_model_config(model, vocab, t.pretrain || t.lm_adapt);
  }
  check_trial_splits(root_node, t, ctx);
  check_tune_metric(root_node, t);
  return t;
}

}  // namespace sp
