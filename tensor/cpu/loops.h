#pragma once
// Strided N-d iteration for the CPU elementwise kernels.
//
// for_each_row walks N operands of one shape (operand 0 is the output) as a sequence of
// 1-d rows: size-1 dims are dropped and neighbouring dims merged wherever every operand's
// layout allows, so a contiguous tensor is one row, [B, T, D] + [D] is B*T rows of D with
// both inputs at stride 1, and [B, T, D] * [B, T, 1] is rows whose second input has
// stride 0. The row callback gets untyped base pointers and the inner strides, picks a
// tight loop for the common stride patterns (all 1; one input 0) and a strided loop
// otherwise. Work is split over threads by element ranges, so one long row is parallel too.
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "tensor/cpu/bf16_simd.h"
#include "tensor/cpu/parallel.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"
#include "tensor/tensor.h"

namespace sp::cpu {

// Loads a stored element as its compute type (bf16 by a shift, which vectorises).
template <typename T>
inline compute_t<T> load(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return bf16_to_f32(v);
  } else if constexpr (std::is_same_v<T, f16>) {
    return static_cast<float>(v);
  } else {
    return v;
  }
}

// Stores a compute value as T: bf16 rounds to nearest even with selects instead of the
// branch in bf16::from_float, so loops over it vectorise.
template <typename T>
inline T store(compute_t<T> v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return f32_to_bf16(v);
  } else if constexpr (std::is_same_v<T, f16>) {
    return f16(v);
  } else {
    return v;
  }
}

// One operand: its data pointer (at the tensor's offset), element size and strides.
struct LoopOperand {
  char* ptr;
  int64_t elem_size;
  const Shape* strides;  // in elements, one per dim of the loop shape
};

inline LoopOperand operand(const Tensor& t) {
  return {static_cast<char*>(t.data_ptr()), t.element_size(), &t.strides()};
}

// The loop after dropping size-1 dims and merging: dims[0] outermost, dims[ndim-1] the row.
template <int N>
struct LoopPlan {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};  // in elements
  char* base[N] = {};
  int64_t elem_size[N] = {};
  int64_t numel = 0;
};

template <int N>
LoopPlan<N> plan_loop(const Shape& shape, const std::array<LoopOperand, N>& ops) {
  LoopPlan<N> p;
  p.numel = shape.numel();
  for (int k = 0; k < N; ++k) {
    p.base[k] = ops[k].ptr;
    p.elem_size[k] = ops[k].elem_size;
  }
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int n = p.ndim;
    bool merge = n > 0;
    for (int k = 0; k < N && merge; ++k)
      merge = p.strides[k][n - 1] == (*ops[k].strides)[d] * shape[d];
    if (merge) {
      p.sizes[n - 1] *= shape[d];
      for (int k = 0; k < N; ++k) p.strides[k][n - 1] = (*ops[k].strides)[d];
    } else {
      p.sizes[n] = shape[d];
      for (int k = 0; k < N; ++k) p.strides[k][n] = (*ops[k].strides)[d];
      p.ndim = n + 1;
    }
  }
  if (p.ndim == 0) {  // a scalar or all-ones shape: one row of one element
    p.ndim = 1;
    p.sizes[0] = 1;
    for (int k = 0; k < N; ++k) p.strides[k][0] = 1;
  }
  return p;
}

// Calls row(ptrs, inner_strides, n) for every row segment; ptrs[k] points at operand k's
// first element of the segment, inner_strides[k] is its stride in elements. Segments are
// whole rows except where a thread's element range starts or ends inside a row.
// cost_per_element scales the parallel threshold (1 for a copy-like op).
template <int N, typename Row>
void for_each_row(const Shape& shape, const std::array<LoopOperand, N>& ops,
                  int64_t cost_per_element, Row&& row) {
  const LoopPlan<N> p = plan_loop<N>(shape, ops);
  if (p.numel == 0) return;
  const int nd = p.ndim;
  const int64_t inner = p.sizes[nd - 1];
  int64_t inner_strides[N];
  for (int k = 0; k < N; ++k) inner_strides[k] = p.strides[k][nd - 1];

  parallel_for(p.numel, cost_per_element, [&](int64_t begin, int64_t end) {
    // The multi-index of begin's row, and the operands' offsets there.
    int64_t idx[kMaxDims] = {};
    int64_t rem = begin / inner;
    int64_t col = begin % inner;
    int64_t off[N] = {};
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % p.sizes[d];
      rem /= p.sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx[d] * p.strides[k][d];
    }
    char* ptrs[N];
    for (int64_t pos = begin; pos < end;) {
      const int64_t n = std::min(inner - col, end - pos);
      for (int k = 0; k < N; ++k)
        ptrs[k] = p.base[k] + (off[k] + col * inner_strides[k]) * p.elem_size[k];
      row(ptrs, inner_strides, n);
      pos += n;
      col = 0;
      // Advance the outer multi-index like an odometer.
      for (int d = nd - 2; d >= 0; --d) {
        for (int k = 0; k < N; ++k) off[k] += p.strides[k][d];
        if (++idx[d] < p.sizes[d]) break;
        for (int k = 0; k < N; ++k) off[k] -= p.strides[k][d] * p.sizes[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace sp::cpu
