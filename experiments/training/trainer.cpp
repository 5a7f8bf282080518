#include "experiments/training/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops/elementwise.h"
#include "experiments/training/checkpoint_dir.h"
#include "experiments/training/interrupt.h"
#include "models/io/atomic_file.h"
#include "models/io/directory_lock.h"
#include "models/io/safetensors.h"
#include "nn/module.h"
#include "nn/optim/clip.h"
#include "tensor/error.h"
#include "tensor/kernels.h"

namespace sp {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<Tensor> tensors_of(const NamedTensorList& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

std::vector<std::string> names_of(const NamedTensorList& named) {
  std::vector<std::string> out;
  out.reserve(named.size());
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

// The keys of a train line that a job's loss part may not take.
const std::set<std::string> kTrainLineKeys = {
    "step",   "loss",           "lr",           "grad_norm", "examples",
    "tokens", "examples_per_s", "tokens_per_s", "elapsed_s", "eval"};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(s));
  char buf[32];
  if (total >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(total / 3600),
                  static_cast<long long>(total % 3600 / 60));
  else if (total >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(total));
  return buf;
}

// 1234567 -> "1.23M": rates in a progress line.
std::string format_rate(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

json metrics_json(const std::map<std::string, double>& metrics) {
  json out = json::object();
  for (const auto& [k, v] : metrics) out[k] = v;
  return out;
}

std::map<std::string, double> metrics_from_json(const json& j) {
  std::map<std::string, double> out;
  // NaN is stored as null (JSON has no NaN).
  for (const auto& [k, v] : j.items()) out[k] = v.is_number() ? v.get<double>() : std::nan("");
  return out;
}

}  // namespace

Trainer::Trainer(TrainerOptions options, TrainingJob& job, optim::Optimizer& optimizer)
    : options_(std::move(options)), job_(job), optimizer_(optimizer) {
  const TrainerOptions& o = options_;
  SP_CHECK(!o.out_dir.empty(), "[trainer] options.out_dir is empty: name the run's directory");
  SP_CHECK(o.steps >= 1, "[trainer] options.steps must be >= 1, got ", o.steps);
  SP_CHECK(o.grad_accumulation >= 1, "[trainer] options.grad_accumulation must be >= 1, got ",
           o.grad_accumulation);
  SP_CHECK(o.log_every >= 1, "[trainer] options.log_every must be >= 1, got ", o.log_every);
  SP_CHECK(o.eval_every >= 0, "[trainer] options.eval_every must be >= 0, got ", o.eval_every);
  SP_CHECK(o.checkpoint_every >= 0, "[trainer] options.checkpoint_every must be >= 0, got ",
           o.checkpoint_every);
  SP_CHECK(o.keep_last >= 1, "[trainer] options.keep_last must be >= 1, got ", o.keep_last);
  SP_CHECK(o.early_stopping_patience >= 0,
           "[trainer] options.early_stopping_patience must be >= 0, got ",
           o.early_stopping_patience);
  SP_CHECK(o.early_stopping_patience == 0 || o.eval_every > 0,
           "[trainer] early stopping (patience ", o.early_stopping_patience,
           ") needs options.eval_every > 0");
  SP_CHECK(o.clip_global_norm >= 0 && std::isfinite(o.clip_global_norm),
           "[trainer] options.clip_global_norm must be >= 0 (0: off), got ", o.clip_global_norm);
  SP_CHECK(o.max_seconds >= 0, "[trainer] options.max_seconds must be >= 0, got ", o.max_seconds);
  SP_CHECK(o.min_improvement >= 0, "[trainer] options.min_improvement must be >= 0, got ",
           o.min_improvement);
  SP_CHECK(optimizer_.schedule().has_value(), "[trainer] the ", optimizer_.name(),
           " optimizer has no schedule: call set_schedule() before building the trainer");
  trainable_ = job_.trainable();
  names_ = names_of(trainable_);
  check_trainable_matches_optimizer();
  metric_ = o.metric;

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  live_ = o.progress == ProgressMode::live || (o.progress == ProgressMode::automatic && tty);
  plain_ = o.progress == ProgressMode::plain || (o.progress == ProgressMode::automatic && !tty);
}

void Trainer::check_trainable_matches_optimizer() {
  const std::vector<Tensor>& params = optimizer_.params();
  SP_CHECK(!trainable_.empty(), "[trainer] job.trainable() is empty: nothing to train");
  SP_CHECK(trainable_.size() == params.size(), "[trainer] job.trainable() has ", trainable_.size(),
           " tensors but the ", optimizer_.name(), " optimizer has ", params.size(),
           ": build the optimizer from job.trainable()");
  std::set<std::string> seen;
  std::map<const void*, std::string> storages;
  for (size_t i = 0; i < trainable_.size(); ++i) {
    const auto& [name, t] = trainable_[i];
    SP_CHECK(!name.empty(), "[trainer] job.trainable() entry ", i, " has an empty name");
    SP_CHECK(seen.insert(name).second, "[trainer] job.trainable() names '", name, "' twice");
    SP_CHECK(t.is_same(params[i]), "[trainer] job.trainable() entry ", i, " ('", name,
             "') is not the optimizer's parameter ", i, " ('", optimizer_.names()[i],
             "'): build the optimizer from job.trainable(), in its order");
    // A tied tensor listed twice would be updated twice per step.
    auto [it, fresh] = storages.emplace(t.storage().get(), name);
    SP_CHECK(fresh, "[trainer] job.trainable() entries '", it->second, "' and '", name,
             "' share storage: list a tied tensor once");
  }
}

std::string Trainer::checkpoints_dir() const {
  return (fs::path(options_.out_dir) / "checkpoints").string();
}

std::string Trainer::metrics_path() const {
  return (fs::path(options_.out_dir) / "metrics.jsonl").string();
}

std::string Trainer::latest_checkpoint() const {
  auto s = checkpoint_dir::resume_step(checkpoints_dir());
  return s ? (fs::path(checkpoints_dir()) / checkpoint_dir::name(*s)).string() : std::string();
}

double Trainer::elapsed_seconds() const { return elapsed_before_ + seconds_since(started_); }

TrainResult Trainer::run() {
  started_ = Clock::now();
  last_live_ = started_;
  const std::string ckpt = checkpoints_dir();
  std::error_code ec;
  fs::create_directories(ckpt, ec);
  SP_CHECK(!ec, "[trainer] cannot create ", ckpt, ": ", ec.message());
  // Before anything in out_dir is touched: a second process training into it would remove
  // this one's temporaries and overwrite its checkpoints.
  const DirectoryLock lock(options_.out_dir, "[trainer]", "another training process");
  // Ctrl-C stops at the end of a step with a checkpoint (experiments/training/interrupt.h).
  const InterruptScope interrupts;
  checkpoint_dir::remove_temporaries(ckpt);
  checkpoint_dir::remove_temporaries(options_.out_dir);

  const std::optional<int64_t> resume = checkpoint_dir::resume_step(ckpt);
  // Directories past the resume point belong to an abandoned future of this run (a crash
  // between a rename and the pointer update): the resumed run rewrites them.
  for (int64_t s : checkpoint_dir::list_steps(ckpt))
    if (!resume || s > *resume) fs::remove_all(fs::path(ckpt) / checkpoint_dir::name(s));

  if (resume) {
    restore((fs::path(ckpt) / checkpoint_dir::name(*resume)).string(), *resume);
  } else if (options_.seed) {
    default_generator().manual_seed(*options_.seed);
  }
  metrics_.open(metrics_path(), step_);
  // An export in out_dir is this checkpoint's only if the checkpoint is a finished run's:
  // one left by an earlier stop of a run that went on is stale.
  const bool resumed_finished = finished_;

  // A run that stopped at its step count continues when asked for more steps, and one that
  // stopped at its time budget when given more time (or none).
  const bool more_time = options_.max_seconds == 0 || elapsed_before_ < options_.max_seconds;
  if (finished_ && step_ < options_.steps &&
      (stop_reason_ == "steps" || (stop_reason_ == "max_seconds" && more_time)))
    finished_ = false;
  // Asked for no more steps than an unfinished checkpoint has: nothing to train, but the
  // run ends as its last step would have: evaluated (eval_at_end, unless it was at this
  // step) and checkpointed as finished, so what it reports is of the parameters it exports.
  if (!finished_ && step_ >= options_.steps) {
    stop_reason_ = "steps";
    const bool evaluated_here = !history_.empty() && history_.back().step == step_;
    if (options_.eval_at_end && !evaluated_here)
      if (const std::optional<bool> best = evaluate_and_record(step_, true))
        record_eval_line(step_, *best);
    remove_stale_export();
    write_checkpoint(step_, true);
    finished_ = true;
  }
  const bool trained = !finished_;
  if (!finished_) job_.set_training(true);

  int64_t saved = step_;     // the step whose checkpoint is on disk (none yet: 0)
  bool interrupted = false;  // Ctrl-C (experiments/training/interrupt.h)
  while (!finished_) {
    interrupted = interrupt_requested();
    if (interrupted) break;
    const int64_t step = step_ + 1;
    const auto t0 = Clock::now();
    const StepStats stats = train_step(step);
    const double dt = seconds_since(t0);
    step_ = step;
    window_.loss_sum += stats.loss;
    for (const auto& [name, value] : stats.parts) window_.part_sums[name] += value;
    window_.steps += 1;
    window_.examples += stats.examples;
    window_.tokens += stats.tokens;
    window_.seconds += dt;
    steps_this_run_ += 1;
    train_seconds_this_run_ += dt;

    bool end = false;
    if (step >= options_.steps) {
      end = true;
      stop_reason_ = "steps";
    } else if (options_.max_seconds > 0 && elapsed_seconds() >= options_.max_seconds) {
      end = true;
      stop_reason_ = "max_seconds";
    }

    std::optional<bool> evaluated;  // with whether it was a new best
    const bool scheduled = options_.eval_every > 0 && step % options_.eval_every == 0;
    if (scheduled || (end && options_.eval_at_end)) {
      // An evaluation at a time-budget stop off the schedule is reported but does not rank:
      // a run split by its budget and continued picks the same best and stops at the same
      // step as one that ran through.
      evaluated = evaluate_and_record(step, scheduled || stop_reason_ != "max_seconds");
      if (evaluated && !end && options_.early_stopping_patience > 0 &&
          evals_since_best_ >= options_.early_stopping_patience) {
        end = true;
        stop_reason_ = "early_stopping";
      }
    }

    const bool line_due = step % options_.log_every == 0 || end;
    if (line_due) write_train_line(step, stats);
    show_progress(step, stats, line_due);
    if (evaluated) record_eval_line(step, *evaluated);

    const bool checkpoint_due =
        (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0) ||
        (evaluated.value_or(false) && options_.keep_best) || end;
    finished_ = end;
    if (end) remove_stale_export();
    if (checkpoint_due) {
      write_checkpoint(step, end);
      saved = step;
    }
  }
  if (live_line_open_) std::fputs("\n", stderr);
  live_line_open_ = false;
  if (interrupted) {
    if (steps_this_run_ == 0)
      throw Interrupted(str_cat("[trainer] interrupted before step ", step_ + 1, " of ",
                                options_.out_dir, "; run the same command again to resume"));
    if (saved != step_) write_checkpoint(step_, false);
    throw Interrupted(str_cat("[trainer] interrupted at step ", step_, " of ", options_.out_dir,
                              ": checkpoint ", checkpoint_dir::name(step_),
                              " written; run the same command again to resume"));
  }

  if (options_.keep_best && best_step_ > 0 && best_step_ != step_)
    load_params((fs::path(ckpt) / checkpoint_dir::name(best_step_)).string());
  model_dir_.clear();
  if (options_.export_model) {
    const fs::path model = fs::path(options_.out_dir) / "model";
    if (trained || !resumed_finished || !fs::exists(model)) export_model();
    model_dir_ = model.string();
  }
  metrics_.close();
  return result();
}

Trainer::StepStats Trainer::train_step(int64_t step) {
  StepStats stats;
  const int64_t n = options_.grad_accumulation;
  double loss_sum = 0, weight_sum = 0;
  std::map<std::string, double> part_sums;
  for (int64_t micro = 0; micro < n; ++micro) {
    StepResult r = job_.micro_batch_loss(step, micro);
    SP_CHECK(r.loss.defined() && r.loss.numel() == 1, "[trainer] step ", step, ": micro-batch ",
             micro, " returned ", r.loss.defined() ? describe(r.loss) : std::string("no loss"),
             "; expected a scalar loss");
    SP_CHECK(r.loss.requires_grad(), "[trainer] step ", step, ": the loss of micro-batch ", micro,
             " does not require grad (no trainable tensor reaches it)");
    const double v = r.loss.item<double>();
    if (!std::isfinite(v)) {
      optimizer_.zero_grad();
      fail(str_cat("[trainer] step ", step, ": the loss of micro-batch ", micro, " is ", v,
                   "; stopping before the update (the last checkpoint is intact)"));
    }
    // Each micro-batch's mean weighs by its terms; the sum is divided by their total below,
    // so the gradient is that of the mean over the whole batch.
    const double weight = n > 1 && r.loss_terms >= 0 ? static_cast<double>(r.loss_terms) : 1.0;
    Tensor weighted = n == 1 ? r.loss : r.loss * weight;
    weighted.backward();
    loss_sum += v * weight;
    weight_sum += weight;
    for (const auto& [name, value] : r.loss_parts) {
      SP_CHECK(!kTrainLineKeys.count(name), "[trainer] step ", step, ": micro-batch ", micro,
               " names a loss part '", name, "', a key train lines already have");
      part_sums[name] += value * weight;
    }
    stats.examples += r.examples;
    stats.tokens += r.tokens;
  }
  const std::vector<Tensor>& params = optimizer_.params();
  if (n > 1 && weight_sum > 0) optim::scale_grads(params, 1.0 / weight_sum);
  stats.loss = weight_sum > 0 ? loss_sum / weight_sum : 0.0;
  for (const auto& [name, sum] : part_sums)
    stats.parts[name] = weight_sum > 0 ? sum / weight_sum : 0.0;

  const optim::FiniteCheck finite = optim::check_finite_grads(params, names_);
  if (!finite) {
    optimizer_.zero_grad();
    fail(str_cat("[trainer] step ", step, ": ", finite.message(),
                 "; stopping before the update (the last checkpoint is intact)"));
  }
  stats.lr = optimizer_.schedule()->lr(optimizer_.step_count());
  stats.grad_norm = options_.clip_global_norm > 0
                        ? optim::clip_grad_norm(params, options_.clip_global_norm)
                        : optim::grad_norm(params);
  optimizer_.step(stats.lr);
  optimizer_.zero_grad();
  return stats;
}

void Trainer::record_eval_line(int64_t step, bool best) {
  const EvalRecord& rec = history_.back();
  metrics_.append({{"step", step}, {"eval", metrics_json(rec.result.metrics)}, {"best", best}});
  show_eval(step, rec.result, best);
}

void Trainer::remove_stale_export() {
  if (!options_.export_model) return;
  std::error_code ec;
  fs::remove_all(fs::path(options_.out_dir) / "model", ec);
  SP_CHECK(!ec, "[trainer] cannot remove the stale ", options_.out_dir, "/model: ", ec.message());
}

std::optional<bool> Trainer::evaluate_and_record(int64_t step, bool ranks) {
  job_.set_training(false);
  std::optional<EvalResult> r;
  {
    NoGradGuard no_grad;
    r = job_.evaluate(step);
  }
  job_.set_training(true);
  if (!r) return std::nullopt;
  SP_CHECK(!r->metrics.empty(), "[trainer] step ", step, ": evaluate() returned no metrics");
  if (metric_.empty()) metric_ = r->metrics.begin()->first;
  auto it = r->metrics.find(metric_);
  if (it == r->metrics.end()) {
    std::string have;
    for (const auto& [k, v] : r->metrics) have += (have.empty() ? "" : ", ") + k;
    fail(str_cat("[trainer] step ", step, ": the evaluation has no metric '", metric_,
                 "' (options.metric); it has: ", have));
  }
  const double v = it->second;
  if (!ranks) {
    history_.push_back({step, std::move(*r)});
    return false;
  }
  bool improved = false;
  if (std::isfinite(v)) {
    if (!best_metric_)
      improved = true;
    else if (options_.higher_is_better)
      improved = v > *best_metric_ + options_.min_improvement;
    else
      improved = v < *best_metric_ - options_.min_improvement;
  }
  if (improved) {
    best_metric_ = v;
    best_step_ = step;
    evals_since_best_ = 0;
  } else {
    ++evals_since_best_;
  }
  history_.push_back({step, std::move(*r)});
  return improved;
}

void Trainer::write_train_line(int64_t step, const StepStats& last) {
  const Window& w = window_;
  const double loss = w.steps > 0 ? w.loss_sum / static_cast<double>(w.steps) : last.loss;
  const double secs = w.seconds > 0 ? w.seconds : 1e-9;
  nlohmann::json line = {{"step", step},
                         {"loss", loss},
                         {"lr", last.lr},
                         {"grad_norm", last.grad_norm},
                         {"examples", w.examples},
                         {"tokens", w.tokens},
                         {"examples_per_s", static_cast<double>(w.examples) / secs},
                         {"tokens_per_s", static_cast<double>(w.tokens) / secs},
                         {"elapsed_s", elapsed_seconds()}};
  if (w.steps > 0) {
    for (const auto& [name, sum] : w.part_sums) line[name] = sum / static_cast<double>(w.steps);
  } else {
    for (const auto& [name, value] : last.parts) line[name] = value;
  }
  metrics_.append(line);
  last_window_loss_ = loss;
  window_ = Window{};
}

void Trainer::show_progress(int64_t step, const StepStats& last, bool line_due) {
  if (!live_ && !(plain_ && line_due)) return;
  if (live_ && !line_due && step != options_.steps && seconds_since(last_live_) < 0.1) return;
  last_live_ = Clock::now();
  // The window was just flushed when a line is due: show that line's loss then.
  const double loss = line_due || window_.steps == 0
                          ? last_window_loss_
                          : window_.loss_sum / static_cast<double>(window_.steps);
  const double rate = train_seconds_this_run_ > 0
                          ? static_cast<double>(steps_this_run_) / train_seconds_this_run_
                          : 0;
  const double ex_s = train_seconds_this_run_ > 0 ? last.examples * rate : 0;
  const double tok_s = train_seconds_this_run_ > 0 ? last.tokens * rate : 0;
  // The ETA counts this run's wall time per step, evaluations and checkpoints included.
  const double wall = seconds_since(started_);
  const double eta =
      steps_this_run_ > 0 && wall > 0
          ? static_cast<double>(options_.steps - step) * wall / static_cast<double>(steps_this_run_)
          : NAN;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "step %lld/%lld  loss %.4f  lr %.2e  gnorm %.3g  %s ex/s  %s tok/s  ETA %s",
                static_cast<long long>(step), static_cast<long long>(options_.steps), loss, last.lr,
                last.grad_norm, format_rate(ex_s).c_str(), format_rate(tok_s).c_str(),
                format_duration(eta).c_str());
  if (live_) {
    std::fprintf(stderr, "\r%s\033[K", buf);
    live_line_open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", buf);
  }
  std::fflush(stderr);
}

