#pragma once
// Row-level building blocks shared by the CPU reduce, softmax and cross-entropy kernels:
// a vectorisable exp, and folds over a contiguous row with a fixed number of independent
// lanes, so the compiler keeps the accumulators in vector registers and the summation
// order depends only on the row length (results are the same run to run and for any
// thread count).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "tensor/cpu/bf16_simd.h"
#include "tensor/dtype.h"

namespace sp::cpu {

// The accumulator type of a reduction over T: f32 for the 16-bit floats, f64 for f64,
// i64 for the integers and bool.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double,
                                 std::conditional_t<std::is_integral_v<T>, int64_t, float>>;

template <typename Acc, typename T>
inline Acc load_as(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return static_cast<Acc>(bf16_to_f32(v));
  } else if constexpr (std::is_same_v<T, f16>) {
    return static_cast<Acc>(static_cast<float>(v));
  } else {
    return static_cast<Acc>(v);
  }
}

template <typename T, typename Acc>
inline T store_as(Acc v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return f32_to_bf16(static_cast<float>(v));  // branch-free: loops storing bf16 vectorise
  } else if constexpr (std::is_same_v<T, f16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

// exp for f32 without libm calls, branch-free so loops over it vectorise (std::exp does
// not without -ffast-math). Cephes' range reduction and a degree-5 polynomial: within
// 2e-7 relative (about 1.5 ulp). Returns exactly 0 below -87.3 (so exp(-inf) = 0, as
// masked softmax needs). Made for x - max <= 0: above 88.37 it saturates at exp(88.37)
// instead of returning inf, which saves a compare and a blend per element.
// Its constants are shared with the 16-lane version in row_simd.h.
inline constexpr float kFastExpHi = 88.3762626647949f, kFastExpLo = -87.3365447504f;
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln2 = hi + lo
// Degree-5 near-minimax fit of exp on [-ln2/2, ln2/2] (relative error 1.1e-7), highest first.
inline constexpr float kFastExpPoly[6] = {0.008312525049487932f, 0.04189011343158616f,
                                          0.16667114464234928f, 0.499992317889212f, 1.0f,
                                          1.0f};
inline float fast_exp(float x) {
  constexpr float kHi = kFastExpHi, kLo = kFastExpLo;
  const float xc = x < kLo ? kLo : (x > kHi ? kHi : x);
  // Round xc * log2(e) to the nearest integer with the 1.5 * 2^23 trick.
  constexpr float kShift = 12582912.0f;
  const float t = xc * kLog2e + kShift;
  const float n = t - kShift;
  // The low mantissa bits of t hold n; reading them avoids a float-to-int conversion.
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kShift);
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float e = kFastExpPoly[0];
  for (int k = 1; k < 6; ++k) e = e * r + kFastExpPoly[k];
  // n is in [-126, 127] after the clamp: a normal power of two.
  const uint32_t bits = static_cast<uint32_t>(ni + 127) << 23;
  const float y = e * std::bit_cast<float>(bits);
  // NaN fails the test and stays NaN through the clamp and the polynomial.
  return x < kLo ? 0.0f : y;
}

// exp in the accumulation type: fast for f32, libm for f64 (gradcheck wants full precision).
inline float exp_acc(float x) { return fast_exp(x); }
inline double exp_acc(double x) { return std::exp(x); }

// Independent accumulators per row: 32 floats are two AVX-512 registers, enough to hide
// the add latency.
inline constexpr int kLanes = 32;

struct SumFold {
  template <typename Acc>
  static constexpr Acc init() { return Acc(0); }
  template <typename Acc>
  static Acc apply(Acc a, Acc x) {
    if constexpr (std::is_integral_v<Acc>) {
      // Wrap instead of signed overflow (UB).
      return static_cast<Acc>(static_cast<uint64_t>(a) + static_cast<uint64_t>(x));
    } else {
      return a + x;
    }
  }
};

