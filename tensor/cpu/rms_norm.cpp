// Fused RMS norm forward and backward on the CPU (T5's layer norm).
//
// Forward, per row of D values, in A = f32 (f64 when x or weight is f64):
//   r = 1 / sqrt(sum(x^2) / D + eps),  n = x * r,
//   n = A(W(n)) when the weight is bf16/f16 (T5 casts before the multiply),
//   y = n * w (or n with no weight), stored in out's dtype.
// Backward treats that cast as the identity (as autograd through a cast does):
//   dn = dy * w,  dx = r * dn - x * r^3 * sum(dn * x) / D,  dw = sum over rows of dy * n.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tensor/cpu/bf16_simd.h"
#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/row_simd.h"

namespace sp::cpu {
namespace {

struct NoWeight {};

// Row chunks of the backward, each with its own dw partial.
constexpr int64_t kDwChunks = 32;

template <typename T>
constexpr bool is_half_v = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

template <typename X, typename W>
using acc_t =
    std::conditional_t<std::is_same_v<X, double> || std::is_same_v<W, double>, double, float>;

// bf16 through the branch-free conversions (bf16_simd.h) so the simd loops vectorise.
template <typename T, typename A>
inline T store(A v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return f32_to_bf16(static_cast<float>(v));
  } else if constexpr (is_half_v<T>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename A, typename T>
inline A load(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return static_cast<A>(bf16_to_f32(v));
  } else {
    return static_cast<A>(static_cast<compute_t<T>>(v));
  }
}

// The normalised value as the multiply sees it: rounded to a 16-bit weight's dtype.
template <typename W, typename A>
inline A cast_like_weight(A n) {
  if constexpr (std::is_same_v<W, bf16>) {
    return static_cast<A>(bf16_to_f32(f32_to_bf16(static_cast<float>(n))));
  } else if constexpr (is_half_v<W>) {
    return static_cast<A>(static_cast<float>(W(static_cast<float>(n))));
  } else {
    return n;
  }
}

// One row of the forward: returns rstd. Pointers come in as arguments (not lambda
// captures) so the compiler sees them loop-invariant and vectorises with plain loads.
template <typename X, typename W, typename O, typename A>
inline A forward_row(const X* __restrict xr, const W* __restrict wp, O* __restrict yr, int64_t D,
                     A inv_d, A eps) {
#if defined(__AVX512F__)
  // With bf16 anywhere, gcc's vectorised rounding costs more than the memory traffic: use
  // the 16-lane conversions (vcvtneps2bf16 where the CPU has it).
  if constexpr (simd::kRowSimd<X> && simd::kRowSimd<W> && std::is_same_v<O, W> &&
                (std::is_same_v<X, bf16> || std::is_same_v<W, bf16>)) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 32 <= D; j += 32) {
      const __m512 v0 = simd::load16(xr + j), v1 = simd::load16(xr + j + 16);
      a0 = _mm512_fmadd_ps(v0, v0, a0);
      a1 = _mm512_fmadd_ps(v1, v1, a1);
    }
    A ss = avx512::hsum16(_mm512_add_ps(a0, a1));
    for (; j < D; ++j) ss += load<A>(xr[j]) * load<A>(xr[j]);
    const A rs = A(1) / std::sqrt(ss * inv_d + eps);
    const __m512 r = _mm512_set1_ps(rs);
    for (j = 0; j + 16 <= D; j += 16) {
      __m512 n = _mm512_mul_ps(simd::load16(xr + j), r);
      if constexpr (std::is_same_v<W, bf16>) n = round_trip_bf16x16(n);
      simd::store16(yr + j, _mm512_mul_ps(n, simd::load16(wp + j)));
    }
    for (; j < D; ++j) yr[j] = store<O>(cast_like_weight<W>(load<A>(xr[j]) * rs) * load<A>(wp[j]));
    return rs;
  }
#endif
  A ss = 0;
#pragma omp simd reduction(+ : ss)
  for (int64_t j = 0; j < D; ++j) {
    const A v = load<A>(xr[j]);
    ss += v * v;
  }
  const A rs = A(1) / std::sqrt(ss * inv_d + eps);
  if constexpr (std::is_same_v<W, NoWeight>) {
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) yr[j] = store<O>(load<A>(xr[j]) * rs);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      const A n = cast_like_weight<W>(load<A>(xr[j]) * rs);
      yr[j] = store<O>(n * load<A>(wp[j]));
    }
  }
  return rs;
}

