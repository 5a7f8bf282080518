#include "tensor/cpu/onednn.h"

#include "tensor/error.h"

namespace sp::cpu {
namespace {

// A T5 step touches a few dozen distinct matmul layouts; this leaves room for several
// models and sequence lengths without holding JIT code for shapes long gone.
constexpr size_t kDefaultMatmulCacheCapacity = 512;

struct ThreadState {
  MatmulPlanCache cache{kDefaultMatmulCacheCapacity};
  int64_t layout_copies = 0;
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

}  // namespace

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& onednn_stream() {
  thread_local dnnl::stream stream(onednn_engine());
  return stream;
}

dnnl::memory::data_type onednn_dtype(DType dtype, const char* op) {
  switch (dtype) {
    case DType::f32: return dnnl::memory::data_type::f32;
    case DType::bf16: return dnnl::memory::data_type::bf16;
    default: fail(str_cat("[", op, "] oneDNN path takes f32 or bf16, got ", dtype_name(dtype)));
  }
}

MatmulPlanCache& matmul_plan_cache() { return thread_state().cache; }

MatmulCacheStats matmul_cache_stats() {
  const ThreadState& s = thread_state();
  const LruCacheStats c = s.cache.stats();
  MatmulCacheStats out;
  out.hits = c.hits;
  out.misses = c.misses;
  out.evictions = c.evictions;
  out.size = c.size;
  out.capacity = c.capacity;
  out.layout_copies = s.layout_copies;
  return out;
}

void reset_matmul_cache_stats() {
  thread_state().cache.reset_stats();
  thread_state().layout_copies = 0;
}

void clear_matmul_cache() { thread_state().cache.clear(); }

void set_matmul_cache_capacity(size_t capacity) { thread_state().cache.set_capacity(capacity); }

void count_matmul_layout_copy() { ++thread_state().layout_copies; }

}  // namespace sp::cpu
