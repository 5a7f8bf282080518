// Differentiable elementwise ops. Forward through kernels::; backward with these same ops
// (or a fused activation backward), gradients of broadcast inputs summed back to their
// shapes with kernels::sum_to.
#include "autograd/ops/elementwise.h"

#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// g: [broadcast] -> shape, the reverse of broadcasting an input of that shape (g itself
// when nothing was broadcast).
Tensor reduce_to(const Tensor& g, const Shape& shape) { return kernels::sum_to(g, shape); }

Tensor zeros_like_scalar(const Tensor& g) { return Tensor::scalar(0, g.dtype(), g.device()); }

// mask (bool) as 0 / 1 in dtype.
Tensor as_float(const Tensor& mask, DType dtype) { return kernels::cast(mask, dtype); }

Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, UnaryParams p, BackwardFn backward) {
  Tensor out = kernels::unary(op, x, p);
  record(name, out, {x}, std::move(backward));
  return out;
}

Tensor activation(const char* name, UnaryOp op, ActivationGrad grad_op, const Tensor& x) {
  Tensor out = kernels::unary(op, x);
  record(name, out, {x}, [saved_x = SavedTensor(x), grad_op](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, kernels::activation_backward(grad_op, g, saved_x.get()));
  });
  return out;
}

// The gradient weight of a in maximum / minimum: 1 where a wins, 0.5 on ties, 0 where b
// wins; b gets 1 - w. Splitting ties keeps the sum of both gradients equal to g.
Tensor winner_weight(const Tensor& a, const Tensor& b, BinaryOp wins) {
  const DType t = a.dtype();
  Tensor w = as_float(kernels::binary(wins, a, b), t);
  Tensor tie = as_float(kernels::binary(BinaryOp::eq, a, b), t);
  return kernels::binary(BinaryOp::add, w, kernels::binary_scalar(BinaryOp::mul, tie, 0.5));
}

Tensor extremum(const char* name, BinaryOp op, BinaryOp wins, const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(op, a, b);
  record(name, out, {a, b},
         [saved_a = SavedTensor(a), saved_b = SavedTensor(b), wins](const Tensor& g, Inputs& in) {
           const Tensor& a = saved_a.get();
           const Tensor& b = saved_b.get();
           const Tensor w = winner_weight(a, b, wins);
           if (in.needs_grad(0)) in.accumulate(0, reduce_to(mul(g, w), a.shape()));
           if (in.needs_grad(1)) {
             const Tensor wb = kernels::unary(UnaryOp::affine, w, {-1.0, 1.0});
             in.accumulate(1, reduce_to(mul(g, wb), b.shape()));
           }
         });
  return out;
}

Tensor comparison(BinaryOp op, const Tensor& a, const Tensor& b) {
  return kernels::binary(op, a, b);
}

}  // namespace

// a: [*], b: broadcastable -> [broadcast]
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(BinaryOp::add, a, b);
  record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, reduce_to(g, sa));
    if (in.needs_grad(1)) in.accumulate(1, reduce_to(g, sb));
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(BinaryOp::sub, a, b);
  record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, reduce_to(g, sa));
    if (in.needs_grad(1)) in.accumulate(1, reduce_to(neg(g), sb));
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(BinaryOp::mul, a, b);
  record("mul", out, {a, b},
         [saved_a = SavedTensor(a), saved_b = SavedTensor(b), sa = a.shape(), sb = b.shape()](
             const Tensor& g, Inputs& in) {
           if (in.needs_grad(0)) in.accumulate(0, reduce_to(mul(g, saved_b.get()), sa));
           if (in.needs_grad(1)) in.accumulate(1, reduce_to(mul(g, saved_a.get()), sb));
         });
  return out;
}

