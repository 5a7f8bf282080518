// Embedding lookup; the backward scatter-adds gradient rows into a [V, D] gradient.
#include "autograd/node.h"
#include "autograd/ops/nn.h"
#include "tensor/kernels.h"

namespace sp {

// weight: [V, D], ids: [...] i32/i64 -> [..., D]
Tensor embedding(const Tensor& weight, const Tensor& ids) {
  Tensor out = kernels::embedding(weight, ids);
  record("embedding", out, {weight},
         [saved_ids = SavedTensor(ids), vocab = weight.size(0), dtype = weight.dtype()](
             const Tensor& g, Inputs& in) {
           if (in.needs_grad(0))
             in.accumulate(0, kernels::embedding_backward(g, saved_ids.get(), vocab, dtype));
         });
  return out;
}

}  // namespace sp
