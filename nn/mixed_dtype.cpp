#include "nn/mixed_dtype.h"

#include "autograd/ops.h"

namespace sp {

DType narrower_dtype(DType a, DType b) { return dtype_size(b) < dtype_size(a) ? b : a; }

Tensor cast_if_needed(const Tensor& t, DType d) { return t.dtype() == d ? t : cast(t, d); }

std::optional<DType> meeting_dtype(DType a, DType b) {
  if (a == b) return a;
  const DType narrow = narrower_dtype(a, b);
  if (dtype_size(narrow) != 2 || dtype_size(a) == dtype_size(b)) return std::nullopt;
  return narrow;
}

Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::optional<DType> d = meeting_dtype(x.dtype(), weight.dtype());
  if (!d) return linear(x, weight, bias);  // reports the mismatch
  return linear(cast_if_needed(x, *d), cast_if_needed(weight, *d),
                bias.defined() ? cast_if_needed(bias, *d) : bias);
}

}  // namespace sp