// x: [R, D], w: [D] or none -> out [R, D] (W's dtype, else X's), rstd [R] (A)
template <typename X, typename W>
void rms_norm_typed(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight, double eps) {
  using A = acc_t<X, W>;
  using O = std::conditional_t<std::is_same_v<W, NoWeight>, X, W>;
  const int64_t D = x.size(-1);
  const int64_t R = D == 0 ? 0 : x.numel() / D;
  const X* xp = x.data<X>();
  O* op = out.data<O>();
  A* rp = rstd.data<A>();
  const W* wp = nullptr;
  if constexpr (!std::is_same_v<W, NoWeight>) wp = weight.data<W>();
  const A inv_d = A(1) / static_cast<A>(std::max<int64_t>(D, 1));
  const A eps_a = static_cast<A>(eps);
  parallel_for(R, 3 * D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      rp[r] = forward_row(xp + r * D, wp, op + r * D, D, inv_d, eps_a);
  });
}

// One row of the backward. dxr or part may be null (that gradient is not needed).
template <typename X, typename W, typename O, typename A>
inline void backward_row(const X* __restrict xr, const O* __restrict gr, const W* __restrict wp,
                         A rs, X* __restrict dxr, A* __restrict part, int64_t D, A inv_d) {
  constexpr bool kHasWeight = !std::is_same_v<W, NoWeight>;
#if defined(__AVX512F__)
  // bf16 anywhere: the 16-lane conversions, as in forward_row.
  if constexpr (simd::kRowSimd<X> && simd::kRowSimd<W> && simd::kRowSimd<O> &&
                (std::is_same_v<X, bf16> || std::is_same_v<W, bf16> || std::is_same_v<O, bf16>)) {
    const __m512 rsv = _mm512_set1_ps(rs);
    auto dn16 = [&](int64_t j) {
      return _mm512_mul_ps(simd::load16(gr + j), simd::load16(wp + j));
    };
    auto n16 = [&](int64_t j) {
      const __m512 n = _mm512_mul_ps(simd::load16(xr + j), rsv);
      if constexpr (std::is_same_v<W, bf16>)
        return round_trip_bf16x16(n);
      else
        return n;
    };
    int64_t j = 0;
    if (dxr) {
      __m512 d0 = _mm512_setzero_ps(), d1 = _mm512_setzero_ps();
      for (; j + 32 <= D; j += 32) {
        d0 = _mm512_fmadd_ps(dn16(j), simd::load16(xr + j), d0);
        d1 = _mm512_fmadd_ps(dn16(j + 16), simd::load16(xr + j + 16), d1);
      }
      A dot = avx512::hsum16(_mm512_add_ps(d0, d1));
      for (; j < D; ++j) dot += load<A>(gr[j]) * load<A>(wp[j]) * load<A>(xr[j]);
      const A coef = rs * rs * rs * dot * inv_d;
      const __m512 cv = _mm512_set1_ps(coef);
      for (j = 0; j + 16 <= D; j += 16) {
        const __m512 dx = _mm512_fnmadd_ps(simd::load16(xr + j), cv, _mm512_mul_ps(rsv, dn16(j)));
        simd::store16(dxr + j, dx);
        if (part)
          _mm512_storeu_ps(
              part + j, _mm512_fmadd_ps(simd::load16(gr + j), n16(j), _mm512_loadu_ps(part + j)));
      }
      for (; j < D; ++j) {
        const A g = load<A>(gr[j]);
        const A xv = load<A>(xr[j]);
        dxr[j] = store<X>(rs * (g * load<A>(wp[j])) - xv * coef);
        if (part) part[j] += g * cast_like_weight<W>(xv * rs);
      }
    } else {
      for (; j + 16 <= D; j += 16)
        _mm512_storeu_ps(part + j,
                         _mm512_fmadd_ps(simd::load16(gr + j), n16(j), _mm512_loadu_ps(part + j)));
      for (; j < D; ++j) part[j] += load<A>(gr[j]) * cast_like_weight<W>(load<A>(xr[j]) * rs);
    }
    return;
  }
#endif
  if (dxr) {
    A dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < D; ++j) {
      A dn = load<A>(gr[j]);
      if constexpr (kHasWeight) dn *= load<A>(wp[j]);
      dot += dn * load<A>(xr[j]);
    }
    const A coef = rs * rs * rs * dot * inv_d;
    if (part) {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) {
        const A g = load<A>(gr[j]);
        const A xv = load<A>(xr[j]);
        A dn = g;
        if constexpr (kHasWeight) dn *= load<A>(wp[j]);
        dxr[j] = store<X>(rs * dn - xv * coef);
        part[j] += g * cast_like_weight<W>(xv * rs);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < D; ++j) {
        A dn = load<A>(gr[j]);
        if constexpr (kHasWeight) dn *= load<A>(wp[j]);
        dxr[j] = store<X>(rs * dn - load<A>(xr[j]) * coef);
      }
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < D; ++j)
      part[j] += load<A>(gr[j]) * cast_like_weight<W>(load<A>(xr[j]) * rs);
  }
}