// max / min propagate NaN: once a lane holds NaN it keeps it. Between +0 and -0, max
// keeps +0 and min -0 whatever the order they come in, so every fold order (the CUDA
// backend's too) gives the same bits.
template <typename Acc>
inline bool zero_sign_wins(Acc a, Acc x, bool positive) {
  if constexpr (std::is_floating_point_v<Acc>)
    return x == a && std::signbit(a) == positive && std::signbit(x) != positive;
  else
    return false;
}

struct MaxFold {
  template <typename Acc>
  static constexpr Acc init() {
    if constexpr (std::is_integral_v<Acc>) return std::numeric_limits<Acc>::lowest();
    else return -std::numeric_limits<Acc>::infinity();
  }
  template <typename Acc>
  static Acc apply(Acc a, Acc x) {
    return (x > a || x != x || zero_sign_wins(a, x, true)) ? x : a;
  }
};

struct MinFold {
  template <typename Acc>
  static constexpr Acc init() {
    if constexpr (std::is_integral_v<Acc>) return std::numeric_limits<Acc>::max();
    else return std::numeric_limits<Acc>::infinity();
  }
  template <typename Acc>
  static Acc apply(Acc a, Acc x) {
    return (x < a || x != x || zero_sign_wins(a, x, false)) ? x : a;
  }
};

// Folds f(x[i]) over a contiguous row of n elements: lane j takes elements j, j + kLanes,
// ...; the lanes are then folded pairwise and the tail appended in order.
template <typename Fold, typename Acc, typename T, typename F>
inline Acc fold_row(const T* __restrict x, int64_t n, F f) {
  Acc lanes[kLanes];
  for (int j = 0; j < kLanes; ++j) lanes[j] = Fold::template init<Acc>();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] = Fold::apply(lanes[j], f(load_as<Acc>(x[i + j])));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] = Fold::apply(lanes[j], lanes[j + w]);
  Acc r = lanes[0];
  for (; i < n; ++i) r = Fold::apply(r, f(load_as<Acc>(x[i])));
  return r;
}

template <typename Fold, typename Acc, typename T>
inline Acc fold_row(const T* __restrict x, int64_t n) {
  return fold_row<Fold, Acc>(x, n, [](Acc v) { return v; });
}

// Where a pass over the row at `row` (of d elements, rows packed up to `end`) prefetches:
// a row or 16 KiB ahead, whichever is further (short rows take less time than a memory
// round trip), or null when that runs past end.
template <typename T>
inline const T* prefetch_target(const T* row, int64_t d, const T* end) {
  const int64_t ahead = std::max<int64_t>(d, 16384 / static_cast<int64_t>(sizeof(T)));
  return end - row >= ahead + d ? row + ahead : nullptr;
}

// sum over i of exp(x[i] - shift), the exps also stored in e when kStore. Compute-bound,
// so it prefetches next[0, n) (see prefetch_target; null for none): the max pass over
// later rows then reads cache instead of waiting on memory.
template <bool kStore, typename Acc, typename T>
inline Acc sum_exp_row(const T* __restrict x, int64_t n, Acc shift, Acc* __restrict e,
                       const T* next) {
  Acc lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    if (next != nullptr)
      for (size_t b = 0; b < kLanes * sizeof(T); b += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(next + i) + b);
    for (int j = 0; j < kLanes; ++j) {
      const Acc v = exp_acc(load_as<Acc>(x[i + j]) - shift);
      if constexpr (kStore) e[i + j] = v;
      lanes[j] += v;
    }
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  Acc r = lanes[0];
  for (; i < n; ++i) {
    const Acc v = exp_acc(load_as<Acc>(x[i]) - shift);
    if constexpr (kStore) e[i] = v;
    r += v;
  }
  return r;
}

// sum over i of f(a[i], b[i]), for the dot products of the softmax backward.
template <typename Acc, typename T, typename U, typename F>
inline Acc sum_row2(const T* __restrict a, const U* __restrict b, int64_t n, F f) {
  Acc lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lanes[j] += f(load_as<Acc>(a[i + j]), load_as<Acc>(b[i + j]));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  Acc r = lanes[0];
  for (; i < n; ++i) r += f(load_as<Acc>(a[i]), load_as<Acc>(b[i]));
  return r;
}

}  // namespace sp::cpu