// d/da = 1 / b, d/db = -a / b^2 = -out / b.
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(BinaryOp::div, a, b);
  record("div", out, {a, b},
         [saved_b = SavedTensor(b), saved_y = SavedTensor(out), sa = a.shape(), sb = b.shape()](
             const Tensor& g, Inputs& in) {
           const Tensor g_over_b = div(g, saved_b.get());
           if (in.needs_grad(0)) in.accumulate(0, reduce_to(g_over_b, sa));
           if (in.needs_grad(1)) in.accumulate(1, reduce_to(neg(mul(g_over_b, saved_y.get())), sb));
         });
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum("maximum", BinaryOp::maximum, BinaryOp::gt, a, b);
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum("minimum", BinaryOp::minimum, BinaryOp::lt, a, b);
}

// x: [*] -> [*]
Tensor add(const Tensor& x, double s) {
  Tensor out = kernels::binary_scalar(BinaryOp::add, x, s);
  record("add_scalar", out, {x}, [](const Tensor& g, Inputs& in) { in.accumulate(0, g); });
  return out;
}

Tensor mul(const Tensor& x, double s) {
  Tensor out = kernels::binary_scalar(BinaryOp::mul, x, s);
  record("mul_scalar", out, {x}, [s](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, mul(g, s));
  });
  return out;
}

Tensor neg(const Tensor& x) {
  return unary_op("neg", UnaryOp::neg, x, {}, [](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, neg(g));
  });
}

Tensor exp(const Tensor& x) {
  Tensor out = kernels::unary(UnaryOp::exp, x);
  record("exp", out, {x}, [saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, mul(g, saved_y.get()));
  });
  return out;
}

Tensor log(const Tensor& x) {
  return unary_op("log", UnaryOp::log, x, {},
                  [saved_x = SavedTensor(x)](const Tensor& g, Inputs& in) {
                    if (in.needs_grad(0)) in.accumulate(0, div(g, saved_x.get()));
                  });
}

// d sqrt(x) = 1 / (2 sqrt(x)).
Tensor sqrt(const Tensor& x) {
  Tensor out = kernels::unary(UnaryOp::sqrt, x);
  record("sqrt", out, {x}, [saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, div(mul(g, 0.5), saved_y.get()));
  });
  return out;
}

// d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3.
Tensor rsqrt(const Tensor& x) {
  Tensor out = kernels::unary(UnaryOp::rsqrt, x);
  record("rsqrt", out, {x}, [saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, mul(mul(g, pow(saved_y.get(), 3)), -0.5));
  });
  return out;
}

// d x^p = p x^(p-1); zero for p = 0 (x^0 is the constant 1, even at x = 0).
Tensor pow(const Tensor& x, double exponent) {
  return unary_op("pow", UnaryOp::pow, x, {exponent, 0},
                  [saved_x = SavedTensor(x), exponent](const Tensor& g, Inputs& in) {
                    if (!in.needs_grad(0)) return;
                    if (exponent == 0) {
                      in.accumulate(0, mul(g, 0.0));
                      return;
                    }
                    in.accumulate(0, mul(mul(g, pow(saved_x.get(), exponent - 1)), exponent));
                  });
}

// d tanh = 1 - y^2.
Tensor tanh(const Tensor& x) {
  Tensor out = kernels::unary(UnaryOp::tanh, x);
  record("tanh", out, {x}, [saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, mul(g, add(neg(square(saved_y.get())), 1.0)));
  });
  return out;
}

// d sigmoid = y (1 - y).
Tensor sigmoid(const Tensor& x) {
  Tensor out = kernels::unary(UnaryOp::sigmoid, x);
  record("sigmoid", out, {x}, [saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
    if (!in.needs_grad(0)) return;
    const Tensor& y = saved_y.get();
    in.accumulate(0, mul(g, mul(y, add(neg(y), 1.0))));
  });
  return out;
}

Tensor relu(const Tensor& x) { return activation("relu", UnaryOp::relu, ActivationGrad::relu, x); }

// approx tanh is HF's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
Tensor gelu(const Tensor& x, GeluApprox approx) {
  if (approx == GeluApprox::tanh)
    return activation("gelu", UnaryOp::gelu_tanh, ActivationGrad::gelu_tanh, x);
  return activation("gelu", UnaryOp::gelu_erf, ActivationGrad::gelu_erf, x);
}

