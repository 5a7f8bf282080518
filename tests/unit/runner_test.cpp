// The runner's orchestration with a fake executor: shared stages run once (keyed by their
// hash), finished trials are skipped on rerun, an interrupted trial resumes in its stage
// directory, results.jsonl is only appended to, and the reports are written.
#include "experiments/runner/runner.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "experiments/report/results.h"
#include "experiments/runner/evaluation.h"
#include "experiments/runner/model_loading.h"
#include "experiments/runner/stage_executor.h"
#include "experiments/spec/spec.h"
#include "experiments/training/interrupt.h"
#include "experiments/training/optimizer_factory.h"
#include "models/io/safetensors.h"
#include "models/t5/checkpoint.h"
#include "models/tokenizer/t5_tokenizer.h"
#include "models/tokenizer/train_vocab.h"
#include "temp_dir.h"
#include "tensor/error.h"
#include "test_util.h"
#include "tiny_t5.h"

namespace sp {
namespace {

namespace fs = std::filesystem;

// lengths x seeds trials sharing one pretrain and one lm_adapt stage; ensemble > 1 gives
// each trial members with seeds seed .. seed + ensemble - 1 (shared between trials).
ExperimentSpec make_spec(std::vector<int> lengths, std::vector<int> seeds, int ensemble = 1) {
  ExperimentSpec spec;
  spec.name = "fake";
  spec.sweep_keys = {"peft.length", "seed"};
  spec.resolved = {{"name", "fake"}};
  for (int length : lengths)
    for (int seed : seeds) {
      Trial t;
      t.id = "length=" + std::to_string(length) + ",seed=" + std::to_string(seed);
      t.sweep_point = {{"peft.length", std::to_string(length)}, {"seed", std::to_string(seed)}};
      t.seed = seed;
      t.model.preset = "tiny";
      t.pretrain.emplace();
      t.pretrain->hash = "p0";
      t.lm_adapt.emplace();
      t.lm_adapt->hash = "l0";
      auto tune_for = [&](int s) {
        TuneStage ts;
        ts.seed = s;
        ts.task.name = "fake_task";
        ts.peft.settings = {{"length", length}};
        ts.hash = "t" + std::to_string(length) + "s" + std::to_string(s);
        return ts;
      };
      t.tune = tune_for(seed);
      t.eval.emplace();
      t.eval->hash = "e" + t.tune->hash;
      if (ensemble > 1) {
        t.eval->ensemble = ensemble;
        for (int m = 0; m < ensemble; ++m) t.ensemble.push_back(tune_for(seed + m));
      }
      spec.trials.push_back(t);
    }
  return spec;
}

// Counts stage runs; can fail a chosen tune stage once, after leaving a "checkpoint".
class FakeExecutor : public StageExecutor {
 public:
  std::map<std::string, int> calls;  // "<kind>:<hash or trial>" -> runs
  std::string fail_tune_hash;
  bool fail_with_bad_alloc = false;  // fail_tune_hash fails as an absurd std::vector would
  std::string interrupt_tune_hash;   // throws Interrupted as a trainer stopped by Ctrl-C
  std::vector<std::string> resumed;  // tune hashes that found an earlier attempt's checkpoint
  std::vector<std::vector<std::string>> eval_inputs;

