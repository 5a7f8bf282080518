#pragma once
// RMSNorm as T5LayerNorm: no mean subtraction, no bias, weight initialised to 1, variance
// in fp32 (a bf16/f16 weight gets the normalised value cast to its dtype first). The
// output is 16-bit when either x or the weight is (nn/mixed_dtype.h).
#include <cstdint>

#include "nn/module.h"

namespace sp {

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::f32);
  // x: [..., D] -> [..., D]
  Tensor forward(const Tensor& x) const;

  double eps() const { return eps_; }

  Tensor weight;  // [D]

 private:
  double eps_;
};

}  // namespace sp
