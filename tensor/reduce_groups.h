#pragma once
// How both backends plan a multi-dim reduction: the dims of a contiguous tensor with size-1
// dims dropped and neighbours of the same kind (reduced or kept) merged; the groups are then
// reduced innermost first, each step an [A, R, B] reduction. Sharing the plan keeps the
// CPU and CUDA results in the same summation order per step.
#include <cstdint>

#include "tensor/shape.h"

namespace sp {

struct ReduceGroups {
  int n = 0;
  int64_t size[kMaxDims];
  bool reduced[kMaxDims];

  // The groups of a tensor of `shape` reducing the dims whose bit is set in dims_mask;
  // extent gets the number of elements folded into each output (for mean).
  static ReduceGroups of(const Shape& shape, uint32_t dims_mask, int64_t& extent) {
    ReduceGroups groups;
    extent = 1;
    for (int d = 0; d < shape.size(); ++d) {
      const bool red = (dims_mask >> d) & 1u;
      if (red) extent *= shape[d];
      groups.push(shape[d], red);
    }
    return groups;
  }
  // Appends a dim of size s, reduced or kept.
  void push(int64_t s, bool red) {
    if (s == 1) return;
    if (n > 0 && reduced[n - 1] == red) {
      size[n - 1] *= s;
      return;
    }
    size[n] = s;
    reduced[n] = red;
    ++n;
  }
  // The innermost reduced group, or -1 when none is left.
  int last_reduced() const {
    for (int g = n - 1; g >= 0; --g)
      if (reduced[g]) return g;
    return -1;
  }
  // Removes group g (after reducing it), merging its neighbours when both are kept.
  void remove(int g) {
    ReduceGroups next;
    for (int i = 0; i < n; ++i)
      if (i != g) next.push(size[i], reduced[i]);
    *this = next;
  }
  // [A, R, B] around group g: the product of the sizes before it, its size, the product after.
  void around(int g, int64_t& A, int64_t& R, int64_t& B) const {
    A = 1;
    B = 1;
    for (int i = 0; i < g; ++i) A *= size[i];
    for (int i = g + 1; i < n; ++i) B *= size[i];
    R = size[g];
  }
};

}  // namespace sp
