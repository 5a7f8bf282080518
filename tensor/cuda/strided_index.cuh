#pragma once
// The offset calculator of the elementwise, copy and fill kernels: N operands that share
// one loop shape (operand 0 is the output), each with its own strides in elements. The
// host builds it from the tensors' shape and strides, dropping size-1 dims and merging
// neighbours wherever every operand's layout allows (as tensor/cpu/loops.h does), so a
// contiguous tensor becomes one dim and [R, D] * [D] becomes two. On the device it turns a
// linear index into N element offsets: one divmod per dim but the innermost, 32-bit when
// every size fits, so the common one- and two-dim cases cost a multiply-add or one divide.
#include <cstdint>

#include "tensor/shape.h"

namespace sp::cuda {

inline constexpr int kMaxIndexDims = kMaxDims;

template <int N>
struct OffsetCalc {
  int ndim = 0;
  bool narrow = true;                  // every size (hence every linear index) < 2^31
  int64_t sizes[kMaxIndexDims] = {};   // innermost first
  int64_t strides[kMaxIndexDims][N] = {};  // [dim][operand], in elements, innermost first

  // The N element offsets of the element (or vector) at linear index i. Every array index
  // is a compile-time constant (the loops unroll), so calc stays in the parameter bank.
  __device__ __forceinline__ void get(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (narrow) {
      uint32_t rem = static_cast<uint32_t>(i);
#pragma unroll
      for (int d = 0; d < kMaxIndexDims; ++d) {
        if (d == ndim - 1) {  // the outermost dim takes what is left
#pragma unroll
          for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(rem) * strides[d][k];
          break;
        }
        const uint32_t size = static_cast<uint32_t>(sizes[d]);
        const uint32_t q = rem / size;
        const int64_t r = rem - q * size;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += r * strides[d][k];
        rem = q;
      }
    } else {
      int64_t rem = i;
#pragma unroll
      for (int d = 0; d < kMaxIndexDims; ++d) {
        if (d == ndim - 1) {
#pragma unroll
          for (int k = 0; k < N; ++k) off[k] += rem * strides[d][k];
          break;
        }
        const int64_t q = rem / sizes[d];
        const int64_t r = rem - q * sizes[d];
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += r * strides[d][k];
        rem = q;
      }
    }
  }
};

// The loop of shape over operands with strides[k] (each one entry per dim of shape), with
// size-1 dims dropped and mergeable neighbours merged; a scalar or all-ones shape becomes
// one dim of one element.
template <int N>
OffsetCalc<N> make_offset_calc(const Shape& shape, const Shape* const (&strides)[N]) {
  // Built outermost first (the merge test looks at the previous, outer dim), then reversed.
  int64_t sizes[kMaxIndexDims] = {};
  int64_t st[kMaxIndexDims][N] = {};
  int nd = 0;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = st[nd - 1][k] == (*strides[k])[d] * shape[d];
    if (merge) {
      sizes[nd - 1] *= shape[d];
      for (int k = 0; k < N; ++k) st[nd - 1][k] = (*strides[k])[d];
    } else {
      sizes[nd] = shape[d];
      for (int k = 0; k < N; ++k) st[nd][k] = (*strides[k])[d];
      ++nd;
    }
  }
  OffsetCalc<N> c;
  if (nd == 0) {
    c.ndim = 1;
    c.sizes[0] = 1;
    for (int k = 0; k < N; ++k) c.strides[0][k] = 1;
    return c;
  }
  c.ndim = nd;
  for (int d = 0; d < nd; ++d) {
    c.sizes[d] = sizes[nd - 1 - d];
    for (int k = 0; k < N; ++k) c.strides[d][k] = st[nd - 1 - d][k];
  }
  return c;
}

}  // namespace sp::cuda