// dy: [R, D] (out's dtype), x: [R, D], w: [D] or none, rstd: [R]
//   -> dx [R, D] (X) if defined, dw [D] (W) if defined.
template <typename X, typename W>
void rms_norm_backward_typed(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                             const Tensor& weight, const Tensor& rstd) {
  using A = acc_t<X, W>;
  using O = std::conditional_t<std::is_same_v<W, NoWeight>, X, W>;
  constexpr bool kHasWeight = !std::is_same_v<W, NoWeight>;
  const int64_t D = x.size(-1);
  const int64_t R = D == 0 ? 0 : x.numel() / D;
  const bool need_dx = dx.defined();
  bool need_dw = false;
  if constexpr (kHasWeight) need_dw = dweight.defined();
  if (R == 0 || (!need_dx && !need_dw)) {
    if (need_dw) backend_for(dweight).fill(dweight, 0);
    return;
  }
  const X* xp = x.data<X>();
  const O* gp = dy.data<O>();
  const A* rp = rstd.data<A>();
  X* dxp = need_dx ? dx.data<X>() : nullptr;
  const W* wp = nullptr;
  if constexpr (kHasWeight) wp = weight.data<W>();
  const A inv_d = A(1) / static_cast<A>(D);

  // Rows go in a fixed number of chunks (a function of R only, never of the thread count),
  // each with its own dw partial, summed in chunk order afterwards: no races, and the
  // result is the same for any thread count.
  const int64_t chunks = std::min<int64_t>(R, kDwChunks);
  Tensor partial;
  A* pp = nullptr;
  if (need_dw) {
    partial = Tensor::empty(Shape{chunks, D}, dtype_of<A>::value);
    pp = partial.data<A>();
  }
  parallel_for(chunks, (R / chunks + 1) * D * 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      A* part = need_dw ? pp + c * D : nullptr;
      if (part) std::fill(part, part + D, A(0));
      for (int64_t r = R * c / chunks; r < R * (c + 1) / chunks; ++r)
        backward_row(xp + r * D, gp + r * D, wp, rp[r], dxp ? dxp + r * D : nullptr, part, D,
                     inv_d);
    }
  });
  if constexpr (kHasWeight) {
    if (need_dw) {
      W* dwp = dweight.data<W>();
      parallel_for(D, chunks, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          A s = 0;
          for (int64_t c = 0; c < chunks; ++c) s += pp[c * D + j];
          dwp[j] = store<W>(s);
        }
      });
    }
  }
}

// Calls fn.template operator()<X, W>() for x's dtype and weight's (NoWeight if undefined).
template <typename F>
void dispatch_xw(DType xt, const Tensor& weight, const char* op, F&& fn) {
  SP_DISPATCH_FLOAT(xt, op, [&]<typename X>() {
    if (!weight.defined()) {
      fn.template operator()<X, NoWeight>();
      return;
    }
    SP_DISPATCH_FLOAT(weight.dtype(), op, [&]<typename W>() { fn.template operator()<X, W>(); });
  });
}

}  // namespace

void CpuBackend::rms_norm(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight,
                          double eps) {
  dispatch_xw(x.dtype(), weight, "rms_norm",
              [&]<typename X, typename W>() { rms_norm_typed<X, W>(out, rstd, x, weight, eps); });
}

void CpuBackend::rms_norm_backward(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                                   const Tensor& weight, const Tensor& rstd) {
  dispatch_xw(x.dtype(), weight, "rms_norm_backward", [&]<typename X, typename W>() {
    rms_norm_backward_typed<X, W>(dx, dweight, dy, x, weight, rstd);
  });
}

}  // namespace sp::cpu
