#include "experiments/runner/runner.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include "experiments/data/sha256.h"
#include "experiments/report/report.h"
#include "experiments/report/results.h"
#include "experiments/runner/model_loading.h"
#include "experiments/runner/stage_executor.h"
#include "experiments/spec/spec.h"
#include "experiments/training/interrupt.h"
#include "models/io/atomic_file.h"
#include "models/io/directory_lock.h"
#include "tensor/error.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDone = "DONE";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The keys whose values are a trial's seed (Trial::seed, the tune stage's): the reports fold
// them into mean and std. Other seeds (stages.pretrain.seed, peft.seed) make different
// upstream models or inits, so they stay sweep keys like any other.
bool is_seed_key(const std::string& key) { return key == "seed" || key == "stages.tune.seed"; }

// A swept value as JSON: numbers and booleans typed (plots need numbers), the rest text.
nlohmann::json typed_value(const std::string& text) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (j.is_number() || j.is_boolean()) return j;
  } catch (const nlohmann::json::exception&) {}
  return text;
}

// The trial's swept values that name it: sweep.hide's keys (kept in Trial::sweep_point)
// are left out of trial ids, result points and plot groups alike.
std::vector<std::pair<std::string, std::string>> visible_point(const ExperimentSpec& spec,
                                                               const Trial& t) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : t.sweep_point)
    if (std::find(spec.sweep_keys.begin(), spec.sweep_keys.end(), kv.first) !=
        spec.sweep_keys.end())
      out.push_back(kv);
  return out;
}

// A shared stage's legend entry in the training curves: the trial's swept values that can
// reach it (not those of later stages, nor seeds), else the stage kind's name.
std::string upstream_label(const ExperimentSpec& spec, const Trial& t, StageKind kind) {
  std::vector<std::string> later = {"stages.tune.", "stages.eval."};
  if (kind == StageKind::pretrain) later.push_back("stages.lm_adapt.");
  std::string label;
  for (const auto& [key, value] : visible_point(spec, t)) {
    if (is_seed_key(key) || std::any_of(later.begin(), later.end(),
                                        [&](const std::string& p) { return key.starts_with(p); }))
      continue;
    label += (label.empty() ? "" : ",") + key + "=" + value;
  }
  return label.empty() ? stage_kind_name(kind) : label;
}

nlohmann::json point_of(const ExperimentSpec& spec, const Trial& t) {
  nlohmann::json point = nlohmann::json::object();
  for (const auto& [key, value] : visible_point(spec, t))
    if (!is_seed_key(key)) point[key] = typed_value(value);
  return point;
}

class Runner {
 public:
  Runner(const ExperimentSpec& spec, const RunOptions& options, StageExecutor& executor)
      : spec_(spec),
        options_(options),
        executor_(executor),
        dir_(run_directory(spec, options)),
        log_(options.log ? *options.log : std::cout) {}