void Trainer::show_eval(int64_t step, const EvalResult& result, bool new_best) {
  if (!live_ && !plain_) return;
  std::string text = "eval step " + std::to_string(step) + ":";
  for (const auto& [k, v] : result.metrics) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s %.4g", k.c_str(), v);
    text += buf;
  }
  if (new_best)
    text += "  (best)";
  else if (best_metric_) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "  (best %s %.4g at step %lld)", metric_.c_str(), *best_metric_,
                  static_cast<long long>(best_step_));
    text += buf;
  }
  std::fprintf(stderr, "%s%s\n", live_line_open_ ? "\n" : "", text.c_str());
  live_line_open_ = false;
  std::fflush(stderr);
}

json Trainer::generator_states() {
  json out = json::object();
  auto put = [&](const std::string& name, const Generator& g) {
    const PhiloxState s = g.state();
    out[name] = {{"seed", s.seed}, {"offset", s.offset}};
  };
  put("default", default_generator());
  for (const auto& [name, g] : job_.generators()) {
    SP_CHECK(g != nullptr, "[trainer] job.generators() gives a null generator '", name, "'");
    SP_CHECK(!out.contains(name), "[trainer] job.generators() names '", name,
             "' twice (\"default\" is the default generator)");
    put(name, *g);
  }
  return out;
}

