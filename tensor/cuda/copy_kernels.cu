// Copy and cast on one device: out = in converted to out's dtype, either side strided
// (stride 0 in `in` broadcasts). Runs through launch_elementwise (elementwise_loops.cuh),
// so contiguous and row-broadcast layouts get 16-byte accesses.
//
// The conversions are bit-identical to the CPU's (tensor/cpu/copy_fill.cpp's convert on
// x86-64): bf16 rounds to nearest even; f16 / f32 / f64 conversions round to nearest and
// keep a NaN's sign and payload (truncated or shifted) with the quiet bit set, as SSE /
// F16C do (CUDA's own cvt would give a canonical NaN); float -> integer truncates toward
// zero, and NaN or out-of-range values give the integer minimum (x86's "integer
// indefinite"; CUDA's cvt would saturate); integer -> integer wraps; anything -> bool is
// value != 0.
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/elementwise_loops.cuh"

namespace sp::cuda {
namespace {

// bool is moved as a byte: a bool load of anything but 0 / 1 would be UB.
template <typename T> struct copy_storage { using type = T; };
template <> struct copy_storage<bool> { using type = uint8_t; };
template <typename T> using copy_t = typename copy_storage<device_t<T>>::type;

__device__ __forceinline__ float f64_to_f32(double d) {
  const uint64_t u = static_cast<uint64_t>(__double_as_longlong(d));
  if ((u & 0x7fffffffffffffffull) > 0x7ff0000000000000ull)
    return __uint_as_float(static_cast<uint32_t>((u >> 32) & 0x80000000u) | 0x7fc00000u |
                           static_cast<uint32_t>((u >> 29) & 0x7fffffu));
  return static_cast<float>(d);
}

__device__ __forceinline__ double f32_to_f64(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return __longlong_as_double(static_cast<long long>(
        (static_cast<uint64_t>(u & 0x80000000u) << 32) | 0x7ff8000000000000ull |
        (static_cast<uint64_t>(u & 0x7fffffu) << 29)));
  return static_cast<double>(f);
}

// The value the CPU computes with (compute_t): f32 for 16-bit floats, else the type
// itself (bool as 0 / 1).
template <typename T>
__device__ __forceinline__ auto acc_value(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return bf16_bits_to_float(__bfloat16_as_ushort(v));
  } else if constexpr (std::is_same_v<T, __half>) {
    return f16_to_f32(v);
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    return v != 0;
  } else {
    return v;
  }
}

// x86's cvtt: truncation, and the integer minimum for NaN or out of range.
template <typename I, typename F>
__device__ __forceinline__ I truncate_to(F x) {
  constexpr F kLimit = static_cast<F>(uint64_t{1} << (sizeof(I) * 8 - 1));
  constexpr I kMin = static_cast<I>(std::make_unsigned_t<I>{1} << (sizeof(I) * 8 - 1));
  return (x >= -kLimit && x < kLimit) ? static_cast<I>(x) : kMin;
}

// A computed value as f32, the way the CPU gets there (static_cast<float>).
template <typename A>
__device__ __forceinline__ float to_f32(A a) {
  if constexpr (std::is_same_v<A, double>) {
    return f64_to_f32(a);
  } else {
    return static_cast<float>(a);
  }
}

template <typename To, typename From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else {
    const auto a = acc_value(v);
    using A = std::remove_cv_t<decltype(a)>;
    if constexpr (std::is_same_v<To, uint8_t>) {
      return static_cast<uint8_t>(a != A(0) ? 1 : 0);
    } else if constexpr (std::is_same_v<To, __nv_bfloat16>) {
      return __ushort_as_bfloat16(float_to_bf16_bits(to_f32(a)));
    } else if constexpr (std::is_same_v<To, __half>) {
      return f32_to_f16(to_f32(a));
    } else if constexpr (std::is_same_v<To, float>) {
      return to_f32(a);
    } else if constexpr (std::is_same_v<To, double>) {
      if constexpr (std::is_same_v<A, float>) {
        return f32_to_f64(a);
      } else {
        return static_cast<double>(a);
      }
    } else if constexpr (std::is_floating_point_v<A>) {  // float -> integer
      return truncate_to<To>(a);
    } else {  // integer or bool -> integer
      return static_cast<To>(a);
    }
  }
}

template <typename To, typename From>
struct ConvertFn {
  __device__ To operator()(From v) const { return convert<To>(v); }
};

// Same dtype: a bit copy by element width.
template <typename W>
struct BitsFn {
  __device__ W operator()(W v) const { return v; }
};

template <typename W>
void copy_bits(const Tensor& out, const Tensor& in) {
  launch_elementwise<W, W>("copy", BitsFn<W>{}, out, in);
}

}  // namespace

void launch_copy(const Tensor& out, const Tensor& in) {
  if (out.numel() == 0) return;
  if (out.dtype() == in.dtype()) {
    switch (out.element_size()) {
      case 1: return copy_bits<uint8_t>(out, in);
      case 2: return copy_bits<uint16_t>(out, in);
      case 4: return copy_bits<uint32_t>(out, in);
      case 8: return copy_bits<uint64_t>(out, in);
      default: fail(str_cat("[copy] unexpected element size ", out.element_size()));
    }
  }
  SP_DISPATCH_ALL(out.dtype(), "copy", [&]<typename To>() {
    SP_DISPATCH_ALL(in.dtype(), "copy", [&]<typename From>() {
      if constexpr (!std::is_same_v<To, From>) {
        launch_elementwise<copy_t<To>, copy_t<From>>(
            "copy", ConvertFn<copy_t<To>, copy_t<From>>{}, out, in);
      }
    });
  });
}

}  // namespace sp::cuda