  int run() {
    if (options_.reports_only) return reports_only();
    for (const char* sub : {"stages", "trials"}) {
      std::error_code ec;
      fs::create_directories(dir_ / sub, ec);
      if (ec)
        throw UsageError(str_cat("[run] cannot use ", dir_.string(), " as the run directory (",
                                 (dir_ / sub).string(), ": ", ec.message(), ")"));
    }
    DirectoryLock lock(dir_.string(), "[run]", "another `softprompt run`");
    find_current_results();
    // A device the process cannot use fails here, before any stage runs.
    for (const Trial& t : spec_.trials) check_model_device(t.model);
    write_file_atomic((dir_ / "spec.json").string(), spec_.resolved.dump(2) + "\n", "[run]");
    log_ << "[run] " << spec_.name << ": " << spec_.trials.size() << " trial"
         << (spec_.trials.size() == 1 ? "" : "s") << " -> " << dir_.string() << "\n";
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < spec_.trials.size(); ++i) run_trial(i);
    write_reports_now();
    write_failures();
    log_ << "[run] " << (spec_.trials.size() - failures_.size()) << " of " << spec_.trials.size()
         << " trials finished (" << skipped_ << " already done), " << failures_.size()
         << " failed, in " << static_cast<int64_t>(seconds_since(t0)) << " s\n";
    log_ << "[run] report: " << (dir_ / "report.md").string() << "\n";
    log_.flush();
    return failures_.empty() ? 0 : 1;
  }

 private:
  // --reports-only: the reports of what results.jsonl holds; creates no directory.
  int reports_only() {
    SP_CHECK(fs::exists(dir_ / "results.jsonl"), "[run] --reports-only: nothing to report in ",
             dir_.string(), " (no results.jsonl)");
    DirectoryLock lock(dir_.string(), "[run]", "another `softprompt run`");
    find_current_results();
    // The failures of the run that wrote results.jsonl, so its report keeps them: each
    // starts "<trial id>: " and its message may go on over several lines.
    std::set<std::string> ids;
    for (const Trial& t : spec_.trials) ids.insert(t.id);
    if (std::ifstream in(dir_ / "failures.txt"); in)
      for (std::string line; std::getline(in, line);) {
        const size_t colon = line.find(": ");
        if (failures_.empty() || (colon != std::string::npos && ids.count(line.substr(0, colon))))
          failures_.push_back(line);
        else
          failures_.back() += "\n" + line;
      }
    write_reports_now();
    return 0;
  }

  struct CachedStage {
    StageOutput output;
    double seconds = 0;
  };

  // What a finished trial was run with: every stage's configuration hash (which covers the
  // stages it depends on), ensemble members included.
  static nlohmann::json trial_signature(const Trial& trial) {
    nlohmann::json s = nlohmann::json::object();
    for (StageKind kind : trial.stage_order()) s[stage_kind_name(kind)] = trial.stage_hash(kind);
    for (const TuneStage& member : trial.ensemble) s["ensemble"].push_back(member.hash);
    return s;
  }

  // The code version of each of the trial's stages (stage_code_version): a trial's DONE
  // records them, to say why a trial finished by an earlier softprompt runs again.
  static nlohmann::json trial_code_versions(const Trial& trial) {
    nlohmann::json v = nlohmann::json::object();
    for (StageKind kind : trial.stage_order()) v[stage_kind_name(kind)] = stage_code_version(kind);
    return v;
  }

  // Which trials are finished with their current settings (a DONE whose signature matches),
  // and when: run_trial skips them, and the reports take their records of that time.
  void find_current_results() {
    for (const Trial& t : spec_.trials) {
      const nlohmann::json done = read_done(dir_ / "trials" / trial_dir_name(t.id) / kDone);
      if (done_field(done, "stages") != trial_signature(t)) continue;
      const nlohmann::json finished = done_field(done, "finished");
      finished_at_[t.id] = finished.is_string() ? finished.get<std::string>() : "";
    }
  }

  // A DONE marker's content: a JSON object, or null when the file is unreadable.
  static nlohmann::json read_done(const fs::path& done) {
    std::ifstream in(done);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    return j.is_object() ? j : nlohmann::json();
  }

  // A DONE marker's field key; null when the marker or the field is missing.
  static nlohmann::json done_field(const nlohmann::json& done, const char* key) {
    return done.is_object() && done.contains(key) ? done[key] : nlohmann::json();
  }

  // Why a finished trial whose signature differs runs again: the stages whose code changed
  // since (a DONE from before code versions records none), or else its settings.
  static std::string rerun_reason(const Trial& trial, const nlohmann::json& done) {
    const nlohmann::json then = done_field(done, "code_versions");
    if (!then.is_object()) return "finished by code from before stage code versions";
    std::string changed;
    for (StageKind kind : trial.stage_order()) {
      const nlohmann::json was = then.value(stage_kind_name(kind), nlohmann::json());
      if (was == stage_code_version(kind)) continue;
      changed += str_cat(changed.empty() ? "" : ", ", stage_kind_name(kind), " ",
                         was.is_number_integer() ? std::to_string(was.get<int64_t>()) : "none",
                         " -> ", stage_code_version(kind));
    }
    return changed.empty() ? "finished with other settings"
                           : "finished by earlier code (stage code versions " + changed + ")";
  }

  // A finished trial's records go back into results.jsonl when it has none of them (the
  // file was deleted, or replaced by a copy from before the trial last ran): they are kept
  // in the trial's DONE marker. A record counts by its trial and its DONE's finished time.
  void restore_records(const std::string& trial_id, const fs::path& done_path) {
    const std::string results_path = (dir_ / "results.jsonl").string();
    auto recorded_key = [](const std::string& trial, const std::string& finished) {
      return trial + '\n' + finished;
    };
    if (!recorded_trials_) {
      recorded_trials_.emplace();
      for (const ResultRecord& r : read_results(results_path))
        recorded_trials_->insert(recorded_key(r.trial, r.finished));
    }
    const std::string key = recorded_key(trial_id, finished_at_.at(trial_id));
    if (recorded_trials_->count(key)) return;
    const nlohmann::json done = read_done(done_path);
    if (done_field(done, "records") == 0) return;
    const nlohmann::json results = done_field(done, "results");
    if (!results.is_array()) {
      log_ << "[run]   results.jsonl has no records of it and " << done_path.string()
           << " keeps none (written by an older version); delete it to run the trial again\n";
      return;
    }
    int64_t line = 0;
    for (const nlohmann::json& r : results)
      append_result(results_path, result_from_json(r, done_path.string() + " results", ++line));
    recorded_trials_->insert(key);
    log_ << "[run]   " << line << " records restored to results.jsonl from " << done_path.string()
         << "\n";
  }

  // Whether stages/<name> is finished: its DONE exists and the model directory it names
  // (relative to the stage directory, or absolute) is still there.
  bool stage_complete(const std::string& name) const {
    const fs::path sdir = dir_ / "stages" / name;
    std::ifstream in(sdir / kDone);
    if (!in) return false;
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    // An unreadable DONE counts as finished: shared_stage reports it, naming the file.
    if (!j.is_object() || !j.contains("output") || !j["output"].is_object()) return true;
    const nlohmann::json& model = j["output"].value("model_dir", nlohmann::json());
    if (!model.is_string() || model.get<std::string>().empty()) return true;
    const fs::path m = model.get<std::string>();
    return fs::exists(m.is_relative() ? sdir / m : m);
  }

  void run_trial(size_t index) {
    const Trial& trial = spec_.trials[index];
    const fs::path tdir = dir_ / "trials" / trial_dir_name(trial.id);
    const std::string label = "trial " + std::to_string(index + 1) + "/" +
                              std::to_string(spec_.trials.size()) + " " + trial.id;
    const nlohmann::json signature = trial_signature(trial);
    if (finished_at_.count(trial.id)) {  // its DONE has this signature
      log_ << "[run] " << label << ": done, skipped\n";
      ++skipped_;
      try {
        restore_records(trial.id, tdir / kDone);
      } catch (const std::exception& e) {
        log_ << "[run]   cannot restore its records: " << e.what() << "\n";
      }
      return;
    }
    if (fs::exists(tdir / kDone)) {
      // Same id, other settings (an edited spec or --set) or newer code: run it again; its
      // new results supersede the old lines in results.jsonl.
      log_ << "[run] " << label << ": " << rerun_reason(trial, read_done(tdir / kDone))
           << ", running again\n";
      fs::remove(tdir / kDone);
    }
    log_ << "[run] " << label << "\n";
    log_.flush();
    try {
      fs::create_directories(tdir);
      std::vector<ResultRecord> records;
      std::map<std::string, double> seconds;
      std::string model_dir;   // where the next stage starts
      std::string base_model;  // what the tune stage started from (eval loads it again)
      std::vector<std::string> tuned_dirs;
      const bool has_downstream = trial.has(StageKind::tune) || trial.has(StageKind::eval);
      for (StageKind kind : trial.stage_order()) {
        // Ctrl-C that came after a trainer's last step (or in a stage without one).
        if (interrupt_requested())
          throw Interrupted(str_cat("[run] interrupted before the ", stage_kind_name(kind),
                                    " stage of ", label, "; run the same command again to resume"));
        StageRequest req;
        req.spec = &spec_;
        req.trial = &trial;
        req.kind = kind;
        req.log = &log_;
        req.run_dir = dir_.string();
        if (kind == StageKind::pretrain || kind == StageKind::lm_adapt) {
          req.model_dir = model_dir;
          const CachedStage& s = shared_stage(kind, trial.stage_hash(kind), req);
          model_dir = s.output.model_dir;
          // Shared stages are timed once, in the report's shared-stages table; a trial's
          // own timings count only when it has nothing after them.
          if (!has_downstream) {
            for (const ResultRecord& r : s.output.records) records.push_back(r);
            seconds[stage_kind_name(kind)] = s.seconds;
          }
        } else if (kind == StageKind::tune) {
          base_model = model_dir;
          const std::vector<TuneStage> members =
              trial.ensemble.empty() ? std::vector<TuneStage>{*trial.tune} : trial.ensemble;
          for (size_t m = 0; m < members.size(); ++m) {
            req.tune = &members[m];
            req.model_dir = base_model;
            const CachedStage& s = shared_stage(kind, members[m].hash, req);
            tuned_dirs.push_back(s.output.model_dir);
            // An ensemble's tuning time is its members' together; its records are member 0's.
            seconds["tune"] += s.seconds;
            if (m == 0)
              for (const ResultRecord& r : s.output.records) records.push_back(r);
          }
        } else {
          req.dir = (tdir / "eval").string();
          fs::create_directories(req.dir);
          req.model_dir = trial.has(StageKind::tune) ? base_model : model_dir;
          req.tuned_dirs = tuned_dirs;
          log_ << "[run]   eval -> " << fs::relative(req.dir, dir_).string() << "\n";
          log_.flush();
          const auto t0 = std::chrono::steady_clock::now();
          StageOutput out = executor_.run(req);
          seconds["eval"] = seconds_since(t0);
          for (ResultRecord& r : out.records) records.push_back(std::move(r));
          log_ << "[run]   eval done in " << seconds["eval"] << " s\n";
        }
      }
      const nlohmann::json point = point_of(spec_, trial);
      const std::string now = utc_timestamp();
      for (ResultRecord& r : records) {
        r.trial = trial.id;
        r.point = point;
        r.seed = static_cast<int64_t>(trial.seed);
        r.seconds = seconds;
        r.finished = now;
        append_result((dir_ / "results.jsonl").string(), r);
        log_ << "[run]   " << r.stage << " " << r.task << (r.split.empty() ? "" : "/") << r.split
             << ":";
        for (const auto& [k, v] : r.metrics) log_ << " " << k << "=" << v;
        log_ << "\n";
      }
      // The records once more, so that a results.jsonl deleted or lost can be refilled.
      nlohmann::json results = nlohmann::json::array();
      for (const ResultRecord& r : records) results.push_back(to_json(r));
      nlohmann::json done = {{"trial", trial.id},   {"seconds", seconds},
                             {"finished", now},     {"records", records.size()},
                             {"stages", signature}, {"code_versions", trial_code_versions(trial)},
                             {"results", results}};
      write_file_atomic((tdir / kDone).string(), done.dump(2) + "\n", "[run]");
      finished_at_[trial.id] = now;
    } catch (const Interrupted&) {
      throw;  // not a failure of the trial: the whole run stops
    } catch (const std::exception& e) {
      log_ << "[run] " << label << " FAILED: " << error_text(e) << "\n";
      failures_.push_back(trial.id + ": " + error_text(e));
      write_failures();
    }
    try {
      write_reports_now();
    } catch (const std::exception& e) {
      log_ << "[run] could not write the reports: " << e.what() << "\n";
    }
    log_.flush();
  }

  // Runs (or finds finished) the stage kind with configuration hash hash; the same
  // StageOutput for every trial that needs it.
  const CachedStage& shared_stage(StageKind kind, const std::string& hash, StageRequest req) {
    const std::string name = std::string(stage_kind_name(kind)) + "-" + hash;
    if (auto it = cache_.find(name); it != cache_.end()) {
      log_ << "[run]   " << stage_kind_name(kind) << " stages/" << name << ": cached\n";
      return it->second;
    }
    if (auto it = failed_.find(name); it != failed_.end())
      fail(str_cat("[run] stage stages/", name, " failed earlier in this run: ", it->second));
    const fs::path sdir = dir_ / "stages" / name;
    CachedStage stage;
    if (fs::exists(sdir / kDone) && !stage_complete(name)) {
      // Finished once, but its model is gone: run it again (a trainer that finished re-exports
      // its model from the last checkpoint without training).
      log_ << "[run]   " << stage_kind_name(kind) << " stages/" << name
           << ": its model directory is missing, running it again\n";
      fs::remove(sdir / kDone);
    }
    if (fs::exists(sdir / kDone)) {
      const std::string source = (sdir / kDone).string();
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(source, "[run]"));
      } catch (const nlohmann::json::exception& e) {
        fail(str_cat("[run] ", source, " is not JSON (", parse_error_text(e),
                     "): delete the directory to rerun the stage"));
      }
      stage.output = stage_output_from_json(j.value("output", nlohmann::json::object()), source);
      stage.seconds = j.value("seconds", 0.0);
      log_ << "[run]   " << stage_kind_name(kind) << " stages/" << name << ": done earlier\n";
    } else {
      fs::create_directories(sdir);
      req.dir = sdir.string();
      log_ << "[run]   " << stage_kind_name(kind) << " -> stages/" << name
           << (fs::is_empty(sdir) ? "" : " (resuming)") << "\n";
      log_.flush();
      const auto t0 = std::chrono::steady_clock::now();
      try {
        stage.output = executor_.run(req);
      } catch (const Interrupted&) {
        throw;
      } catch (const std::exception& e) {
        failed_[name] = error_text(e);
        throw;
      }
      // A stage resumed from a checkpoint counts the processes before this one too.
      stage.seconds = seconds_since(t0) + stage.output.info.value("earlier_seconds", 0.0);
      // Stored relative to the stage directory, so a run directory can be moved.
      if (!stage.output.model_dir.empty()) {
        const fs::path m = fs::absolute(stage.output.model_dir);
        const fs::path rel = m.lexically_relative(fs::absolute(sdir));
        if (!rel.empty() && !rel.string().starts_with("..")) stage.output.model_dir = rel.string();
      }
      const nlohmann::json done = {{"kind", stage_kind_name(kind)},
                                   {"hash", hash},
                                   {"code_version", stage_code_version(kind)},
                                   {"seconds", stage.seconds},
                                   {"finished", utc_timestamp()},
                                   {"output", stage_output_json(stage.output)}};
      write_file_atomic((sdir / kDone).string(), done.dump(2) + "\n", "[run]");
      log_ << "[run]   " << stage_kind_name(kind) << " stages/" << name << " done in "
           << stage.seconds << " s\n";
    }
    if (!stage.output.model_dir.empty() && fs::path(stage.output.model_dir).is_relative())
      stage.output.model_dir = (sdir / stage.output.model_dir).string();
    return cache_[name] = std::move(stage);
  }

  ReportContext report_context() const {
    ReportContext c;
    c.name = spec_.name;
    c.description = spec_.description;
    c.config_text = spec_.resolved.is_null() ? "" : spec_.resolved.dump(2);
    c.preferred_x = spec_.plot_x;  // sweep.x; else the first swept key
    c.sweep_groups = spec_.sweep_groups;
    for (const std::string& k : spec_.sweep_keys)
      if (c.preferred_x.empty() && !is_seed_key(k)) {
        c.preferred_x = k;
        break;
      }
    std::set<std::string> listed;
    for (const Trial& t : spec_.trials) {
      for (const auto& [key, value] : visible_point(spec_, t)) {
        auto& values = c.sweep_values[key];
        const nlohmann::json v = typed_value(value);
        if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
      }
      for (StageKind kind : {StageKind::pretrain, StageKind::lm_adapt}) {
        if (!t.has(kind)) continue;
        const std::string name = std::string(stage_kind_name(kind)) + "-" + t.stage_hash(kind);
        if (!listed.insert(name).second) continue;
        SharedStageInfo info;
        info.name = stage_kind_name(kind);
        info.kind = stage_kind_name(kind);
        info.dir = "stages/" + name;
        const fs::path done = dir_ / "stages" / name / kDone;
        if (fs::exists(done)) {
          info.done = true;
          try {  // the report's timing only: an unreadable DONE shows no time
            info.seconds =
                nlohmann::json::parse(read_file(done.string(), "[run]")).value("seconds", 0.0);
          } catch (const std::exception&) {
          }
        }
        c.shared_stages.push_back(info);
        c.curves.push_back(
            {info.kind, upstream_label(spec_, t, kind), info.dir + "/metrics.jsonl"});
      }
      if (t.has(StageKind::tune)) {
        const std::string name = std::string("tune-") + t.stage_hash(StageKind::tune);
        if (listed.insert(name).second)
          c.curves.push_back(
              {"tune " + t.tune->task.name, t.id, "stages/" + name + "/metrics.jsonl"});
      }
    }
    c.trials_total = static_cast<int64_t>(spec_.trials.size());
    for (const Trial& t : spec_.trials) c.trials.push_back(t.id);
    c.trial_finished = finished_at_;
    c.failures = failures_;
    return c;
  }

  void write_reports_now() { write_reports(dir_.string(), report_context()); }

  void write_failures() {
    const fs::path path = dir_ / "failures.txt";
    if (failures_.empty()) {
      std::error_code ec;
      fs::remove(path, ec);
      return;
    }
    std::string text;
    for (const std::string& f : failures_) text += f + "\n";
    write_file_atomic(path.string(), text, "[run]");
  }

  const ExperimentSpec& spec_;
  const RunOptions& options_;
  StageExecutor& executor_;
  fs::path dir_;
  std::ostream& log_;
  std::map<std::string, CachedStage> cache_;
  std::map<std::string, std::string> failed_;
  std::vector<std::string> failures_;
  // Trial id -> the "finished" time of its DONE, for the trials whose DONE matches their
  // current signature: their records with that time are the current results.
  std::map<std::string, std::string> finished_at_;
  size_t skipped_ = 0;
  // The trials results.jsonl has records of; read at the first skipped trial.
  std::optional<std::set<std::string>> recorded_trials_;  // "trial\nfinished" of each record
};

}  // namespace

