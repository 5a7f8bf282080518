#!/usr/bin/env bash
# The main job: installs dependencies, builds the softprompt binary into build/bin and runs
# its built-in demo (a two-layer MLP learning XOR-like data with the engine's autograd;
# exit status 1 when it ends below 95% held-out accuracy).
# Arguments go to the demo: scripts/quickstart.sh --steps 500 --seed 3
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_dir=${SP_BUILD_DIR:-$repo_root/build}
"$repo_root/scripts/install-deps.sh"
configure "$build_dir"
cmake --build "$build_dir" -j "$(build_jobs)" --target softprompt
"$build_dir/bin/softprompt" --version
"$build_dir/bin/softprompt" demo "$@"
