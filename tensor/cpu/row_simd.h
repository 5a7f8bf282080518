#pragma once
// AVX-512 passes over one contiguous f32 or bf16 row for softmax and cross-entropy.
//
// The generic row code (reduce_math.h) is left to gcc's vectoriser, whose loops keep
// these kernels compute-bound: below memory speed for f32 and far below it for bf16,
// which moves half the bytes for the same work. Written with intrinsics (vscalefps for
// 2^n, 2 x 16 lanes), the passes run 1.5-2x faster, and bf16 is converted 16 lanes at a
// time (bf16_simd.h). Semantics are those of the generic code: f32 accumulation in 2 x 16
// lanes (the summation order depends only on the row length), fast_exp's polynomial and
// limits (exactly 0 below -87.3, so -inf entries vanish), NaN anywhere in a row reaches
// every output of that row through the exps.
//
// kRowSimd<T> says whether these exist for T; callers keep the generic path otherwise
// (f64, f16, builds without AVX-512).
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "tensor/cpu/bf16_simd.h"
#include "tensor/cpu/reduce_math.h"

namespace sp::cpu::simd {

#if defined(__AVX512F__)

template <typename T>
inline constexpr bool kRowSimd = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const bf16* p) { return load_bf16x16(p); }
inline void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
inline void store16(bf16* p, __m512 v) { store_bf16x16(p, v); }

// fast_exp (reduce_math.h) on 16 lanes: the same reduction and polynomial, with 2^n
// applied by vscalefps. NaN stays NaN (max takes the NaN from its second operand).
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(kFastExpLo);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  const __m512 xc = avx512::min16(_mm512_set1_ps(kFastExpHi), avx512::max16(lo, x));
  const __m512 n =
      _mm512_maskz_roundscale_ps(avx512::kAll, _mm512_mul_ps(xc, _mm512_set1_ps(kLog2e)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 e = _mm512_set1_ps(kFastExpPoly[0]);
  for (int k = 1; k < 6; ++k) e = _mm512_fmadd_ps(e, r, _mm512_set1_ps(kFastExpPoly[k]));
  return _mm512_maskz_scalef_ps(static_cast<__mmask16>(~under), e, n);
}

// max of x[0, n) (NaN entries may be skipped: the exp pass carries them).
template <typename T>
inline float row_max(const T* __restrict x, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = avx512::max16(load16(x + i), m0);
    m1 = avx512::max16(load16(x + i + 16), m1);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, avx512::max16(m0, m1));
  float m = lanes[0];
  for (int k = 1; k < 16; ++k) m = std::max(lanes[k], m);
  for (; i < n; ++i) m = std::max(load_as<float>(x[i]), m);
  return m;
}

// sum of exp(x[i] - shift) over [0, n), the exps also stored in e when e is not null;
// prefetches next[0, n) (prefetch_target) while the exps compute.
template <typename T>
inline float row_sum_exp(const T* __restrict x, int64_t n, float shift, float* __restrict e,
                         const T* next) {
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (next != nullptr)
      for (size_t b = 0; b < 32 * sizeof(T); b += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(next + i) + b);
    const __m512 a = exp16(_mm512_sub_ps(load16(x + i), sh));
    const __m512 b = exp16(_mm512_sub_ps(load16(x + i + 16), sh));
    if (e != nullptr) {
      _mm512_storeu_ps(e + i, a);
      _mm512_storeu_ps(e + i + 16, b);
    }
    s0 = _mm512_add_ps(s0, a);
    s1 = _mm512_add_ps(s1, b);
  }
  float s = avx512::hsum16(_mm512_add_ps(s0, s1));
  for (; i < n; ++i) {
    const float v = fast_exp(load_as<float>(x[i]) - shift);
    if (e != nullptr) e[i] = v;
    s += v;
  }
  return s;
}

// y[i] = e[i] * scale, f32 -> T.
template <typename T>
inline void row_scale(const float* __restrict e, float scale, T* __restrict y, int64_t n) {
  const __m512 sc = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) store16(y + i, _mm512_mul_ps(_mm512_loadu_ps(e + i), sc));
  for (; i < n; ++i) y[i] = store_as<T>(e[i] * scale);
}

// y[i] = x[i] + b[i], rounded to T (add_softmax's sum, the same bits as binary add's).
template <typename T>
inline void row_add(const T* __restrict x, const T* __restrict b, T* __restrict y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) store16(y + i, _mm512_add_ps(load16(x + i), load16(b + i)));
  for (; i < n; ++i) y[i] = store_as<T>(load_as<float>(x[i]) + load_as<float>(b[i]));
}

// y[i] = (x[i] - shift) - c (log-softmax), kept in that order for accuracy near the max.
template <typename T>
inline void row_sub2(const T* __restrict x, float shift, float c, T* __restrict y, int64_t n) {
  const __m512 sh = _mm512_set1_ps(shift), cc = _mm512_set1_ps(c);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) store16(y + i, _mm512_sub_ps(_mm512_sub_ps(load16(x + i), sh), cc));
  for (; i < n; ++i) y[i] = store_as<T>((load_as<float>(x[i]) - shift) - c);
}

// y[i] = exp(x[i] - shift) * scale (the cross-entropy gradient before the target's -1).
template <typename T>
inline void row_exp_scale(const T* __restrict x, float shift, float scale, T* __restrict y,
                          int64_t n) {
  const __m512 sh = _mm512_set1_ps(shift), sc = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    store16(y + i, _mm512_mul_ps(exp16(_mm512_sub_ps(load16(x + i), sh)), sc));
  for (; i < n; ++i) y[i] = store_as<T>(fast_exp(load_as<float>(x[i]) - shift) * scale);
}

#else

template <typename T>
inline constexpr bool kRowSimd = false;

// Declared, never defined: callers name them in `if constexpr (kRowSimd<T>)` branches,
// which are discarded here but must still find the names.
template <typename T>
float row_max(const T* x, int64_t n);
template <typename T>
float row_sum_exp(const T* x, int64_t n, float shift, float* e, const T* next);
template <typename T>
void row_scale(const float* e, float scale, T* y, int64_t n);
template <typename T>
void row_add(const T* x, const T* b, T* y, int64_t n);
template <typename T>
void row_sub2(const T* x, float shift, float c, T* y, int64_t n);
template <typename T>
void row_exp_scale(const T* x, float shift, float scale, T* y, int64_t n);

#endif

}  // namespace sp::cpu::simd
