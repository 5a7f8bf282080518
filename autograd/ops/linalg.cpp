// matmul and linear with their backward passes.
//
// Backward uses transposed views (no copies) and computes only the gradients an input
// needs, saving only the tensors those gradients read: a frozen weight costs neither a
// weight-gradient matmul nor keeping the layer's input alive.
#include "autograd/ops/linalg.h"

#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// x: [..., C] -> [R, C] with R the product of the leading dims; a view when the layout
// allows, else a dense copy.
Tensor as_rows(const Tensor& x) {
  const int64_t cols = x.shape().back();
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.dim(); ++i) rows *= x.shape()[i];
  const Shape shape{rows, cols};
  if (kernels::can_view(x, shape)) return kernels::view(x, shape);
  return kernels::view(kernels::contiguous(x), shape);
}

// The matmul operand shape of x: a 1-D a is a row [1, K], a 1-D b a column [K, 1].
Shape as_matrix(const Shape& s, bool is_a) {
  if (s.size() != 1) return s;
  return is_a ? Shape{1, s[0]} : Shape{s[0], 1};
}

Tensor as_matrix(const Tensor& x, bool is_a) {
  if (x.dim() != 1) return x;
  return kernels::unsqueeze(x, is_a ? 0 : 1);
}

// d: the gradient of a broadcast operand at the output's batch shape -> summed back to
// the operand's matrix shape m, then viewed as its own shape s.
Tensor reduce_to(Tensor d, const Shape& m, const Shape& s) {
  if (d.shape() != m) d = kernels::sum_to(d, m);
  if (m != s) d = kernels::view(kernels::contiguous(d), s);
  return d;
}

bool has_batch(const Shape& s) {
  for (int i = 0; i + 2 < s.size(); ++i)
    if (s[i] != 1) return true;
  return false;
}

}  // namespace

// a: [..., M, K], b: [..., K, N] -> [..., M, N]
Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::matmul(a, b);
  if (!any_requires_grad({&a, &b})) return out;
  // da reads b and db reads a: keep only what will be read.
  SavedTensor saved_a(b.requires_grad() ? a : Tensor());
  SavedTensor saved_b(a.requires_grad() ? b : Tensor());
  record(
      "matmul", out, {a, b},
      [saved_a, saved_b, a_shape = a.shape(), b_shape = b.shape()](const Tensor& grad, Inputs& in) {
        const Shape am = as_matrix(a_shape, true), bm = as_matrix(b_shape, false);
        // g: [..., M, N] with the dims of 1-D operands restored.
        Tensor g = grad;
        if (a_shape.size() == 1) g = kernels::unsqueeze(g, g.dim() - (b_shape.size() == 1 ? 0 : 1));
        if (b_shape.size() == 1) g = kernels::unsqueeze(g, g.dim());
        if (in.needs_grad(0)) {
          const Tensor bt = kernels::transpose(as_matrix(saved_b.get(), false), -1, -2);
          in.accumulate(0, reduce_to(kernels::matmul(g, bt), am, a_shape));
        }
        if (in.needs_grad(1)) {
          const Tensor a2 = as_matrix(saved_a.get(), true);
          Tensor db;
          if (!has_batch(bm) && g.dim() > 2) {
            // b is shared by every batch: one [K, R] @ [R, N] product over all rows,
            // not a batch of products summed afterwards.
            db = kernels::matmul(kernels::transpose(as_rows(a2), 0, 1), as_rows(g));
            if (bm.size() > 2) db = kernels::view(db, bm);
          } else {
            db = kernels::matmul(kernels::transpose(a2, -1, -2), g);
          }
          in.accumulate(1, reduce_to(db, bm, b_shape));
        }
      });
  return out;
}

// x: [..., in], weight: [out, in], bias: [out] -> [..., out]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  SP_CHECK(x.defined() && weight.defined(), "[linear] undefined ", x.defined() ? "weight" : "x");
  SP_CHECK(weight.dim() == 2, "[linear] weight must be [out, in], got ", weight.shape());
  SP_CHECK(x.dim() >= 1 && x.shape().back() == weight.shape()[1],
           "[linear] input features differ: x is ", x.shape(), ", weight is ", weight.shape());
  const int64_t out_features = weight.shape()[0];
  if (bias.defined())
    SP_CHECK(bias.dim() == 1 && bias.numel() == out_features, "[linear] bias must be [",
             out_features, "], got ", bias.shape());

  // Leading dims flattened to rows: one matmul forward, and one for the weight gradient.
  const Tensor x2 = as_rows(x);  // [R, in]
  MatmulParams p;
  p.bias = bias.defined() ? &bias : nullptr;
  Tensor y2 = kernels::matmul(x2, kernels::transpose(weight, 0, 1), p);  // [R, out]
  Shape y_shape = x.shape();
  y_shape.back() = out_features;
  Tensor y = kernels::view(y2, y_shape);
  if (!any_requires_grad({&x, &weight, &bias})) return y;

  SavedTensor saved_x(weight.requires_grad() ? x2 : Tensor());
  SavedTensor saved_w(x.requires_grad() ? weight : Tensor());
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  record("linear", y, inputs,
         [saved_x, saved_w, x_shape = x.shape()](const Tensor& grad, Inputs& in) {
           const Tensor g = as_rows(grad);  // [R, out]
           if (in.needs_grad(0))
             in.accumulate(0, kernels::view(kernels::matmul(g, saved_w.get()), x_shape));
           if (in.needs_grad(1))
             in.accumulate(1, kernels::matmul(kernels::transpose(g, 0, 1), saved_x.get()));
           if (in.size() > 2 && in.needs_grad(2))
             in.accumulate(2, kernels::reduce(ReduceOp::sum, g, {0}, false));
         });
  return y;
}

}  // namespace sp
