#pragma once
// Device-side element types for *.cu files: the storage type of each sp::DType, exact
// conversions to and from the compute type, and a dispatch macro that hands a kernel
// template the storage type. Conversions are bit-identical to the CPU's (tensor/dtype.h):
// float -> bf16 rounds to nearest even and turns NaN into a quiet NaN the same way.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "tensor/dtype.h"
#include "tensor/error.h"

namespace sp::cuda {

// The storage type on the device: sp::bf16 and sp::f16 become the CUDA types.
template <typename T> struct device_storage { using type = T; };
template <> struct device_storage<bf16> { using type = __nv_bfloat16; };
template <> struct device_storage<f16> { using type = __half; };
template <typename T> using device_t = typename device_storage<T>::type;

// The type arithmetic is carried out in: f32 for the 16-bit floats (as compute_t on the CPU).
template <typename T> struct device_compute { using type = T; };
template <> struct device_compute<__nv_bfloat16> { using type = float; };
template <> struct device_compute<__half> { using type = float; };
template <typename T> using acc_t = typename device_compute<T>::type;

__device__ inline float bf16_bits_to_float(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}
__device__ inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// f16 <-> f32 as the CPU's F16C does: round to nearest even, and a NaN keeps its sign and
// payload (shifted or truncated) with the quiet bit set. CUDA's own cvt gives the
// canonical NaN instead, which would make NaN-carrying results differ from the CPU's bits.
__device__ __forceinline__ float f16_to_f32(__half h) {
  const uint32_t b = __half_as_ushort(h);
  if ((b & 0x7c00u) == 0x7c00u && (b & 0x3ffu) != 0)
    return __uint_as_float(((b & 0x8000u) << 16) | 0x7fc00000u | ((b & 0x3ffu) << 13));
  return __half2float(h);
}

__device__ __forceinline__ __half f32_to_f16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return __ushort_as_half(
        static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x3ffu)));
  return __float2half_rn(f);
}

// load<C>(x): the value of a stored element in compute type C.
template <typename C, typename T>
__device__ __forceinline__ C load_as(T x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return static_cast<C>(bf16_bits_to_float(__bfloat16_as_ushort(x)));
  } else if constexpr (std::is_same_v<T, __half>) {
    return static_cast<C>(f16_to_f32(x));
  } else {
    return static_cast<C>(x);
  }
}

// store_as<T>(v): v converted to storage type T (round to nearest even).
template <typename T, typename C>
__device__ __forceinline__ T store_as(C v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __ushort_as_bfloat16(float_to_bf16_bits(static_cast<float>(v)));
  } else if constexpr (std::is_same_v<T, __half>) {
    return f32_to_f16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != C(0);
  } else {
    return static_cast<T>(v);
  }
}

}  // namespace sp::cuda

// SP_CUDA_DISPATCH_FLOAT(dtype, "op", [&]<typename T>() { ... }): T is the device storage
// type (float, __nv_bfloat16, __half, double); other dtypes throw naming the op.
#define SP_CUDA_DISPATCH_FLOAT(dt, op, ...)                                              \
  [&]() {                                                                               \
    auto&& sp_fn_ = __VA_ARGS__;                                                        \
    switch (dt) {                                                                       \
      case ::sp::DType::f32: return sp_fn_.template operator()<float>();                 \
      case ::sp::DType::bf16: return sp_fn_.template operator()<__nv_bfloat16>();        \
      case ::sp::DType::f16: return sp_fn_.template operator()<__half>();                \
      case ::sp::DType::f64: return sp_fn_.template operator()<double>();                \
      default:                                                                          \
        ::sp::fail(::sp::str_cat("[", op, "] unsupported dtype ", ::sp::dtype_name(dt), \
                                 ": expected a floating dtype (f32, bf16, f16, f64)"));  \
    }                                                                                   \
  }()

// SP_CUDA_DISPATCH_ALL: every dtype, as device storage types.
#define SP_CUDA_DISPATCH_ALL(dt, op, ...)                                       \
  [&]() {                                                                       \
    auto&& sp_fn_ = __VA_ARGS__;                                                \
    switch (dt) {                                                               \
      case ::sp::DType::f32: return sp_fn_.template operator()<float>();         \
      case ::sp::DType::bf16: return sp_fn_.template operator()<__nv_bfloat16>(); \
      case ::sp::DType::f16: return sp_fn_.template operator()<__half>();        \
      case ::sp::DType::f64: return sp_fn_.template operator()<double>();        \
      case ::sp::DType::i32: return sp_fn_.template operator()<int32_t>();       \
      case ::sp::DType::i64: return sp_fn_.template operator()<int64_t>();       \
      case ::sp::DType::boolean: return sp_fn_.template operator()<bool>();      \
    }                                                                           \
    ::sp::fail(::sp::str_cat("[", op, "] unknown dtype"));                      \
  }()
