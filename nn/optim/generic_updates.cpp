// The device-generic updates of Adafactor, AdamW and SGD (see generic.h): the fused CPU
// loops' math, op for op, from kernels:: primitives. Each line names the fused expression
// it reproduces, so the two stay in step.
#include <algorithm>
#include <cmath>

#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "nn/optim/generic.h"
#include "nn/optim/sgd.h"

namespace sp::optim {

using namespace generic;

// param, grad: X's shape; state: v_row, v_col (factored) or v, then m with beta1.
void Adafactor::update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                               double lr, int64_t step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const AdafactorOptions& o = options_;
  const double decay = decay_at(step), rho = 1.0 - decay;
  const DType cdt = state_dtype(param.dtype());
  const Tensor g = kernels::cast(grad, cdt);
  const Tensor x = kernels::cast(param, cdt);
  const Tensor G = add_s(square(g), o.epsilon1);  // g^2 + eps1
  const auto axes = factored_axes(param.shape(), o);

  Tensor U;         // g * factor: the unscaled update
  double u2 = 0.0;  // sum of U^2, for the clipping divisor
  if (axes) {
    const int a0 = axes->first, a1 = axes->second;
    const double len0 = static_cast<double>(param.size(a0));
    const double len1 = static_cast<double>(param.size(a1));
    Tensor& v_row = state[0];
    Tensor& v_col = state[1];
    // v = decay v + (1 - decay) mean(G, axis), the mean taken in f64 and rounded once.
    const Tensor row_mean = kernels::cast(div_s(sum_dim_f64(G, a0, false), len0), cdt);
    const Tensor col_mean = kernels::cast(div_s(sum_dim_f64(G, a1, false), len1), cdt);
    kernels::copy_(v_row, add(mul_s(v_row, decay), mul_s(row_mean, rho)));
    kernels::copy_(v_col, add(mul_s(v_col, decay), mul_s(col_mean, rho)));
    // row factor = 1 / sqrt(v_row / mean(v_row, a1)); a1 inside v_row's shape (a0 removed).
    const int64_t a1_in_row = a1 > a0 ? a1 - 1 : a1;
    const Tensor row_norm = kernels::cast(div_s(sum_dim_f64(v_row, a1_in_row, true), len1), cdt);
    const Tensor row_factor = kernels::unsqueeze(inv_sqrt(div(v_row, row_norm)), a0);
    const Tensor col_factor = kernels::unsqueeze(inv_sqrt(v_col), a1);
    // The fused loops multiply by the factor of the earlier axis first.
    const Tensor& fi = a0 < a1 ? row_factor : col_factor;
    const Tensor& fj = a0 < a1 ? col_factor : row_factor;
    if (o.clipping_threshold) u2 = sum_f64(square(mul(mul(g, fi), fj)));  // (g fi fj)^2
    U = mul(g, mul(fi, fj));                                              // g (fi fj)
  } else {
    Tensor& v = state[0];
    const Tensor v_new = add(mul_s(v, decay), mul_s(G, rho));
    kernels::copy_(v, v_new);
    if (o.clipping_threshold) u2 = sum_f64(div(square(g), v_new));  // g^2 / v
    U = mul(g, inv_sqrt(v_new));                                    // g (1 / sqrt(v))
  }

  double clip = 1.0;
  if (o.clipping_threshold)
    clip = std::max(1.0, std::sqrt(u2 / static_cast<double>(n)) / *o.clipping_threshold);
  double scale = lr;
  if (o.multiply_by_parameter_scale)
    scale *= std::max(std::sqrt(sum_f64(square(x)) / static_cast<double>(n)), o.epsilon2);
  Tensor S = mul_s(U, scale / clip);  // k U
  if (o.beta1) {
    Tensor& m = state.back();
    S = add(mul_s(m, *o.beta1), mul_s(S, 1.0 - *o.beta1));  // beta1 m + (1 - beta1) k U
    kernels::copy_(m, S);
  }
  Tensor out = param;
  kernels::copy_(out, sub(mul_s(x, 1.0 - o.weight_decay_rate.value_or(0.0)), S));
}

// param, grad, m, v: [n]
void AdamW::update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                           double lr, int64_t step) {
  if (param.numel() == 0) return;
  const AdamWOptions& o = options_;
  const double t = static_cast<double>(step + 1);
  const double bc1 = o.bias_correction ? 1.0 - std::pow(o.beta1, t) : 1.0;
  const double bc2 = o.bias_correction ? 1.0 - std::pow(o.beta2, t) : 1.0;
  const DType cdt = state_dtype(param.dtype());
  const Tensor g = kernels::cast(grad, cdt);
  const Tensor x = kernels::cast(param, cdt);
  Tensor& m = state[0];
  Tensor& v = state[1];
  const Tensor mv = add(mul_s(m, o.beta1), mul_s(g, 1.0 - o.beta1));          // b1 m + b1c g
  const Tensor vv = add(mul_s(v, o.beta2), mul(mul_s(g, 1.0 - o.beta2), g));  // b2 v + b2c g g
  kernels::copy_(m, mv);
  kernels::copy_(v, vv);
  // keep x - step_size mv / (sqrt(vv) inv_sqrt_bc2 + eps)
  const Tensor denom = add_s(mul_s(kernels::unary(UnaryOp::sqrt, vv), 1.0 / std::sqrt(bc2)), o.eps);
  const Tensor upd = div(mul_s(mv, lr / bc1), denom);
  Tensor out = param;
  kernels::copy_(out, sub(mul_s(x, 1.0 - lr * o.weight_decay), upd));
}

// param, grad[, momentum]: [n]
void SGD::update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                         double lr, int64_t) {
  if (param.numel() == 0) return;
  const SGDOptions& o = options_;
  const DType cdt = state_dtype(param.dtype());
  const Tensor g = kernels::cast(grad, cdt);
  const Tensor x = kernels::cast(param, cdt);
  const Tensor d = add(g, mul_s(x, o.weight_decay));  // g + wd x
  Tensor dir = d;
  if (!state.empty()) {
    Tensor& b = state[0];
    const Tensor bv = add(mul_s(b, o.momentum), d);  // mu b + d
    kernels::copy_(b, bv);
    dir = o.nesterov ? add(d, mul_s(bv, o.momentum)) : bv;
  }
  Tensor out = param;
  kernels::copy_(out, sub(x, mul_s(dir, lr)));  // x - step dir
}

}  // namespace sp::optim