  StageOutput run(const StageRequest& r) override {
    StageOutput out;
    const std::string kind = stage_kind_name(r.kind);
    if (r.kind == StageKind::pretrain || r.kind == StageKind::lm_adapt) {
      ++calls[kind + ":" + r.trial->stage_hash(r.kind)];
      // Each stage starts where the one before ended.
      EXPECT_EQ(r.model_dir.empty(), r.kind == StageKind::pretrain) << r.model_dir;
      fs::create_directories(fs::path(r.dir) / "model");
      out.model_dir = (fs::path(r.dir) / "model").string();
    } else if (r.kind == StageKind::tune) {
      ++calls["tune:" + r.tune->hash];
      EXPECT_TRUE(r.model_dir.ends_with("stages/lm_adapt-l0/model")) << r.model_dir;
      const fs::path ckpt = fs::path(r.dir) / "checkpoint";
      if (fs::exists(ckpt)) {
        resumed.push_back(r.tune->hash);
        out.info["earlier_seconds"] = 1000.0;  // as a trainer reports a resumed run's past
      }
      std::ofstream(ckpt) << "step 5\n";
      if (r.tune->hash == interrupt_tune_hash) throw Interrupted("[trainer] interrupted at step 5");
      if (r.tune->hash == fail_tune_hash) {
        fail_tune_hash.clear();
        if (fail_with_bad_alloc) throw std::bad_alloc();
        throw Error("[trainer] killed at step 5");
      }
      fs::create_directories(fs::path(r.dir) / "prompt");
      out.model_dir = (fs::path(r.dir) / "prompt").string();
      ResultRecord rec;
      rec.stage = "tune";
      rec.task = "fake_task";
      rec.split = "validation";
      rec.metrics = {{"accuracy", r.tune->peft.settings["length"].get<int>() * 10.0 +
                                      static_cast<double>(r.tune->seed)}};
      rec.trainable_params = r.tune->peft.settings["length"].get<int>() * 8;
      rec.total_params = 1000;
      out.records.push_back(rec);
    } else {
      ++calls["eval:" + r.trial->id];
      eval_inputs.push_back(r.tuned_dirs);
      ResultRecord rec;
      rec.stage = "eval";
      rec.task = "fake_task";
      rec.split = "validation";
      rec.metrics = {{"accuracy", 1.0 * r.tuned_dirs.size()}};
      out.records.push_back(rec);
    }
    return out;
  }
};

// An output directory and the log of run_experiment, for the runner tests.
struct RunDir {
  TempDir dir;
  std::ostringstream log;
  RunOptions options() {
    RunOptions o;
    o.out_dir = dir.path.string();
    o.log = &log;
    return o;
  }
};

// Runs spec with the real executor into out_dir; a failed run fails the test with its log.
void run_with_executor(const ExperimentSpec& spec, const std::string& out_dir) {
  RunOptions o;
  o.out_dir = out_dir;
  std::ostringstream log;
  o.log = &log;
  ASSERT_EQ(run_experiment(spec, o), 0) << log.str();
}

int total_calls(const FakeExecutor& e, const std::string& prefix) {
  int n = 0;
  for (const auto& [k, v] : e.calls)
    if (k.starts_with(prefix)) n += v;
  return n;
}

TEST(Runner, SharedStagesRunOnceAndReportsAreWritten) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1, 2});
  FakeExecutor exec;
  const RunOptions o = run.options();
  EXPECT_EQ(run_experiment(spec, o, exec), 0) << run.log.str();
  EXPECT_EQ(exec.calls["pretrain:p0"], 1);
  EXPECT_EQ(exec.calls["lm_adapt:l0"], 1);
  EXPECT_EQ(total_calls(exec, "tune:"), 4);
  EXPECT_EQ(total_calls(exec, "eval:"), 4);
  EXPECT_TRUE(fs::exists(run.dir.path / "stages/pretrain-p0/DONE"));
  EXPECT_TRUE(fs::exists(run.dir.path / "stages/tune-t5s2/DONE"));
  EXPECT_TRUE(fs::exists(run.dir.path / "trials/length=5,seed=2/DONE"));
  const std::vector<ResultRecord> results = read_results((run.dir.path / "results.jsonl").string());
  ASSERT_EQ(results.size(), 8u);  // a tune and an eval line per trial
  EXPECT_EQ(results[0].trial, "length=1,seed=1");
  EXPECT_EQ(results[0].point, (nlohmann::json{{"peft.length", 1}}));  // the seed apart, typed
  EXPECT_EQ(results[0].seed, 1);
  EXPECT_DOUBLE_EQ(results[2].metrics.at("accuracy"), 12);
  EXPECT_TRUE(results[0].seconds.count("tune"));
  EXPECT_TRUE(results[1].seconds.count("eval"));
  EXPECT_NE(
      read_text(run.dir.path / "summary.csv").find("tune,fake_task,validation,5,accuracy,51.5,"),
      std::string::npos)
      << read_text(run.dir.path / "summary.csv");
  EXPECT_TRUE(fs::exists(run.dir.path / "tune-fake_task-validation-accuracy.svg"));
  EXPECT_NE(read_text(run.dir.path / "report.md").find("4 of 4 trials"), std::string::npos);
  EXPECT_NE(run.log.str().find("report: " + (run.dir.path / "report.md").string()),
            std::string::npos);
  EXPECT_NE(run.log.str().find("pretrain stages/pretrain-p0: cached"), std::string::npos);
}

// The tune seed (sweep.seeds, or a swept stages.tune.seed) is what repeats a point; a
// swept pretraining seed makes another point.
TEST(Runner, OnlyTheTuneSeedIsFoldedIntoRepeats) {
  RunDir run;
  ExperimentSpec spec = make_spec({1}, {1, 2});
  spec.sweep_keys.push_back("stages.pretrain.seed");
  spec.sweep_keys.push_back("stages.tune.seed");
  for (Trial& t : spec.trials) {
    t.sweep_point.emplace_back("stages.pretrain.seed", std::to_string(t.seed + 10));
    t.sweep_point.emplace_back("stages.tune.seed", std::to_string(t.seed));
  }
  FakeExecutor exec;
  ASSERT_EQ(run_experiment(spec, run.options(), exec), 0) << run.log.str();
  const std::vector<ResultRecord> results = read_results((run.dir.path / "results.jsonl").string());
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[0].point, (nlohmann::json{{"peft.length", 1}, {"stages.pretrain.seed", 11}}));
  EXPECT_EQ(results[2].point, (nlohmann::json{{"peft.length", 1}, {"stages.pretrain.seed", 12}}));
}

TEST(Runner, ReportsOnlyWithoutResultsFailsAndCreatesNothing) {
  TempDir dir;
  const fs::path out = dir.path / "new";
  FakeExecutor exec;
  std::ostringstream log;
  RunOptions o;
  o.out_dir = out.string();
  o.reports_only = true;
  o.log = &log;
  EXPECT_THROW_MSG(
      run_experiment(make_spec({1}, {1}), o, exec),
      "[run] --reports-only: nothing to report in " + out.string() + " (no results.jsonl)");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(exec.calls.empty());
}

TEST(Runner, RerunSkipsFinishedTrialsAndStagesWithoutTouchingResults) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  const std::string before = read_text(run.dir.path / "results.jsonl");
  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0);
  EXPECT_TRUE(second.calls.empty());
  EXPECT_EQ(read_text(run.dir.path / "results.jsonl"), before);
  EXPECT_NE(run.log.str().find("trial 2/2 length=5,seed=1: done, skipped"), std::string::npos);

  // A new trial in the same directory reuses the finished shared stages from disk.
  const ExperimentSpec bigger = make_spec({1, 5, 20}, {1});
  FakeExecutor third;
  EXPECT_EQ(run_experiment(bigger, o, third), 0);
  EXPECT_EQ(third.calls.size(), 2u);
  EXPECT_EQ(third.calls["tune:t20s1"], 1);
  EXPECT_EQ(third.calls["eval:length=20,seed=1"], 1);
  EXPECT_TRUE(read_text(run.dir.path / "results.jsonl").starts_with(before));
  EXPECT_EQ(read_results((run.dir.path / "results.jsonl").string()).size(), 6u);
}

