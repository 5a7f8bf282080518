// Reductions: argument checks, output dtypes, keepdim, and sum_to for broadcast gradients.
#include <algorithm>
#include <numeric>

#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

bool is_arg(ReduceOp op) { return op == ReduceOp::argmax || op == ReduceOp::argmin; }

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// sum of integers and bools counts in i64; arg ops give i64 indices; the rest keep the dtype.
DType out_dtype(ReduceOp op, DType in) {
  if (is_arg(op)) return DType::i64;
  if (op == ReduceOp::sum && !is_floating(in)) return DType::i64;
  return in;
}

// A dim order in which x is a contiguous view (x transposed or permuted in memory), so the
// reduction reads it in place instead of copying. False when there is none.
bool dense_order(const Tensor& x, Shape& perm) {
  perm.resize(x.dim());
  std::iota(perm.begin(), perm.end(), int64_t{0});
  // Size-1 dims go outermost; the rest by decreasing stride.
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    const bool a1 = x.shape()[a] == 1, b1 = x.shape()[b] == 1;
    if (a1 != b1) return a1;
    return !a1 && x.strides()[a] > x.strides()[b];
  });
  return permute(x, perm).is_contiguous();
}

}  // namespace

// x: [d0, ..., dn] -> the dims in `dims` removed (all when empty), or kept as 1 with keepdim.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const char* name = reduce_name(op);
  SP_CHECK(x.defined(), "[", name, "] undefined tensor");
  if (is_arg(op)) {
    SP_CHECK(dims.size() == 1, "[", name, "] needs exactly one dim, got ", dims.size(), " ",
             dims_str(dims), " for x ", describe(x));
  }
  SP_CHECK(op != ReduceOp::mean || is_floating(x.dtype()), "[mean] needs a floating dtype, x is ",
           describe(x));
  const DType odt = out_dtype(op, x.dtype());

  if (x.dim() == 0) {
    // A scalar reduces to itself; dim 0 and -1 name its one element, as in PyTorch.
    for (int64_t d : dims)
      SP_CHECK(d == 0 || d == -1, "[", name, "] dim ", d, " is out of range for a scalar");
    if (is_arg(op)) return Tensor::zeros(Shape{}, DType::i64, x.device());
    return clone(cast(x, odt));
  }

  const int rank = x.dim();
  uint32_t mask = 0;
  for (int64_t d : dims) {
    const int w = wrap_dim(d, rank, name);
    SP_CHECK(!((mask >> w) & 1u), "[", name, "] dim ", d, " is given twice in ", dims_str(dims),
             " for x ", describe(x));
    mask |= 1u << w;
  }
  if (dims.empty()) mask = (1u << rank) - 1;

  Shape kept = x.shape();
  int64_t extent = 1;
  for (int d = 0; d < rank; ++d) {
    if (!((mask >> d) & 1u)) continue;
    extent *= x.shape()[d];
    kept[d] = 1;
  }
  SP_CHECK(extent > 0 || kept.numel() == 0 || op == ReduceOp::sum || op == ReduceOp::mean, "[",
           name, "] cannot reduce over an empty dim: x is ", describe(x), ", dims ", dims_str(dims));

  // A broadcast (stride-0) dim that is reduced repeats one value: read it once, and for a
  // sum scale by the repeat count afterwards. Gradients of broadcasts arrive as such views.
  Tensor src = x;
  double repeat = 1;
  if (extent > 0) {
    for (int d = 0; d < rank; ++d) {
      if (!((mask >> d) & 1u) || x.strides()[d] != 0 || x.shape()[d] <= 1) continue;
      src = slice(src, d, 0, 1);
      if (op == ReduceOp::sum) repeat *= static_cast<double>(x.shape()[d]);
    }
  }
  // Read src in place when it is a permutation of a contiguous layout; else copy it.
  uint32_t src_mask = mask;
  Shape perm;
  bool permuted = false;
  if (!src.is_contiguous()) {
    if (dense_order(src, perm)) {
      src = permute(src, perm);
      src_mask = 0;
      for (int i = 0; i < rank; ++i) src_mask |= ((mask >> perm[i]) & 1u) << i;
      permuted = true;
    } else {
      src = contiguous(src);
    }
  }
  Shape src_kept = src.shape();
  for (int i = 0; i < rank; ++i)
    if ((src_mask >> i) & 1u) src_kept[i] = 1;
  Tensor out = Tensor::empty(src_kept, odt, x.device());
  backend_for(x).reduce(op, out, src, src_mask);
  if (repeat != 1) out = binary_scalar(BinaryOp::mul, out, repeat);
  if (permuted) {
    Shape inverse;
    inverse.resize(rank);
    for (int i = 0; i < rank; ++i) inverse[perm[i]] = i;
    out = permute(out, inverse);
  }
  if (keepdim) return out;
  Shape shape, strides;
  for (int d = 0; d < rank; ++d) {
    if ((mask >> d) & 1u) continue;
    shape.push_back(out.shape()[d]);
    strides.push_back(out.strides()[d]);
  }
  return out.as_strided(shape, strides, out.offset());
}

// x: [*lead, s0, ..., sk] -> shape [s0', ..., sk'] where each si' is si or 1.
Tensor sum_to(const Tensor& x, const Shape& shape) {
  SP_CHECK(x.defined(), "[sum_to] undefined tensor");
  if (x.shape() == shape) return x;
  const int lead = x.dim() - shape.size();
  SP_CHECK(lead >= 0, "[sum_to] cannot sum ", describe(x), " to ", shape, ": more dims than x");
  std::vector<int64_t> dims;
  for (int d = 0; d < lead; ++d) dims.push_back(d);
  for (int i = 0; i < shape.size(); ++i) {
    const int64_t have = x.shape()[lead + i];
    SP_CHECK(shape[i] == have || shape[i] == 1, "[sum_to] cannot sum ", describe(x), " to ", shape,
             ": dim ", lead + i, " is ", have, ", target ", shape[i]);
    if (shape[i] == 1 && have != 1) dims.push_back(lead + i);
  }
  if (dims.empty()) return view(x, shape);
  Tensor out = reduce(ReduceOp::sum, x, dims, true);
  return can_view(out, shape) ? view(out, shape) : view(contiguous(out), shape);
}

}  // namespace sp::kernels
