// Random draws and dropout: validation, then the backend (see tensor/cpu/random.cpp for
// the per-element mapping from Philox words to values).
#include <cmath>
#include <limits>

#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

const char* distribution_name(Distribution d) {
  switch (d) {
    case Distribution::uniform: return "uniform";
    case Distribution::normal: return "normal";
    case Distribution::randint: return "randint";
    case Distribution::bernoulli: return "bernoulli";
  }
  return "random";
}

void check_params(const Tensor& out, const DistributionParams& d) {
  const char* op = distribution_name(d.kind);
  const DType dt = out.dtype();
  switch (d.kind) {
    case Distribution::uniform:
      SP_CHECK(is_floating(dt), "[", op, "] unsupported dtype ", dtype_name(dt),
               ": expected a floating dtype (f32, bf16, f16, f64)");
      SP_CHECK(std::isfinite(d.a) && std::isfinite(d.b) && d.a <= d.b, "[", op,
               "] needs finite low <= high: low is ", d.a, ", high is ", d.b);
      return;
    case Distribution::normal:
      SP_CHECK(is_floating(dt), "[", op, "] unsupported dtype ", dtype_name(dt),
               ": expected a floating dtype (f32, bf16, f16, f64)");
      SP_CHECK(std::isfinite(d.a) && std::isfinite(d.b) && d.b >= 0, "[", op,
               "] needs a finite mean and std >= 0: mean is ", d.a, ", std is ", d.b);
      return;
    case Distribution::randint: {
      SP_CHECK(dt != DType::boolean, "[", op, "] unsupported dtype bool");
      SP_CHECK(std::floor(d.a) == d.a && std::floor(d.b) == d.b && d.a < d.b, "[", op,
               "] needs integers low < high: low is ", d.a, ", high is ", d.b);
      // The bounds arrive as doubles: beyond 2^53 they would no longer be exact.
      SP_CHECK(std::abs(d.a) <= 9007199254740992.0 && std::abs(d.b) <= 9007199254740992.0, "[", op,
               "] bounds must be within +-2^53: low is ", d.a, ", high is ", d.b);
      // The draw uses one 32-bit Philox word per element.
      SP_CHECK(d.b - d.a <= 4294967296.0, "[", op,
               "] range high - low must be at most 2^32: low is ", d.a, ", high is ", d.b);
      if (dt == DType::i32) {
        SP_CHECK(d.a >= std::numeric_limits<int32_t>::min() &&
                     d.b - 1 <= std::numeric_limits<int32_t>::max(),
                 "[", op, "] range [", d.a, ", ", d.b, ") does not fit i32");
      }
      return;
    }
    case Distribution::bernoulli:
      SP_CHECK(d.a >= 0 && d.a <= 1, "[", op, "] p must be in [0, 1]: p is ", d.a);
      return;
  }
}

}  // namespace

// out: any shape and layout -> overwritten with draws in row-major element order.
void random_(Tensor& out, DistributionParams d, PhiloxState state) {
  SP_CHECK(out.defined(), "[", distribution_name(d.kind), "] output is undefined");
  check_params(out, d);
  if (out.numel() == 0) return;
  Backend& backend = backend_for(out);
  if (out.is_contiguous()) {
    backend.random(out, d, state);
    out.storage()->bump_version();
    return;
  }
  Tensor tmp = Tensor::empty(out.shape(), out.dtype(), out.device());
  backend.random(tmp, d, state);
  copy_(out, tmp);
}

// x: [*] -> [*], same dtype; element i is kept (and scaled by 1 / (1 - p)) by its Philox
// word at (state, i), i the row-major index, so the same state gives the same mask.
Tensor dropout(const Tensor& x, double p, PhiloxState state) {
  SP_CHECK(p >= 0 && p < 1, "[dropout] p must be in [0, 1): p is ", p);
  SP_CHECK(is_floating(x.dtype()), "[dropout] unsupported dtype ", dtype_name(x.dtype()),
           ": expected a floating dtype (f32, bf16, f16, f64)");
  const Tensor xc = contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) backend_for(x).dropout(out, xc, p, state);
  return out;
}

}  // namespace sp::kernels