TEST(Runner, ReportsCoverOnlyTheSpecsTrials) {
  RunDir run;
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(make_spec({1, 5, 20}, {1}), o, first), 0);
  const std::string before = read_text(run.dir.path / "results.jsonl");
  // A smaller sweep in the same directory: the reports leave length=20 out, the file keeps it.
  FakeExecutor second;
  ASSERT_EQ(run_experiment(make_spec({1, 5}, {1}), o, second), 0);
  EXPECT_EQ(read_text(run.dir.path / "results.jsonl"), before);
  const std::string md = read_text(run.dir.path / "report.md");
  EXPECT_NE(md.find("4 records; 2 of 2 trials with results; the records of 1 trial not in this "
                    "spec are left out of the report)"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("length=20"), std::string::npos);
  const std::string csv = read_text(run.dir.path / "summary.csv");
  EXPECT_NE(csv.find("tune,fake_task,validation,5,accuracy,"), std::string::npos) << csv;
  EXPECT_EQ(csv.find("tune,fake_task,validation,20,accuracy,"), std::string::npos) << csv;
}

TEST(Runner, ADeletedResultsFileIsRefilledFromTheFinishedTrials) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1, 2});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  const fs::path results = run.dir.path / "results.jsonl";
  const std::vector<ResultRecord> before = read_results(results.string());
  ASSERT_EQ(before.size(), 8u);
  const std::string summary = read_text(run.dir.path / "summary.csv");

  fs::remove(results);
  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0);
  EXPECT_TRUE(second.calls.empty());  // nothing ran again
  const std::vector<ResultRecord> after = read_results(results.string());
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(to_json(after[i]), to_json(before[i])) << i;
  EXPECT_EQ(read_text(run.dir.path / "summary.csv"), summary);
  EXPECT_NE(run.log.str().find("2 records restored to results.jsonl"), std::string::npos);

  // A file that still has the trials is left as it is.
  const std::string full = read_text(results);
  FakeExecutor third;
  EXPECT_EQ(run_experiment(spec, o, third), 0);
  EXPECT_EQ(read_text(results), full);
}

