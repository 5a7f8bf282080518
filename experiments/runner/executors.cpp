// The real stage executor: pretraining and LM adaptation through run_pretraining, tuning
// through the trainer with a TuneJob, evaluation (greedy or rank classification, prompt
// ensembles, zero-shot transfer).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <system_error>

#include "experiments/data/corpus_builder.h"
#include "experiments/data/document_reader.h"
#include "experiments/data/pretraining.h"
#include "experiments/data/sha256.h"
#include "experiments/inference/prompt_neighbors.h"
#include "experiments/runner/evaluation.h"
#include "experiments/runner/model_loading.h"
#include "experiments/runner/stage_executor.h"
#include "experiments/runner/tune_job.h"
#include "experiments/tasks/task.h"
#include "experiments/tasks/wordnet_held_out.h"
#include "experiments/training/dtype_policy.h"
#include "experiments/training/optimizer_factory.h"
#include "experiments/training/trainer.h"
#include "models/io/atomic_file.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "nn/peft/peft.h"
#include "nn/peft/prompt_ensemble.h"
#include "nn/peft/prompt_tuning.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

std::vector<TaskExample> load_split(const Task& task, const std::string& split, int64_t max) {
  const std::vector<TaskExample> examples = first_examples(task.load(split), max);
  SP_CHECK(!examples.empty(), "[run] task ", task.name(), ": split '", split, "' has no examples");
  return examples;
}

// The settings a PEFT method gets: the spec's, plus what the run knows and the method
// asks for by name (the task's labels for class-label initialisation).
nlohmann::json peft_settings(const PeftSpec& spec, const Task& task, const T5Tokenizer& tokenizer,
                             uint64_t seed) {
  nlohmann::json settings = spec.settings;
  for (const PeftSetting& s : peft_method(spec.method).settings()) {
    // The spec may have merged the defaults in: a default value counts as unset.
    if (settings.contains(s.key) && settings[s.key] != s.default_value) continue;
    if (s.key == "class_labels") settings[s.key] = task.labels();
    // Seeds differ in their initialisation too, not only in data order.
    if (s.key == "seed") settings[s.key] = seed;
    if (s.key == "class_label_ids") {
      nlohmann::json ids = nlohmann::json::array();
      for (const std::string& l : task.labels()) ids.push_back(tokenizer.encode(l, false));
      settings[s.key] = ids;
    }
  }
  return settings;
}

Metrics score(const Task& task, const std::vector<TaskExample>& examples,
              const std::vector<std::string>& predictions) {
  return task.compute_metrics(examples, predictions);
}

// One tuned model, ready to predict.
struct Tuned {
  std::unique_ptr<T5ForConditionalGeneration> model;
  std::unique_ptr<PeftMethod> peft;
};

Tuned load_tuned(const StageRequest& r, const std::string& peft_dir) {
  Tuned t;
  t.model = load_stage_model(r.model_dir, r.trial->model, 0.0, nullptr);
  t.peft = load_peft(peft_dir, *t.model);
  if (r.trial->model.dtype == DType::bf16) use_bf16_for_inference(*t.model);
  t.model->eval();
  return t;
}

class DefaultExecutor : public StageExecutor {
 public:
  StageOutput run(const StageRequest& r) override {
    switch (r.kind) {
      case StageKind::pretrain:
      case StageKind::lm_adapt: return pretrain(r);
      case StageKind::tune: return tune(r);
      case StageKind::eval: return eval(r);
    }
    fail("[run] unknown stage kind");
  }

 private:
  StageOutput pretrain(const StageRequest& r);

