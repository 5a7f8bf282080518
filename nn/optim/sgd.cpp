#include "nn/optim/sgd.h"

#include "nn/optim/optim_kernels.h"

namespace sp::optim {

using detail::load;
using detail::store;
using detail::update_t;

SGD::SGD(std::vector<Tensor> params, std::vector<std::string> names, SGDOptions options)
    : Optimizer("sgd", std::move(params), std::move(names)), options_(options) {
  SP_CHECK(options_.momentum >= 0 && options_.momentum < 1,
           "[sgd] momentum must be in [0, 1), got ", options_.momentum);
  SP_CHECK(!options_.nesterov || options_.momentum > 0, "[sgd] nesterov needs momentum > 0");
  SP_CHECK(options_.weight_decay >= 0, "[sgd] weight_decay must be >= 0, got ",
           options_.weight_decay);
}

std::vector<StateSlot> SGD::state_slots(const Shape& shape) const {
  if (options_.momentum > 0) return {{"momentum", shape}};
  return {};
}

namespace {

// x, g[, b]: [n] -> x[, b] updated in place
template <typename P>
void sgd_kernel(P* x, const P* g, detail::update_t<P>* b, int64_t n, double lr,
                const SGDOptions& o) {
  using C = detail::update_t<P>;
  const C wd = static_cast<C>(o.weight_decay), mu = static_cast<C>(o.momentum),
          step = static_cast<C>(lr);
  const bool nesterov = o.nesterov;
  detail::chunked_for(n, 3, [&](int64_t lo, int64_t hi) {
    if (!b) {
#pragma omp simd
      for (int64_t i = lo; i < hi; ++i) {
        const C xv = load<C>(x[i]);
        x[i] = store<P>(xv - step * (load<C>(g[i]) + wd * xv));
      }
      return;
    }
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const C xv = load<C>(x[i]);
      const C d = load<C>(g[i]) + wd * xv;
      const C bv = mu * b[i] + d;
      b[i] = bv;
      x[i] = store<P>(xv - step * (nesterov ? d + mu * bv : bv));
    }
  });
}

}  // namespace

void SGD::update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state, double lr,
                 int64_t) {
  SP_DISPATCH_FLOAT(param.dtype(), "sgd", [&]<typename P>() {
    using C = update_t<P>;
    C* b = state.empty() ? nullptr : state[0].template data<C>();
    sgd_kernel<P>(param.data<P>(), grad.data<P>(), b, param.numel(), lr, options_);
  });
}

}  // namespace sp::optim