// A results.jsonl put back from before the trials last ran holds their stale records only:
// the current ones come back from the DONE markers (the reports leave stale ones out).
TEST(Runner, AnOlderResultsFileGetsTheCurrentRecordsBack) {
  RunDir run;
  ExperimentSpec spec = make_spec({1, 5}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  const fs::path results = run.dir.path / "results.jsonl";
  const std::string old_copy = read_text(results);
  for (Trial& t : spec.trials) t.eval->hash += "-changed";
  FakeExecutor second;
  ASSERT_EQ(run_experiment(spec, o, second), 0);
  const size_t current = read_results(results.string()).size();
  const std::string summary = read_text(run.dir.path / "summary.csv");

  std::ofstream(results, std::ios::trunc) << old_copy;
  FakeExecutor third;
  EXPECT_EQ(run_experiment(spec, o, third), 0);
  EXPECT_TRUE(third.calls.empty());
  EXPECT_EQ(read_results(results.string()).size(), current);
  EXPECT_EQ(read_text(run.dir.path / "summary.csv"), summary);
}

TEST(Runner, ATrialFinishedWithOtherSettingsRunsAgain) {
  RunDir run;
  ExperimentSpec spec = make_spec({1, 5}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  // The same trial ids with another eval configuration (e.g. --set on an eval key).
  for (Trial& t : spec.trials) t.eval->hash += "-changed";
  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0);
  EXPECT_EQ(total_calls(second, "tune:"), 0);  // the tune stages are cached by hash
  EXPECT_EQ(total_calls(second, "eval:"), 2);
  EXPECT_NE(run.log.str().find("length=5,seed=1: finished with other settings, running again"),
            std::string::npos);
  FakeExecutor third;  // and now they are done with these settings
  EXPECT_EQ(run_experiment(spec, o, third), 0);
  EXPECT_TRUE(third.calls.empty());
}

// A trial finished by earlier code (its DONE records older stage code versions, or none,
// and the hashes that carried them) runs again, and the log says which stages changed.
TEST(Runner, ATrialFinishedByEarlierCodeRunsAgainAndSaysWhy) {
  RunDir run;
  ExperimentSpec spec = make_spec({1, 5}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  auto edit_done = [&](const std::string& trial, auto&& edit) {
    const fs::path done = run.dir.path / "trials" / trial / "DONE";
    nlohmann::json j = nlohmann::json::parse(read_text(done));
    EXPECT_EQ(j["code_versions"]["tune"], stage_code_version(StageKind::tune));
    edit(j);
    std::ofstream(done) << j.dump(2);
  };
  edit_done("length=1,seed=1", [](nlohmann::json& j) { j["code_versions"]["tune"] = 0; });
  edit_done("length=5,seed=1", [](nlohmann::json& j) { j.erase("code_versions"); });
  // The hashes that the newer versions give (here: made up, as make_spec's are).
  for (Trial& t : spec.trials) {
    t.tune->hash += "-v";
    t.eval->hash += "-v";
  }
  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0);
  EXPECT_EQ(total_calls(second, "tune:"), 2);
  const std::string log = run.log.str();
  EXPECT_NE(log.find("length=1,seed=1: finished by earlier code (stage code versions tune 0 -> " +
                     std::to_string(stage_code_version(StageKind::tune)) + "), running again"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("length=5,seed=1: finished by code from before stage code versions, "
                     "running again"),
            std::string::npos)
      << log;
  EXPECT_EQ(nlohmann::json::parse(read_text(run.dir.path / "stages/tune-t1s1-v/DONE"))
                .value("code_version", 0),
            stage_code_version(StageKind::tune));
}

// A trial run again with other settings that then fails keeps its old records in
// results.jsonl (the file is append-only), but the reports leave them out: they are not
// results of the spec as it is now.
TEST(Runner, ReportsLeaveOutTheRecordsOfATrialsEarlierSettings) {
  RunDir run;
  ExperimentSpec spec = make_spec({1, 5}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  EXPECT_NE(read_text(run.dir.path / "summary.csv").find("tune,fake_task,validation,1,"),
            std::string::npos);
  spec.trials[0].tune->hash += "-edited";  // length=1: other tune settings, which fail
  spec.trials[0].eval->hash += "-edited";
  FakeExecutor second;
  second.fail_tune_hash = spec.trials[0].tune->hash;
  EXPECT_EQ(run_experiment(spec, o, second), 1);
  EXPECT_EQ(read_results((run.dir.path / "results.jsonl").string()).size(), 4u);
  const std::string summary = read_text(run.dir.path / "summary.csv");
  EXPECT_EQ(summary.find("tune,fake_task,validation,1,"), std::string::npos) << summary;
  EXPECT_NE(summary.find("tune,fake_task,validation,5,"), std::string::npos) << summary;
  const std::string report = read_text(run.dir.path / "report.md");
  EXPECT_NE(report.find("1 of 2 trials with results, 1 failed; 2 records of earlier runs of its "
                        "trials, with other settings or code, are left out"),
            std::string::npos)
      << report;
  // Once it succeeds, its new records are the ones reported.
  FakeExecutor third;
  EXPECT_EQ(run_experiment(spec, o, third), 0);
  EXPECT_NE(read_text(run.dir.path / "summary.csv").find("tune,fake_task,validation,1,"),
            std::string::npos);
  const std::string report_after = read_text(run.dir.path / "report.md");
  EXPECT_NE(report_after.find("2 of 2 trials with results"), std::string::npos) << report_after;
  EXPECT_EQ(report_after.find("earlier runs"), std::string::npos) << report_after;
}

// std::bad_alloc's own message names nothing: the log and failures.txt say what it means.
TEST(Runner, AnOutOfMemoryTrialSaysWhatBadAllocMeans) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1});
  FakeExecutor executor;
  executor.fail_tune_hash = "t5s1";
  executor.fail_with_bad_alloc = true;
  EXPECT_EQ(run_experiment(spec, run.options(), executor), 1);
  EXPECT_NE(run.log.str().find("length=5,seed=1 FAILED: out of host memory (std::bad_alloc): a "
                               "size asked for"),
            std::string::npos)
      << run.log.str();
  EXPECT_NE(read_text(run.dir.path / "failures.txt").find("out of host memory"), std::string::npos);
}

// Ctrl-C is not a failed trial: the run stops there (no later trial runs, nothing goes to
// failures.txt) and the Interrupted error reaches the caller, which exits 130.
TEST(Runner, CtrlCStopsTheWholeRunWithoutAFailure) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1, 2});
  FakeExecutor first;
  first.interrupt_tune_hash = "t1s2";
  EXPECT_THROW_MSG(run_experiment(spec, run.options(), first), "[trainer] interrupted at step 5");
  EXPECT_EQ(total_calls(first, "tune:"), 2);  // t1s1, then t1s2 stopped; t5s* never started
  EXPECT_FALSE(fs::exists(run.dir.path / "failures.txt"));
  FakeExecutor second;  // the rerun resumes the interrupted stage and runs the rest
  EXPECT_EQ(run_experiment(spec, run.options(), second), 0);
  EXPECT_EQ(second.resumed, std::vector<std::string>{"t1s2"});
  EXPECT_EQ(total_calls(second, "tune:"), 3);
}

