#pragma once
// Where dtypes meet in a model that mixes them. A bf16 run keeps the tensors it trains in
// f32 and casts the frozen rest to bf16 (experiments/training/dtype_policy.h); the layers
// then compute in the 16-bit dtype, so the frozen backbone keeps bf16's matmul speed and
// memory, and a trained f32 tensor is cast where it is used. The cast is differentiable:
// the f32 tensor gets an f32 gradient (autocast's rule for weights).
#include <optional>

#include "tensor/tensor.h"

namespace sp {

// The dtype with fewer bytes per element; a when both have the same size.
DType narrower_dtype(DType a, DType b);

// The dtype two tensors meet in: their common dtype, or the 16-bit one (bf16, f16) when the
// other is wider. Other pairs (f32 with f64, bf16 with f16) have none: nullopt, and the op's
// own dtype check reports them.
std::optional<DType> meeting_dtype(DType a, DType b);

// t itself when it already has dtype d, else the autograd cast of t to d.
Tensor cast_if_needed(const Tensor& t, DType d);

// x W^T + b computed in the dtype x and W meet in (x, W and b cast to it).
Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace sp
