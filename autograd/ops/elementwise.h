#pragma once
// Elementwise ops, differentiable unless noted. Binary ops broadcast (numpy rules) and
// need equal dtypes; gradients of broadcast inputs are summed back to their shapes.
#include "tensor/tensor.h"

namespace sp {

// x: [*], y: broadcastable -> [broadcast]
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send the gradient half to each
Tensor minimum(const Tensor& a, const Tensor& b);
// With a scalar, in x's dtype.
Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor neg(const Tensor& x);

Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApprox { none, tanh };  // none: the exact erf form
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::tanh);
Tensor silu(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);

// cond: bool, broadcastable with a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// x with value where mask (bool, broadcastable to x) is true; no gradient there.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// Comparisons: bool results, not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// Converts dtype; the gradient is cast back.
Tensor cast(const Tensor& x, DType dtype);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator+(double s, const Tensor& x) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add(x, -s); }
inline Tensor operator-(double s, const Tensor& x) { return add(neg(x), s); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul(x, 1.0 / s); }

}  // namespace sp