  StageOutput tune(const StageRequest& r) {
    SP_CHECK(r.tune, "[run] a tune stage without its settings");
    const TuneStage& ts = *r.tune;
    const Trial& trial = *r.trial;
    std::ostream& log = r.log ? *r.log : std::cout;
    Generator dropout_gen(ts.seed * 0x9E3779B97F4A7C15ull + 1);
    auto model = load_stage_model(r.model_dir, trial.model, ts.dropout, &dropout_gen);
    const T5Tokenizer tokenizer = load_stage_tokenizer(r.model_dir, trial.model, trial.tokenizer);
    const auto task = make_task(ts.task.name, ts.task.options());
    const std::vector<TaskExample> train = load_split(*task, ts.train_split, ts.max_train_examples);
    const std::vector<TaskExample> val = load_split(*task, ts.eval_split, ts.max_eval_examples);
    const std::vector<std::string> labels = task->labels();

    auto peft = make_peft(ts.peft.method, peft_settings(ts.peft, *task, tokenizer, ts.seed));
    peft->attach(*model);
    if (trial.model.dtype == DType::bf16) use_bf16_backbone(*model, ts.trainable_dtype);
    const ParameterCount count = peft->parameter_count(*model);
    log << "[run]     " << ts.peft.method << ": " << count.describe() << "; " << train.size()
        << " training examples, " << val.size() << " " << ts.eval_split << " examples\n";

    EvalSettings es;
    es.method = ts.eval_method;
    es.inputs_length = ts.inputs_length;
    es.max_decode_length = ts.targets_length;
    es.batch_size = ts.batch_size;
    if (ts.sentinel_targets) es.target_prefix = kSentinelPrefix;
    const std::string metric = ts.metric.empty() ? task->primary_metric() : ts.metric;
    check_eval_metric(*task, val, metric);  // now, not at the first evaluation
    for (const std::string& w : undecodable_label_warnings(tokenizer, labels, es, task->name()))
      log << "[run]     warning: " << w << "\n";
    auto evaluator = [&, metric](int64_t) -> std::optional<EvalResult> {
      const std::vector<std::string> predictions =
          predict_texts(*model, tokenizer, val, labels, es);
      EvalResult e;
      e.metrics = score(*task, val, predictions);
      return e;
    };
    TuneJobOptions jo;
    SP_CHECK(ts.grad_accumulation > 0 && ts.batch_size % ts.grad_accumulation == 0,
             "[run] tune: batch_size ", ts.batch_size, " is not a multiple of grad_accumulation ",
             ts.grad_accumulation);
    jo.micro_batch_size = ts.batch_size / ts.grad_accumulation;
    jo.seed = ts.seed;
    jo.z_loss = ts.z_loss;
    jo.evaluation = evaluation_identity(ts.eval_split, ts.eval_method, val);
    std::vector<TaskExample> train_targets = train;
    if (ts.sentinel_targets)
      for (TaskExample& e : train_targets) e.targets = kSentinelPrefix + e.targets;
    TuneJob job(*model, *peft,
                tokenize_examples(tokenizer, train_targets, ts.inputs_length, ts.targets_length),
                jo, evaluator, &dropout_gen);
    auto optimizer = make_optimizer(ts.optimizer, job.trainable(), ts.steps);

    TrainerOptions to;
    to.steps = ts.steps;
    to.grad_accumulation = ts.grad_accumulation;
    to.log_every = ts.log_every;
    to.eval_every = ts.eval_every;
    to.checkpoint_every = ts.checkpoint_every;
    to.early_stopping_patience = ts.early_stopping_patience;
    to.metric = metric;
    to.clip_global_norm = ts.optimizer.clip_global_norm;
    to.out_dir = r.dir;
    to.seed = ts.seed;
    to.progress = ProgressMode::automatic;
    Trainer trainer(to, job, *optimizer);
    const TrainResult result = trainer.run();

    // The exported parameters are the best evaluation's: report its metrics.
    std::map<std::string, double> metrics;
    int64_t step = result.steps_done;
    for (const EvalRecord& e : trainer.eval_history())
      if (e.step == result.best_step) {
        metrics = e.result.metrics;
        step = e.step;
      }
    if (metrics.empty() && result.final_eval) metrics = result.final_eval->metrics;

    ResultRecord rec;
    rec.stage = "tune";
    rec.task = task->name();
    rec.split = ts.eval_split;
    rec.step = step;
    rec.metrics = metrics;
    rec.method = ts.peft.method;
    rec.trainable_params = count.trainable;
    rec.total_params = count.total;
    rec.trainable_share = count.share();
    StageOutput out;
    out.model_dir = result.model_dir;
    out.records.push_back(rec);
    out.info = {{"steps_done", result.steps_done},
                {"earlier_seconds", result.earlier_seconds},
                {"stop_reason", result.stop_reason},
                {"best_step", result.best_step},
                {"resumed_from", result.resumed_from},
                {"final_loss", result.final_loss},
                {"metric", metric}};
    return out;
  }

