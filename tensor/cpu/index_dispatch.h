#pragma once
// Index tensors (ids, gather/select indices) are i32 or i64; kernels are templated on which.
#include <cstdint>

#include "tensor/tensor.h"

namespace sp::cpu {

// Calls fn.template operator()<I>() with I = int32_t or int64_t, index's element type.
template <typename F>
void dispatch_index(const Tensor& index, F&& fn) {
  if (index.dtype() == DType::i32) {
    fn.template operator()<int32_t>();
  } else {
    fn.template operator()<int64_t>();
  }
}

}  // namespace sp::cpu
