// Elementwise primitives on CUDA: unary, fused activation backward, binary, where.
//
// Each op is a small functor over stored values run by launch_elementwise
// (elementwise_loops.cuh): 16-byte vector accesses when the layout allows, the strided
// offset calculator otherwise. Arithmetic is in acc_t (f32 for bf16 / f16, f64 for f64)
// with the CPU's formulas (tensor/cpu/elementwise.cpp, elementwise_math.h); where the CPU
// uses its own f32 polynomials for exp / tanh / erf, the GPU uses CUDA's accurate
// expf / tanhf / erff (no fast-math intrinsics), so results agree to an ulp or two.
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_math.cuh"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/elementwise_loops.cuh"

namespace sp::cuda {
namespace {


// --- unary ------------------------------------------------------------------------------
// Each op: C operator()(C x) in the compute type.
struct NegOp { template <typename C> __device__ C operator()(C x) const { return -x; } };
struct ExpOp { template <typename C> __device__ C operator()(C x) const { return dm::exp(x); } };
struct LogOp { template <typename C> __device__ C operator()(C x) const { return dm::log(x); } };
struct SqrtOp { template <typename C> __device__ C operator()(C x) const { return dm::sqrt(x); } };
struct RsqrtOp {
  template <typename C> __device__ C operator()(C x) const { return C(1) / dm::sqrt(x); }
};
struct TanhOp { template <typename C> __device__ C operator()(C x) const { return dm::tanh(x); } };
struct SigmoidOp {
  template <typename C> __device__ C operator()(C x) const { return dm::sigmoid(x); }
};
struct ReluOp {  // x < 0 rather than x > 0 so NaN propagates
  template <typename C> __device__ C operator()(C x) const { return x < C(0) ? C(0) : x; }
};
struct GeluTanhOp {
  template <typename C> __device__ C operator()(C x) const { return dm::gelu_tanh(x); }
};
struct GeluErfOp {
  template <typename C> __device__ C operator()(C x) const { return dm::gelu_erf(x); }
};
struct SiluOp { template <typename C> __device__ C operator()(C x) const { return dm::silu(x); } };
struct AbsOp { template <typename C> __device__ C operator()(C x) const { return dm::abs(x); } };
struct SquareOp { template <typename C> __device__ C operator()(C x) const { return x * x; } };
struct ReciprocalOp {
  template <typename C> __device__ C operator()(C x) const { return C(1) / x; }
};

// The CPU turns the exponents models use into exact expressions; so does this, with the
// same selection, so pow(x, 2) is x * x on both.
enum class PowKind : int { zero, one, two, three, minus_one, half, minus_half, general };
template <typename C>
struct PowOp {
  PowKind kind;
  C e;
  __device__ C operator()(C x) const {
    switch (kind) {
      case PowKind::zero: return C(1);
      case PowKind::one: return x;
      case PowKind::two: return x * x;
      case PowKind::three: return x * x * x;
      case PowKind::minus_one: return C(1) / x;
      case PowKind::half: return dm::sqrt(x);
      case PowKind::minus_half: return C(1) / dm::sqrt(x);
      default: return dm::pow(x, e);
    }
  }
};
template <typename C>
struct ClampOp {
  C lo, hi;
  __device__ C operator()(C x) const { return x < lo ? lo : (x > hi ? hi : x); }
};
template <typename C>
struct AffineOp {
  C a, b;
  __device__ C operator()(C x) const { return x * a + b; }
};

// Stored T -> compute type -> op -> stored T.
template <typename T, typename Op>
struct UnaryFn {
  Op op;
  __device__ T operator()(T x) const { return store_as<T>(op(load_as<acc_t<T>>(x))); }
};

template <typename T, typename Op>
void run_unary(Tensor& out, const Tensor& in, Op op) {
  launch_elementwise<T, T>("unary", UnaryFn<T, Op>{op}, out, in);
}

PowKind pow_kind(double e) {
  if (e == 0) return PowKind::zero;
  if (e == 1) return PowKind::one;
  if (e == 2) return PowKind::two;
  if (e == 3) return PowKind::three;
  if (e == -1) return PowKind::minus_one;
  if (e == 0.5) return PowKind::half;
  if (e == -0.5) return PowKind::minus_half;
  return PowKind::general;
}

template <typename T>
void unary_typed(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) {
  using C = acc_t<T>;
  switch (op) {
    case UnaryOp::neg: return run_unary<T>(out, in, NegOp{});
    case UnaryOp::exp: return run_unary<T>(out, in, ExpOp{});
    case UnaryOp::log: return run_unary<T>(out, in, LogOp{});
    case UnaryOp::sqrt: return run_unary<T>(out, in, SqrtOp{});
    case UnaryOp::rsqrt: return run_unary<T>(out, in, RsqrtOp{});
    case UnaryOp::tanh: return run_unary<T>(out, in, TanhOp{});
    case UnaryOp::sigmoid: return run_unary<T>(out, in, SigmoidOp{});
    case UnaryOp::relu: return run_unary<T>(out, in, ReluOp{});
    case UnaryOp::gelu_tanh: return run_unary<T>(out, in, GeluTanhOp{});
    case UnaryOp::gelu_erf: return run_unary<T>(out, in, GeluErfOp{});
    case UnaryOp::silu: return run_unary<T>(out, in, SiluOp{});
    case UnaryOp::abs: return run_unary<T>(out, in, AbsOp{});
    case UnaryOp::square: return run_unary<T>(out, in, SquareOp{});
    case UnaryOp::reciprocal: return run_unary<T>(out, in, ReciprocalOp{});
    case UnaryOp::pow:
      return run_unary<T>(out, in, PowOp<C>{pow_kind(p.a), static_cast<C>(p.a)});
    case UnaryOp::clamp:
      return run_unary<T>(out, in, ClampOp<C>{static_cast<C>(p.a), static_cast<C>(p.b)});
    case UnaryOp::affine:
      return run_unary<T>(out, in, AffineOp<C>{static_cast<C>(p.a), static_cast<C>(p.b)});
  }
  fail(str_cat("[unary] unknown op ", static_cast<int>(op)));
}

// --- activation backward ----------------------------------------------------------------
struct ReluGrad {
  template <typename C> __device__ C operator()(C v) const { return v > C(0) ? C(1) : C(0); }
};
struct GeluTanhGrad {
  template <typename C> __device__ C operator()(C v) const { return dm::gelu_tanh_grad(v); }
};
struct GeluErfGrad {
  template <typename C> __device__ C operator()(C v) const { return dm::gelu_erf_grad(v); }
};
struct SiluGrad {
  template <typename C> __device__ C operator()(C v) const { return dm::silu_grad(v); }
};

// dx = dy * f'(x).
template <typename T, typename G>
struct ActivationGradFn {
  G g;
  __device__ T operator()(T dy, T x) const {
    using C = acc_t<T>;
    return store_as<T>(load_as<C>(dy) * g(load_as<C>(x)));
  }
};

template <typename T, typename G>
void run_activation_grad(Tensor& dx, const Tensor& dy, const Tensor& x, G g) {
  launch_elementwise<T, T, T>("activation_backward", ActivationGradFn<T, G>{g}, dx, dy, x);
}

// --- binary -----------------------------------------------------------------------------
// Integer arithmetic wraps (two's complement) as on the CPU, instead of overflowing (UB).
template <typename C, typename F>
__device__ __forceinline__ C wrapping(C a, C b, F f) {
  if constexpr (std::is_integral_v<C> && !std::is_same_v<C, bool>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(f(static_cast<U>(a), static_cast<U>(b)));
  } else {
    return f(a, b);
  }
}

struct AddOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    return wrapping(x, y, [](auto u, auto v) { return u + v; });
  }
};
struct SubOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    return wrapping(x, y, [](auto u, auto v) { return u - v; });
  }
};
struct MulOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    return wrapping(x, y, [](auto u, auto v) { return u * v; });
  }
};
struct DivOp { template <typename C> __device__ C operator()(C x, C y) const { return x / y; } };
// x != x: NaN in either input propagates, as in PyTorch and on the CPU.
struct MaxOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    return (x > y || x != x) ? x : y;
  }
};
struct MinOp {
  template <typename C> __device__ C operator()(C x, C y) const {
    return (x < y || x != x) ? x : y;
  }
};
struct EqOp { template <typename C> __device__ bool operator()(C x, C y) const { return x == y; } };
struct NeOp { template <typename C> __device__ bool operator()(C x, C y) const { return x != y; } };
struct LtOp { template <typename C> __device__ bool operator()(C x, C y) const { return x < y; } };
struct LeOp { template <typename C> __device__ bool operator()(C x, C y) const { return x <= y; } };
struct GtOp { template <typename C> __device__ bool operator()(C x, C y) const { return x > y; } };
struct GeOp { template <typename C> __device__ bool operator()(C x, C y) const { return x >= y; } };
// bool comparisons as the CPU writes them (false < true).
struct BoolLtOp { __device__ bool operator()(bool x, bool y) const { return !x && y; } };
struct BoolLeOp { __device__ bool operator()(bool x, bool y) const { return !x || y; } };
struct BoolGtOp { __device__ bool operator()(bool x, bool y) const { return x && !y; } };
struct BoolGeOp { __device__ bool operator()(bool x, bool y) const { return x || !y; } };

