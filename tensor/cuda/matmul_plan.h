#pragma once
// cuBLASLt plans for CudaBackend::matmul: one handle per device, one 32 MiB workspace per
// device stream, and a process-wide cache of plans (the matmul descriptor, the four matrix
// layouts and the heuristic's algorithm) keyed by everything that selects them.
//
// Row-major through column-major cuBLASLt: out[m, n] = a[m, k] @ b[k, n] is computed as
// out^T = b^T a^T, so cuBLASLt's A is our b and its B is our a; a transposed operand
// (column-major in its last two dims) is a transpose flag, never a copy.
#include <cublasLt.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tensor/dtype.h"

namespace sp::cuda {

// What runs after the product inside cuBLASLt (the subset of cublasLtEpilogue_t we use).
enum class LtEpilogue : uint8_t { none, bias, gelu_aux, gelu_aux_bias, dgelu };

// Everything that selects a plan. Zero-filled before use and compared bytewise.
struct MatmulPlanKey {
  int64_t m, n, k;   // of the row-major product out[m, n] = a[m, k] @ b[k, n]
  int64_t lda, ldb;  // leading dims (elements) of a and b in their own major order
  int64_t batch;     // strided batch count (1: not batched)
  int64_t stride_a, stride_b, stride_out;  // batch strides in elements (0: broadcast)
  uint8_t a_col_major;  // a's unit stride is along m (a is a transposed view)
  uint8_t b_col_major;  // b's unit stride is along k
  uint8_t dtype;        // sp::DType of a and b
  uint8_t out_dtype;    // sp::DType of out (C = D); f32 for the fallback's product of 16-bit
  uint8_t epilogue;     // LtEpilogue
  uint8_t beta_one;     // accumulate: C = D is read
  uint8_t tf32;         // f32 products on TF32 tensor cores
  uint8_t device;
  // log2 of the largest power of two <= 256 dividing each pointer (and every offset it is
  // used at): the heuristic picks TMA / vectorised kernels only for aligned operands.
  uint8_t align_a, align_b, align_out, align_bias, align_aux;
  uint8_t reserved[3];

  MatmulPlanKey() { std::memset(this, 0, sizeof(*this)); }
  friend bool operator==(const MatmulPlanKey& x, const MatmulPlanKey& y) {
    return std::memcmp(&x, &y, sizeof(MatmulPlanKey)) == 0;
  }
};
static_assert(std::has_unique_object_representations_v<MatmulPlanKey>,
              "MatmulPlanKey is compared bytewise: it must have no padding");
static_assert(sizeof(MatmulPlanKey) % 8 == 0);

// The device pointers and scalars of one launch. alpha and beta point at host values of
// the scale type (double for f64, float otherwise).
struct MatmulLaunch {
  const void* a = nullptr;
  const void* b = nullptr;
  void* out = nullptr;
  const void* bias = nullptr;
  void* aux = nullptr;
  const void* alpha = nullptr;
  const void* beta = nullptr;
};

// Runs the product described by key on device's stream. Returns false, launching nothing,
// when cuBLASLt has no algorithm for it, or refuses a fused epilogue's arguments (the
// caller then takes its unfused path); throws sp::Error naming [matmul] when a cuBLASLt
// call fails otherwise.
bool run_matmul_plan(const MatmulPlanKey& key, const MatmulLaunch& launch);

// The alignment recorded in a key for a pointer: log2 of the largest power of two <= 256
// (cuBLASLt's default assumption) dividing it.
uint8_t pointer_alignment(const void* p);

struct MatmulPlanStats {
  int64_t size = 0;    // plans held (including the ones cuBLASLt had no algorithm for)
  int64_t hits = 0;    // run_matmul_plan calls that found their plan
  int64_t misses = 0;  // ... that built it
  int64_t unfused = 0;  // matmuls whose epilogue ran as our own pass (matmul_epilogue.h)
};
// Process-wide counts, for tests and benchmarks.
MatmulPlanStats matmul_plan_stats();
// Called by CudaBackend::matmul each time it takes the unfused path.
void count_unfused_matmul();

}  // namespace sp::cuda