TEST(Runner, InterruptedTrialFailsAloneAndResumesOnRerun) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1, 5}, {1, 2});
  const RunOptions o = run.options();
  FakeExecutor first;
  first.fail_tune_hash = "t1s2";
  EXPECT_EQ(run_experiment(spec, o, first), 1);
  EXPECT_EQ(total_calls(first, "tune:"), 4);  // the other trials still ran
  EXPECT_NE(
      read_text(run.dir.path / "failures.txt").find("length=1,seed=2: [trainer] killed at step 5"),
      std::string::npos);
  EXPECT_FALSE(fs::exists(run.dir.path / "stages/tune-t1s2/DONE"));
  EXPECT_FALSE(fs::exists(run.dir.path / "trials/length=1,seed=2/DONE"));
  EXPECT_NE(read_text(run.dir.path / "report.md").find("## Failures"), std::string::npos);
  {  // --reports-only rewrites the report from the files, failures.txt included
    fs::remove(run.dir.path / "report.md");
    RunOptions reports = o;
    reports.reports_only = true;
    FakeExecutor none;
    EXPECT_EQ(run_experiment(spec, reports, none), 0);
    EXPECT_TRUE(none.calls.empty());
    const std::string report = read_text(run.dir.path / "report.md");
    EXPECT_NE(report.find("3 of 4 trials with results, 1 failed"), std::string::npos) << report;
    EXPECT_NE(report.find("## Failures\n\n- length=1,seed=2: [trainer] killed at step 5\n"),
              std::string::npos)
        << report;
  }
  const std::string before = read_text(run.dir.path / "results.jsonl");
  EXPECT_EQ(read_results((run.dir.path / "results.jsonl").string()).size(), 6u);

  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0);
  EXPECT_EQ(second.calls.size(), 2u);  // only the interrupted trial's tune and eval
  EXPECT_EQ(second.calls["tune:t1s2"], 1);
  EXPECT_EQ(second.resumed, (std::vector<std::string>{"t1s2"}));
  // Its time counts the attempt before this one.
  const nlohmann::json done =
      nlohmann::json::parse(read_text(run.dir.path / "stages/tune-t1s2/DONE"));
  EXPECT_GE(done["seconds"].get<double>(), 1000.0);
  EXPECT_FALSE(fs::exists(run.dir.path / "failures.txt"));
  const std::string after = read_text(run.dir.path / "results.jsonl");
  EXPECT_TRUE(after.starts_with(before));  // append-only
  EXPECT_EQ(std::count(after.begin(), after.end(), '\n'), 8);
}

// A finished stage whose model directory was removed runs again (the trainer re-exports it
// from its last checkpoint) instead of handing the next stage a path that is not there.
TEST(Runner, AFinishedStageWhoseModelIsGoneRunsAgain) {
  RunDir run;
  const ExperimentSpec spec = make_spec({1}, {1});
  const RunOptions o = run.options();
  FakeExecutor first;
  ASSERT_EQ(run_experiment(spec, o, first), 0);
  fs::remove_all(run.dir.path / "stages/lm_adapt-l0/model");
  fs::remove_all(run.dir.path / "stages/tune-t1s1/prompt");
  fs::remove_all(run.dir.path / "trials");
  FakeExecutor second;
  EXPECT_EQ(run_experiment(spec, o, second), 0) << run.log.str();
  EXPECT_EQ(second.calls["pretrain:p0"], 0);
  EXPECT_EQ(second.calls["lm_adapt:l0"], 1);
  EXPECT_EQ(second.calls["tune:t1s1"], 1);
  EXPECT_TRUE(fs::exists(run.dir.path / "stages/lm_adapt-l0/model"));
  EXPECT_TRUE(fs::exists(run.dir.path / "stages/tune-t1s1/prompt"));
  EXPECT_NE(run.log.str().find("lm_adapt stages/lm_adapt-l0: its model directory is missing, "
                               "running it again"),
            std::string::npos);
}

// sweep.hide's keys (a data_dir zipped with its task) name no trial and no plot group: they
// stay out of the result points, summary.csv and the plots' lines.
TEST(Runner, HiddenSweepKeysStayOutOfPointsAndReports) {
  RunDir run;
  ExperimentSpec spec = make_spec({1, 5}, {1, 2});
  for (Trial& t : spec.trials)
    t.sweep_point.insert(t.sweep_point.begin() + 1,
                         {"stages.tune.data_dir", "/data/" + t.sweep_point[0].second});
  const RunOptions o = run.options();
  FakeExecutor exec;
  ASSERT_EQ(run_experiment(spec, o, exec), 0) << run.log.str();
  const std::vector<ResultRecord> results = read_results((run.dir.path / "results.jsonl").string());
  ASSERT_EQ(results.size(), 8u);
  EXPECT_EQ(results[0].point, (nlohmann::json{{"peft.length", 1}}));
  const std::string csv = read_text(run.dir.path / "summary.csv");
  EXPECT_TRUE(csv.starts_with("stage,task,split,peft.length,metric,mean,std,n\n")) << csv;
  const std::string svg = read_text(run.dir.path / "tune-fake_task-validation-accuracy.svg");
  EXPECT_EQ(svg.find("data_dir"), std::string::npos) << svg;
}

TEST(Runner, EnsembleMembersAreTunedOnceAcrossTrials) {
  RunDir run;
  // Seeds 1 and 2 with 3 members each: members seeds {1,2,3} and {2,3,4} share two.
  const ExperimentSpec spec = make_spec({5}, {1, 2}, 3);
  const RunOptions o = run.options();
  FakeExecutor exec;
  ASSERT_EQ(run_experiment(spec, o, exec), 0) << run.log.str();
  EXPECT_EQ(total_calls(exec, "tune:"), 4);
  for (const auto& [k, v] : exec.calls) EXPECT_EQ(v, 1) << k;
  ASSERT_EQ(exec.eval_inputs.size(), 2u);
  ASSERT_EQ(exec.eval_inputs[1].size(), 3u);
  EXPECT_TRUE(exec.eval_inputs[1][0].ends_with("stages/tune-t5s2/prompt"));
  EXPECT_TRUE(exec.eval_inputs[1][2].ends_with("stages/tune-t5s4/prompt"));
  const auto results = read_results((run.dir.path / "results.jsonl").string());
  ASSERT_EQ(results.size(), 4u);
  EXPECT_DOUBLE_EQ(results[1].metrics.at("accuracy"), 3);  // three members reached eval
  // A tune line carries the trial's own member (seed 2), not another member's.
  EXPECT_DOUBLE_EQ(results[2].metrics.at("accuracy"), 52);
}

