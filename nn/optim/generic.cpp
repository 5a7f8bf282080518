#include "nn/optim/generic.h"

#include <limits>

namespace sp::optim {
namespace {
thread_local int g_force_generic = 0;
}  // namespace

ForceGenericPath::ForceGenericPath() { ++g_force_generic; }
ForceGenericPath::~ForceGenericPath() { --g_force_generic; }

bool use_generic_path(const Tensor& t) { return !t.device().is_cpu() || g_force_generic > 0; }

namespace generic {

namespace {
Tensor scalar_like(const Tensor& x, double s) { return Tensor::scalar(s, x.dtype(), x.device()); }
}  // namespace

// x: [*] -> [*]
Tensor mul_s(const Tensor& x, double s) {
  return kernels::binary(BinaryOp::mul, x, scalar_like(x, s));
}
// x: [*] -> [*]
Tensor add_s(const Tensor& x, double s) {
  return kernels::binary(BinaryOp::add, x, scalar_like(x, s));
}
// x: [*] -> [*]
Tensor div_s(const Tensor& x, double s) {
  return kernels::binary(BinaryOp::div, x, scalar_like(x, s));
}
Tensor add(const Tensor& a, const Tensor& b) { return kernels::binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return kernels::binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return kernels::binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return kernels::binary(BinaryOp::div, a, b); }
Tensor square(const Tensor& x) { return kernels::unary(UnaryOp::square, x); }

// x: [*] -> [*]
Tensor inv_sqrt(const Tensor& x) {
  return kernels::unary(UnaryOp::reciprocal, kernels::unary(UnaryOp::sqrt, x));
}

// x: [*] -> host double
double sum_f64(const Tensor& x) {
  if (x.numel() == 0) return 0.0;
  return kernels::reduce(ReduceOp::sum, kernels::cast(x, DType::f64), {}, false).item<double>();
}

// x: [..., d, ...] -> [..., ...] (or [..., 1, ...] with keepdim), f64
Tensor sum_dim_f64(const Tensor& x, int64_t dim, bool keepdim) {
  return kernels::reduce(ReduceOp::sum, kernels::cast(x, DType::f64), {dim}, keepdim);
}

// x: [*] -> host count. |x| < inf is false for NaN and for +-Inf.
int64_t count_non_finite(const Tensor& x) {
  if (x.numel() == 0) return 0;
  const Tensor a = kernels::unary(UnaryOp::abs, kernels::cast(x, DType::f64));
  const Tensor finite = kernels::binary(
      BinaryOp::lt, a,
      Tensor::scalar(std::numeric_limits<double>::infinity(), DType::f64, a.device()));
  const int64_t n_finite = kernels::reduce(ReduceOp::sum, finite, {}, false).item<int64_t>();
  return x.numel() - n_finite;
}

}  // namespace generic
}  // namespace sp::optim