  StageOutput eval(const StageRequest& r) {
    const Trial& trial = *r.trial;
    SP_CHECK(trial.eval && trial.tune, "[run] an eval stage needs a tune stage before it");
    SP_CHECK(!r.tuned_dirs.empty(), "[run] eval: no tuned parameters to evaluate");
    const EvalStage& ev = *trial.eval;
    const TuneStage& ts = *trial.tune;
    std::ostream& log = r.log ? *r.log : std::cout;
    const T5Tokenizer tokenizer = load_stage_tokenizer(r.model_dir, trial.model, trial.tokenizer);
    EvalSettings es;
    es.method = ev.method;
    es.batch_size = ev.batch_size;
    es.inputs_length = ts.inputs_length;
    es.max_decode_length = ev.max_decode_length > 0 ? ev.max_decode_length : ts.targets_length;
    if (ts.sentinel_targets) es.target_prefix = kSentinelPrefix;

    // Every (task, split) to score: the tuned task, then the transfer tasks.
    struct Target {
      std::unique_ptr<Task> task;
      std::vector<std::string> splits;
      std::map<std::string, std::string> label_map;
    };
    std::vector<Target> targets;
    targets.push_back({make_task(ts.task.name, ts.task.options()), ev.splits, {}});
    for (const TransferSpec& t : ev.transfer)
      targets.push_back({make_task(t.task.name, t.task.options()), t.splits, t.label_map});

    // predictions[target][split][member]
    std::vector<std::vector<std::vector<std::vector<std::string>>>> predictions(targets.size());
    std::vector<std::vector<std::vector<TaskExample>>> examples(targets.size());
    for (size_t t = 0; t < targets.size(); ++t) {
      predictions[t].resize(targets[t].splits.size());
      for (const std::string& split : targets[t].splits)
        examples[t].push_back(load_split(*targets[t].task, split, ev.max_examples));
    }
    int64_t trainable = 0, total = 0;
    auto translate = [&](size_t t, std::vector<std::string>& p) {
      for (std::string& text : p)
        if (auto it = targets[t].label_map.find(text); it != targets[t].label_map.end())
          text = it->second;
    };
    // Rank classification uses the tuned task's labels for transfer too: the model answers
    // in its own label space and label_map translates.
    const std::vector<std::string> labels = targets[0].task->labels();
    for (const std::string& w :
         undecodable_label_warnings(tokenizer, labels, es, targets[0].task->name()))
      log << "[run]     warning: " << w << "\n";
    // Each member's prompts [P, p, D] and the vocabulary, kept for prompt_neighbors.
    std::vector<Tensor> member_prompts;
    Tensor vocabulary;
    if (r.tuned_dirs.size() > 1 && ts.peft.method == "prompt_tuning") {
      // Prompt ensembles run as one pass per batch, the batch replicated per prompt.
      auto model = load_stage_model(r.model_dir, trial.model, 0.0, nullptr);
      auto prompts = load_prompt_ensemble(r.tuned_dirs, *model);
      if (trial.model.dtype == DType::bf16) use_bf16_for_inference(*model);
      model->eval();
      const ParameterCount c = prompts->parameter_count(*model);
      const int64_t n = static_cast<int64_t>(r.tuned_dirs.size());
      trainable = c.trainable / n;  // one member's prompt
      total = c.total - c.trainable + trainable;
      for (int64_t m = 0; m < n; ++m) member_prompts.push_back(prompts->prompt().narrow(0, m, 1));
      vocabulary = model->input_embedding();
      for (size_t t = 0; t < targets.size(); ++t)
        for (size_t s = 0; s < targets[t].splits.size(); ++s) {
          predictions[t][s] =
              predict_ensemble_texts(*model, n, tokenizer, examples[t][s], labels, es);
          for (auto& p : predictions[t][s]) translate(t, p);
        }
    } else {
      // One member loaded at a time: every method, LoRA included, attaches to a fresh model.
      for (size_t m = 0; m < r.tuned_dirs.size(); ++m) {
        Tuned tuned = load_tuned(r, r.tuned_dirs[m]);
        if (m == 0) {
          const ParameterCount c = tuned.peft->parameter_count(*tuned.model);
          trainable = c.trainable;
          total = c.total;
        }
        if (const auto* pt = dynamic_cast<const PromptTuning*>(tuned.peft.get()))
          member_prompts.push_back(pt->prompt());
        vocabulary = tuned.model->input_embedding();
        for (size_t t = 0; t < targets.size(); ++t)
          for (size_t s = 0; s < targets[t].splits.size(); ++s) {
            std::vector<std::string> p =
                predict_texts(*tuned.model, tokenizer, examples[t][s], labels, es);
            translate(t, p);
            predictions[t][s].push_back(std::move(p));
          }
      }
    }

    StageOutput out;
    const bool ensemble = r.tuned_dirs.size() > 1;
    for (size_t t = 0; t < targets.size(); ++t) {
      for (size_t s = 0; s < targets[t].splits.size(); ++s) {
        const std::string& split = targets[t].splits[s];
        const auto& members = predictions[t][s];
        const std::vector<std::string> final_predictions =
            ensemble ? majority_votes(members) : members[0];
        const std::string stem = targets[t].task->name() + "-" + split;
        write_predictions((fs::path(r.dir) / (stem + ".jsonl")).string(), examples[t][s],
                          final_predictions);
        // A test split without its labels (SuperGLUE's): predictions only.
        const auto& split_examples = examples[t][s];
        if (!std::all_of(split_examples.begin(), split_examples.end(),
                         [](const TaskExample& e) { return e.labelled(); })) {
          log << "[run]     " << stem << ": unlabelled, predictions only\n";
          continue;
        }
        ResultRecord rec;
        rec.stage = "eval";
        rec.task = targets[t].task->name();
        rec.split = split;
        rec.step = -1;
        rec.method = ts.peft.method;
        rec.trainable_params = trainable;
        rec.total_params = total;
        rec.trainable_share = total > 0 ? static_cast<double>(trainable) / total : 0.0;
        rec.metrics = score(*targets[t].task, examples[t][s], final_predictions);
        if (ensemble) {
          // Table 3's rows: the members' average and the best member (one prompt, the best
          // by the task's score: the mean of its metrics) beside the ensemble.
          std::map<std::string, double> sum;
          Metrics best;
          for (size_t m = 0; m < members.size(); ++m) {
            write_predictions(
                (fs::path(r.dir) / (stem + "-member" + std::to_string(m) + ".jsonl")).string(),
                examples[t][s], members[m]);
            const Metrics member = score(*targets[t].task, examples[t][s], members[m]);
            for (const auto& [k, v] : member) sum[k] += v;
            if (m == 0 || task_score(member) > task_score(best)) best = member;
          }
          for (const auto& [k, v] : sum) {
            rec.metrics["members_mean_" + k] = v / static_cast<double>(members.size());
            rec.metrics["members_best_" + k] = best.at(k);
          }
        }
        log << "[run]     " << rec.task << "/" << split
            << (ensemble ? " (ensemble of " + std::to_string(members.size()) + ")" : "") << ": "
            << nlohmann::json(rec.metrics).dump() << "\n";
        out.records.push_back(std::move(rec));
      }
    }
    if (ev.prompt_neighbors > 0) {
      SP_CHECK(member_prompts.size() == r.tuned_dirs.size(),
               "[run] prompt_neighbors needs prompt_tuning, the tuned method is ", ts.peft.method);
      write_prompt_neighbors(r.dir, member_prompts, vocabulary, tokenizer, labels,
                             ev.prompt_neighbors, out, log);
    }
    return out;
  }

