#!/usr/bin/env bash
# Installs the Debian 12 packages softprompt builds with. Idempotent: a no-op (no apt-get
# at all) when every package is already installed. Runs as root (CI) or through sudo.
# CUDA (nvcc) is not a Debian package here: install NVIDIA's toolkit separately; the build
# enables the CUDA backend when it finds nvcc (on PATH or in /usr/local/cuda/bin).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libdnnl-dev                                   # oneDNN 2.6: the CPU backend
  ocl-icd-opencl-dev                            # libdnnl-dev's CMake config requires OpenCL
  libgtest-dev libgmock-dev libbenchmark-dev    # tests and sp_bench
  libcli11-dev                                  # the softprompt command line
  libyaml-cpp-dev nlohmann-json3-dev            # experiment specs and results
  libsentencepiece-dev                          # the T5 tokenizer
  wordnet-base                                  # the built-in corpus and tasks
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
