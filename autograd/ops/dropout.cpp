// Dropout with a mask regenerated from its Philox state: backward saves no mask tensor.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// x: [*] -> [*]. The gradient is dropout of the gradient with the same state (the same
// mask and scale), itself differentiable.
Tensor dropout_with_state(const Tensor& x, double p, PhiloxState state) {
  Tensor out = kernels::dropout(x, p, state);
  record("dropout", out, {x}, [p, state](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, dropout_with_state(g, p, state));
  });
  return out;
}

}  // namespace

// x: [*] -> [*]
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  SP_CHECK(p >= 0 && p < 1, "[dropout] p must be in [0, 1): p is ", p);
  if (!training || p == 0) return x;
  Generator& g = gen ? *gen : default_generator();
  return dropout_with_state(x, p, g.next());
}

}  // namespace sp
