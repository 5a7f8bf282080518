// Elementwise entry points: validate, broadcast (as stride-0 views, never copies),
// allocate the contiguous output and call the backend.
#include <cmath>
#include <limits>

#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::relu: return "relu";
    case UnaryOp::gelu_tanh: return "gelu";
    case UnaryOp::gelu_erf: return "gelu";
    case UnaryOp::silu: return "silu";
    case UnaryOp::abs: return "abs";
    case UnaryOp::square: return "square";
    case UnaryOp::reciprocal: return "reciprocal";
    case UnaryOp::pow: return "pow";
    case UnaryOp::clamp: return "clamp";
    case UnaryOp::affine: return "affine";
  }
  return "unary";
}

const char* activation_name(ActivationGrad op) {
  switch (op) {
    case ActivationGrad::relu: return "relu_backward";
    case ActivationGrad::gelu_tanh: return "gelu_backward";
    case ActivationGrad::gelu_erf: return "gelu_backward";
    case ActivationGrad::silu: return "silu_backward";
  }
  return "activation_backward";
}

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
    case BinaryOp::eq: return "eq";
    case BinaryOp::ne: return "ne";
    case BinaryOp::lt: return "lt";
    case BinaryOp::le: return "le";
    case BinaryOp::gt: return "gt";
    case BinaryOp::ge: return "ge";
  }
  return "binary";
}

void check_floating(const Tensor& x, const char* op) {
  SP_CHECK(is_floating(x.dtype()), "[", op, "] unsupported dtype ", dtype_name(x.dtype()),
           ": expected a floating dtype (f32, bf16, f16, f64)");
}

// Which dtypes each binary op takes: arithmetic on floats, plus integers where it cannot
// lose meaning (no integer division), comparisons on everything.
void check_binary_dtype(BinaryOp op, DType t, const char* name) {
  const bool integer = t == DType::i32 || t == DType::i64;
  bool ok = false;
  if (is_comparison(op)) {
    ok = true;
  } else if (op == BinaryOp::div) {
    ok = is_floating(t);
  } else {
    ok = is_floating(t) || integer;
  }
  SP_CHECK(ok, "[", name, "] unsupported dtype ", dtype_name(t),
           op == BinaryOp::div ? ": expected a floating dtype (f32, bf16, f16, f64)"
                               : ": expected a floating or integer dtype");
}

}  // namespace

// x: [*] (any layout) -> [*] contiguous.
Tensor unary(UnaryOp op, const Tensor& x, UnaryParams p) {
  const char* name = unary_name(op);
  SP_CHECK(x.defined(), "[", name, "] undefined tensor");
  check_floating(x, name);
  // With lo > hi the backends' x < lo ? lo : min(x, hi) is not min(max(x, lo), hi).
  SP_CHECK(op != UnaryOp::clamp || !(p.a > p.b), "[clamp] lo ", p.a, " is above hi ", p.b);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  backend_for(x).unary(op, out, x, p);
  return out;
}

// dy, x: [*] -> dx: [*]
Tensor activation_backward(ActivationGrad op, const Tensor& dy, const Tensor& x) {
  const char* name = activation_name(op);
  SP_CHECK(dy.defined() && x.defined(), "[", name, "] undefined tensor");
  SP_CHECK(dy.shape() == x.shape(), "[", name, "] shapes differ: dy is ", describe(dy), ", x is ",
           describe(x));
  SP_CHECK(dy.dtype() == x.dtype(), "[", name, "] dtype mismatch: dy is ", describe(dy), ", x is ",
           describe(x));
  SP_CHECK(dy.device() == x.device(), "[", name, "] device mismatch: dy is on ", dy.device(),
           ", x is on ", x.device());
  check_floating(x, name);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (dx.numel() == 0) return dx;
  const Tensor dyc = contiguous(dy), xc = contiguous(x);
  backend_for(x).activation_backward(op, dx, dyc, xc);
  return dx;
}

// a: [*], b: broadcastable -> [broadcast]; comparisons give bool.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  SP_CHECK(a.defined() && b.defined(), "[", name, "] undefined tensor");
  SP_CHECK(a.dtype() == b.dtype(), "[", name, "] dtype mismatch: a is ", describe(a), ", b is ",
           describe(b));
  SP_CHECK(a.device() == b.device(), "[", name, "] device mismatch: a is on ", a.device(),
           ", b is on ", b.device());
  check_binary_dtype(op, a.dtype(), name);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? DType::boolean : a.dtype(), a.device());
  if (out.numel() == 0) return out;
  backend_for(a).binary(op, out, expand(a, shape), expand(b, shape));
  return out;
}

// x: [*] op scalar -> [*]. Float add / sub / mul / div become one affine pass computed in
// compute_t, so s is not first rounded to a 16-bit dtype (x / s is x * (1 / s), as PyTorch).
// The products add -0.0, the one addend that leaves every x * s as it is: + 0.0 would turn
// -0 into +0 (and 1 / (x * 1) from -inf into +inf).
Tensor binary_scalar(BinaryOp op, const Tensor& x, double s) {
  const char* name = binary_name(op);
  SP_CHECK(x.defined(), "[", name, "] undefined tensor");
  check_binary_dtype(op, x.dtype(), name);
  if (is_floating(x.dtype())) {
    switch (op) {
      case BinaryOp::add: return unary(UnaryOp::affine, x, {1.0, s});
      case BinaryOp::sub: return unary(UnaryOp::affine, x, {1.0, -s});
      case BinaryOp::mul: return unary(UnaryOp::affine, x, {s, -0.0});
      case BinaryOp::div: return unary(UnaryOp::affine, x, {1.0 / s, -0.0});
      default: break;
    }
  } else {
    // Converting s to the integer dtype must not change it: x < 2.5 is not x < 2.
    // i32 takes its whole range [-2^31, 2^31 - 1]; i64 the integers a double holds exactly.
    const bool i32 = x.dtype() == DType::i32;
    const bool representable =
        x.dtype() == DType::boolean
            ? (s == 0 || s == 1)
            : (std::nearbyint(s) == s && s >= (i32 ? -2147483648.0 : -9.007199254740992e15) &&
               s <= (i32 ? 2147483647.0 : 9.007199254740992e15));
    SP_CHECK(representable, "[", name, "] scalar ", s, " is not representable in ",
             dtype_name(x.dtype()));
  }
  return binary(op, x, Tensor::scalar(s, x.dtype(), x.device()));
}

// cond: bool, a, b: same dtype, all broadcastable -> [broadcast] in a's dtype.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  SP_CHECK(cond.defined() && a.defined() && b.defined(), "[where] undefined tensor");
  SP_CHECK(cond.dtype() == DType::boolean, "[where] cond must be bool, got ", describe(cond));
  SP_CHECK(a.dtype() == b.dtype(), "[where] dtype mismatch: a is ", describe(a), ", b is ",
           describe(b));
  SP_CHECK(a.device() == b.device() && cond.device() == a.device(),
           "[where] device mismatch: cond is on ", cond.device(), ", a is on ", a.device(),
           ", b is on ", b.device());
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  backend_for(a).where(out, expand(cond, shape), expand(a, shape), expand(b, shape));
  return out;
}

}  // namespace sp::kernels
