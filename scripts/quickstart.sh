#!/usr/bin/env bash
# The main job: installs dependencies, builds the softprompt binary into build/bin and runs
# the quickstart experiment (experiments/specs/quickstart.yaml): a corpus built from
# Debian's WordNet, a tiny T5 pretrained with span corruption and LM-adapted, then prompt
# tuning on the built-in word-in-context task over a prompt-length x initialisation sweep,
# ending with runs/quickstart/report.md (summary.csv, SVG plots). Rerunning skips what is
# done and resumes an interrupted trial.
# Arguments go to `softprompt run`: scripts/quickstart.sh --out /tmp/q --set stages.tune.steps=50
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir=${SP_BUILD_DIR:-$repo_root/build}
"$repo_root/scripts/install-deps.sh"
configure "$build_dir"
cmake --build "$build_dir" -j "$(build_jobs)" --target softprompt
"$build_dir/bin/softprompt" --version
cd "$repo_root"
"$build_dir/bin/softprompt" run experiments/specs/quickstart.yaml "$@"
