#pragma once
// The matmul epilogue as its own pass, for the combinations cuBLASLt does not fuse
// (accumulate with a gelu epilogue, a batched gelu, f64, an f32 bias on a 16-bit output,
// unaligned aux, K = 0): the product is computed first in the accumulation type, then
// this pass applies the rest of MatmulParams (backend.h) exactly as the CPU defines it.
#include <cuda_runtime.h>

#include <cstdint>

#include "tensor/backend.h"

namespace sp::cuda {

struct MatmulEpilogueArgs {
  const void* product = nullptr;  // [rows, n] f32 (f64 for f64 outputs); null: K = 0, a zero product
  void* out = nullptr;            // [rows, n] out_dtype; read when accumulate
  const void* bias = nullptr;     // [n] bias_dtype (out_dtype, or f32 for 16-bit outputs) or null
  void* aux = nullptr;            // [rows, n] out_dtype: written (gelu_tanh), read (dgelu_tanh)
  int64_t rows = 0;
  int64_t n = 0;
  DType out_dtype = DType::f32;
  DType bias_dtype = DType::f32;
  Epilogue epilogue = Epilogue::none;
  bool accumulate = false;
};

// pre = product + bias[col] (+ out); then out = pre, gelu_tanh(pre) (aux = pre), or
// pre * gelu_tanh'(aux). On the current device's stream; throws naming [matmul].
void launch_matmul_epilogue(const MatmulEpilogueArgs& args);

}  // namespace sp::cuda
