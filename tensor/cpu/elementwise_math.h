#pragma once
// Scalar math for the CPU elementwise kernels, written so loops over it vectorise.
//
// gcc does not vectorise calls to std::exp / std::tanh / std::erf (no -ffast-math, and
// glibc's vector variants need it), and a scalar libm tanh makes gelu several times
// slower than a memory copy. So the f32 versions here are branch-free polynomials
// (selects instead of ifs) accurate to a few ulp, checked against libm in
// tests/unit/elementwise_test.cpp. f64 (gradcheck) uses libm: accuracy over speed.
// bf16 / f16 compute in f32 (compute_t), so they share the f32 versions.
#include <bit>
#include <cmath>
#include <cstdint>

// Forces inlining where gcc's size heuristics would keep a polynomial out of line, which
// makes the loop around it scalar (one call per element). Also usable on lambdas:
// [](float v) SP_ALWAYS_INLINE { ... }.
#define SP_ALWAYS_INLINE __attribute__((always_inline))

namespace sp::cpu::emath {

// e^x, about 1 ulp. Cephes' range reduction x = n ln2 + r, |r| <= ln2 / 2, and its
// degree-6 polynomial. 2^n is applied as two halves so n may reach 128 (x near 88.72)
// and go down to -149 (denormal results) without building an invalid exponent. Inputs
// outside [kLo, kHi] compute garbage that the last two selects replace (cheaper than
// clamping first); the integer steps are unsigned so that garbage is never UB.
SP_ALWAYS_INLINE inline float exp(float x) {
  constexpr float kHi = 88.72284f, kLo = -103.97f;
  // Round x * log2(e) to an integer with the 1.5 * 2^23 trick; t's low bits hold n.
  constexpr float kShift = 12582912.0f;
  const float t = x * 1.44269504088896341f + kShift;
  const float n = t - kShift;
  float r = x - n * 0.693359375f;  // ln2 split in two for an exact product
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const uint32_t nu = std::bit_cast<uint32_t>(t) - 0x4B400000u;              // n mod 2^32
  const uint32_t n1 = static_cast<uint32_t>(static_cast<int32_t>(nu) >> 1);  // floor(n / 2)
  const uint32_t n2 = nu - n1;
  const float s1 = std::bit_cast<float>((n1 + 127u) << 23);
  const float s2 = std::bit_cast<float>((n2 + 127u) << 23);
  float out = y * s1 * s2;
  out = x < kLo ? 0.0f : out;
  out = x > kHi ? INFINITY : out;
  return out;
}

// 1 / (1 + e^-x), stable both ways: e = e^-|x| never overflows.
SP_ALWAYS_INLINE inline float sigmoid(float x) {
  const float e = emath::exp(-std::fabs(x));
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}

// tanh: Cephes' odd polynomial below 0.625 (where 1 - 2/(e^2x + 1) would cancel),
// the exp form above; both computed, one selected.
SP_ALWAYS_INLINE inline float tanh(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  // x + x p z is +0 for x = -0 (-0 + +0); tanh is odd and |p z| < 1 here, so taking x's
  // sign changes nothing else and keeps tanh(-0) = -0, as libm and CUDA's tanhf give.
  const float small = std::copysign(p * z * x + x, x);
  const float e = emath::exp(2.0f * (ax > 10.0f ? 10.0f : ax));  // tanh(10) rounds to 1
  const float big = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
  return ax < 0.625f ? small : big;
}

// erf: a rational odd/even minimax fit on [-4, 4] (the one Eigen and XLA use); outside,
// erf is +-1 in f32.
SP_ALWAYS_INLINE inline float erf(float x) {
  const float xc = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
  const float z = xc * xc;
  float p = -2.72614225801306e-10f;
  p = p * z + 2.77068142495902e-08f;
  p = p * z + -2.10102402082508e-06f;
  p = p * z + -5.69250639462346e-05f;
  p = p * z + -7.34990630326855e-04f;
  p = p * z + -2.95459980854025e-03f;
  p = p * z + -1.60960333262415e-02f;
  p = p * xc;
  float q = -1.45660718464996e-05f;
  q = q * z + -2.13374055278905e-04f;
  q = q * z + -1.68282697438203e-03f;
  q = q * z + -7.37332916720468e-03f;
  q = q * z + -1.42647390514189e-02f;
  return p / q;
}

inline double exp(double x) { return std::exp(x); }
inline double tanh(double x) { return std::tanh(x); }
inline double erf(double x) { return std::erf(x); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// sqrt(2 / pi) and the cubic coefficient of gelu's tanh approximation (HF's gelu_new).
inline constexpr double kGeluK = 0.7978845608028654;
inline constexpr double kGeluC = 0.044715;
inline constexpr double kInvSqrt2 = 0.7071067811865476;
inline constexpr double kInvSqrt2Pi = 0.3989422804014327;

// 1 / (1 + e^-x) where only the product with a finite factor matters: e^-x may overflow
// to inf (giving 0, the right limit), and tiny results lose relative accuracy, which
// x * sigmoid(x) cannot see. Cheaper than sigmoid (no abs, no select).
template <typename C>
SP_ALWAYS_INLINE inline C sigmoid_factor(C x) {
  return C(1) / (C(1) + emath::exp(-x));
}

// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), written as x * sigmoid(2u):
// the same function, one exp instead of a tanh, and no cancellation for negative x.
template <typename C>
SP_ALWAYS_INLINE inline C gelu_tanh(C x) {
  const C u = C(kGeluK) * (x + C(kGeluC) * x * x * x);
  return x / (C(1) + emath::exp(C(-2) * u));
}

// d/dx gelu_tanh = s + 2 x s (1 - s) u'(x), s = sigmoid(2u), since 1 - tanh^2 = 4 s (1 - s).
template <typename C>
SP_ALWAYS_INLINE inline C gelu_tanh_grad(C x) {
  const C u = C(kGeluK) * (x + C(kGeluC) * x * x * x);
  const C du = C(kGeluK) * (C(1) + C(3 * kGeluC) * x * x);
  const C s = sigmoid_factor(C(2) * u);
  return s + C(2) * x * s * (C(1) - s) * du;
}

// 0.5 x (1 + erf(x / sqrt 2)).
template <typename C>
SP_ALWAYS_INLINE inline C gelu_erf(C x) {
  return C(0.5) * x * (C(1) + emath::erf(x * C(kInvSqrt2)));
}

// Phi(x) + x phi(x).
template <typename C>
SP_ALWAYS_INLINE inline C gelu_erf_grad(C x) {
  const C cdf = C(0.5) * (C(1) + emath::erf(x * C(kInvSqrt2)));
  return cdf + x * C(kInvSqrt2Pi) * emath::exp(C(-0.5) * x * x);
}

template <typename C>
SP_ALWAYS_INLINE inline C silu(C x) {
  return x / (C(1) + emath::exp(-x));
}

// s (1 + x (1 - s)).
template <typename C>
SP_ALWAYS_INLINE inline C silu_grad(C x) {
  const C s = sigmoid_factor(x);
  return s * (C(1) + x * (C(1) - s));
}

}  // namespace sp::cpu::emath
