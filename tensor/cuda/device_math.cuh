#pragma once
// Device math in the compute type (f32 or f64) with the CPU's formulas
// (tensor/cpu/elementwise_math.h): overloads picking the f32 or f64 libdevice function, and
// the activations and their derivatives that the elementwise ops, the matmul epilogue and
// the row kernels share. CUDA's accurate functions, no fast-math intrinsics.

namespace sp::cuda::dm {

__device__ __forceinline__ float exp(float x) { return ::expf(x); }
__device__ __forceinline__ double exp(double x) { return ::exp(x); }
__device__ __forceinline__ float log(float x) { return ::logf(x); }
__device__ __forceinline__ double log(double x) { return ::log(x); }
__device__ __forceinline__ float sqrt(float x) { return ::sqrtf(x); }
__device__ __forceinline__ double sqrt(double x) { return ::sqrt(x); }
__device__ __forceinline__ float tanh(float x) { return ::tanhf(x); }
__device__ __forceinline__ double tanh(double x) { return ::tanh(x); }
__device__ __forceinline__ float erf(float x) { return ::erff(x); }
__device__ __forceinline__ double erf(double x) { return ::erf(x); }
__device__ __forceinline__ float abs(float x) { return ::fabsf(x); }
__device__ __forceinline__ double abs(double x) { return ::fabs(x); }
__device__ __forceinline__ float pow(float x, float e) { return ::powf(x, e); }
__device__ __forceinline__ double pow(double x, double e) { return ::pow(x, e); }

// As emath::sigmoid: e^-|x| never overflows in f32; f64 uses the plain form like the CPU.
__device__ __forceinline__ float sigmoid(float x) {
  const float e = ::expf(-::fabsf(x));
  const float s = 1.0f / (1.0f + e);
  return x >= 0.0f ? s : e * s;
}
__device__ __forceinline__ double sigmoid(double x) { return 1.0 / (1.0 + ::exp(-x)); }

constexpr double kGeluK = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluC = 0.044715;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

template <typename C>
__device__ __forceinline__ C gelu_tanh(C x) {
  const C u = C(kGeluK) * (x + C(kGeluC) * x * x * x);
  return x / (C(1) + exp(C(-2) * u));
}
template <typename C>
__device__ __forceinline__ C gelu_tanh_grad(C x) {
  const C u = C(kGeluK) * (x + C(kGeluC) * x * x * x);
  const C du = C(kGeluK) * (C(1) + C(3 * kGeluC) * x * x);
  const C s = C(1) / (C(1) + exp(C(-2) * u));
  return s + C(2) * x * s * (C(1) - s) * du;
}
template <typename C>
__device__ __forceinline__ C gelu_erf(C x) {
  return C(0.5) * x * (C(1) + erf(x * C(kInvSqrt2)));
}
template <typename C>
__device__ __forceinline__ C gelu_erf_grad(C x) {
  const C cdf = C(0.5) * (C(1) + erf(x * C(kInvSqrt2)));
  return cdf + x * C(kInvSqrt2Pi) * exp(C(-0.5) * x * x);
}
template <typename C>
__device__ __forceinline__ C silu(C x) {
  return x / (C(1) + exp(-x));
}
template <typename C>
__device__ __forceinline__ C silu_grad(C x) {
  const C s = C(1) / (C(1) + exp(-x));
  return s * (C(1) + x * (C(1) - s));
}

}  // namespace sp::cuda::dm
