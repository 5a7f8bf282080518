#pragma once
// `softprompt run SPEC.yaml`: the experiment runner. It expands the spec's trials, runs each
// trial's stages in order (pretrain, lm_adapt, tune, eval), and reports.
//
// Output layout under the run directory DIR (default runs/<spec name>):
//   DIR/stages/<kind>-<hash>/       a stage shared by trials (pretrain, lm_adapt), keyed by
//                                   the hash of its configuration; DONE is written last, so
//                                   a directory without it is an interrupted stage
//   DIR/trials/<trial id>/          one trial's tune / eval outputs (checkpoints, the PEFT
//                                   parameters, predictions); DONE written last
//   DIR/results.jsonl               append-only, one line per finished trial and eval
//   DIR/summary.csv, DIR/*.svg, DIR/report.md
//                                   regenerated from results.jsonl after every trial, of
//                                   the spec's trials only
//
// Rerunning the same spec skips trials whose DONE marker exists, resumes an interrupted
// trial from its latest checkpoint (the trainer's resume), and never reruns a finished
// shared stage.
#include <iosfwd>
#include <string>

namespace sp {

struct ExperimentSpec;  // experiments/spec/spec.h
class StageExecutor;    // experiments/runner/stage_executor.h

struct RunOptions {
  std::string out_dir;          // empty: runs/<spec name> under the working directory
  std::ostream* log = nullptr;  // progress lines; nullptr: std::cout
  bool reports_only = false;    // regenerate summary.csv, plots and report.md, run nothing
};

// Runs every trial of spec that has not finished yet and writes the reports. Returns the
// process exit status: 0 when every trial finished, 1 when any trial failed (the others
// still run; the failure is printed and recorded in DIR/failures.txt). Throws sp::Error
// for errors that make the whole run impossible (an unwritable DIR).
int run_experiment(const ExperimentSpec& spec, const RunOptions& options);
// The same with the stages run by executor (tests count and interrupt stages with a fake).
int run_experiment(const ExperimentSpec& spec, const RunOptions& options, StageExecutor& executor);

// The run directory options or the spec imply: options.out_dir, else runs/<spec name>.
std::string run_directory(const ExperimentSpec& spec, const RunOptions& options);
// A trial id as a directory name ('/' and unusual characters replaced; an id too long for
// a file name cut to 200 bytes ending in a hash of the whole id).
std::string trial_dir_name(const std::string& trial_id);

}  // namespace sp
