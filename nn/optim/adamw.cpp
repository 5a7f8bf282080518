#include "nn/optim/adamw.h"

#include <cmath>

#include "nn/optim/optim_kernels.h"

namespace sp::optim {

using detail::load;
using detail::store;
using detail::update_t;

AdamW::AdamW(std::vector<Tensor> params, std::vector<std::string> names, AdamWOptions options)
    : Optimizer("adamw", std::move(params), std::move(names)), options_(options) {
  SP_CHECK(options_.beta1 >= 0 && options_.beta1 < 1, "[adamw] beta1 must be in [0, 1), got ",
           options_.beta1);
  SP_CHECK(options_.beta2 >= 0 && options_.beta2 < 1, "[adamw] beta2 must be in [0, 1), got ",
           options_.beta2);
  SP_CHECK(options_.eps > 0, "[adamw] eps must be > 0, got ", options_.eps);
  SP_CHECK(options_.weight_decay >= 0, "[adamw] weight_decay must be >= 0, got ",
           options_.weight_decay);
}

std::vector<StateSlot> AdamW::state_slots(const Shape& shape) const {
  return {{"m", shape}, {"v", shape}};
}

namespace {

struct AdamWScalars {
  double b1, b2, step_size, inv_sqrt_bc2, eps, keep;
};

// x, g, m, v: [b, e) updated in place
template <typename P, typename C>
void adamw_range(P* x, const P* g, C* m, C* v, int64_t b, int64_t e, C b1, C b1c, C b2, C b2c,
                 C step_size, C inv_sqrt_bc2, C eps, C keep) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const C gv = load<C>(g[i]);
    const C mv = b1 * m[i] + b1c * gv;
    const C vv = b2 * v[i] + b2c * gv * gv;
    m[i] = mv;
    v[i] = vv;
    x[i] = store<P>(keep * load<C>(x[i]) - step_size * mv / (std::sqrt(vv) * inv_sqrt_bc2 + eps));
  }
}

// x, g, m, v: [n] -> x, m, v updated in place
template <typename P>
void adamw_kernel(P* x, const P* g, detail::update_t<P>* m, detail::update_t<P>* v, int64_t n,
                  const AdamWScalars& s) {
  using C = detail::update_t<P>;
  const C b1 = static_cast<C>(s.b1), b1c = static_cast<C>(1.0 - s.b1);
  const C b2 = static_cast<C>(s.b2), b2c = static_cast<C>(1.0 - s.b2);
  const C step_size = static_cast<C>(s.step_size), inv_sqrt_bc2 = static_cast<C>(s.inv_sqrt_bc2);
  const C eps = static_cast<C>(s.eps), keep = static_cast<C>(s.keep);
  detail::chunked_for(n, 4, [&](int64_t b, int64_t e) {
    adamw_range(x, g, m, v, b, e, b1, b1c, b2, b2c, step_size, inv_sqrt_bc2, eps, keep);
  });
}

}  // namespace

void AdamW::update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state, double lr,
                   int64_t step) {
  const double t = static_cast<double>(step + 1);
  const double bc1 = options_.bias_correction ? 1.0 - std::pow(options_.beta1, t) : 1.0;
  const double bc2 = options_.bias_correction ? 1.0 - std::pow(options_.beta2, t) : 1.0;
  const AdamWScalars s{options_.beta1,       options_.beta2, lr / bc1,
                       1.0 / std::sqrt(bc2), options_.eps,   1.0 - lr * options_.weight_decay};
  SP_DISPATCH_FLOAT(param.dtype(), "adamw", [&]<typename P>() {
    using C = update_t<P>;
    adamw_kernel<P>(param.data<P>(), grad.data<P>(), state[0].template data<C>(),
                    state[1].template data<C>(), param.numel(), s);
  });
}

}  // namespace sp::optim