constexpr size_t kMaxTrialDirName = 200;

std::string run_directory(const ExperimentSpec& spec, const RunOptions& options) {
  if (!options.out_dir.empty()) return options.out_dir;
  SP_CHECK(!spec.name.empty(), "[run] the spec has no name: give --out DIR");
  return (fs::path("runs") / spec.name).string();
}

std::string trial_dir_name(const std::string& trial_id) {
  std::string out;
  for (char c : trial_id) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) ||
                    std::string_view("._=,+-").find(c) != std::string_view::npos;
    out += ok ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "trial" + out;
  // File systems cap a name at 255 bytes: a longer id (long swept values) keeps its start
  // and a hash of the whole id.
  if (out.size() > kMaxTrialDirName)
    out = out.substr(0, kMaxTrialDirName - 17) + "~" + sha256_hex(trial_id).substr(0, 16);
  return out;
}

int run_experiment(const ExperimentSpec& spec, const RunOptions& options, StageExecutor& executor) {
  return Runner(spec, options, executor).run();
}

int run_experiment(const ExperimentSpec& spec, const RunOptions& options) {
  std::unique_ptr<StageExecutor> executor = make_default_executor();
  return run_experiment(spec, options, *executor);
}

nlohmann::json stage_output_json(const StageOutput& out) {
  nlohmann::json records = nlohmann::json::array();
  for (const ResultRecord& r : out.records) records.push_back(to_json(r));
  return {{"model_dir", out.model_dir}, {"records", records}, {"info", out.info}};
}

StageOutput stage_output_from_json(const nlohmann::json& j, const std::string& source) {
  SP_CHECK(j.is_object(), "[run] ", source, ": \"output\" must be an object");
  StageOutput out;
  out.model_dir = j.value("model_dir", std::string());
  if (auto it = j.find("records"); it != j.end() && it->is_array())
    for (size_t i = 0; i < it->size(); ++i)
      out.records.push_back(result_from_json((*it)[i], source, static_cast<int64_t>(i + 1)));
  out.info = j.value("info", nlohmann::json::object());
  return out;
}

}  // namespace sp
