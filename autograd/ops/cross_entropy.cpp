// Differentiable cross-entropy: the fused kernel gives per-token losses and logsumexps; the
// backward recomputes softmax from the saved logsumexp in one pass over the logits.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// Targets other than ignore_index and, when z_loss != 0, z_loss * the sum of their
// logsumexps squared (read on the host: small copies for GPU tensors).
struct KeptTargets {
  int64_t count = 0;
  double z_sum = 0;
};
KeptTargets kept_targets(const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                         double z_loss) {
  const auto on_host = [](const Tensor& t) {
    return kernels::contiguous(kernels::to_device(kernels::cast(t, DType::f64), Device::cpu()));
  };
  const Tensor t =
      kernels::contiguous(kernels::to_device(kernels::cast(targets, DType::i64), Device::cpu()));
  const Tensor l = z_loss != 0 ? on_host(lse) : Tensor();
  KeptTargets k;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.data<int64_t>()[i] == ignore_index) continue;
    ++k.count;
    if (z_loss != 0) k.z_sum += l.data<double>()[i] * l.data<double>()[i];
  }
  k.z_sum *= z_loss;
  return k;
}

}  // namespace

// logits: [..., V], targets: [...] -> [] (mean, sum) or [...] (none); f32, f64 for f64 logits
CrossEntropyParts cross_entropy_parts(const Tensor& logits, const Tensor& targets,
                                      const CrossEntropyOptions& options) {
  kernels::CrossEntropyResult r =
      kernels::cross_entropy(logits, targets, options.ignore_index, options.z_loss);
  CrossEntropyParts parts;
  Tensor& out = parts.loss;
  // d(out) / d(loss[r]) for reductions: 1 for sum, 1 / kept for mean (0 when nothing is
  // kept: the sum of the all-ignored losses is 0 and so is the mean, not 0 / 0).
  double scale = 1;
  if (options.reduction == Reduction::none) {
    out = r.loss;
  } else {
    const bool count = options.reduction == Reduction::mean || options.z_loss != 0;
    const KeptTargets kept =
        count ? kept_targets(targets, r.lse, options.ignore_index, options.z_loss) : KeptTargets{};
    if (options.reduction == Reduction::mean)
      scale = kept.count > 0 ? 1.0 / static_cast<double>(kept.count) : 0.0;
    out = kernels::reduce(ReduceOp::sum, r.loss, {}, false);
    if (options.reduction == Reduction::mean)
      out = kernels::binary_scalar(BinaryOp::mul, out, scale);
    parts.z_term = kept.z_sum * scale;
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
  return parts;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options) {
  return cross_entropy_parts(logits, targets, options).loss;
}

}  // namespace sp
