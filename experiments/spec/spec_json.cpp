// canonical_json of every part of a spec, the Trial accessors and the dry-run listing.
// canonical_json holds every value that can change what a stage computes, defaults
// included, and nothing that cannot (device, log and checkpoint cadence), so equal
// configurations hash equal however they were written.
#include <sstream>

#include "experiments/spec/spec.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/wordnet_held_out.h"
#include "tensor/error.h"

namespace sp {

const char* stage_kind_name(StageKind kind) {
  switch (kind) {
    case StageKind::pretrain: return "pretrain";
    case StageKind::lm_adapt: return "lm_adapt";
    case StageKind::tune: return "tune";
    case StageKind::eval: return "eval";
  }
  return "?";
}

// Bump a kind's version when what its stage computes from a given configuration changes
// (numerics, data order, defaults that are not in canonical_json, the exported model); a
// bump reruns that stage and every stage after it. Not for changes that leave results alone.
//   1 (all kinds): the first versioned code. Stages cached before carry no version and are
//     computed again; among them, model tuning in a bf16 run used to compute in f32.
//   2 (tune, eval): greedy predictions keep their sentinels (only a "+ sentinel" run's
//     target prefix comes off), so a span-corruption model's "<extra_id_0> True" is no
//     longer scored as "True"; validation scores, and so the selected step, can change.
//   2 (pretrain, lm_adapt): the validation examples and the unigram baseline's sample come
//     from a seeded document order over the whole split, not its first documents; the
//     trained parameters are the same, the validation losses are not.
//   3 (tune, eval): greedy predictions keep <unk> (and ids past the vocabulary) as seqio
//     does, so "True <unk>" is no longer scored as "True"; max_eval_examples,
//     max_train_examples and stages.eval.max_examples keep the last example's whole group
//     (a MultiRC question, a ReCoRD query). Scores, and so the selected step, can change.
int stage_code_version(StageKind kind) {
  switch (kind) {
    case StageKind::pretrain: return 2;
    case StageKind::lm_adapt: return 2;
    case StageKind::tune: return 3;
    case StageKind::eval: return 3;
  }
  return 0;
}

nlohmann::json ScheduleSpec::canonical_json() const {
  nlohmann::json j = {{"kind", kind}, {"warmup_steps", warmup_steps}};
  if (warmup_steps > 0) j["warmup_init"] = warmup_init;
  if (kind == "linear" || kind == "cosine") j["final_fraction"] = final_fraction;
  if (kind == "rsqrt") {
    j["rsqrt_offset"] = rsqrt_offset;
    j["rsqrt_start_step"] = rsqrt_start_step;
  }
  if (kind == "step") {
    j["decay_every"] = decay_every;
    j["decay_factor"] = decay_factor;
  }
  return j;
}

nlohmann::json OptimizerSpec::canonical_json() const {
  nlohmann::json j = {{"name", name},
                      {"lr", lr},
                      {"schedule", schedule.canonical_json()},
                      {"weight_decay", weight_decay},
                      {"clip_global_norm", clip_global_norm}};
  if (name == "adafactor") {
    j["decay_rate"] = decay_rate;
    j["clipping_threshold"] = clipping_threshold;
    j["multiply_by_parameter_scale"] = multiply_by_parameter_scale;
    j["factored"] = factored;
    j["beta1"] = beta1 ? nlohmann::json(*beta1) : nlohmann::json(nullptr);
  } else if (name == "adamw") {
    j["beta1"] = beta1.value_or(0.9);
    j["beta2"] = beta2;
    j["epsilon"] = epsilon;
  } else if (name == "sgd") {
    j["momentum"] = momentum;
  }
  return j;
}

namespace {
nlohmann::json loop_json(const LoopSpec& s) {
  nlohmann::json j = {{"steps", s.steps},
                      {"batch_size", s.batch_size},
                      {"grad_accumulation", s.grad_accumulation},
                      {"inputs_length", s.inputs_length},
                      {"targets_length", s.targets_length},
                      {"optimizer", s.optimizer.canonical_json()},
                      {"seed", s.seed},
                      {"dropout", s.dropout},
                      {"z_loss", s.z_loss}};
  // Accumulated micro-batches weigh by their target tokens (they used to weigh the same):
  // stages that accumulate hash anew; the others compute what they did.
  if (s.grad_accumulation > 1) j["micro_batch_weights"] = "target_tokens";
  return j;
}
}  // namespace

nlohmann::json PretrainStage::canonical_json() const {
  nlohmann::json j = loop_json(*this);
  j["objective"] = objective;
  if (objective == "span_corruption") {
    j["noise_density"] = noise_density;
    j["mean_noise_span_length"] = mean_noise_span_length;
  }
  j["pack"] = pack;
  j["shuffle_buffer"] = shuffle_buffer;
  return j;
}

nlohmann::json LmAdaptStage::canonical_json() const {
  nlohmann::json j = loop_json(*this);
  j["objective"] = "prefix_lm";
  j["pack"] = pack;
  j["shuffle_buffer"] = shuffle_buffer;
  return j;
}

nlohmann::json PeftSpec::canonical_json() const {
  return {{"method", method}, {"settings", settings}};
}

nlohmann::json TaskSpec::canonical_json() const {
  nlohmann::json j = {{"name", name},
                      {"data_dir", data_dir},
                      {"task_prefix", task_prefix},
                      {"config", config},
                      {"seed", seed}};
  if (name == "wordnet_wic" || name == "wordnet_topic") j["data_version"] = kWordnetTaskDataVersion;
  return j;
}

TaskOptions TaskSpec::options() const {
  TaskOptions o;
  o.data_dir = data_dir;
  o.task_prefix = task_prefix;
  o.config = config;
  o.seed = seed;
  return o;
}

nlohmann::json TuneStage::canonical_json() const {
  nlohmann::json j = loop_json(*this);
  j["task"] = task.canonical_json();
  j["sentinel_targets"] = sentinel_targets;
  j["peft"] = peft.canonical_json();
  j["trainable_dtype"] = dtype_name(trainable_dtype);
  j["train_split"] = train_split;
  j["eval_split"] = eval_split;
  j["eval_method"] = eval_method;
  j["eval_every"] = eval_every;
  j["early_stopping_patience"] = early_stopping_patience;
  j["metric"] = metric;
  j["max_train_examples"] = max_train_examples;
  j["max_eval_examples"] = max_eval_examples;
  return j;
}

nlohmann::json TransferSpec::canonical_json() const {
  nlohmann::json map = nlohmann::json::object();
  for (const auto& [from, to] : label_map) map[from] = to;
  return {{"task", task.canonical_json()}, {"splits", splits}, {"label_map", map}};
}

nlohmann::json EvalStage::canonical_json() const {
  nlohmann::json transfers = nlohmann::json::array();
  for (const TransferSpec& t : transfer) transfers.push_back(t.canonical_json());
  return {{"splits", splits},
          {"method", method},
          {"max_decode_length", max_decode_length},
          {"max_examples", max_examples},
          {"ensemble", ensemble},
          {"prompt_neighbors", prompt_neighbors},
          {"transfer", transfers}};
}

nlohmann::json ModelSpec::canonical_json() const {
  if (!checkpoint.empty()) return {{"checkpoint", checkpoint}};
  return {{"preset", preset}, {"config", config}, {"init_seed", init_seed}};
}

nlohmann::json TokenizerSpec::canonical_json() const {
  nlohmann::json j = {{"source", source}, {"extra_ids", extra_ids}};
  if (source == "file") j["path"] = path;
  if (source == "train") {
    j["vocab_size"] = vocab_size;
    j["input_sentence_size"] = input_sentence_size;
  }
  return j;
}

nlohmann::json CorpusSpec::canonical_json() const {
  nlohmann::json j = {{"max_documents", max_documents}};
  if (!builtin.empty()) {
    j["builtin"] = builtin;
    // WordNet less the built-in tasks' held-out text (wordnet_held_out.h).
    if (builtin == "wordnet") j["excludes_task_data"] = kWordnetTaskDataVersion;
  } else {
    j["files"] = files;
    j["format"] = format;
    if (format == "jsonl") j["jsonl_field"] = jsonl_field;
  }
  return j;
}

std::vector<StageKind> Trial::stage_order() const {
  std::vector<StageKind> order;
  if (pretrain) order.push_back(StageKind::pretrain);
  if (lm_adapt) order.push_back(StageKind::lm_adapt);
  if (tune) order.push_back(StageKind::tune);
  if (eval) order.push_back(StageKind::eval);
  return order;
}

bool Trial::has(StageKind kind) const {
  switch (kind) {
    case StageKind::pretrain: return pretrain.has_value();
    case StageKind::lm_adapt: return lm_adapt.has_value();
    case StageKind::tune: return tune.has_value();
    case StageKind::eval: return eval.has_value();
  }
  return false;
}

const std::string& Trial::stage_hash(StageKind kind) const {
  SP_CHECK(has(kind), "[spec] trial ", id, " has no ", stage_kind_name(kind), " stage");
  switch (kind) {
    case StageKind::pretrain: return pretrain->hash;
    case StageKind::lm_adapt: return lm_adapt->hash;
    case StageKind::tune: return tune->hash;
    case StageKind::eval: break;
  }
  return eval->hash;
}

nlohmann::json Trial::stage_json(StageKind kind) const {
  SP_CHECK(has(kind), "[spec] trial ", id, " has no ", stage_kind_name(kind), " stage");
  switch (kind) {
    case StageKind::pretrain: return pretrain->canonical_json();
    case StageKind::lm_adapt: return lm_adapt->canonical_json();
    case StageKind::tune: return tune->canonical_json();
    case StageKind::eval: break;
  }
  return eval->canonical_json();
}

std::string describe_trials(const ExperimentSpec& spec) {
  std::ostringstream out;
  out << "spec " << spec.name << " (" << spec.source << "): " << spec.trials.size()
      << (spec.trials.size() == 1 ? " trial" : " trials");
  if (!spec.sweep_keys.empty()) {
    out << ", sweeping";
    for (const std::string& k : spec.sweep_keys) out << " " << k;
  }
  out << "\n";
  for (const Trial& t : spec.trials) {
    out << "trial " << t.id << "\n";
    out << "  model "
        << (t.model.checkpoint.empty() ? "preset " + t.model.preset
                                       : "checkpoint " + t.model.checkpoint)
        << ", " << dtype_name(t.model.dtype) << " on " << t.model.device.str() << ", tokenizer "
        << t.tokenizer.source;
    for (const auto& [k, v] : t.tags) out << ", " << k << " " << v;
    out << "\n";
    for (StageKind k : t.stage_order()) {
      out << "  " << stage_kind_name(k) << " " << t.stage_hash(k);
      if (k == StageKind::pretrain)
        out << "  " << t.pretrain->objective << ", " << t.pretrain->steps << " steps";
      if (k == StageKind::lm_adapt) out << "  prefix_lm, " << t.lm_adapt->steps << " steps";
      if (k == StageKind::tune)
        out << "  " << t.tune->peft.method << " on " << t.tune->task.name << ", " << t.tune->steps
            << " steps, seed " << t.tune->seed;
      if (k == StageKind::eval) {
        out << "  " << t.eval->method << " on";
        for (const std::string& s : t.eval->splits) out << " " << s;
        if (t.eval->ensemble > 1) out << ", ensemble of " << t.eval->ensemble;
        for (const TransferSpec& tr : t.eval->transfer) out << ", transfer to " << tr.task.name;
      }
      out << "\n";
    }
    for (size_t m = 1; m < t.ensemble.size(); ++m)
      out << "  tune " << t.ensemble[m].hash << "  ensemble member " << m << ", seed "
          << t.ensemble[m].seed << "\n";
  }
  for (const std::string& w : spec.warnings) out << "warning: " << w << "\n";
  return out.str();
}

}  // namespace sp
