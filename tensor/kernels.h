#pragma once
// Raw dispatching entry points: validate arguments (throwing sp::Error naming the op and
// the shapes), allocate outputs, and call the tensor's backend. Not differentiable: the
// public ops in autograd/ops/ call these and record their backward.
#include <vector>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace sp::kernels {

// --- views (no data movement) -------------------------------------------------
Tensor view(const Tensor& x, const Shape& shape);  // -1 infers one dim; throws if not viewable
bool can_view(const Tensor& x, const Shape& shape);
Shape infer_shape(const Shape& shape, int64_t numel, const char* op);
Tensor permute(const Tensor& x, const Shape& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);

// --- copies and fills ------------------------------------------------------------
void fill_(Tensor& out, double value);
void copy_(Tensor& out, const Tensor& in);  // shapes must match; converts dtype and device
Tensor contiguous(const Tensor& x);         // x itself when already contiguous
Tensor cast(const Tensor& x, DType dtype);  // x itself when the dtype matches
Tensor to_device(const Tensor& x, Device device);
Tensor clone(const Tensor& x);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);

// --- elementwise --------------------------------------------------------------
Tensor unary(UnaryOp op, const Tensor& x, UnaryParams p = {});
Tensor activation_backward(ActivationGrad op, const Tensor& dy, const Tensor& x);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);        // broadcasting
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // broadcasting
// The binary ops with a scalar right operand, in x's dtype.
Tensor binary_scalar(BinaryOp op, const Tensor& x, double s);

// --- reductions ----------------------------------------------------------------
// dims empty: all dims. keepdim keeps reduced dims as size 1.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim);
// Sums x down to shape (the reverse of broadcasting), for gradients of broadcast inputs.
Tensor sum_to(const Tensor& x, const Shape& shape);

// --- matmul --------------------------------------------------------------------
// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch dims broadcast; f32, bf16 or f16
// with fp32 accumulation, f64 in f64. Transposed operands (views) are used without copying.
Tensor matmul(const Tensor& a, const Tensor& b, const MatmulParams& p = {});
// out += a @ b, for accumulating gradients in place.
void matmul_into(Tensor& out, const Tensor& a, const Tensor& b, const MatmulParams& p);

// --- fused ----------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim, bool log);
Tensor softmax_backward(const Tensor& dy, const Tensor& y, int64_t dim, bool log);
// softmax(x + bias) over the last dim, bias broadcastable with x (same dtype and device):
// bit for bit softmax(add(x, bias), -1, false), with the sum kept out of memory where the
// backend fuses the two (the CPU does).
Tensor add_softmax(const Tensor& x, const Tensor& bias);
struct RmsNormResult {
  Tensor out;
  Tensor rstd;  // [rows] f32
};
RmsNormResult rms_norm(const Tensor& x, const Tensor& weight, double eps);
struct RmsNormGrads {
  Tensor dx;
  Tensor dweight;
};
RmsNormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                               const Tensor& rstd, bool need_dx, bool need_dweight);
Tensor embedding(const Tensor& weight, const Tensor& ids);  // -> [*ids.shape, D]
Tensor embedding_backward(const Tensor& dy, const Tensor& ids, int64_t vocab, DType dtype);
struct CrossEntropyResult {
  Tensor loss;  // [R] f32, 0 where ignored
  Tensor lse;   // [R] f32
};
// logits: [..., V], targets: [...] integer.
CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                 double z_loss);
Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& lse, int64_t ignore_index, double z_loss);
Tensor dropout(const Tensor& x, double p, PhiloxState state);
void random_(Tensor& out, DistributionParams d, PhiloxState state);

// --- indexing ---------------------------------------------------------------------
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);

}  // namespace sp::kernels
