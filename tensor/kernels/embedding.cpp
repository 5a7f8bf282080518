// Embedding lookup and its backward: validation (every id in range) and allocation.
#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

void check_ids(const char* op, const Tensor& ids, int64_t rows) {
  SP_CHECK(ids.defined() && (ids.dtype() == DType::i32 || ids.dtype() == DType::i64), "[", op,
           "] ids must be i32 or i64: ids are ", ids.defined() ? describe(ids) : "undefined");
  // Out-of-range ids would read or write outside the table, on any device: check on the
  // host (a small copy for device tensors).
  const Tensor host = ids.device().is_cpu() ? contiguous(ids) : to_device(ids, Device::cpu());
  const int64_t n = host.numel();
  auto scan = [&]<typename I>(const I* p) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t id = static_cast<int64_t>(p[i]);
      SP_CHECK(id >= 0 && id < rows, "[", op, "] id ", id, " at position ", i,
               " is out of range for a table of ", rows, " rows");
    }
  };
  if (host.dtype() == DType::i32) {
    scan(host.data<int32_t>());
  } else {
    scan(host.data<int64_t>());
  }
}

}  // namespace

// weight: [V, D], ids: [...] i32/i64 -> [..., D] in weight's dtype
Tensor embedding(const Tensor& weight, const Tensor& ids) {
  SP_CHECK(weight.defined() && weight.dim() == 2, "[embedding] weight must be [V, D]: weight is ",
           weight.defined() ? describe(weight) : "undefined");
  SP_CHECK(is_floating(weight.dtype()), "[embedding] unsupported dtype ",
           dtype_name(weight.dtype()), ": expected a floating dtype (f32, bf16, f16, f64)");
  check_ids("embedding", ids, weight.size(0));
  SP_CHECK(ids.device() == weight.device(),
           "[embedding] weight and ids on different devices: ", "weight on ", weight.device(),
           ", ids on ", ids.device());
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  if (out.numel() == 0) return out;
  const int64_t n = ids.numel();
  Tensor out_rows = view(out, Shape{n, weight.size(1)});
  backend_for(weight).embedding(out_rows, contiguous(weight), view(contiguous(ids), Shape{n}));
  return out;
}

// dy: [..., D], ids: [...] -> dweight [vocab, D] in dtype, zero where no id points.
// 16-bit gradients accumulate in f32 and are rounded once at the end.
Tensor embedding_backward(const Tensor& dy, const Tensor& ids, int64_t vocab, DType dtype) {
  SP_CHECK(is_floating(dtype), "[embedding_backward] unsupported dtype ", dtype_name(dtype),
           ": expected a floating dtype (f32, bf16, f16, f64)");
  SP_CHECK(dy.defined() && is_floating(dy.dtype()),
           "[embedding_backward] dy must be a floating tensor: dy is ",
           dy.defined() ? describe(dy) : "undefined");
  check_ids("embedding_backward", ids, vocab);
  bool prefix_ok = dy.dim() == ids.dim() + 1;
  for (int i = 0; prefix_ok && i < ids.dim(); ++i) prefix_ok = dy.size(i) == ids.size(i);
  SP_CHECK(prefix_ok, "[embedding_backward] dy must be [*ids.shape, D]: dy is ", describe(dy),
           ", ids are ", describe(ids));
  SP_CHECK(ids.device() == dy.device(),
           "[embedding_backward] dy and ids on different devices: ", "dy on ", dy.device(),
           ", ids on ", ids.device());
  const int64_t d = dy.size(-1);
  const DType acc = dtype == DType::f64 ? DType::f64 : DType::f32;
  Tensor dweight = Tensor::zeros(Shape{vocab, d}, acc, dy.device());
  const int64_t n = ids.numel();
  if (n > 0 && d > 0) {
    backend_for(dy).embedding_backward(dweight, view(contiguous(dy), Shape{n, d}),
                                       view(contiguous(ids), Shape{n}));
  }
  return cast(dweight, dtype);
}

}  // namespace sp::kernels
