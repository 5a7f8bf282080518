// Fills, copies and conversions between dtypes and devices.
#include "tensor/cuda_hooks.h"
#include "tensor/kernels.h"

namespace sp::kernels {

void fill_(Tensor& out, double value) {
  SP_CHECK(out.defined(), "[fill] undefined tensor");
  if (out.numel() == 0) return;
  backend_for(out).fill(out, value);
  out.storage()->bump_version();
}

void copy_(Tensor& out, const Tensor& in) {
  SP_CHECK(out.defined() && in.defined(), "[copy] undefined tensor");
  SP_CHECK(out.shape() == in.shape(), "[copy] shapes differ: out is ", describe(out), ", in is ",
           describe(in));
  if (out.numel() == 0) return;
  // A copy between devices is done by the device side, whichever it is.
  const Device side = out.device().is_cpu() ? in.device() : out.device();
  backend_for(side.type).copy(out, in);
  out.storage()->bump_version();
}

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_(out, x);
  return out;
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  copy_(out, x);
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  SP_CHECK(device.is_cpu() || cuda_available(), "[to] cannot move ", describe(x), " to ", device,
           ": ", cuda_unavailable_reason());
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  copy_(out, x);
  return out;
}

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_(out, x);
  return out;
}

}  // namespace sp::kernels
