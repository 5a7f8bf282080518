#pragma once
// Joining and indexing.
#include <vector>

#include "tensor/tensor.h"

namespace sp {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
// index: [n] i32/i64 -> x with dim resized to n; backward adds rows back (duplicates sum).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// index has x's rank; out[i][j] = x[i][index[i][j]] for dim 1.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace sp