template <typename T, typename Out, typename Op>
struct BinaryFn {
  Op op;
  __device__ Out operator()(T a, T b) const {
    using C = acc_t<T>;
    return store_as<Out>(op(load_as<C>(a), load_as<C>(b)));
  }
};

template <typename T, typename Out, typename Op>
void run_binary(Tensor& out, const Tensor& a, const Tensor& b, Op op) {
  launch_elementwise<Out, T, T>("binary", BinaryFn<T, Out, Op>{op}, out, a, b);
}

template <typename T>
void binary_typed(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  if constexpr (std::is_same_v<T, bool>) {
    switch (op) {
      case BinaryOp::eq: return run_binary<T, bool>(out, a, b, EqOp{});
      case BinaryOp::ne: return run_binary<T, bool>(out, a, b, NeOp{});
      case BinaryOp::lt: return run_binary<T, bool>(out, a, b, BoolLtOp{});
      case BinaryOp::le: return run_binary<T, bool>(out, a, b, BoolLeOp{});
      case BinaryOp::gt: return run_binary<T, bool>(out, a, b, BoolGtOp{});
      case BinaryOp::ge: return run_binary<T, bool>(out, a, b, BoolGeOp{});
      default: fail("[binary] arithmetic on bool tensors is not supported");
    }
  } else {
    switch (op) {
      case BinaryOp::add: return run_binary<T, T>(out, a, b, AddOp{});
      case BinaryOp::sub: return run_binary<T, T>(out, a, b, SubOp{});
      case BinaryOp::mul: return run_binary<T, T>(out, a, b, MulOp{});
      case BinaryOp::div:
        if constexpr (std::is_floating_point_v<acc_t<T>>) {
          return run_binary<T, T>(out, a, b, DivOp{});
        }
        break;
      case BinaryOp::maximum: return run_binary<T, T>(out, a, b, MaxOp{});
      case BinaryOp::minimum: return run_binary<T, T>(out, a, b, MinOp{});
      case BinaryOp::eq: return run_binary<T, bool>(out, a, b, EqOp{});
      case BinaryOp::ne: return run_binary<T, bool>(out, a, b, NeOp{});
      case BinaryOp::lt: return run_binary<T, bool>(out, a, b, LtOp{});
      case BinaryOp::le: return run_binary<T, bool>(out, a, b, LeOp{});
      case BinaryOp::gt: return run_binary<T, bool>(out, a, b, GtOp{});
      case BinaryOp::ge: return run_binary<T, bool>(out, a, b, GeOp{});
    }
    fail(str_cat("[binary] op ", static_cast<int>(op), " unsupported for dtype ",
                 dtype_name(a.dtype())));
  }
}

