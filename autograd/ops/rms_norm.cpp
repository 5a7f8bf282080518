// RMS norm with its fused backward: one pass over the rows gives dx and dweight, and
// a frozen weight (or a frozen x) costs nothing for the gradient it does not need.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {

// x: [..., D], weight: [D] or undefined -> [..., D]
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  kernels::RmsNormResult r = kernels::rms_norm(x, weight, eps);
  std::vector<Tensor> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  record("rms_norm", r.out, inputs,
         [saved_x = SavedTensor(x), saved_weight = SavedTensor(weight), rstd = r.rstd](
             const Tensor& g, Inputs& in) {
           const bool need_dx = in.needs_grad(0);
           const bool need_dw = in.size() > 1 && in.needs_grad(1);
           if (!need_dx && !need_dw) return;
           kernels::RmsNormGrads grads = kernels::rms_norm_backward(
               g, saved_x.get(), saved_weight.get(), rstd, need_dx, need_dw);
           if (need_dx) in.accumulate(0, grads.dx);
           if (need_dw) in.accumulate(1, grads.dweight);
         });
  return r.out;
}

}  // namespace sp
