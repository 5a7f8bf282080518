// Differentiable softmax and log-softmax; the backward is the fused kernel, fed with the
// forward output (not the input), so nothing but y is saved.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  Tensor out = kernels::softmax(x, dim, log);
  record(log ? "log_softmax" : "softmax", out, {x},
         [saved_y = SavedTensor(out), dim, log](const Tensor& g, Inputs& in) {
           in.accumulate(0, kernels::softmax_backward(g, saved_y.get(), dim, log));
         });
  return out;
}

}  // namespace

// x, bias: broadcastable -> [broadcast], normalised along the last dim. The backward is
// softmax's, summed back to each input's shape as add's is.
Tensor add_softmax(const Tensor& x, const Tensor& bias) {
  Tensor out = kernels::add_softmax(x, bias);
  record(
      "add_softmax", out, {x, bias},
      [saved_y = SavedTensor(out), xs = x.shape(), bs = bias.shape()](const Tensor& g, Inputs& in) {
        const Tensor dz = kernels::softmax_backward(g, saved_y.get(), -1, false);
        if (in.needs_grad(0)) in.accumulate(0, kernels::sum_to(dz, xs));
        if (in.needs_grad(1)) in.accumulate(1, kernels::sum_to(dz, bs));
      });
  return out;
}

// x: [..., D, ...] -> same shape, normalised along dim
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace sp
