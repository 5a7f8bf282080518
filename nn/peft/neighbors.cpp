#include "nn/peft/neighbors.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/error.h"

namespace sp {
namespace {

// x: [n, D] -> x / ||x|| per row (a zero row stays zero).
Tensor normalize_rows(const Tensor& x) {
  Tensor norm = sqrt(sum(square(x), {1}, /*keepdim=*/true));
  return div(x, maximum(norm, Tensor::full(Shape{1, 1}, 1e-12, DType::f32, x.device())));
}

}  // namespace

std::vector<std::vector<Neighbor>> nearest_neighbors(const Tensor& vectors, const Tensor& embedding,
                                                     int64_t k, int64_t num_rows) {
  SP_CHECK(vectors.dim() == 2 && embedding.dim() == 2 && vectors.size(1) == embedding.size(1),
           "[neighbors] expected vectors [n, D] and embedding [V, D], got ", describe(vectors),
           " and ", describe(embedding));
  SP_CHECK(k >= 1, "[neighbors] k must be >= 1, got ", k);
  const int64_t V = num_rows < 0 ? embedding.size(0) : std::min(num_rows, embedding.size(0));
  NoGradGuard no_grad;
  Tensor a = normalize_rows(cast(vectors.detach(), DType::f32));
  Tensor e = normalize_rows(cast(embedding.detach().slice(0, 0, V), DType::f32));
  const std::vector<float> sim = matmul(a, e.mT()).to_vector<float>();  // [n, V]
  const int64_t n = vectors.size(0), kk = std::min(k, V);
  std::vector<std::vector<Neighbor>> out(n);
  std::vector<int64_t> order(V);
  for (int64_t i = 0; i < n; ++i) {
    const float* s = sim.data() + i * V;
    std::iota(order.begin(), order.end(), 0);
    // A NaN similarity (a non-finite embedding row) ranks last: compared as is, it would
    // break the strict ordering partial_sort needs.
    auto score = [s](int64_t x) {
      return std::isnan(s[x]) ? -std::numeric_limits<float>::infinity() : s[x];
    };
    std::partial_sort(order.begin(), order.begin() + kk, order.end(), [&](int64_t x, int64_t y) {
      const float sx = score(x), sy = score(y);
      return sx != sy ? sx > sy : x < y;
    });
    for (int64_t j = 0; j < kk; ++j) out[i].push_back({order[j], s[order[j]]});
  }
  return out;
}

}  // namespace sp
