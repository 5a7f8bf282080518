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
         [y = out.detach(), dim, log](const Tensor& g, Inputs& in) {
           in.accumulate(0, kernels::softmax_backward(g, y, dim, log));
         });
  return out;
}

}  // namespace

// x: [..., D, ...] -> same shape, normalised along dim
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

}  // namespace sp