void Trainer::restore_generators(const json& states, const std::string& dir) {
  auto get = [&](const std::string& name, Generator& g) {
    SP_CHECK(
        states.contains(name) && states[name].contains("seed") && states[name].contains("offset"),
        "[trainer] checkpoint ", dir, " has no state for generator '", name, "'");
    g.set_state({states[name]["seed"].get<uint64_t>(), states[name]["offset"].get<uint64_t>()});
  };
  get("default", default_generator());
  for (const auto& [name, g] : job_.generators()) get(name, *g);
}

void Trainer::write_checkpoint(int64_t step, bool finished) {
  // Lines up to this step must survive any crash after the checkpoint exists.
  metrics_.sync();
  const std::string ckpt = checkpoints_dir();
  const std::string name = checkpoint_dir::name(step);
  const std::string tmp = checkpoint_dir::make_temporary(ckpt, name, "[trainer]");
  const fs::path t(tmp);
  save_safetensors((t / "params.safetensors").string(), trainable_);
  save_safetensors((t / "optimizer.safetensors").string(), optimizer_.state_dict(),
                   {{"format", "pt"}, {"optimizer", optimizer_.name()}});

  json history = json::array();
  for (const EvalRecord& r : history_)
    history.push_back({{"step", r.step}, {"metrics", metrics_json(r.result.metrics)}});
  json state = {
      {"step", step},
      {"finished", finished},
      {"stop_reason", finished ? stop_reason_ : std::string()},
      {"generators", generator_states()},
      {"history", history},
      {"metric", metric_},
      {"higher_is_better", options_.higher_is_better},
      {"best_metric", best_metric_ ? json(*best_metric_) : json(nullptr)},
      {"best_step", best_step_},
      {"evals_since_best", evals_since_best_},
      {"window",
       {{"loss_sum", window_.loss_sum},
        {"part_sums", window_.part_sums},
        {"steps", window_.steps},
        {"examples", window_.examples},
        {"tokens", window_.tokens},
        {"seconds", window_.seconds}}},
      {"last_window_loss", last_window_loss_},
      {"elapsed_s", elapsed_seconds()},
      // For people reading the file; a resumed run takes its options from its caller.
      {"options",
       {{"steps", options_.steps},
        {"grad_accumulation", options_.grad_accumulation},
        {"clip_global_norm", options_.clip_global_norm},
        {"min_improvement", options_.min_improvement},
        {"schedule", optimizer_.schedule()->str()},
        {"optimizer", optimizer_.name()}}},
  };
  if (json evaluation = job_.evaluation_identity(); !evaluation.is_null())
    state["evaluation"] = std::move(evaluation);
  // The job's data state last: everything before it is the trainer's own.
  state["data"] = job_.data_state();
  write_file_atomic((t / "state.json").string(), state.dump(1) + "\n", "[trainer]");
  checkpoint_dir::commit_directory(tmp, (fs::path(ckpt) / name).string(), "[trainer]");
  checkpoint_dir::write_latest(ckpt, step);
  prune_checkpoints();
}