TEST(Runner, AMetricTheTaskDoesNotReportFailsBeforeTraining) {
  TempDir dir;
  std::ofstream(dir.path / "val.jsonl")
      << "{\"premise\": \"P\", \"hypothesis\": \"H\", \"label\": \"entailment\", \"idx\": 0}\n";
  TaskOptions o;
  o.data_dir = dir.path.string();
  const auto task = make_task("rte", o);
  const std::vector<TaskExample> val = task->load("validation");
  check_eval_metric(*task, val, "accuracy");
  EXPECT_THROW_MSG(check_eval_metric(*task, val, "acuracy"),
                   "[run] stages.tune.metric 'acuracy': task rte reports accuracy; did you mean "
                   "'accuracy'?");
  EXPECT_THROW_MSG(check_eval_metric(*task, val, "f1"), "task rte reports accuracy");
}

// What a tune stage's checkpoints record of its evaluation set: it changes with the
// split, the method, and any example's id, inputs or targets.
TEST(Runner, TheEvaluationIdentityFollowsTheSetAndTheMethod) {
  std::vector<TaskExample> val(2);
  val[0].id = "rte-validation-0", val[0].inputs = "a", val[0].targets = "entailment";
  val[1].id = "rte-validation-1", val[1].inputs = "b", val[1].targets = "not_entailment";
  const nlohmann::json id = evaluation_identity("validation", "greedy", val);
  EXPECT_EQ(id["examples"], 2);
  EXPECT_EQ(id, evaluation_identity("validation", "greedy", val));
  EXPECT_NE(id, evaluation_identity("validation", "rank_classification", val));
  EXPECT_NE(id, evaluation_identity("test", "greedy", val));
  std::vector<TaskExample> edited = val;
  edited[1].targets = "entailment";
  EXPECT_NE(id["sha256"], evaluation_identity("validation", "greedy", edited)["sha256"]);
  // Fields are separated: moving a character between two fields changes it.
  edited = val;
  edited[0].inputs = "ae", edited[0].targets = "ntailment";
  EXPECT_NE(id["sha256"], evaluation_identity("validation", "greedy", edited)["sha256"]);
  EXPECT_NE(id, evaluation_identity("validation", "greedy", {val[0]}));
}

TEST(Runner, TrialDirNamesAreSafe) {
  EXPECT_EQ(trial_dir_name("length=20,init=class_labels,seed=1"),
            "length=20,init=class_labels,seed=1");
  EXPECT_EQ(trial_dir_name("data=/x/y z"), "data=_x_y_z");
  EXPECT_EQ(trial_dir_name(".."), "trial..");
  // Past a file name's 255 bytes: the start and a hash, distinct for distinct ids.
  const std::string long_a = "note=" + std::string(300, 'x') + ",seed=1";
  const std::string long_b = "note=" + std::string(300, 'x') + ",seed=2";
  const std::string a = trial_dir_name(long_a), b = trial_dir_name(long_b);
  EXPECT_EQ(a.size(), 200u);
  EXPECT_TRUE(a.starts_with("note=xxx"));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, trial_dir_name(long_a));
  EXPECT_EQ(trial_dir_name(std::string(200, 'y')), std::string(200, 'y'));
}

// A stage's tokenizer must fit its model: a spiece.model of 1000 pieces + 100 sentinels
// next to a 128-row model would index past the embedding at the first batch.
// transformers 5 writes T5 1.1 as tie_word_embeddings: true with its own lm_head.weight,
// and hub configs say dropout_rate 0.1: a stage's model takes the checkpoint's head and the
// stage's dropout.
TEST(ModelLoading, AStageModelHasTheCheckpointsHeadAndTheStagesDropout) {
  TempDir dir;
  const std::string ckpt = (dir.path / "ckpt").string();
  fs::copy(std::string(SP_FIXTURES_DIR) + "/t5/v11_gated_gelu_untied", ckpt);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(ckpt + "/config.json"));
  ASSERT_EQ(config["dropout_rate"], 0.1);
  config["tie_word_embeddings"] = true;
  config["scale_decoder_outputs"] = false;
  std::ofstream(ckpt + "/config.json") << config.dump(2);
  ModelSpec spec;
  spec.checkpoint = ckpt;
  auto m = load_stage_model("", spec, 0.0, nullptr);
  EXPECT_FALSE(m->config().tie_word_embeddings);
  EXPECT_EQ(m->config().dropout_rate, 0.0);
  auto reference = load_t5(ckpt);
  m->eval();
  reference->eval();
  const T5Inputs in{.input_ids = Tensor::from_vector<int64_t>({5, 6, 7, 1}, Shape{1, 4}),
                    .labels = Tensor::from_vector<int64_t>({3, 4, 1}, Shape{1, 3})};
  EXPECT_EQ(m->forward(in).logits.to_vector<float>(),
            reference->forward(in).logits.to_vector<float>());
}

TEST(ModelLoading, AStageTokenizerMustFitTheModel) {
  TempDir dir;
  const fs::path ckpt = dir.path / "ckpt";
  fs::copy(std::string(SP_FIXTURES_DIR) + "/t5/v10_tied_relu", ckpt);
  const std::string spiece = std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model";
  fs::copy_file(spiece, ckpt / "spiece.model");
  ModelSpec model;
  model.checkpoint = ckpt.string();
  EXPECT_THROW_MSG(load_stage_tokenizer("", model, TokenizerSpec{}),
                   "has 1100 ids (1000 pieces + 100 sentinels) but the model " +
                       (ckpt / "config.json").string() + " has vocab_size 128");
  TokenizerSpec file;
  file.source = "file";
  file.path = spiece;
  file.extra_ids = 0;
  EXPECT_THROW_MSG(load_stage_tokenizer("", model, file), "has 1000 ids");
}

