#pragma once
// Reductions over dims (empty dims: all), accumulated in f32 (f64 for f64 tensors).
#include <vector>

#include "tensor/tensor.h"

namespace sp {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Values of the max/min over one dim; the gradient goes to the first arg-max position.
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements, a scalar
// Indices (i64), not differentiable; ties give the first index.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace sp