void Trainer::prune_checkpoints() {
  const std::string ckpt = checkpoints_dir();
  const std::vector<int64_t> steps = checkpoint_dir::list_steps(ckpt);
  std::set<int64_t> keep;
  const size_t n = steps.size();
  for (size_t i = n > static_cast<size_t>(options_.keep_last) ? n - options_.keep_last : 0; i < n;
       ++i)
    keep.insert(steps[i]);
  if (options_.keep_best && best_step_ > 0) keep.insert(best_step_);
  keep.insert(step_);
  for (int64_t s : steps)
    if (!keep.count(s)) fs::remove_all(fs::path(ckpt) / checkpoint_dir::name(s));
}

void Trainer::load_params(const std::string& dir) {
  const std::string path = (fs::path(dir) / "params.safetensors").string();
  SafetensorsFile f = SafetensorsFile::open(path);
  std::vector<std::string> missing, unexpected, mismatched;
  std::set<std::string> ours;
  for (const auto& [name, t] : trainable_) {
    ours.insert(name);
    if (!f.contains(name)) {
      missing.push_back(name);
      continue;
    }
    const Shape shape(f.info(name).shape);
    if (shape != t.shape())
      mismatched.push_back(str_cat(name, ": expected ", t.shape(), ", got ", shape));
    else if (!is_floating_dtype_name(f.info(name).dtype))
      mismatched.push_back(str_cat(name, ": expected a floating dtype, got ", f.info(name).dtype));
  }
  for (const std::string& name : f.names())
    if (!ours.count(name)) unexpected.push_back(name);
  SP_CHECK(
      missing.empty() && unexpected.empty() && mismatched.empty(), "[trainer] ", path,
      " does not match job.trainable():", list_name_mismatches(missing, unexpected, mismatched));
  NoGradGuard no_grad;
  for (auto& [name, t] : trainable_) kernels::copy_(t, f.tensor(name));
}

