// `softprompt run SPEC.yaml [--out DIR] [--dry-run] [--set key=value ...]`: loads and
// validates the spec before anything runs (a bad spec exits 2 with FILE:LINE:COL: ...),
// then hands the trials to the runner (experiments/runner/runner.h). --dry-run stops after
// validation and prints the expanded trials with each stage's hash; missing data
// directories and checkpoints are warnings there, not errors, so the paper's specs can be
// checked on a machine without SuperGLUE or the T5 checkpoints.
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/command.h"
#include "experiments/runner/model_loading.h"
#include "experiments/runner/runner.h"
#include "experiments/spec/spec.h"
#include "tensor/error.h"

namespace sp::cli {
namespace {

struct RunArgs {
  std::string spec;
  std::string out;
  bool dry_run = false;
  bool reports_only = false;
  std::vector<std::string> sets;
};

int run_command(const RunArgs& args) {
  SpecLoadOptions load;
  load.sets = args.sets;
  load.check_paths = !args.dry_run && !args.reports_only;
  ExperimentSpec spec;
  try {
    spec = load_spec(args.spec, load);
  } catch (const Error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  if (args.dry_run) {
    std::cout << describe_trials(spec);
    // What the real run would refuse first: a device this process cannot use.
    for (const Trial& t : spec.trials) {
      try {
        check_model_device(t.model);
      } catch (const Error& e) {
        std::cerr << "warning: trial " << t.id << ": " << e.what() << "\n";
        break;
      }
    }
    return 0;
  }
  RunOptions options;
  options.out_dir = args.out;
  options.reports_only = args.reports_only;
  return run_experiment(spec, options);
}

std::function<int()> setup_run(CLI::App& sub) {
  auto args = std::make_shared<RunArgs>();
  sub.add_option("spec", args->spec, "The experiment's YAML file (docs/experiments.md)")
      ->required();
  sub.add_option("--out", args->out, "Run directory (default: runs/<spec name>)");
  CLI::Option* dry =
      sub.add_flag("--dry-run", args->dry_run,
                   "Validate and print the trials and their stage hashes; run nothing");
  CLI::Option* reports =
      sub.add_flag("--reports-only", args->reports_only,
                   "Regenerate summary.csv, the plots and report.md from results.jsonl");
  dry->excludes(reports);
  sub.add_option("--set", args->sets,
                 "Override a key, e.g. --set stages.tune.steps=100 or --set vars.T5_DIR=/ckpt "
                 "(repeatable; the value is YAML)")
      ->allow_extra_args(false);
  return [args] { return run_command(*args); };
}

}  // namespace

SP_REGISTER_COMMAND(run, "Run an experiment spec: pretrain, LM-adapt, tune, evaluate, report",
                    setup_run);

}  // namespace sp::cli
