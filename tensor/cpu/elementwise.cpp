// Elementwise primitives on the CPU: unary, fused activation backward, binary, where.
//
// Every kernel is a for_each_row (loops.h) whose row body is a plain loop over typed
// pointers with the op inlined, so gcc vectorises the contiguous and broadcast-scalar
// cases; 16-bit floats are widened to f32 in the loop (load/store). Transcendentals come
// from elementwise_math.h: branch-free f32 polynomials, libm for f64.
#include <cmath>
#include <type_traits>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/elementwise_math.h"
#include "tensor/cpu/loops.h"

namespace sp::cpu {
namespace {

// Cost of one element relative to a copy, for the parallel threshold (kParallelGrain
// elements of cost 1): a polynomial exp / tanh / erf costs a few copies' worth.
constexpr int64_t kCheap = 1;
constexpr int64_t kTranscendental = 4;

// in: [*] (any strides) -> out: [*] contiguous, out = f(in) in compute_t<T>.
template <typename T, typename F>
void unary_loop(Tensor& out, const Tensor& in, int64_t cost, F f) {
  for_each_row<2>(out.shape(), {operand(out), operand(in)}, cost,
                  [&](char* const* p, const int64_t* s, int64_t n) {
                    T* o = reinterpret_cast<T*>(p[0]);
                    const T* x = reinterpret_cast<const T*>(p[1]);
                    const int64_t so = s[0], sx = s[1];
                    if (so == 1 && sx == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = store<T>(f(load(x[i])));
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * so] = store<T>(f(load(x[i * sx])));
                    }
                  });
}

template <typename T>
void unary_typed(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) {
  using C = compute_t<T>;
  switch (op) {
    case UnaryOp::neg: return unary_loop<T>(out, in, kCheap, [](C x) { return -x; });
    case UnaryOp::exp:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::exp(x); });
    case UnaryOp::log:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return std::log(x); });
    case UnaryOp::sqrt: return unary_loop<T>(out, in, kCheap, [](C x) { return std::sqrt(x); });
    case UnaryOp::rsqrt:
      return unary_loop<T>(out, in, kCheap, [](C x) { return C(1) / std::sqrt(x); });
    case UnaryOp::tanh:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::tanh(x); });
    case UnaryOp::sigmoid:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::sigmoid(x); });
    case UnaryOp::relu:  // x < 0 rather than x > 0 so NaN propagates
      return unary_loop<T>(out, in, kCheap, [](C x) { return x < C(0) ? C(0) : x; });
    case UnaryOp::gelu_tanh:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::gelu_tanh(x); });
    case UnaryOp::gelu_erf:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::gelu_erf(x); });
    case UnaryOp::silu:
      return unary_loop<T>(out, in, kTranscendental, [](C x) { return emath::silu(x); });
    case UnaryOp::abs: return unary_loop<T>(out, in, kCheap, [](C x) { return std::fabs(x); });
    case UnaryOp::square: return unary_loop<T>(out, in, kCheap, [](C x) { return x * x; });
    case UnaryOp::reciprocal: return unary_loop<T>(out, in, kCheap, [](C x) { return C(1) / x; });
    case UnaryOp::pow: {
      // The exponents models use become exact, vectorisable expressions.
      const double e = p.a;
      if (e == 0) return unary_loop<T>(out, in, kCheap, [](C) { return C(1); });
      if (e == 1) return unary_loop<T>(out, in, kCheap, [](C x) { return x; });
      if (e == 2) return unary_loop<T>(out, in, kCheap, [](C x) { return x * x; });
      if (e == 3) return unary_loop<T>(out, in, kCheap, [](C x) { return x * x * x; });
      if (e == -1) return unary_loop<T>(out, in, kCheap, [](C x) { return C(1) / x; });
      if (e == 0.5) return unary_loop<T>(out, in, kCheap, [](C x) { return std::sqrt(x); });
      if (e == -0.5) return unary_loop<T>(out, in, kCheap, [](C x) { return C(1) / std::sqrt(x); });
      const C ce = static_cast<C>(e);
      return unary_loop<T>(out, in, kTranscendental, [ce](C x) { return std::pow(x, ce); });
    }
    case UnaryOp::clamp: {
      const C lo = static_cast<C>(p.a), hi = static_cast<C>(p.b);
      return unary_loop<T>(out, in, kCheap,
                           [lo, hi](C x) { return x < lo ? lo : (x > hi ? hi : x); });
    }
    case UnaryOp::affine: {
      const C a = static_cast<C>(p.a), b = static_cast<C>(p.b);
      return unary_loop<T>(out, in, kCheap, [a, b](C x) { return x * a + b; });
    }
  }
}