std::string Trainer::changed_options(const json& saved) const {
  if (!saved.is_object()) return "";
  const json now = {{"grad_accumulation", options_.grad_accumulation},
                    {"clip_global_norm", options_.clip_global_norm},
                    {"min_improvement", options_.min_improvement},
                    {"schedule", optimizer_.schedule()->str()}};
  std::string changed;
  for (const auto& [key, value] : now.items())
    if (saved.contains(key) && saved[key] != value)
      changed += str_cat(changed.empty() ? "" : ", ", key, " ",
                         saved[key].is_string() ? saved[key].get<std::string>() : saved[key].dump(),
                         " -> ", value.is_string() ? value.get<std::string>() : value.dump());
  return changed;
}

void Trainer::restore(const std::string& dir, int64_t step) {
  const std::string state_path = (fs::path(dir) / "state.json").string();
  const json st =
      json::parse(read_file(state_path, "[trainer]"), nullptr, /*allow_exceptions=*/false);
  SP_CHECK(!st.is_discarded(), "[trainer] ", state_path,
           " is not valid JSON (cut short or edited?): resume from an earlier checkpoint by "
           "deleting this one");
  SP_CHECK(
      st.is_object() && st.contains("step") && st.contains("generators") && st.contains("data"),
      "[trainer] ", state_path, " is not a trainer state (no step, generators or data)");
  SP_CHECK(st["step"].is_number_integer() && st["step"].get<int64_t>() == step, "[trainer] ",
           state_path, " says step ", st["step"].dump(), " but it is the checkpoint of step ",
           step);
  try {
    check_best_tracking(st, state_path);
    restore_state(dir, st);
    // After the data state, whose errors name the setting that changed.
    check_evaluation_identity(st, state_path);
  } catch (const json::exception& e) {
    fail(str_cat("[trainer] ", state_path, " has a value of the wrong kind: ", e.what()));
  }
  const std::string changed = changed_options(st.value("options", json()));
  if (live_ || plain_)
    std::fprintf(stderr, "[trainer] resuming %s at step %lld of %lld%s%s\n",
                 options_.out_dir.c_str(), static_cast<long long>(step),
                 static_cast<long long>(options_.steps),
                 changed.empty() ? "" : " with other options: ", changed.c_str());
}

