// libFuzzer target for the safetensors header parser (models/io/safetensors_format.cpp):
// any byte string must either parse into a layout that stays inside the input, or throw
// sp::Error. A crash, a sanitizer report, a leak or another exception type is a bug.
//
// Build (clang's libFuzzer; the parser depends only on tensor/error.h and nlohmann-json):
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I. \
//       fuzz/safetensors_fuzz.cpp models/io/safetensors_format.cpp -o build/safetensors_fuzz
// or with the standalone CMake project in this folder (see fuzz/CMakeLists.txt):
//   cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ && cmake --build build-fuzz
// Run (seeded with the Python-written fixture, guided by the dictionary):
//   mkdir -p /tmp/st_corpus && cp tests/fixtures/*.safetensors /tmp/st_corpus/
//   build/safetensors_fuzz -dict=fuzz/safetensors.dict -max_total_time=60 /tmp/st_corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "models/io/safetensors_format.h"
#include "tensor/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sp::SafetensorsHeader h;
  try {
    h = sp::parse_safetensors_header(data, size, "fuzz.safetensors");
  } catch (const sp::Error&) {
    return 0;
  }
  // The invariants the reader relies on: the entries tile the buffer, which lies inside
  // the input. Reading every byte lets AddressSanitizer check the bounds for real.
  if (h.data_start + h.data_bytes != size) std::abort();
  uint64_t total = 0;
  unsigned sum = 0;
  for (const sp::SafetensorsEntry& e : h.entries) {
    if (e.end < e.begin || e.end > h.data_bytes) std::abort();
    if (e.numel * static_cast<uint64_t>(e.bits) != e.nbytes() * 8) std::abort();
    total += e.nbytes();
    const uint8_t* p = data + h.data_start + e.begin;
    for (uint64_t i = 0; i < e.nbytes(); ++i) sum += p[i];
    if (e.dtype == "F8_E4M3" && e.nbytes())
      sum += static_cast<unsigned>(sp::f8_e4m3_to_float(p[0]) == 0);
    if (e.dtype == "F8_E5M2" && e.nbytes())
      sum += static_cast<unsigned>(sp::f8_e5m2_to_float(p[0]) == 0);
  }
  if (total != h.data_bytes) std::abort();
  return static_cast<int>(sum & 0);
}
