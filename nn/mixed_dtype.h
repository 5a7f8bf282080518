#pragma once
// Where dtypes meet in a model that mixes them. A bf16 run keeps the tensors it trains in
// f32 and casts the frozen rest to bf16 (experiments/training/dtype_policy.h); the layers
// then compute in the narrower dtype, so the frozen backbone keeps bf16's matmul speed and
// memory, and a trained f32 tensor is cast where it is used. The cast is differentiable:
// the f32 tensor gets an f32 gradient (autocast's rule for weights).
#include "tensor/tensor.h"

namespace sp {

// The dtype with fewer bytes per element; a when both have the same size.
DType narrower_dtype(DType a, DType b);

// t itself when it already has dtype d, else the autograd cast of t to d.
Tensor cast_if_needed(const Tensor& t, DType d);

// x W^T + b computed in the narrower of x's and W's dtypes (x, W and b cast to it).
Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace sp