void Trainer::check_best_tracking(const json& st, const std::string& state_path) const {
  if (!st.contains("best_metric") || !st["best_metric"].is_number()) return;  // nothing to compare
  const std::string saved = st.value("metric", std::string());
  const bool saved_higher = st.value("higher_is_better", options_.higher_is_better);
  const std::string asked = metric_.empty() ? saved : metric_;
  auto direction = [](bool higher) { return higher ? "higher is better" : "lower is better"; };
  SP_CHECK((saved.empty() || asked == saved) && saved_higher == options_.higher_is_better,
           "[trainer] ", state_path, " tracks the best '", saved, "' (", direction(saved_higher),
           ") but this run asks for '", asked, "' (", direction(options_.higher_is_better),
           "): resume with the same metric, or start in a new directory");
}

void Trainer::check_evaluation_identity(const json& st, const std::string& state_path) {
  const json saved = st.value("evaluation", json());
  if (saved.is_null() || st.value("history", json::array()).empty()) return;  // nothing scored
  const json now = job_.evaluation_identity();
  SP_CHECK(now.is_null() || now == saved, "[trainer] ", state_path, " holds evaluations of ",
           saved.dump(), " but this run evaluates ", now.dump(),
           ": its best checkpoint and early stopping would compare scores of two evaluation "
           "sets; resume with the same evaluation settings, or start in a new directory");
}

