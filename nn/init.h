#pragma once
// In-place initialisers for parameters, drawn from Philox (the default generator when gen
// is null). They run outside the graph and keep the tensor's handle and requires_grad.
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace sp::init {

// t: any floating shape, in place.
void normal_(Tensor& t, double mean = 0, double std = 1, Generator* gen = nullptr);
void uniform_(Tensor& t, double low = 0, double high = 1, Generator* gen = nullptr);
void constant_(Tensor& t, double value);
inline void zeros_(Tensor& t) { constant_(t, 0); }
inline void ones_(Tensor& t) { constant_(t, 1); }

}  // namespace sp::init
