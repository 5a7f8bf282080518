#pragma once
// The device-generic optimizer path: the same updates as the fused CPU loops, built only
// from kernels:: primitives (elementwise ops, reductions, copies), so they run on any
// backend. Optimizer::step takes it for a parameter that is not on the CPU; tests force it
// on the CPU (ForceGenericPath) to compare it with the fused loops.
//
// Precision follows the fused loops: elementwise math in the update type (f32, f64 for f64
// parameters), every reduction in f64, scalars (learning-rate scale, clipping divisor)
// computed on the host in double from the reduced sums.
#include <cstdint>

#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace sp::optim {

// While alive, the optimizers and clip/check functions take the generic path for CPU
// tensors too (tests). Scopes nest; the flag is per thread.
class ForceGenericPath {
 public:
  ForceGenericPath();
  ~ForceGenericPath();
  ForceGenericPath(const ForceGenericPath&) = delete;
  ForceGenericPath& operator=(const ForceGenericPath&) = delete;
};

// Whether t's update goes through the generic path: t is off the CPU, or it is forced.
bool use_generic_path(const Tensor& t);

namespace generic {

// x op s with s a 0-d tensor of x's dtype and device: the scalar is rounded to x's dtype
// once, as the fused loops do, and the op is one rounding (not an affine x*a+b).
Tensor mul_s(const Tensor& x, double s);
Tensor add_s(const Tensor& x, double s);
Tensor div_s(const Tensor& x, double s);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor square(const Tensor& x);
// 1 / sqrt(x), as two correctly rounded ops (not an approximate rsqrt).
Tensor inv_sqrt(const Tensor& x);
// Sum of all elements of x (any float dtype), accumulated in f64, read on the host.
double sum_f64(const Tensor& x);
// Sum of x over one dim in f64: x's shape without that dim, f64.
Tensor sum_dim_f64(const Tensor& x, int64_t dim, bool keepdim);
// How many elements of x (any float dtype) are NaN or +-Inf.
int64_t count_non_finite(const Tensor& x);

}  // namespace generic
}  // namespace sp::optim
