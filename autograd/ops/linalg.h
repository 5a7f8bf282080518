#pragma once
// Matrix products on oneDNN (CPU) / cuBLASLt (GPU), f32 or bf16 with fp32 accumulation.
#include "tensor/tensor.h"

namespace sp {

// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch dims broadcast; transposed views
// (x.mT()) are used without copying. A 1-D a or b is treated as a row/column vector.
Tensor matmul(const Tensor& a, const Tensor& b);
// x: [..., in], weight: [out, in] (Hugging Face layout), bias: [out] or undefined.
// A frozen weight costs no weight-gradient matmul.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace sp