  // The interpretability analysis: DIR/prompt_neighbors.jsonl (one line per member and
  // position) and, in the stage's info, how many positions have a class label among their
  // k nearest pieces. member_prompts: the prompts the evaluation loaded, one per member.
  static void write_prompt_neighbors(const std::string& dir,
                                     const std::vector<Tensor>& member_prompts,
                                     const Tensor& vocabulary, const T5Tokenizer& tokenizer,
                                     const std::vector<std::string>& labels, int64_t k,
                                     StageOutput& out, std::ostream& log) {
    std::string lines;
    int64_t positions = 0, with_label = 0;
    for (size_t m = 0; m < member_prompts.size(); ++m) {
      for (const PromptPositionNeighbors& row :
           prompt_neighbors(member_prompts[m], vocabulary, tokenizer, k, labels)) {
        nlohmann::json j = row.to_json(tokenizer);
        j["member"] = m;
        lines += j.dump() + "\n";
        ++positions;
        with_label += row.labels.empty() ? 0 : 1;
      }
    }
    write_file_atomic((fs::path(dir) / "prompt_neighbors.jsonl").string(), lines, "[run]");
    out.info["prompt_neighbors"] = {
        {"k", k}, {"positions", positions}, {"positions_with_label", with_label}};
    log << "[run]     prompt neighbours (k " << k << "): " << with_label << " of " << positions
        << " positions have a class label among them -> prompt_neighbors.jsonl\n";
  }
};

