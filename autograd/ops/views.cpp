// Tensor's differentiable views and conversions (declared in tensor/tensor.h).
#include "autograd/node.h"
#include "autograd/ops/elementwise.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// The gradient of a view that picks part of its input: zeros with g copied into the part.
template <typename MakeView>
Tensor scatter_into_zeros(const Tensor& g, const Shape& input_shape, MakeView make_view) {
  Tensor full = Tensor::zeros(input_shape, g.dtype(), g.device());
  Tensor part = make_view(full);
  kernels::copy_(part, g);
  return full;
}

}  // namespace

Tensor Tensor::reshape(const Shape& shape) const {
  const Shape target = kernels::infer_shape(shape, numel(), "reshape");
  if (kernels::can_view(*this, target)) return view(target);
  Tensor out = kernels::view(kernels::contiguous(*this), target);
  record("reshape", out, {*this}, [in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.reshape(in_shape));
  });
  return out;
}

Tensor Tensor::view(const Shape& shape) const {
  Tensor out = kernels::view(*this, shape);
  record("view", out, {*this}, [in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.reshape(in_shape));
  });
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape(Shape{1});
  const int s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  SP_CHECK(s <= e, "[flatten] start_dim ", start_dim, " comes after end_dim ", end_dim);
  Shape shape;
  for (int i = 0; i < s; ++i) shape.push_back(shape_[i]);
  int64_t merged = 1;
  for (int i = s; i <= e; ++i) merged *= shape_[i];
  shape.push_back(merged);
  for (int i = e + 1; i < dim(); ++i) shape.push_back(shape_[i]);
  return reshape(shape);
}

Tensor Tensor::permute(const Shape& dims) const {
  Tensor out = kernels::permute(*this, dims);
  Shape inverse;
  inverse.resize(dims.size());
  for (int i = 0; i < dims.size(); ++i) inverse[wrap_dim(dims[i], dim(), "permute")] = i;
  record("permute", out, {*this}, [inverse](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.permute(inverse));
  });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  Tensor out = kernels::transpose(*this, d0, d1);
  record("transpose", out, {*this}, [d0, d1](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.transpose(d0, d1));
  });
  return out;
}

Tensor Tensor::mT() const {
  SP_CHECK(dim() >= 2, "[mT] needs at least 2 dims, got ", shape_);
  return transpose(-2, -1);
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  Tensor out = kernels::slice(*this, dim, start, end, step);
  record("slice", out, {*this}, [=, in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, scatter_into_zeros(g, in_shape, [&](const Tensor& full) {
                    return kernels::slice(full, dim, start, end, step);
                  }));
  });
  return out;
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  SP_CHECK(this->dim() > 0, "[narrow] cannot narrow a 0-d tensor: it has no dims");
  const int d = wrap_dim(dim, this->dim(), "narrow");
  const int64_t n = shape_[d];
  if (start < 0) start += n;
  SP_CHECK(start >= 0 && length >= 0 && start + length <= n, "[narrow] start ", start,
           " and length ", length, " do not fit dim ", dim, " of size ", n);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  Tensor out = kernels::select(*this, dim, index);
  record("select", out, {*this}, [=, in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, scatter_into_zeros(g, in_shape, [&](const Tensor& full) {
                    return kernels::select(full, dim, index);
                  }));
  });
  return out;
}

Tensor Tensor::expand(const Shape& shape) const {
  Tensor out = kernels::expand(*this, shape);
  record("expand", out, {*this}, [in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, kernels::sum_to(g, in_shape));
  });
  return out;
}

Tensor Tensor::squeeze(int64_t dim) const {
  Tensor out = kernels::squeeze(*this, dim);
  record("squeeze", out, {*this}, [in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.reshape(in_shape));
  });
  return out;
}

Tensor Tensor::squeeze() const {
  Shape shape;
  for (int64_t d : shape_)
    if (d != 1) shape.push_back(d);
  return reshape(shape);
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  Tensor out = kernels::unsqueeze(*this, dim);
  record("unsqueeze", out, {*this}, [in_shape = shape_](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.reshape(in_shape));
  });
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = kernels::contiguous(*this);
  record("contiguous", out, {*this}, [](const Tensor& g, Inputs& in) { in.accumulate(0, g); });
  return out;
}

Tensor Tensor::to(DType dtype) const { return cast(*this, dtype); }

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor out = kernels::to_device(*this, device);
  record("to_device", out, {*this}, [from = this->device()](const Tensor& g, Inputs& in) {
    in.accumulate(0, g.to(from));
  });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = kernels::clone(*this);
  record("clone", out, {*this}, [](const Tensor& g, Inputs& in) { in.accumulate(0, g); });
  return out;
}

}  // namespace sp
