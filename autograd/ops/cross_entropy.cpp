// Differentiable cross-entropy: the fused kernel gives per-token losses and logsumexps; the
// backward recomputes softmax from the saved logsumexp in one pass over the logits.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// Targets other than ignore_index (read on the host: a small copy for a GPU tensor).
int64_t count_kept(const Tensor& targets, int64_t ignore_index) {
  const Tensor host =
      kernels::contiguous(kernels::to_device(kernels::cast(targets, DType::i64), Device::cpu()));
  const int64_t* t = host.data<int64_t>();
  int64_t kept = 0;
  for (int64_t i = 0; i < host.numel(); ++i) kept += t[i] != ignore_index;
  return kept;
}

}  // namespace

// logits: [..., V], targets: [...] -> [] (mean, sum) or [...] (none); f32, f64 for f64 logits
Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options) {
  kernels::CrossEntropyResult r =
      kernels::cross_entropy(logits, targets, options.ignore_index, options.z_loss);
  Tensor out;
  // d(out) / d(loss[r]) for reductions: 1 for sum, 1 / kept for mean (0 when nothing is
  // kept: the sum of the all-ignored losses is 0 and so is the mean, not 0 / 0).
  double scale = 1;
  switch (options.reduction) {
    case Reduction::none: out = r.loss; break;
    case Reduction::sum: out = kernels::reduce(ReduceOp::sum, r.loss, {}, false); break;
    case Reduction::mean: {
      const int64_t kept = count_kept(targets, options.ignore_index);
      scale = kept > 0 ? 1.0 / static_cast<double>(kept) : 0.0;
      out = kernels::binary_scalar(BinaryOp::mul, kernels::reduce(ReduceOp::sum, r.loss, {}, false),
                                   scale);
      break;
    }
  }
  record("cross_entropy", out, {logits},
         [saved_logits = SavedTensor(logits), saved_targets = SavedTensor(targets), lse = r.lse,
          options, scale](const Tensor& g, Inputs& in) {
           const Tensor& targets = saved_targets.get();
           const Tensor dloss =
               options.reduction == Reduction::none
                   ? g
                   : kernels::expand(kernels::binary_scalar(BinaryOp::mul, g, scale),
                                     targets.shape());
           in.accumulate(0, kernels::cross_entropy_backward(dloss, saved_logits.get(), targets, lse,
                                                            options.ignore_index, options.z_loss));
         });
  return out;
}

}  // namespace sp