// --- where ------------------------------------------------------------------------------
// The condition is read as bytes: a bool load of anything but 0 / 1 would be UB.
template <typename T>
struct WhereFn {
  __device__ T operator()(uint8_t c, T a, T b) const { return c != 0 ? a : b; }
};

void check_same_device(const char* op, const Tensor& out, const Tensor& in) {
  SP_CHECK(in.device() == out.device(), "[", op, "] device mismatch: out is on ", out.device(),
           ", input is on ", in.device());
}

}  // namespace

// in: [*] any strides -> out: [*] contiguous; float dtypes.
void CudaBackend::unary(UnaryOp op, Tensor& out, const Tensor& in, UnaryParams p) {
  SP_CHECK(out.shape() == in.shape(), "[unary] shapes differ: out is ", describe(out),
           ", in is ", describe(in));
  SP_CHECK(out.dtype() == in.dtype(), "[unary] dtype mismatch: out is ", describe(out),
           ", in is ", describe(in));
  check_same_device("unary", out, in);
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  SP_CUDA_DISPATCH_FLOAT(in.dtype(), "unary", [&]<typename T>() { unary_typed<T>(op, out, in, p); });
}

// dy, x: [*] -> dx: [*]; float dtypes; dx = dy * f'(x).
void CudaBackend::activation_backward(ActivationGrad op, Tensor& dx, const Tensor& dy,
                                      const Tensor& x) {
  SP_CHECK(dx.shape() == x.shape() && dy.shape() == x.shape(),
           "[activation_backward] shapes differ: dx is ", describe(dx), ", dy is ", describe(dy),
           ", x is ", describe(x));
  SP_CHECK(dx.dtype() == x.dtype() && dy.dtype() == x.dtype(),
           "[activation_backward] dtype mismatch: dx is ", describe(dx), ", dy is ", describe(dy),
           ", x is ", describe(x));
  check_same_device("activation_backward", dx, dy);
  check_same_device("activation_backward", dx, x);
  if (dx.numel() == 0) return;
  DeviceGuard guard(dx.device().index);
  SP_CUDA_DISPATCH_FLOAT(x.dtype(), "activation_backward", [&]<typename T>() {
    switch (op) {
      case ActivationGrad::relu: return run_activation_grad<T>(dx, dy, x, ReluGrad{});
      case ActivationGrad::gelu_tanh: return run_activation_grad<T>(dx, dy, x, GeluTanhGrad{});
      case ActivationGrad::gelu_erf: return run_activation_grad<T>(dx, dy, x, GeluErfGrad{});
      case ActivationGrad::silu: return run_activation_grad<T>(dx, dy, x, SiluGrad{});
    }
    fail(str_cat("[activation_backward] unknown op ", static_cast<int>(op)));
  });
}