void Trainer::restore_state(const std::string& dir, const json& st) {
  // Checked before anything is loaded, so a refused resume leaves the trainable tensors be.
  const std::string opt_path = (fs::path(dir) / "optimizer.safetensors").string();
  SafetensorsFile f = SafetensorsFile::open(opt_path);
  // Another optimizer's slots can have the same names and shapes (AdamW's m and v, and
  // Adafactor's with beta1 on unfactored parameters): the name written at save decides.
  if (auto saved = f.metadata().find("optimizer"); saved != f.metadata().end())
    SP_CHECK(saved->second == optimizer_.name(), "[trainer] ", opt_path, " holds the state of ",
             saved->second, " but this run optimizes with ", optimizer_.name(),
             ": resume with the same optimizer, or start in a new directory");
  load_params(dir);

  optim::StateDict sd;
  for (const std::string& name : f.names()) sd.emplace_back(name, f.tensor(name));
  optimizer_.load_state_dict(sd);

  restore_generators(st["generators"], dir);
  job_.restore_data_state(st["data"]);

  step_ = st["step"].get<int64_t>();
  resumed_from_ = step_;
  finished_ = st.value("finished", false);
  stop_reason_ = st.value("stop_reason", std::string());
  if (metric_.empty()) metric_ = st.value("metric", std::string());
  history_.clear();
  for (const json& h : st.value("history", json::array()))
    history_.push_back({h["step"].get<int64_t>(), EvalResult{metrics_from_json(h["metrics"])}});
  best_metric_.reset();
  if (st.contains("best_metric") && st["best_metric"].is_number())
    best_metric_ = st["best_metric"].get<double>();
  best_step_ = st.value("best_step", int64_t{0});
  evals_since_best_ = st.value("evals_since_best", int64_t{0});
  const json w = st.value("window", json::object());
  window_.loss_sum = w.value("loss_sum", 0.0);
  window_.part_sums = w.value("part_sums", std::map<std::string, double>{});
  window_.steps = w.value("steps", int64_t{0});
  window_.examples = w.value("examples", int64_t{0});
  window_.tokens = w.value("tokens", int64_t{0});
  window_.seconds = w.value("seconds", 0.0);
  last_window_loss_ = st.value("last_window_loss", 0.0);
  elapsed_before_ = st.value("elapsed_s", 0.0);
}

void Trainer::export_model() {
  const fs::path model = fs::path(options_.out_dir) / "model";
  const std::string tmp = checkpoint_dir::make_temporary(options_.out_dir, "model", "[trainer]");
  job_.save_model(tmp);
  checkpoint_dir::commit_directory(tmp, model.string(), "[trainer]");
}

TrainResult Trainer::result() const {
  TrainResult r;
  r.steps_done = step_;
  r.resumed_from = resumed_from_;
  r.stop_reason = stop_reason_;
  r.final_loss = last_window_loss_;
  if (!history_.empty()) r.final_eval = history_.back().result;
  r.best_metric = best_metric_;
  r.best_step = best_step_;
  r.model_dir = model_dir_;
  r.last_checkpoint = latest_checkpoint();
  r.earlier_seconds = elapsed_before_;
  return r;
}

}  // namespace sp