Tensor silu(const Tensor& x) { return activation("silu", UnaryOp::silu, ActivationGrad::silu, x); }

// d |x| = sign(x), 0 at 0.
Tensor abs(const Tensor& x) {
  return unary_op(
      "abs", UnaryOp::abs, x, {}, [saved_x = SavedTensor(x)](const Tensor& g, Inputs& in) {
        if (!in.needs_grad(0)) return;
        const Tensor& x = saved_x.get();
        const Tensor pos = as_float(kernels::binary_scalar(BinaryOp::gt, x, 0), x.dtype());
        const Tensor negative = as_float(kernels::binary_scalar(BinaryOp::lt, x, 0), x.dtype());
        in.accumulate(0, mul(g, sub(pos, negative)));
      });
}

Tensor square(const Tensor& x) {
  return unary_op("square", UnaryOp::square, x, {},
                  [saved_x = SavedTensor(x)](const Tensor& g, Inputs& in) {
                    if (in.needs_grad(0)) in.accumulate(0, mul(mul(g, saved_x.get()), 2.0));
                  });
}

// The gradient passes where lo <= x <= hi (bounds included, as PyTorch), that is, where
// clamping left x unchanged.
Tensor clamp(const Tensor& x, double lo, double hi) {
  SP_CHECK(!(lo > hi), "[clamp] lo ", lo, " is above hi ", hi);
  Tensor out = kernels::unary(UnaryOp::clamp, x, {lo, hi});
  record("clamp", out, {x},
         [saved_x = SavedTensor(x), saved_y = SavedTensor(out)](const Tensor& g, Inputs& in) {
           if (!in.needs_grad(0)) return;
           const Tensor unclamped = kernels::binary(BinaryOp::eq, saved_x.get(), saved_y.get());
           in.accumulate(0, kernels::where(unclamped, g, zeros_like_scalar(g)));
         });
  return out;
}

// cond: bool, a, b broadcastable -> [broadcast]
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = kernels::where(cond, a, b);
  record("where", out, {cond, a, b},
         [saved_cond = SavedTensor(cond), sa = a.shape(), sb = b.shape()](const Tensor& g,
                                                                          Inputs& in) {
           const Tensor& cond = saved_cond.get();
           const Tensor zero = zeros_like_scalar(g);
           if (in.needs_grad(1)) in.accumulate(1, reduce_to(where(cond, g, zero), sa));
           if (in.needs_grad(2)) in.accumulate(2, reduce_to(where(cond, zero, g), sb));
         });
  return out;
}

// x: [*], mask: bool broadcastable to x -> [*]
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  SP_CHECK(x.defined() && mask.defined(), "[masked_fill] undefined tensor");
  SP_CHECK(mask.dtype() == DType::boolean, "[masked_fill] mask must be bool, got ", describe(mask));
  SP_CHECK(broadcast_shapes(x.shape(), mask.shape(), "masked_fill") == x.shape(),
           "[masked_fill] mask ", describe(mask), " does not broadcast to x ", describe(x));
  Tensor out = kernels::where(mask, Tensor::scalar(value, x.dtype(), x.device()), x);
  record("masked_fill", out, {x}, [saved_mask = SavedTensor(mask)](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, where(saved_mask.get(), zeros_like_scalar(g), g));
  });
  return out;
}

Tensor eq(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return comparison(BinaryOp::ge, a, b); }

// x: [*] -> [*] in dtype. The same dtype returns x itself; a cast to a non-float dtype
// is a constant (no gradient).
Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = kernels::cast(x, dtype);
  if (!is_floating(dtype) || !is_floating(x.dtype())) return out;
  record("cast", out, {x}, [from = x.dtype()](const Tensor& g, Inputs& in) {
    if (in.needs_grad(0)) in.accumulate(0, cast(g, from));
  });
  return out;
}

}  // namespace sp
