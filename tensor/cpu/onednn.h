#pragma once
// The oneDNN context: the process-wide CPU engine, a stream per thread, and the cache of
// matmul primitives (oneDNN 2.6, v2 API: matmul::desc -> matmul::primitive_desc).
//
// Building a primitive_desc and JIT-compiling its primitive costs tens to hundreds of
// microseconds, more than a small matmul itself, so every primitive is built once per
// layout and kept in an LRU cache keyed by a POD struct (no strings on the hot path).
// The cache is per thread: no locks, and a plan's memory objects are never shared.
#include <cstdint>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <type_traits>

#include "tensor/cpu/lru_cache.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"

namespace sp::cpu {

dnnl::engine& onednn_engine();
// This thread's stream on onednn_engine().
dnnl::stream& onednn_stream();
// f32 and bf16 map to oneDNN types; other dtypes throw naming op.
dnnl::memory::data_type onednn_dtype(DType dtype, const char* op);

// Everything that selects a matmul primitive: the oneDNN-side dims and strides of
// src [.., M, K], weights [.., K, N] and dst [.., M, N] (broadcast batch dims are 1 in
// src or weights), dtypes, and the epilogue. Zero-filled before use, compared bytewise.
struct MatmulKey {
  int64_t a_dims[kMaxDims];
  int64_t a_strides[kMaxDims];
  int64_t b_dims[kMaxDims];
  int64_t b_strides[kMaxDims];
  int64_t c_dims[kMaxDims];  // dst is dense row-major
  uint32_t alpha_bits;       // output scale; 1.0f when unscaled
  uint8_t ndims;
  uint8_t dtype;       // dnnl::memory::data_type of src, weights and dst
  uint8_t bias_dtype;  // dnnl::memory::data_type of bias; 0 (undef) when none
  uint8_t flags;       // kAccumulate | kBiasPostOp

  static constexpr uint8_t kAccumulate = 1;  // sum post-op: dst += result
  static constexpr uint8_t kBiasPostOp = 2;  // bias added after the output scale

  MatmulKey() { std::memset(this, 0, sizeof(*this)); }
  friend bool operator==(const MatmulKey& x, const MatmulKey& y) {
    return std::memcmp(&x, &y, sizeof(MatmulKey)) == 0;
  }
};
static_assert(std::has_unique_object_representations_v<MatmulKey>,
              "MatmulKey is compared bytewise: it must have no padding");

struct MatmulKeyHash {
  size_t operator()(const MatmulKey& k) const {
    uint64_t words[sizeof(MatmulKey) / 8];
    std::memcpy(words, &k, sizeof(words));
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (uint64_t w : words) h = (h ^ w) * 0xff51afd7ed558ccdull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};
static_assert(sizeof(MatmulKey) % 8 == 0);

// A built matmul: the primitive plus memory objects whose data handles are set per call.
struct MatmulPlan {
  dnnl::matmul primitive;
  dnnl::memory src, weights, dst, bias;
  int bias_arg = 0;  // DNNL_ARG_BIAS or the binary post-op's source; 0 without bias
  // The given layouts would run on oneDNN's reference kernel: these operands are copied to
  // a dense layout first, and the primitive was built for the copies.
  bool copy_a = false;
  bool copy_b = false;
  std::string impl;  // oneDNN's implementation name, e.g. "brg:avx512_core"
};

using MatmulPlanCache = LruCache<MatmulKey, MatmulPlan, MatmulKeyHash>;
// This thread's cache.
MatmulPlanCache& matmul_plan_cache();

struct MatmulCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;  // each miss builds one plan (one or more primitive_descs)
  int64_t evictions = 0;
  int64_t size = 0;
  int64_t capacity = 0;
  int64_t layout_copies = 0;  // operands copied because oneDNN could not take their layout
};
// Counts for the calling thread's cache, since the last reset.
MatmulCacheStats matmul_cache_stats();
void reset_matmul_cache_stats();
void clear_matmul_cache();
void set_matmul_cache_capacity(size_t capacity);
// Called by the matmul backend when it copies an operand into a dense layout.
void count_matmul_layout_copy();

// Whether this CPU runs bf16 matmuls on oneDNN's bf16 kernels. oneDNN 2.6 has them only
// with AVX-512 (avx512_core); elsewhere (AVX2 machines) a bf16 matmul is widened: its
// operands converted to f32 exactly, an f32 product, the result rounded to bf16 once, as
// oneDNN's bf16 kernels accumulate in f32 and round once.
bool onednn_has_bf16_matmul();
// Widens every bf16 matmul of this thread, even where oneDNN has bf16 kernels: tests run
// the widened path on any machine with it.
void force_widened_bf16_matmul(bool on);

}  // namespace sp::cpu
