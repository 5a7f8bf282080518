#pragma once
// Device folds for the CUDA reductions: the same accumulator types and the same NaN rules
// as the CPU's (tensor/cpu/reduce_math.h), and warp / block combines built on shuffles,
// whose order depends only on the launch shape (results are the same run to run).
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/device_types.cuh"

namespace sp::cuda {

// The accumulator of a reduction over device type T: f32 for the 16-bit floats and f32,
// f64 for f64, i64 for the integers and bool (as sp::cpu::acc_t).
template <typename T>
using reduce_acc_t = std::conditional_t<std::is_same_v<T, double>, double,
                                        std::conditional_t<std::is_integral_v<T>, int64_t, float>>;

template <typename Acc>
__device__ __forceinline__ Acc lowest_of() {
  if constexpr (std::is_same_v<Acc, float>)
    return -__int_as_float(0x7f800000);
  else if constexpr (std::is_same_v<Acc, double>)
    return -__longlong_as_double(0x7ff0000000000000ll);
  else
    return static_cast<Acc>(-0x7fffffffffffffffll - 1);
}

template <typename Acc>
__device__ __forceinline__ Acc highest_of() {
  if constexpr (std::is_same_v<Acc, float>)
    return __int_as_float(0x7f800000);
  else if constexpr (std::is_same_v<Acc, double>)
    return __longlong_as_double(0x7ff0000000000000ll);
  else
    return static_cast<Acc>(0x7fffffffffffffffll);
}

// x != x for floats; integers are never NaN.
template <typename Acc>
__device__ __forceinline__ bool is_nan(Acc x) {
  if constexpr (std::is_floating_point_v<Acc>)
    return x != x;
  else
    return false;
}

struct SumFold {
  template <typename Acc>
  __device__ __forceinline__ static Acc init() {
    return Acc(0);
  }
  template <typename Acc>
  __device__ __forceinline__ static Acc apply(Acc a, Acc x) {
    if constexpr (std::is_integral_v<Acc>) {
      // Integers wrap (two's complement), as on the CPU, instead of signed overflow (UB).
      return static_cast<Acc>(static_cast<uint64_t>(a) + static_cast<uint64_t>(x));
    } else {
      return a + x;
    }
  }
};

// max / min propagate NaN: once an accumulator holds NaN it keeps it. Between +0 and -0,
// max keeps +0 and min -0 whatever the order, as the CPU's folds (cpu/reduce_math.h).
template <typename Acc>
__device__ __forceinline__ bool zero_sign_wins(Acc a, Acc x, bool positive) {
  if constexpr (std::is_floating_point_v<Acc>)
    return x == a && signbit(a) == positive && signbit(x) != positive;
  else
    return false;
}

struct MaxFold {
  template <typename Acc>
  __device__ __forceinline__ static Acc init() {
    return lowest_of<Acc>();
  }
  template <typename Acc>
  __device__ __forceinline__ static Acc apply(Acc a, Acc x) {
    return (x > a || is_nan(x) || zero_sign_wins(a, x, true)) ? x : a;
  }
};

struct MinFold {
  template <typename Acc>
  __device__ __forceinline__ static Acc init() {
    return highest_of<Acc>();
  }
  template <typename Acc>
  __device__ __forceinline__ static Acc apply(Acc a, Acc x) {
    return (x < a || is_nan(x) || zero_sign_wins(a, x, false)) ? x : a;
  }
};

// Folds v across the 32 lanes of a warp (a fixed butterfly order); lane 0 holds the result.
template <typename Fold, typename Acc>
__device__ __forceinline__ Acc warp_fold(Acc v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = Fold::apply(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// Folds v across the block (blockDim.x a multiple of 32, at most 1024); thread 0 holds the
// result. Every thread of the block must call it; scratch holds 32 Accs.
template <typename Fold, typename Acc>
__device__ __forceinline__ Acc block_fold(Acc v, Acc* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_fold<Fold>(v);
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x >> 5) ? scratch[lane] : Fold::template init<Acc>();
    v = warp_fold<Fold>(v);
  }
  return v;
}

}  // namespace sp::cuda
