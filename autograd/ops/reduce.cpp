// Differentiable reductions. Backward passes run under NoGradGuard, so they call kernels
// directly: the gradient of a sum is a broadcast view of g, nothing is materialised here.
#include <algorithm>

#include "autograd/node.h"
#include "autograd/ops/reduce.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// The reduced dims of a rank-`rank` tensor, wrapped and ascending (all when dims is empty).
// kernels::reduce has already validated dims.
std::vector<int> reduced_dims(const std::vector<int64_t>& dims, int rank) {
  std::vector<int> out;
  if (rank == 0) return out;
  if (dims.empty()) {
    for (int d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, rank, "reduce"));
  std::sort(out.begin(), out.end());
  return out;
}

// g shaped like the reduction's output -> a view of g broadcast to in_shape.
Tensor expand_back(Tensor g, const Shape& in_shape, const std::vector<int>& dims, bool keepdim) {
  if (!keepdim)
    for (int d : dims) g = kernels::unsqueeze(g, d);
  return kernels::expand(g, in_shape);
}

// Values and gradient routing of max / min over one dim.
Tensor extreme(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  Tensor out = kernels::reduce(is_max ? ReduceOp::max : ReduceOp::min, x, {dim}, keepdim);
  if (!any_requires_grad({&x})) return out;
  const int d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), name);
  if (x.dim() == 0) {
    record(name, out, {x}, [](const Tensor& g, Inputs& in) { in.accumulate(0, g); });
    return out;
  }
  // The gradient goes to the first extreme position only, as the index ops report it.
  Tensor idx = kernels::reduce(is_max ? ReduceOp::argmax : ReduceOp::argmin, x, {dim}, true);
  record(name, out, {x},
         [idx, d, keepdim, shape = x.shape()](const Tensor& g, Inputs& in) {
           // idx is this op's own tensor (nothing else can write it): no SavedTensor needed.
           const Tensor gk = keepdim ? g : kernels::unsqueeze(g, d);
           const Tensor zeros = Tensor::zeros(shape, g.dtype(), g.device());
           in.accumulate(0, kernels::scatter_add(zeros, d, idx, gk));
         });
  return out;
}

}  // namespace

// x: [d0, ..., dn] -> dims removed (all when empty), or kept as 1 with keepdim.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = kernels::reduce(ReduceOp::sum, x, dims, keepdim);
  record("sum", out, {x},
         [rdims = reduced_dims(dims, x.dim()), keepdim, shape = x.shape()](const Tensor& g,
                                                                            Inputs& in) {
           in.accumulate(0, expand_back(g, shape, rdims, keepdim));
         });
  return out;
}

// x: [d0, ..., dn] -> dims removed (all when empty), or kept as 1 with keepdim.
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor out = kernels::reduce(ReduceOp::mean, x, dims, keepdim);
  const std::vector<int> rdims = reduced_dims(dims, x.dim());
  int64_t count = 1;
  for (int d : rdims) count *= x.shape()[d];
  record("mean", out, {x},
         [rdims, keepdim, count, shape = x.shape()](const Tensor& g, Inputs& in) {
           const Tensor scaled = kernels::binary_scalar(BinaryOp::mul, g, 1.0 / count);
           in.accumulate(0, expand_back(scaled, shape, rdims, keepdim));
         });
  return out;
}

// x: [..., n, ...] -> dim removed (or 1 with keepdim)
Tensor max(const Tensor& x, int64_t dim, bool keepdim) { return extreme(x, dim, keepdim, true); }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) { return extreme(x, dim, keepdim, false); }

// x: [*] -> [] (a scalar)
Tensor max(const Tensor& x) {
  if (!any_requires_grad({&x}) || x.dim() == 0) {
    Tensor out = kernels::reduce(ReduceOp::max, x, {}, false);
    record("max", out, {x}, [](const Tensor& g, Inputs& in) { in.accumulate(0, g); });
    return out;
  }
  return extreme(x.reshape(Shape{x.numel()}), 0, false, true);
}

// x: [..., n, ...] -> i64 indices with dim removed (or 1 with keepdim)
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  return kernels::reduce(ReduceOp::argmax, x, {dim}, keepdim);
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  return kernels::reduce(ReduceOp::argmin, x, {dim}, keepdim);
}

}  // namespace sp
