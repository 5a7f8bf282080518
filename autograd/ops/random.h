#pragma once
// Random tensors from Philox (not differentiable). The default generator when gen is null.
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sp {

Tensor uniform(const Shape& shape, double low = 0, double high = 1, DType dtype = DType::f32,
               Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean = 0, double std = 1, DType dtype = DType::f32,
              Generator* gen = nullptr);
// Integers in [low, high).
Tensor randint(const Shape& shape, int64_t low, int64_t high, DType dtype = DType::i64,
               Generator* gen = nullptr);
// bool, true with probability p.
Tensor bernoulli(const Shape& shape, double p, Generator* gen = nullptr);

}  // namespace sp
