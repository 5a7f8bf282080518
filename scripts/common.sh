# Shared by scripts/test.sh and scripts/quickstart.sh: configure a build folder the same way.
# Sourced, not run.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# configure BUILD_DIR [extra cmake args...]: Ninja (unless the folder was configured with
# another generator), Release, ccache when present. CUDA follows SP_WITH_CUDA when set,
# else CMake's default: on when nvcc is found.
configure() {
  local build_dir=$1
  shift
  local args=(-S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release)
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    args+=(-G Ninja)
  fi
  if command -v ccache >/dev/null; then
    # Paths relative to the checkout, so a fresh clone elsewhere reuses the cache.
    export CCACHE_BASEDIR="$repo_root"
    args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
  if [[ -n "${SP_WITH_CUDA:-}" ]]; then
    args+=("-DSP_WITH_CUDA=$SP_WITH_CUDA")
  fi
  cmake "${args[@]}" "$@"
}

# The number of parallel compile jobs: SP_JOBS, else the number of cores.
build_jobs() {
  echo "${SP_JOBS:-$(nproc)}"
}