// dy, x: [*] -> dx: [*], dx = dy * f'(x).
template <typename T, typename F>
void activation_grad_loop(Tensor& dx, const Tensor& dy, const Tensor& x, F fprime) {
  using C = compute_t<T>;
  for_each_row<3>(dx.shape(), {operand(dx), operand(dy), operand(x)}, kTranscendental,
                  [&](char* const* p, const int64_t* s, int64_t n) {
                    T* o = reinterpret_cast<T*>(p[0]);
                    const T* g = reinterpret_cast<const T*>(p[1]);
                    const T* v = reinterpret_cast<const T*>(p[2]);
                    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
                      for (int64_t i = 0; i < n; ++i)
                        o[i] = store<T>(load(g[i]) * C(fprime(load(v[i]))));
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        o[i * s[0]] = store<T>(load(g[i * s[1]]) * C(fprime(load(v[i * s[2]]))));
                    }
                  });
}

// The derivatives are forced inline: with its polynomials, gelu's derivative is past gcc's
// inlining limit, and called out of line per element it made the loop scalar, at a tenth of
// the bandwidth (bench: gelu_backward, gelu_backward_bf16).
template <typename T>
void activation_grad_typed(ActivationGrad op, Tensor& dx, const Tensor& dy, const Tensor& x) {
  using C = compute_t<T>;
  switch (op) {
    case ActivationGrad::relu:
      return activation_grad_loop<T>(dx, dy, x,
                                     [](C v) SP_ALWAYS_INLINE { return v > C(0) ? C(1) : C(0); });
    case ActivationGrad::gelu_tanh:
      return activation_grad_loop<T>(dx, dy, x,
                                     [](C v) SP_ALWAYS_INLINE { return emath::gelu_tanh_grad(v); });
    case ActivationGrad::gelu_erf:
      return activation_grad_loop<T>(dx, dy, x,
                                     [](C v) SP_ALWAYS_INLINE { return emath::gelu_erf_grad(v); });
    case ActivationGrad::silu:
      return activation_grad_loop<T>(dx, dy, x,
                                     [](C v) SP_ALWAYS_INLINE { return emath::silu_grad(v); });
  }
}

// Integer arithmetic wraps (two's complement) instead of overflowing, which is UB.
template <typename C, typename F>
inline C wrapping(C a, C b, F f) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(f(static_cast<U>(a), static_cast<U>(b)));
  } else {
    return f(a, b);
  }
}

// a, b: expanded to out's shape (any strides) -> out: contiguous, out = f(a, b).
template <typename T, typename O, typename F>
void binary_loop(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  for_each_row<3>(out.shape(), {operand(out), operand(a), operand(b)}, kCheap,
                  [&](char* const* p, const int64_t* s, int64_t n) {
                    O* o = reinterpret_cast<O*>(p[0]);
                    const T* x = reinterpret_cast<const T*>(p[1]);
                    const T* y = reinterpret_cast<const T*>(p[2]);
                    const int64_t so = s[0], sa = s[1], sb = s[2];
                    if (so == 1 && sa == 1 && sb == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(load(x[i]), load(y[i])));
                    } else if (so == 1 && sa == 1 && sb == 0) {  // a row plus a broadcast scalar
                      const auto yv = load(y[0]);
                      for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(load(x[i]), yv));
                    } else if (so == 1 && sa == 0 && sb == 1) {
                      const auto xv = load(x[0]);
                      for (int64_t i = 0; i < n; ++i) o[i] = store<O>(f(xv, load(y[i])));
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        o[i * so] = store<O>(f(load(x[i * sa]), load(y[i * sb])));
                    }
                  });
}