// A checkpoint with its tokenizer beside it (the fixture's 1000 pieces + 100 sentinels) and
// a small text corpus: what LM adaptation of a released checkpoint reads.
struct CheckpointAndCorpus {
  std::string checkpoint, text;
  explicit CheckpointAndCorpus(const TempDir& dir) {
    T5Config c = tiny_t5_config();
    c.vocab_size = 1152;
    T5ForConditionalGeneration model(c);
    Generator init(3);
    model.init_weights(&init);
    checkpoint = dir / "ckpt";
    save_t5(model, checkpoint);
    fs::copy_file(std::string(SP_FIXTURES_DIR) + "/tokenizer/spiece.model",
                  fs::path(checkpoint) / "spiece.model");
    std::string lines;
    for (int i = 0; i < 400; ++i)
      lines += "the cat number " + std::to_string(i) + " sees the dog and eats the bread\n";
    text = dir.write("text.txt", lines);
  }
};

std::string adapt_spec_yaml(const std::string& checkpoint, const std::string& corpus_file,
                            const std::string& more = "") {
  return "name: adapt\nmodel: {checkpoint: " + checkpoint + "}\ncorpus: {files: [" + corpus_file +
         "]}\nstages:\n  lm_adapt: {steps: 2, batch_size: 2, inputs_length: 16, log_every: 1" +
         more + "}\n";
}

// tokenizer.source defaults to the checkpoint's: the corpus then trains no vocabulary, and
// LM adaptation must still run (Figure 3(d) adapts the released checkpoints).
TEST(RunnerExecutor, LmAdaptsACheckpointWithItsOwnTokenizer) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  const ExperimentSpec spec =
      parse_spec(adapt_spec_yaml(in.checkpoint, in.text), dir / "adapt.yaml");
  ASSERT_NO_FATAL_FAILURE(run_with_executor(spec, dir / "run"));
  const auto results = read_results(dir / "run/results.jsonl");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].stage, "lm_adapt");
  EXPECT_EQ(results[0].step, 2);
  // The corpus directory holds the checkpoint's tokenizer, byte for byte.
  bool found = false;
  for (const auto& e : fs::directory_iterator(dir.path / "run/stages"))
    if (e.path().filename().string().starts_with("corpus-")) {
      found = true;
      EXPECT_EQ(read_text(e.path() / "spiece.model"),
                read_text(fs::path(in.checkpoint) / "spiece.model"));
    }
  EXPECT_TRUE(found);
}

// tokenizer.source: file wins over the checkpoint's own spiece.model: the adapted model is
// trained and exported with the file.
TEST(RunnerExecutor, LmAdaptationUsesTheSpecsTokenizerFile) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  VocabTrainingOptions v;
  v.vocab_size = 200;
  v.hard_vocab_limit = false;
  const std::string other = (dir.path / "other.model").string();
  train_vocab({in.text}, other, v);
  const ExperimentSpec spec = parse_spec(
      adapt_spec_yaml(in.checkpoint, in.text) + "tokenizer: {source: file, path: " + other + "}\n",
      dir / "adapt.yaml");
  ASSERT_NO_FATAL_FAILURE(run_with_executor(spec, dir / "run"));
  int models = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "run/stages"))
    if (e.path().filename().string().starts_with("lm_adapt-")) {
      EXPECT_EQ(read_text(e.path() / "model/spiece.model"), read_text(other));
      ++models;
    }
  EXPECT_EQ(models, 1);
}

// A pretrain stage with the prefix-LM objective trains with the spec's targets_length (it
// was replaced by inputs_length).
TEST(RunnerExecutor, PrefixLmPretrainingKeepsItsTargetsLength) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  const ExperimentSpec spec = parse_spec(
      "name: p\nmodel: {checkpoint: " + in.checkpoint + "}\ncorpus: {files: [" + in.text +
          "]}\nstages:\n  pretrain: {objective: prefix_lm, steps: 1, batch_size: 2, "
          "inputs_length: 16, targets_length: 6}\n",
      dir / "p.yaml");
  ASSERT_NO_FATAL_FAILURE(run_with_executor(spec, dir / "run"));
  int stages = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "run/stages")) {
    if (!e.path().filename().string().starts_with("pretrain-")) continue;
    const nlohmann::json summary = nlohmann::json::parse(read_text(e.path() / "pretrain.json"));
    EXPECT_EQ(summary["options"]["targets_length"], 6);
    ++stages;
  }
  EXPECT_EQ(stages, 1);
}

