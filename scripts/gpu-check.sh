#!/usr/bin/env bash
# The GPU check: build the CUDA backend, run every GPU test against the CPU backend, run the
# GPU benchmarks beside their references (raw cuBLASLt, a device-to-device copy, PyTorch)
# and print one short table last. Meant for a GPU machine with nvcc, CMake, Ninja and
# python3 + torch, as root, in the repository root; every phase runs under a timeout that
# keeps the whole run inside an 8-minute budget (SP_GPU_CHECK_BUDGET).
#
#   scripts/gpu-check.sh                          # results under $OUT (default out/gpu-check)
#   SP_GPU_CHECK_SKIP_BUILD=1 scripts/gpu-check.sh  # reuse an existing build-gpu/
#
# When the machine lacks our Debian libraries (oneDNN, yaml-cpp, GTest, benchmark,
# sentencepiece, nlohmann-json), the .deb files that scripts/gpu-deps.sh downloaded into
# .gpu-deps/debs/ are unpacked with dpkg -x into a private prefix (never into /) and CMake
# is pointed there. Settings (environment):
#   OUT                      where logs and JSON go (files: see the end of this header)
#   SP_GPU_BUILD_DIR         build folder (default build-gpu)
#   SP_GPU_DEPS_FORCE=1      use the unpacked .debs even when system packages exist
#   SP_GPU_DEPS_PREFIX       where to unpack them (default /tmp/sp-deps)
#   SP_GPU_CHECK_SKIP_BUILD=1  skip configure and build
#   SP_GPU_CHECK_BUDGET      seconds for the whole run (default 465): each phase's timeout
#                            is cut so that the phases after it keep their minimum
#   SP_GPU_CHECK_BUILD_CAP   the build phase's own limit in seconds (default 330)
#   SP_JOBS                  parallel compile jobs (default: all cores)
#   SP_GPU_TORCH=0           skip the PyTorch baseline
# Every phase runs even when an earlier one failed (tests failing do not stop the
# benchmarks); the exit status is non-zero when any phase failed.
# Files in $OUT (8 at most, the device tool's limit): build.log, gpu_tests.log,
# gpu_tests.json, bench.log, gpu_bench.json, torch_bench.json, table.txt.
set -uo pipefail
# The real device, never the host emulation (tensor/cuda_emulation.h).
unset SP_EMULATE_CUDA

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root" || exit 2
OUT=${OUT:-$repo_root/out/gpu-check}
mkdir -p "$OUT"
build_dir=${SP_GPU_BUILD_DIR:-$repo_root/build-gpu}
jobs=${SP_JOBS:-$(nproc)}
budget=${SP_GPU_CHECK_BUDGET:-465}
t_begin=$(date +%s)

failed=()        # phases that failed, with why
summary=()       # "phase  rc  seconds" lines, printed before the table
# Seconds kept back, when a phase starts, for the phases after it (so a slow build cannot
# leave the tests, benchmarks and table no time); cap: the phase's own limit.
declare -A reserve=([deps]=440 [configure]=300 [build]=150 [tests]=90 [bench]=30 [torch]=5 [table]=0)
declare -A cap=([deps]=60 [configure]=90 [build]=${SP_GPU_CHECK_BUILD_CAP:-330} [tests]=180 [bench]=180 [torch]=150 [table]=60)

# The timeout for phase $1: its cap, cut to what the budget leaves after the reserve.
phase_timeout() {
  local left=$((budget - ($(date +%s) - t_begin) - ${reserve[$1]}))
  local t=${cap[$1]}
  ((left < t)) && t=$left
  ((t < 15)) && t=15
  echo "$t"
}

# run_phase NAME CMD...: runs CMD under its timeout, records rc and wall time.
run_phase() {
  local name=$1
  shift
  local limit
  limit=$(phase_timeout "$name")
  echo "== $name (timeout ${limit}s)"
  local t0 t1 rc
  t0=$(date +%s.%N)
  # Phases are shell functions: timeout runs them in a child bash (exported below); it
  # signals the whole process group, so compilers and test binaries stop too.
  timeout -k 10 "$limit" bash -c '"$@"' "$name" "$@"
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if ((rc == 124 || rc == 137)); then
    echo "== $name: TIMED OUT after ${limit}s"
    failed+=("$name (timed out after ${limit}s)")
  elif ((rc != 0)); then
    echo "== $name: failed (exit $rc)"
    failed+=("$name (exit $rc)")
  fi
  summary+=("$(printf '%-10s rc=%-4s %7ss' "$name" "$rc" "$secs")")
  return $rc
}

