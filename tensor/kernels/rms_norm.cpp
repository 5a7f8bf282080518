// RMS norm (T5's layer norm): validation and output allocation around the fused backend
// kernels. Dtypes: out has weight's dtype (x's when there is no weight), as Hugging Face's
// T5LayerNorm produces; rstd is f32, or f64 when x or weight is f64 (so gradcheck sees
// f64 accuracy).
#include <cmath>

#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

DType out_dtype(const Tensor& x, const Tensor& weight) {
  return weight.defined() ? weight.dtype() : x.dtype();
}

DType rstd_dtype(const Tensor& x, const Tensor& weight) {
  const bool f64 = x.dtype() == DType::f64 || (weight.defined() && weight.dtype() == DType::f64);
  return f64 ? DType::f64 : DType::f32;
}

void check_inputs(const char* op, const Tensor& x, const Tensor& weight) {
  SP_CHECK(x.defined(), "[", op, "] x is undefined");
  SP_CHECK(x.dim() >= 1, "[", op, "] x must have at least one dim: x is ", describe(x));
  SP_CHECK(is_floating(x.dtype()), "[", op, "] unsupported dtype ", dtype_name(x.dtype()),
           ": expected a floating dtype (f32, bf16, f16, f64)");
  if (!weight.defined()) return;
  SP_CHECK(weight.dim() == 1 && weight.size(0) == x.size(-1), "[", op,
           "] weight must be [D] with D = x's last dim: x is ", describe(x), ", weight is ",
           describe(weight));
  SP_CHECK(is_floating(weight.dtype()), "[", op, "] unsupported weight dtype ",
           dtype_name(weight.dtype()), ": expected a floating dtype (f32, bf16, f16, f64)");
  SP_CHECK(weight.device() == x.device(), "[", op, "] x and weight on different devices: x on ",
           x.device(), ", weight on ", weight.device());
}

// x: [..., D] contiguous -> a [R, D] view.
Tensor rows(const Tensor& x) {
  const int64_t d = x.size(-1);
  return view(x, Shape{x.numel() / d, d});
}

}  // namespace

// x: [..., D], weight: [D] or undefined -> out [..., D], rstd [R] (R = x.numel() / D)
RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  check_inputs("rms_norm", x, weight);
  SP_CHECK(eps >= 0, "[rms_norm] eps must be >= 0: eps is ", eps);
  Shape row_shape = x.shape();
  row_shape.pop_back();
  const Shape rstd_shape{row_shape.numel()};
  RmsNormResult res;
  res.out = Tensor::empty(x.shape(), out_dtype(x, weight), x.device());
  res.rstd = Tensor::empty(rstd_shape, rstd_dtype(x, weight), x.device());
  if (res.rstd.numel() == 0) return res;
  if (x.size(-1) == 0) {
    fill_(res.rstd, 1.0 / std::sqrt(eps));
    return res;
  }
  const Tensor xr = rows(contiguous(x));
  const Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  Tensor out = rows(res.out);
  backend_for(x).rms_norm(out, res.rstd, xr, w, eps);
  return res;
}

// dy: [..., D] (the forward output's dtype), x: [..., D], weight: [D] or undefined,
// rstd: [R] -> dx [..., D] (x's dtype) and dweight [D] (weight's dtype), each only when
// asked for.
RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                               const Tensor& rstd, bool need_dx, bool need_dweight) {
  check_inputs("rms_norm_backward", x, weight);
  SP_CHECK(dy.defined() && dy.shape() == x.shape(),
           "[rms_norm_backward] dy must have x's shape: dy is ", describe(dy), ", x is ",
           describe(x));
  Shape row_shape = x.shape();
  row_shape.pop_back();
  const Shape rstd_shape{row_shape.numel()};
  SP_CHECK(rstd.defined() && rstd.shape() == rstd_shape && rstd.dtype() == rstd_dtype(x, weight),
           "[rms_norm_backward] rstd must be ", rstd_shape, " ", dtype_name(rstd_dtype(x, weight)),
           ": rstd is ", describe(rstd));
  SP_CHECK(!need_dweight || weight.defined(),
           "[rms_norm_backward] dweight asked for without a weight");
  RmsNormGrads res;
  if (need_dx) res.dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (need_dweight) res.dweight = Tensor::empty(weight.shape(), weight.dtype(), weight.device());
  if (!need_dx && !need_dweight) return res;
  if (x.numel() == 0) {
    if (need_dweight) fill_(res.dweight, 0);
    return res;
  }
  const Tensor xr = rows(contiguous(x));
  const Tensor gr = rows(contiguous(cast(dy, out_dtype(x, weight))));
  const Tensor w = weight.defined() ? contiguous(weight) : Tensor();
  const Tensor rs = contiguous(rstd);
  Tensor dx = need_dx ? rows(res.dx) : Tensor();
  Tensor dw = res.dweight;
  backend_for(x).rms_norm_backward(dx, dw, gr, xr, w, rs);
  return res;
}

}  // namespace sp::kernels