// corpus.files may name directories of text files (fig3d reads ${C4_DIR}).
TEST(RunnerExecutor, CorpusFilesMayBeDirectories) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  fs::create_directories(dir.path / "texts/part");
  fs::rename(in.text, dir.path / "texts/part/a.txt");
  const ExperimentSpec spec =
      parse_spec(adapt_spec_yaml(in.checkpoint, dir / "texts"), dir / "adapt.yaml");
  RunOptions o;
  o.out_dir = dir / "run";
  std::ostringstream log;
  o.log = &log;
  ASSERT_EQ(run_experiment(spec, o), 0) << log.str();
  EXPECT_NE(log.str().find(" training documents, 0 vocabulary pieces"), std::string::npos)
      << log.str();
  fs::create_directories(dir.path / "empty");
  const ExperimentSpec empty =
      parse_spec(adapt_spec_yaml(in.checkpoint, dir / "empty"), dir / "adapt.yaml");
  o.out_dir = dir / "run2";
  EXPECT_EQ(run_experiment(empty, o), 1);
  EXPECT_NE(read_text(dir.path / "run2/failures.txt")
                .find("[run] corpus.files: the directory " + (dir / "empty") + " holds no files"),
            std::string::npos);
}
// Pretraining and LM adaptation train with the spec's optimizer and schedule, every key of
// them (adamw used to train with AdamW's weight decay 0.01 while the spec and its hash said
// 0, and a linear schedule was not available); what run_pretraining cannot do is refused
// by name.
TEST(RunnerExecutor, PretrainingTrainsWithTheSpecsOptimizer) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  const std::string optimizer =
      "{name: adamw, lr: 0.4, weight_decay: 0.1, schedule: {kind: linear, final_fraction: 0.25}}";
  const ExperimentSpec spec = parse_spec(
      adapt_spec_yaml(in.checkpoint, in.text, ", optimizer: " + optimizer), dir / "adapt.yaml");
  ASSERT_NO_FATAL_FAILURE(run_with_executor(spec, dir / "run"));
  fs::path stage;
  for (const auto& e : fs::directory_iterator(dir.path / "run/stages"))
    if (e.path().filename().string().starts_with("lm_adapt-")) stage = e.path();
  ASSERT_FALSE(stage.empty());
  // The learning rate of each step is the spec's linear schedule's.
  const optim::Schedule want = make_schedule(spec.trials[0].lm_adapt->optimizer, 2);
  std::istringstream lines(read_text(stage / "metrics.jsonl"));
  int steps = 0;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("lr")) continue;
    EXPECT_NEAR(j["lr"].get<double>(), want.lr(j["step"].get<int64_t>() - 1), 1e-12) << line;
    ++steps;
  }
  EXPECT_EQ(steps, 2);
  EXPECT_LT(want.lr(1), want.lr(0));  // decaying, not constant
  const nlohmann::json summary = nlohmann::json::parse(read_text(stage / "pretrain.json"));
  EXPECT_EQ(summary["options"]["optimizer"]["name"], "adamw");
  EXPECT_EQ(summary["options"]["optimizer"]["weight_decay"], 0.1);
  EXPECT_EQ(summary["options"]["shuffle_buffer"], 1000);  // the stage's default, passed on

  // What run_pretraining cannot honour is refused before any work, at its line.
  EXPECT_THROW_MSG(
      parse_spec(adapt_spec_yaml(in.checkpoint, in.text, ", pack: false"), dir / "adapt.yaml"),
      "stages.lm_adapt.pack must be true: pretraining always packs its examples");
  EXPECT_THROW_MSG(
      parse_spec(adapt_spec_yaml(in.checkpoint, in.text, ", shuffle_buffer: 1"),
                 dir / "adapt.yaml"),
      "stages.lm_adapt.shuffle_buffer must be 0 (no shuffling) or 2 to 100000 examples");
}

// A bf16 run keeps what a method trains in f32 inside the bf16 backbone: LN tuning (some
// backbone tensors) and model tuning (every weight: mixed precision). Both train, log
// finite losses and save f32 tensors.
TEST(RunnerExecutor, Bf16RunsTrainWhatTheMethodTrainsInF32) {
  TempDir dir;
  const CheckpointAndCorpus in(dir);
  fs::create_directories(dir.path / "rte");
  const std::string rte = std::string(SP_FIXTURES_DIR) + "/tasks/rte/val.jsonl";
  fs::copy_file(rte, dir.path / "rte/train.jsonl");
  fs::copy_file(rte, dir.path / "rte/val.jsonl");
  const ExperimentSpec spec =
      parse_spec("name: bf16\nmodel: {checkpoint: " + in.checkpoint +
                     ", dtype: bf16}\nstages:\n  tune: {task: rte, data_dir: " + (dir / "rte") +
                     ", peft: {method: ln_tuning}, steps: 2, batch_size: 2, inputs_length: 32, "
                     "targets_length: 4, eval_every: 2, log_every: 1, max_eval_examples: 2}\n"
                     "sweep:\n  grid:\n    stages.tune.peft.method: [ln_tuning, model_tuning]\n",
                 dir / "bf16.yaml");
  ASSERT_NO_FATAL_FAILURE(run_with_executor(spec, dir / "run"));
  int tuned = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "run/stages")) {
    if (!e.path().filename().string().starts_with("tune-")) continue;
    ++tuned;
    SCOPED_TRACE(e.path().string());
    std::ifstream metrics(e.path() / "metrics.jsonl");
    int losses = 0;
    for (std::string line; std::getline(metrics, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (!j.contains("loss")) continue;
      EXPECT_TRUE(std::isfinite(j["loss"].get<double>())) << line;
      ++losses;
    }
    EXPECT_EQ(losses, 2);
    const SafetensorsFile saved = SafetensorsFile::open(e.path() / "model/peft_model.safetensors");
    ASSERT_GT(saved.size(), 0u);
    for (const std::string& name : saved.names()) EXPECT_EQ(saved.info(name).dtype, "F32") << name;
  }
  EXPECT_EQ(tuned, 2);
}

}  // namespace
}  // namespace sp
