#include "nn/mixed_dtype.h"

#include "autograd/ops.h"

namespace sp {

DType narrower_dtype(DType a, DType b) { return dtype_size(b) < dtype_size(a) ? b : a; }

Tensor cast_if_needed(const Tensor& t, DType d) { return t.dtype() == d ? t : cast(t, d); }

Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const DType d = narrower_dtype(x.dtype(), weight.dtype());
  return linear(cast_if_needed(x, d), cast_if_needed(weight, d),
                bias.defined() ? cast_if_needed(bias, d) : bias);
}

}  // namespace sp
