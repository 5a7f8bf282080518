// Softmax / log-softmax along any dim: the backends work on the last dim of contiguous rows,
// so another dim is swapped to the end (a copy) and the result swapped back (a view).
#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

// x with dim d moved last and made contiguous.
Tensor rows_along(const Tensor& x, int d) {
  const int last = x.dim() - 1;
  return contiguous(d == last ? x : transpose(x, d, last));
}

Tensor undo_rows(const Tensor& out, int d) {
  const int last = out.dim() - 1;
  return d == last ? out : transpose(out, d, last);
}

int softmax_dim(const Tensor& x, int64_t dim, const char* name) {
  SP_CHECK(x.defined(), "[", name, "] undefined tensor");
  SP_CHECK(is_floating(x.dtype()), "[", name, "] needs a floating dtype, x is ", describe(x));
  if (x.dim() == 0) {
    SP_CHECK(dim == 0 || dim == -1, "[", name, "] dim ", dim, " is out of range for a scalar");
    return -1;
  }
  return wrap_dim(dim, x.dim(), name);
}

}  // namespace

// x: [..., D, ...] -> same shape, normalised along dim.
Tensor softmax(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  const int d = softmax_dim(x, dim, name);
  if (d < 0) {
    Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
    backend_for(x).softmax(out, contiguous(x), log);
    return out;
  }
  Tensor src = rows_along(x, d);
  Tensor out = Tensor::empty(src.shape(), x.dtype(), x.device());
  backend_for(x).softmax(out, src, log);
  return undo_rows(out, d);
}

// x, bias: broadcastable -> [broadcast], softmax(x + bias) over the last dim.
Tensor add_softmax(const Tensor& x, const Tensor& bias) {
  SP_CHECK(x.defined() && bias.defined(), "[add_softmax] undefined tensor");
  SP_CHECK(is_floating(x.dtype()), "[add_softmax] needs a floating dtype, scores are ",
           describe(x));
  SP_CHECK(x.dtype() == bias.dtype(), "[add_softmax] dtype mismatch: scores are ", describe(x),
           ", bias is ", describe(bias));
  SP_CHECK(x.device() == bias.device(), "[add_softmax] device mismatch: scores are on ", x.device(),
           ", bias on ", bias.device());
  const Shape shape = broadcast_shapes(x.shape(), bias.shape(), "add_softmax");
  const Tensor in = contiguous(expand(x, shape));
  Tensor b = expand(bias, shape);
  // The backends read bias rows at unit stride: a transposed bias, or one broadcast along
  // the last dim, is made so first.
  if (!shape.empty() && shape.back() > 1 && b.strides().back() != 1) b = contiguous(b);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  if (out.numel() > 0) backend_for(x).add_softmax(out, in, b);
  return out;
}

// dy, y: [..., D, ...] (y the forward output) -> dx, same shape.
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  const int d = softmax_dim(y, dim, name);
  SP_CHECK(dy.defined() && dy.shape() == y.shape(), "[", name, "] dy is ", describe(dy), ", y is ",
           describe(y));
  SP_CHECK(dy.device() == y.device(), "[", name, "] dy is on ", dy.device(), ", y on ", y.device());
  const Tensor g = cast(dy, y.dtype());
  if (d < 0) {
    Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
    backend_for(y).softmax_backward(dx, contiguous(g), contiguous(y), log);
    return dx;
  }
  const Tensor gs = rows_along(g, d), ys = rows_along(y, d);
  Tensor dx = Tensor::empty(ys.shape(), y.dtype(), y.device());
  backend_for(y).softmax_backward(dx, gs, ys, log);
  return undo_rows(dx, d);
}

}  // namespace sp::kernels