# --- the phases (shell functions; run_phase runs each under its timeout) -----------------
prefix=""
system_has_deps() {
  local f
  for f in /usr/include/oneapi/dnnl/dnnl.hpp /usr/include/yaml-cpp/yaml.h \
           /usr/include/gtest/gtest.h /usr/include/benchmark/benchmark.h \
           /usr/include/sentencepiece_processor.h /usr/include/nlohmann/json.hpp; do
    [[ -f $f ]] || return 1
  done
}

unpack_deps() {
  local debs=("$repo_root"/.gpu-deps/debs/*.deb)
  if [[ ! -f ${debs[0]} ]]; then
    echo "no Debian packages in .gpu-deps/debs/: run scripts/gpu-deps.sh on a Debian 12" \
         "machine first, and carry .gpu-deps to this one (it is git-ignored)"
    return 1
  fi
  rm -rf "$prefix"
  mkdir -p "$prefix"
  local d
  for d in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$d" "$prefix" || { echo "dpkg -x $d failed"; return 1; }
    else
      # No dpkg: a .deb is an ar archive whose data.tar.* holds the files.
      local member z
      member=$(ar t "$d" | grep -m1 '^data\.tar')
      case $member in
        *.xz) z=-J ;; *.zst) z=--zstd ;; *.gz) z=-z ;; *.bz2) z=-j ;; *) z= ;;
      esac
      ar p "$d" "$member" | tar -x $z -f - -C "$prefix" ||
        { echo "unpacking $d without dpkg failed"; return 1; }
    fi
  done
  echo "unpacked ${#debs[@]} packages into $prefix"
}

# --- configure and build ---------------------------------------------------------------
# When the CUDA toolkit beside nvcc has no cuBLASLt, borrow PyTorch's pip copy (nvidia-cublas):
# a folder with an unversioned libcublasLt.so link for find_library (cublas_link_dir, on
# CMAKE_LIBRARY_PATH), its headers on CPATH and its folder on the loader's path. Runs in the
# script itself (not a phase) so the environment it sets reaches every phase.
cublas_link_dir=""
cublas_fallback() {
  local nvcc root lib inc
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  root=$(dirname "$(dirname "$(readlink -f "$nvcc")")")
  local d
  for d in lib64 lib targets/x86_64-linux/lib; do
    compgen -G "$root/$d/libcublasLt.so*" >/dev/null && return 0
  done
  lib=$(python3 -c "import nvidia, glob; print(next(iter(sorted(glob.glob(nvidia.__path__[0] + '/**/libcublasLt.so*', recursive=True))), ''))" 2>/dev/null)
  inc=$(python3 -c "import nvidia, glob; print(next(iter(glob.glob(nvidia.__path__[0] + '/**/include/cublasLt.h', recursive=True)), ''))" 2>/dev/null)
  if [[ -z $lib || -z $inc ]]; then
    echo "== cuBLASLt: none in $root nor in python's nvidia packages (configure will fail)"
    return 0
  fi
  echo "== cuBLASLt: the toolkit in $root has none; using $lib"
  mkdir -p "$build_dir/cublas-link"
  ln -sf "$lib" "$build_dir/cublas-link/libcublasLt.so"
  CPATH=$(dirname "$inc")${CPATH:+:$CPATH}
  LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CPATH LD_LIBRARY_PATH
  cublas_link_dir=$build_dir/cublas-link
}

configure() {
  local args=(-S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DSP_WITH_CUDA=ON
              -DCMAKE_CUDA_ARCHITECTURES=90 -DSP_BUILD_TESTS=ON -DSP_BUILD_BENCH=ON
              # CMake 4 refuses package configs that ask for CMake < 3.5 (Debian 12's do).
              -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then
    args+=(-G Ninja)
  fi
  if command -v ccache >/dev/null; then
    args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
  if [[ -n $prefix ]]; then
    # The packages' CMake configs resolve paths relative to their own location; the
    # sentencepiece .pc file hard-codes /usr, so skip pkg-config for CMakeLists' fallback
    # (find_path/find_library over the prefix).
    args+=("-DCMAKE_PREFIX_PATH=$prefix/usr;$prefix/usr/lib/x86_64-linux-gnu/cmake"
           -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)
  fi
  # Library folders find_library searches besides the standard ones: the prefix's
  # multiarch folder (searched by itself only where the compiler is Debian's) and the
  # borrowed cuBLASLt.
  local libpath=()
  [[ -n $prefix ]] && libpath+=("$prefix/usr/lib/x86_64-linux-gnu")
  [[ -n $cublas_link_dir ]] && libpath+=("$cublas_link_dir")
  ((${#libpath[@]} > 0)) && args+=("-DCMAKE_LIBRARY_PATH=$(IFS=';'; echo "${libpath[*]}")")
  cmake "${args[@]}" >"$OUT/build.log" 2>&1
  local rc=$?
  ((rc == 0)) || tail -25 "$OUT/build.log"
  return $rc
}

build() {
  echo "-- cmake --build -j$jobs --target sp_gpu_tests sp_bench" >>"$OUT/build.log"
  cmake --build "$build_dir" -j "$jobs" --target sp_gpu_tests sp_bench >>"$OUT/build.log" 2>&1
  local rc=$?
  if ((rc != 0)); then
    # The first compiler errors, not the whole log.
    grep -n -m 30 -E "error|FAILED:|undefined reference" "$OUT/build.log" | cut -c1-300
  fi
  return $rc
}

# --- tests ---------------------------------------------------------------------------------
# One process runs every test; a crash (signal) loses the rest, so the crashed test is
# excluded and the remaining ones rerun, up to three times. gpu_table.py reads the log.
run_tests() {
  [[ -x $tests_bin ]] || { echo "no $tests_bin"; return 1; }
  : >"$OUT/gpu_tests.log"
  local exclude="" rc attempt crashed
  for attempt in 1 2 3 4; do
    local json=$OUT/gpu_tests.json
    ((attempt > 1)) && json=$build_dir/gpu_tests_rerun$attempt.json
    "$tests_bin" --gtest_color=no --gtest_output="json:$json" \
        ${exclude:+"--gtest_filter=-$exclude"} >>"$OUT/gpu_tests.log" 2>&1
    rc=$?
    ((rc < 128)) && break
    crashed=$(awk '/^\[ RUN      \]/ { t = $4 } /^\[       OK \]|^\[  FAILED  \]|^\[  SKIPPED \]/ { if ($4 == t) t = "" } END { print t }' "$OUT/gpu_tests.log")
    echo "sp_gpu_tests died (exit $rc) in ${crashed:-an unknown test}; rerunning without it"
    echo "[  CRASHED ] ${crashed:-unknown} (exit $rc)" >>"$OUT/gpu_tests.log"
    [[ -n $crashed ]] || break
    exclude=${exclude:+$exclude:}$crashed
  done
  grep -E "^\[  FAILED  \] [^ ]+\.[^ ]+ \(|^\[  CRASHED \]|^\[  PASSED  \]|tests? ran\." \
      "$OUT/gpu_tests.log" | head -40
  [[ -z $exclude ]] || return 1
  if grep -q "^\[  PASSED  \] 0 tests" "$OUT/gpu_tests.log"; then
    echo "no GPU test passed: every one skipped (no usable device? see the log's first lines)"
    return 1
  fi
  return $rc
}

# --- benchmarks ----------------------------------------------------------------------------
run_bench() {
  [[ -x $bench_bin ]] || { echo "no $bench_bin"; return 1; }
  # Families are gpu_* and cublaslt_raw_*; a family registered as sp::gpu_x matches too.
  "$bench_bin" --benchmark_filter='^(sp::)?(gpu_|cublaslt_raw)' --benchmark_out="$OUT/gpu_bench.json" \
      --benchmark_out_format=json --benchmark_counters_tabular=true >"$OUT/bench.log" 2>&1
  local rc=$?
  ((rc == 0)) || tail -15 "$OUT/bench.log"
  return $rc
}

run_torch() {
  # The PyTorch baseline runs with the machine's own library path, without our prefix.
  # Its log goes to the end of bench.log (the device tool brings back 8 files at most).
  local log=$build_dir/torch_bench.log
  LD_LIBRARY_PATH=$orig_ld_library_path PYTHONUNBUFFERED=1 python3 "$repo_root/bench/torch_gpu_bench.py" \
      --out "$OUT/torch_bench.json" >"$log" 2>&1
  local rc=$?
  { echo "== bench/torch_gpu_bench.py (exit $rc)"; cat "$log"; } >>"$OUT/bench.log"
  ((rc == 0)) || tail -15 "$log"
  return $rc
}

tests_bin=$build_dir/bin/sp_gpu_tests
bench_bin=$build_dir/bin/sp_bench
orig_ld_library_path=${LD_LIBRARY_PATH-}
export repo_root OUT build_dir jobs prefix tests_bin bench_bin orig_ld_library_path cublas_link_dir
export CCACHE_BASEDIR=$repo_root  # ccache (when present) hits across build folders
export -f unpack_deps configure build run_tests run_bench run_torch

# --- dependencies --------------------------------------------------------------------
# Results of an earlier run must not pass for this one's.
rm -f "$OUT"/{build.log,gpu_tests.log,gpu_tests.json,bench.log,gpu_bench.json,torch_bench.json,table.txt}
echo "== machine: $(uname -m), $(nproc) cores; budget ${budget}s"
{ command -v nvcc >/dev/null && nvcc --version | tail -1; } || echo "nvcc not on PATH"
cmake --version 2>/dev/null | head -1 || echo "cmake not on PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null ||
  echo "nvidia-smi found no GPU"
"${CXX:-c++}" --version 2>/dev/null | head -1 || echo "no C++ compiler"

if [[ "${SP_GPU_DEPS_FORCE:-0}" == 1 ]] || ! system_has_deps; then
  prefix=${SP_GPU_DEPS_PREFIX:-/tmp/sp-deps}
  run_phase deps unpack_deps
  libdir=$prefix/usr/lib/x86_64-linux-gnu
  # Our binaries find the unpacked libraries (and theirs: libOpenCL, libprotobuf-lite).
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LIBRARY_PATH=$libdir${LIBRARY_PATH:+:$LIBRARY_PATH}
  export CPATH=$prefix/usr/include${CPATH:+:$CPATH}
else
  echo "== deps: system packages present"
fi

cublas_fallback
if [[ "${SP_GPU_CHECK_SKIP_BUILD:-0}" == 1 ]]; then
  echo "== configure, build: skipped (SP_GPU_CHECK_SKIP_BUILD=1)"
elif run_phase configure configure; then
  run_phase build build
fi

# --- the GPU -------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
else
  echo "== no nvidia-smi: no GPU on this machine (the GPU tests will report SKIPPED)"
  failed+=("gpu (no nvidia-smi)")
fi

run_phase tests run_tests

run_phase bench run_bench

if [[ "${SP_GPU_TORCH:-1}" != 0 ]]; then
  run_phase torch run_torch
fi

# --- the table, last ------------------------------------------------------------------------
echo "== phases (total $(($(date +%s) - t_begin))s)"
printf '%s\n' "${summary[@]}"
((${#failed[@]} == 0)) || echo "FAILED PHASES: ${failed[*]}"
echo
timeout 60 python3 "$repo_root/scripts/gpu_table.py" --tests-log "$OUT/gpu_tests.log" \
    --tests-json "$OUT/gpu_tests.json" --bench "$OUT/gpu_bench.json" \
    --torch "$OUT/torch_bench.json" | tee "$OUT/table.txt"
table_rc=${PIPESTATUS[0]}
((table_rc == 0 || table_rc == 1)) || failed+=("table (exit $table_rc)")
((${#failed[@]} == 0 && table_rc == 0))
