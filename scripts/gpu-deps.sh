#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages the build links against into
# .gpu-deps/debs/, for a GPU machine that has CUDA, CMake and a compiler but none of our
# Debian libraries and no network. scripts/gpu-check.sh unpacks them there into a private
# prefix (dpkg -x, never into /). Runs on a Debian 12 machine with apt access; about 9 MB.
#
#   scripts/gpu-deps.sh            # fetches what is missing from .gpu-deps/debs/
#   SP_GPU_DEPS_CLEAN=1 scripts/gpu-deps.sh   # starts from an empty folder
#
# Only libraries the image may lack: libstdc++, libgcc and libgomp come with the GPU
# machine's own compiler and must not be shadowed by Debian 12's older copies.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=$repo_root/.gpu-deps/debs

packages=(
  libdnnl-dev libdnnl2                             # oneDNN 2.6: the CPU backend
  ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers  # dnnl's config finds OpenCL
  libyaml-cpp-dev libyaml-cpp0.7                   # experiment specs
  libgtest-dev libgmock-dev                        # sp_gpu_tests (static libraries)
  libbenchmark-dev libbenchmark1debian             # sp_bench
  nlohmann-json3-dev                               # headers used by nn/peft
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32  # the tokenizer
  libcli11-dev                                     # header-only; the softprompt CLI
)

if [[ "${SP_GPU_DEPS_CLEAN:-0}" == 1 ]]; then rm -rf "$dest"; fi
mkdir -p "$dest"

missing=()
for p in "${packages[@]}"; do
  compgen -G "$dest/${p}_*.deb" >/dev/null || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "gpu-deps: all ${#packages[@]} packages already in $dest"
else
  echo "gpu-deps: downloading ${missing[*]}"
  # apt-get download writes into the current folder; as root it warns that the sandbox
  # user cannot write there, which is harmless.
  (cd "$dest" && apt-get download -q "${missing[@]}")
fi

# Every package must be there, once (two versions of one package would both unpack).
status=0
for p in "${packages[@]}"; do
  n=$(compgen -G "$dest/${p}_*.deb" | wc -l || true)
  if ((n != 1)); then
    echo "gpu-deps: expected one ${p}_*.deb in $dest, found $n" >&2
    status=1
  fi
done
du -sh "$dest" | sed 's/^/gpu-deps: /'
exit $status