// corpus.files with each directory replaced by the files under it, in path order (hidden
// entries skipped): the spec accepts "text or jsonl files, or directories of them".
std::vector<std::string> corpus_text_files(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const std::string& entry : entries) {
    std::error_code ec;
    if (!fs::is_directory(entry, ec)) {
      out.push_back(entry);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(entry, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().filename().string().starts_with(".")) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) found.push_back(it->path().string());
    }
    SP_CHECK(!ec, "[run] corpus.files: cannot list the directory ", entry, ": ", ec.message());
    SP_CHECK(!found.empty(), "[run] corpus.files: the directory ", entry, " holds no files");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

// The spiece.model a corpus directory holds when it trains none (a built corpus has one):
// tokenizer.source file's path, or the one beside the checkpoint the stage starts from.
std::string corpus_tokenizer_file(const StageRequest& r) {
  const Trial& t = *r.trial;
  if (t.tokenizer.source == "train") return "";
  return stage_tokenizer_file(r.model_dir, t.model, t.tokenizer);
}

// The corpus (and, for tokenizer.source train, its vocabulary) of a trial, built once per
// run directory under stages/corpus-<hash of the corpus and tokenizer settings>; reused
// when its corpus.json (written last by build_corpus) and spiece.model exist.
std::string ensure_corpus(const StageRequest& r) {
  const Trial& t = *r.trial;
  const std::string tokenizer_file = corpus_tokenizer_file(r);
  nlohmann::json key = {{"corpus", t.corpus.canonical_json()},
                        {"tokenizer", t.tokenizer.canonical_json()}};
  // The checkpoint's tokenizer is not in its settings: its bytes name it.
  if (t.tokenizer.source == "checkpoint") key["spiece_sha256"] = sha256_file_hex(tokenizer_file);
  const std::string hash = sha256_hex(key.dump()).substr(0, 12);
  const fs::path dir =
      fs::path(r.run_dir.empty() ? fs::path(r.dir).parent_path().parent_path().string()
                                 : r.run_dir) /
      "stages" / ("corpus-" + hash);
  std::ostream& log = r.log ? *r.log : std::cout;
  if (!fs::exists(dir / "corpus.json")) {
    log << "[run]     building the corpus -> " << dir.string() << "\n";
    log.flush();
    CorpusBuildOptions o;
    o.out_dir = dir.string();
    SP_CHECK(t.corpus.builtin.empty() || t.corpus.builtin == "wordnet",
             "[run] unknown built-in corpus '", t.corpus.builtin, "' (expected wordnet)");
    o.use_wordnet = t.corpus.builtin == "wordnet";
    if (o.use_wordnet) {
      o.wordnet_exclusion = wordnet_tasks_held_out();
      o.wordnet_exclusion_name = kWordnetTasksHeldOut;
    }
    o.text_files = corpus_text_files(t.corpus.files);
    o.text_format.format = parse_document_format(t.corpus.format);
    o.text_format.jsonl_field = t.corpus.jsonl_field;
    o.max_documents = t.corpus.max_documents;
    o.vocab_size = t.tokenizer.vocab_size;
    o.input_sentence_size = t.tokenizer.input_sentence_size;
    o.train_vocabulary = t.tokenizer.source == "train";
    const CorpusSummary summary = build_corpus(o);
    log << "[run]     corpus: " << summary.train_documents << " training documents, "
        << summary.vocab_pieces << " vocabulary pieces\n";
  }
  // Copied atomically after corpus.json, so an interrupted copy is redone, not kept.
  if (!tokenizer_file.empty() && !fs::exists(dir / "spiece.model")) {
    write_file_atomic((dir / "spiece.model").string(), read_file(tokenizer_file, "[run]"), "[run]");
  }
  return dir.string();
}