template <typename T>
void binary_typed(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::add:
      return binary_loop<T, T>(
          out, a, b, [](C x, C y) { return wrapping(x, y, [](auto u, auto v) { return u + v; }); });
    case BinaryOp::sub:
      return binary_loop<T, T>(
          out, a, b, [](C x, C y) { return wrapping(x, y, [](auto u, auto v) { return u - v; }); });
    case BinaryOp::mul:
      return binary_loop<T, T>(
          out, a, b, [](C x, C y) { return wrapping(x, y, [](auto u, auto v) { return u * v; }); });
    case BinaryOp::div:
      if constexpr (std::is_floating_point_v<C>) {
        return binary_loop<T, T>(out, a, b, [](C x, C y) { return x / y; });
      }
      break;
    // x != x: NaN in either input propagates, as in PyTorch.
    case BinaryOp::maximum:
      return binary_loop<T, T>(out, a, b, [](C x, C y) { return (x > y || x != x) ? x : y; });
    case BinaryOp::minimum:
      return binary_loop<T, T>(out, a, b, [](C x, C y) { return (x < y || x != x) ? x : y; });
    case BinaryOp::eq: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x == y; });
    case BinaryOp::ne: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x != y; });
    case BinaryOp::lt: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x < y; });
    case BinaryOp::le: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x <= y; });
    case BinaryOp::gt: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x > y; });
    case BinaryOp::ge: return binary_loop<T, bool>(out, a, b, [](C x, C y) { return x >= y; });
  }
  fail(str_cat("[binary] op ", static_cast<int>(op), " unsupported for dtype ",
               dtype_name(out.dtype())));
}

// cond (bool), a, b: expanded to out's shape -> out = cond ? a : b.
template <typename T>
void where_typed(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  for_each_row<4>(out.shape(), {operand(out), operand(cond), operand(a), operand(b)}, kCheap,
                  [&](char* const* p, const int64_t* s, int64_t n) {
                    T* o = reinterpret_cast<T*>(p[0]);
                    // Read as bytes: a bool load of anything but 0/1 would be UB.
                    const uint8_t* c = reinterpret_cast<const uint8_t*>(p[1]);
                    const T* x = reinterpret_cast<const T*>(p[2]);
                    const T* y = reinterpret_cast<const T*>(p[3]);
                    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
                      for (int64_t i = 0; i < n; ++i) o[i] = c[i] != 0 ? x[i] : y[i];
                    } else {
                      for (int64_t i = 0; i < n; ++i)
                        o[i * s[0]] = c[i * s[1]] != 0 ? x[i * s[2]] : y[i * s[3]];
                    }
                  });
}

}  // namespace

// in: [*] any strides -> out: [*] contiguous; float dtypes.
void CpuBackend::unary(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) {
  SP_DISPATCH_FLOAT(in.dtype(), "unary", [&]<typename T>() { unary_typed<T>(op, out, in, p); });
}

// dy, x: [*] -> dx: [*]; float dtypes.
void CpuBackend::activation_backward(ActivationGrad op, Tensor& dx, const Tensor& dy,
                                     const Tensor& x) {
  SP_DISPATCH_FLOAT(x.dtype(), "activation_backward",
                    [&]<typename T>() { activation_grad_typed<T>(op, dx, dy, x); });
}

// a, b: expanded to out's shape -> out: a's dtype, or bool for comparisons.
void CpuBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  SP_DISPATCH_ALL(a.dtype(), "binary", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      SP_CHECK(is_comparison(op), "[binary] arithmetic on bool tensors is not supported");
      switch (op) {
        case BinaryOp::eq:
          return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return x == y; });
        case BinaryOp::ne:
          return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return x != y; });
        case BinaryOp::lt:
          return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return !x && y; });
        case BinaryOp::le:
          return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return !x || y; });
        case BinaryOp::gt:
          return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return x && !y; });
        default: return binary_loop<T, bool>(out, a, b, [](bool x, bool y) { return x || !y; });
      }
    } else {
      binary_typed<T>(op, out, a, b);
    }
  });
}

// cond: bool, a, b: out's dtype, all expanded to out's shape.
void CpuBackend::where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  SP_DISPATCH_ALL(out.dtype(), "where", [&]<typename T>() { where_typed<T>(out, cond, a, b); });
}

}  // namespace sp::cpu
