// cat, stack, index_select and gather with their backward.
#include "autograd/ops/indexing.h"

#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {

// xs: k tensors [..., n_i, ...] -> [..., sum n_i, ...]; each gradient is its slice of g.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  Tensor out = kernels::cat(xs, dim);
  const int d = wrap_dim(dim, xs[0].dim(), "cat");
  std::vector<int64_t> sizes;
  sizes.reserve(xs.size());
  for (const Tensor& x : xs) sizes.push_back(x.size(d));
  record("cat", out, xs, [d, sizes = std::move(sizes)](const Tensor& g, Inputs& in) {
    int64_t offset = 0;
    for (int i = 0; i < in.size(); ++i) {
      if (in.needs_grad(i)) in.accumulate(i, g.narrow(d, offset, sizes[static_cast<size_t>(i)]));
      offset += sizes[static_cast<size_t>(i)];
    }
  });
  return out;
}

// xs: k tensors of one shape [...] -> [..., k, ...] with k at dim; as cat of unsqueezed
// views, so the backward is cat's.
Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  SP_CHECK(!xs.empty(), "[stack] needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    SP_CHECK(xs[i].defined(), "[stack] tensor ", i, " is undefined");
    SP_CHECK(xs[i].shape() == xs[0].shape(), "[stack] tensor ", i, " has shape ", xs[i].shape(),
             " but tensor 0 has ", xs[0].shape(), ": all shapes must be equal");
  }
  const int d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& x : xs) parts.push_back(x.unsqueeze(d));
  return cat(parts, d);
}

// x: [..., S, ...], index: [n] -> [..., n, ...]; backward adds g's slices back at the
// indexed positions (duplicates sum).
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = kernels::index_select(x, dim, index);
  const int d = wrap_dim(dim, x.dim(), "index_select");
  record("index_select", out, {x},
         [d, saved_index = SavedTensor(index), shape = x.shape(), device = x.device()](
             const Tensor& g, Inputs& in) {
           if (!in.needs_grad(0)) return;
           const Tensor zeros = Tensor::zeros(shape, g.dtype(), device);
           in.accumulate(0, kernels::index_add(zeros, d, saved_index.get(), g));
         });
  return out;
}

// x: [..., S, ...], index: x's rank -> index's shape; backward scatter-adds g into x's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  Tensor out = kernels::gather(x, dim, index);
  const int d = wrap_dim(dim, x.dim(), "gather");
  record("gather", out, {x},
         [d, saved_index = SavedTensor(index), shape = x.shape(), device = x.device()](
             const Tensor& g, Inputs& in) {
           if (!in.needs_grad(0)) return;
           const Tensor zeros = Tensor::zeros(shape, g.dtype(), device);
           in.accumulate(0, kernels::scatter_add(zeros, d, saved_index.get(), g));
         });
  return out;
}

}  // namespace sp
