#pragma once
// bf16 <-> f32 conversion for the CPU kernels, scalar and 16 lanes at a time.
//
// One definition of the conversion for every kernel (loops.h, reduce_math.h, rms_norm,
// row_simd.h), written so it cannot stop a loop from vectorising (selects, no early
// return), plus 16-lane versions for hand-written loops: vcvtneps2bf16 stores 16 lanes in
// one instruction where gcc's vectorised integer rounding takes about eight. Everything
// here gives bit for bit what bf16::from_float / to_float give
// (tests/unit/bf16_simd_test.cpp checks every bf16 pattern and its rounding neighbours):
//   load:  the 16 bits shifted up into an f32;
//   store: round to nearest even (u + 0x7fff + lsb) >> 16; NaN keeps its sign and top
//          payload bits and gets the quiet bit (| 0x40). AVX512-BF16's vcvtneps2bf16 does
//          the same except that it flushes f32 denormals to zero, so those lanes (rare:
//          |x| < 2^-126) are redone with the integer rounding.
// The scalar versions use selects, not branches, so loops over them vectorise too.
#include <bit>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tensor/dtype.h"

namespace sp::cpu {

inline float bf16_to_f32(bf16 v) {
  return std::bit_cast<float>(static_cast<uint32_t>(v.bits) << 16);
}

inline bf16 f32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  bf16 out;
  out.bits = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
  return out;
}

#if defined(__AVX512F__)
// gcc 12's unmasked forms of some intrinsics pass an undefined source vector, which its
// -Wmaybe-uninitialized reports inside its own headers wherever they inline. The
// all-lanes maskz forms are the same instructions without that; they are spelled once here.
namespace avx512 {
constexpr __mmask16 kAll = 0xFFFF;
inline __m512i slli32(__m512i a, unsigned n) { return _mm512_maskz_slli_epi32(kAll, a, n); }
inline __m512i srli32(__m512i a, unsigned n) { return _mm512_maskz_srli_epi32(kAll, a, n); }
inline __m512i srli64(__m512i a, unsigned n) { return _mm512_maskz_srli_epi64(0xFF, a, n); }
// The even 32-bit lanes of a and b multiplied to 64 bits (vpmuludq).
inline __m512i mul_epu32(__m512i a, __m512i b) { return _mm512_maskz_mul_epu32(0xFF, a, b); }
inline __m512i widen_u16(__m256i h) { return _mm512_maskz_cvtepu16_epi32(kAll, h); }
inline __m512 max16(__m512 a, __m512 b) { return _mm512_maskz_max_ps(kAll, a, b); }
inline __m512 min16(__m512 a, __m512 b) { return _mm512_maskz_min_ps(kAll, a, b); }
inline __m256i narrow_i32(__m512i a) { return _mm512_maskz_cvtepi32_epi16(kAll, a); }
// The sum of the 16 lanes in _mm512_reduce_add_ps's order (halves, quarters, pairs).
inline float hsum16(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 h = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 1)),
                                 _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xFF, d, 0)));
  const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
  const __m128 p = _mm_add_ps(q, _mm_shuffle_ps(q, q, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtss_f32(p) + _mm_cvtss_f32(_mm_shuffle_ps(p, p, 1));
}
}  // namespace avx512

// 16 bf16 at p -> 16 f32.
inline __m512 load_bf16x16(const bf16* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(avx512::slli32(avx512::widen_u16(h), 16));
}

// 16 f32 -> 16 bf16 bit patterns by the integer rounding (any input).
inline __m256i round_bf16x16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(avx512::srli32(u, 16), _mm512_set1_epi32(1));
  __m512i r =
      avx512::srli32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_mov_epi32(r, nan,
                            _mm512_or_si512(avx512::srli32(u, 16), _mm512_set1_epi32(0x40)));
  return avx512::narrow_i32(r);
}

// 16 f32 -> 16 bf16 bit patterns, as bf16::from_float.
inline __m256i to_bf16x16(__m512 v) {
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
  __m256i r = std::bit_cast<__m256i>(_mm512_cvtneps_pbh(v));
  // Zero exponent: zeros (which the instruction gets right) and denormals (which it
  // flushes); redo those lanes only when there are any.
  const __mmask16 tiny =
      _mm512_testn_epi32_mask(_mm512_castps_si512(v), _mm512_set1_epi32(0x7f800000));
  if (tiny != 0) [[unlikely]]
    r = _mm256_mask_blend_epi16(tiny, r, round_bf16x16(v));
  return r;
#else
  return round_bf16x16(v);
#endif
}

// 16 f32 -> 16 bf16 at p.
inline void store_bf16x16(bf16* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16x16(v));
}

// 16 f32 rounded to bf16 and back: what a bf16 cast of them holds.
inline __m512 round_trip_bf16x16(__m512 v) {
  return _mm512_castsi512_ps(avx512::slli32(avx512::widen_u16(to_bf16x16(v)), 16));
}
#endif

// src: [n] bf16 -> dst: [n] f32
inline void bf16_to_f32(const bf16* __restrict src, float* __restrict dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_bf16x16(src + i));
#endif
  for (; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

// src: [n] f32 -> dst: [n] bf16
inline void f32_to_bf16(const float* __restrict src, bf16* __restrict dst, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) store_bf16x16(dst + i, _mm512_loadu_ps(src + i));
#endif
  for (; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace sp::cpu