StageOutput DefaultExecutor::pretrain(const StageRequest& r) {
  const Trial& t = *r.trial;
  const bool lm = r.kind == StageKind::lm_adapt;
  const LoopSpec& loop =
      lm ? static_cast<const LoopSpec&>(*t.lm_adapt) : static_cast<const LoopSpec&>(*t.pretrain);
  PretrainOptions o;
  o.objective = lm ? PretrainObjective::prefix_lm : objective_from_name(t.pretrain->objective);
  if (!lm) {
    o.noise_density = t.pretrain->noise_density;
    o.mean_noise_span_length = t.pretrain->mean_noise_span_length;
  }
  o.init_checkpoint = base_checkpoint_dir(r.model_dir, t.model);
  o.data_dir = ensure_corpus(r);
  // The spec's tokenizer, as ensure_corpus placed it (trained, the file, or the checkpoint's).
  o.spiece_model = (fs::path(o.data_dir) / "spiece.model").string();
  o.out_dir = r.dir;
  if (o.init_checkpoint.empty()) {
    o.preset = t.model.preset;
    if (!t.model.config.empty()) {
      // The spec's config keys over the preset, for run_pretraining to build from.
      const std::string path = (fs::path(r.dir) / "base_config.json").string();
      write_file_atomic(path, preset_config(t.model).to_json(), "[run]");
      o.config_path = path;
    }
  }
  o.device = t.model.device;
  o.dropout = loop.dropout;
  o.steps = loop.steps;
  o.batch_size = loop.batch_size / loop.grad_accumulation;
  o.grad_accumulation = loop.grad_accumulation;
  o.inputs_length = loop.inputs_length;
  o.shuffle_buffer = lm ? t.lm_adapt->shuffle_buffer : t.pretrain->shuffle_buffer;
  // Span corruption's targets follow from inputs_length; prefix LM's are the spec's.
  o.targets_length = o.objective == PretrainObjective::prefix_lm ? loop.targets_length : 0;
  // The spec's optimizer and schedule, every key of them, as the tune stage builds its own.
  o.optimizer = loop.optimizer;
  o.z_loss = loop.z_loss;
  o.seed = loop.seed;
  o.log_every = loop.log_every;
  // Validation loss and a checkpoint (the resume point of an interrupted run) at the
  // spec's cadence, else four times over the run.
  o.eval_every =
      loop.checkpoint_every > 0 ? loop.checkpoint_every : std::max<int64_t>(1, loop.steps / 4);
  o.checkpoint_every = o.eval_every;
  o.progress = ProgressMode::automatic;
  const PretrainResult result = run_pretraining(o);

  ResultRecord rec;
  rec.stage = stage_kind_name(r.kind);
  rec.split = "validation";
  rec.step = result.train.steps_done;
  if (!result.validation_loss.empty()) rec.metrics["loss"] = result.validation_loss.back().second;
  rec.metrics["unigram_baseline"] = result.unigram_baseline;
  rec.method = "model_tuning";
  rec.trainable_params = result.parameters;
  rec.total_params = result.parameters;
  rec.trainable_share = 1.0;
  StageOutput out;
  out.model_dir = result.model_dir;
  out.records.push_back(rec);
  out.info = result.to_json();
  return out;
}

}  // namespace

std::unique_ptr<StageExecutor> make_default_executor() {
  return std::make_unique<DefaultExecutor>();
}

}  // namespace sp