// a, b: expanded to out's shape (strides may be 0) -> out: a's dtype, or bool for
// comparisons.
void CudaBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  SP_CHECK(a.shape() == out.shape() && b.shape() == out.shape(), "[binary] shapes differ: out is ",
           describe(out), ", a is ", describe(a), ", b is ", describe(b));
  SP_CHECK(a.dtype() == b.dtype(), "[binary] dtype mismatch: a is ", describe(a), ", b is ",
           describe(b));
  const DType want = is_comparison(op) ? DType::boolean : a.dtype();
  SP_CHECK(out.dtype() == want, "[binary] out must be ", dtype_name(want), ", got ",
           describe(out));
  check_same_device("binary", out, a);
  check_same_device("binary", out, b);
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  SP_CUDA_DISPATCH_ALL(a.dtype(), "binary", [&]<typename T>() { binary_typed<T>(op, out, a, b); });
}

// cond: bool, a, b: out's dtype, all expanded to out's shape -> out = cond ? a : b.
void CudaBackend::where(Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  SP_CHECK(cond.shape() == out.shape() && a.shape() == out.shape() && b.shape() == out.shape(),
           "[where] shapes differ: out is ", describe(out), ", cond is ", describe(cond),
           ", a is ", describe(a), ", b is ", describe(b));
  SP_CHECK(cond.dtype() == DType::boolean, "[where] cond must be bool, got ", describe(cond));
  SP_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "[where] dtype mismatch: out is ",
           describe(out), ", a is ", describe(a), ", b is ", describe(b));
  check_same_device("where", out, cond);
  check_same_device("where", out, a);
  check_same_device("where", out, b);
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  SP_CUDA_DISPATCH_ALL(out.dtype(), "where", [&]<typename T>() {
    launch_elementwise<T, uint8_t, T, T>("where", WhereFn<T>{}, out, cond, a, b);
  });
}

}  // namespace sp::cuda
