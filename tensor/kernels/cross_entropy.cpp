// Fused cross-entropy: checks, flattening to [R, V] rows, and the per-row loss dtype.
#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

// Loss and logsumexp are f32, or f64 for f64 logits (gradcheck needs the precision).
DType loss_dtype(DType logits) { return logits == DType::f64 ? DType::f64 : DType::f32; }

// logits [..., V] and targets [...]: returns V; throws naming op otherwise.
int64_t check_shapes(const Tensor& logits, const Tensor& targets, const char* op) {
  SP_CHECK(logits.defined() && targets.defined(), "[", op, "] undefined tensor");
  SP_CHECK(is_floating(logits.dtype()), "[", op, "] logits need a floating dtype, got ",
           describe(logits));
  SP_CHECK(targets.dtype() == DType::i32 || targets.dtype() == DType::i64, "[", op,
           "] targets must be i32 or i64, got ", describe(targets));
  SP_CHECK(logits.device() == targets.device(), "[", op, "] logits are on ", logits.device(),
           ", targets on ", targets.device());
  SP_CHECK(logits.dim() >= 1, "[", op, "] logits need a vocab dim, got ", describe(logits));
  Shape lead = logits.shape();
  lead.pop_back();
  SP_CHECK(lead == targets.shape(), "[", op, "] targets ", describe(targets),
           " do not match logits ", describe(logits), ": expected targets of shape ", lead);
  const int64_t vocab = logits.shape().back();
  SP_CHECK(vocab > 0 || targets.numel() == 0, "[", op, "] logits have an empty vocab dim: ",
           describe(logits));
  return vocab;
}

// Targets as contiguous [R] i64 (the backend contract), checked to lie in [0, V) unless
// they are ignore_index. Reading them needs them on the host: a small copy for a GPU.
Tensor checked_targets(const Tensor& targets, int64_t vocab, int64_t ignore_index, const char* op) {
  Tensor t = view(contiguous(cast(targets, DType::i64)), Shape{targets.numel()});
  const Tensor host = to_device(t, Device::cpu());
  const int64_t* v = host.data<int64_t>();
  for (int64_t r = 0; r < host.numel(); ++r) {
    SP_CHECK(v[r] == ignore_index || (v[r] >= 0 && v[r] < vocab), "[", op,
             "] target out of range at row ", r, ": ", v[r], " is not in [0, ", vocab,
             ") nor the ignore_index ", ignore_index);
  }
  return t;
}

}  // namespace

// logits: [..., V], targets: [...] -> loss [...], lse [...].
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                 double z_loss) {
  const int64_t vocab = check_shapes(logits, targets, "cross_entropy");
  const int64_t rows = targets.numel();
  const Tensor t = checked_targets(targets, vocab, ignore_index, "cross_entropy");
  const Tensor x = view(contiguous(logits), Shape{rows, vocab});
  const DType ldt = loss_dtype(logits.dtype());
  Tensor loss = Tensor::empty(Shape{rows}, ldt, logits.device());
  Tensor lse = Tensor::empty(Shape{rows}, ldt, logits.device());
  backend_for(logits).cross_entropy(loss, lse, x, t, ignore_index, z_loss);
  return {view(loss, targets.shape()), view(lse, targets.shape())};
}

// dloss: [...], logits: [..., V], targets: [...], lse: [...] -> dlogits [..., V].
Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index, double z_loss) {
  const char* op = "cross_entropy_backward";
  const int64_t vocab = check_shapes(logits, targets, op);
  const int64_t rows = targets.numel();
  SP_CHECK(dloss.defined() && dloss.numel() == rows && lse.defined() && lse.numel() == rows, "[",
           op, "] dloss ", describe(dloss), " and lse ", describe(lse), " need ", rows,
           " elements, one per target");
  const DType ldt = loss_dtype(logits.dtype());
  const Tensor t = checked_targets(targets, vocab, ignore_index, op);
  const Tensor x = view(contiguous(logits), Shape{rows, vocab});
  const Tensor g = view(contiguous(cast(dloss, ldt)), Shape{rows});
  const Tensor l = view(contiguous(cast(lse, ldt)), Shape{rows});
  Tensor dx = Tensor::empty(Shape{rows, vocab}, logits.dtype(), logits.device());
  backend_for(logits).cross_entropy_backward(dx, g, x, t, l, ignore_index, z_loss);
  return view(dx, logits.shape());
}

}  // namespace sp::kernels
