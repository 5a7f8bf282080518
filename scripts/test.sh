#!/usr/bin/env bash
# The test command: installs dependencies, configures and builds build/ (Ninja, Release,
# CUDA when nvcc is found), and runs the test suite without the slow and gpu labels.
#
#   scripts/test.sh                               # build/
#   SP_SANITIZE=address,undefined scripts/test.sh # build-asan/, same suite, CUDA off
#   SP_WITH_CUDA=OFF scripts/test.sh              # force the CPU-only build
#   SP_BUILD_DIR=build-x SP_JOBS=4 scripts/test.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$repo_root/scripts/install-deps.sh"

extra=()
if [[ -n "${SP_SANITIZE:-}" ]]; then
  build_dir=${SP_BUILD_DIR:-$repo_root/build-asan}
  # Sanitizers check our host code; the CUDA runtime's own allocations confuse ASan.
  export SP_WITH_CUDA=${SP_WITH_CUDA:-OFF}
  extra+=("-DSP_SANITIZE=$SP_SANITIZE" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  # allocator_may_return_null: an impossible allocation returns null, as malloc does, so
  # the allocator's out-of-memory error is what the tests see (ASan would abort instead).
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  build_dir=${SP_BUILD_DIR:-$repo_root/build}
fi

configure "$build_dir" "${extra[@]}"
cmake --build "$build_dir" -j "$(build_jobs)"
ctest --test-dir "$build_dir" --output-on-failure -LE "slow|gpu" -j "$(build_jobs)"
