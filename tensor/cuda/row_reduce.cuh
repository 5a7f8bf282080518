#pragma once
// Row-wise building blocks shared by the softmax, rms_norm and cross_entropy kernels:
// warp and block reductions (fixed shuffle and warp order, so a row's result is the same
// run to run), an online max + sum-of-exps that reads a row once, and 16-byte packs for
// vector loads and stores.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/device_math.cuh"
#include "tensor/cuda/device_types.cuh"

namespace sp::cuda::rows {

inline constexpr unsigned kFullMask = 0xffffffffu;

// Elements of T in one 16-byte vector.
template <typename T>
inline constexpr int kVec = 16 / static_cast<int>(sizeof(T));

// Whether every pointer is 16-byte aligned, so rows of a length divisible by the vector
// width can be read with 16-byte accesses (a view at an odd offset takes the scalar path).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
template <typename... P>
inline bool all_aligned16(const P*... p) {
  return (aligned16(p) && ...);
}

// Threads of a block that owns one long row: about eight vectors per thread, 128 to
// kMaxRowThreads. Capped at 512 so two or more blocks share an SM and one block's
// reduction overlaps another's loads.
inline constexpr int kMaxRowThreads = 512;
inline unsigned block_threads(int64_t n, int vec) {
  const int64_t vectors = (n + vec - 1) / vec;
  const int64_t t = ((vectors + 7) / 8 + 31) / 32 * 32;
  return static_cast<unsigned>(t < 128 ? 128 : (t > kMaxRowThreads ? kMaxRowThreads : t));
}

// max that propagates NaN (as the CPU's MaxFold): once NaN, always NaN.
template <typename A>
__device__ __forceinline__ A nan_max(A a, A b) {
  return (b > a || b != b) ? b : a;
}

template <typename A>
__device__ __forceinline__ A neg_inf() {
  if constexpr (std::is_same_v<A, double>) {
    return __longlong_as_double(static_cast<long long>(0xfff0000000000000ull));
  } else {
    return __int_as_float(static_cast<int>(0xff800000u));
  }
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

// The sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every
// thread. Every thread of the block must call it; it may be called again right after.
template <typename A>
__device__ A block_sum(A v) {
  __shared__ A partial[32];
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x / 32;
  A total = lane < warps ? partial[lane] : A(0);
  total = warp_sum(total);
  __syncthreads();  // partial may be reused by the next call
  return total;
}

// A running max m and sum of exp(x - m) over the values seen. An empty or all -inf set is
// {-inf, 0}; NaN anywhere makes both NaN.
template <typename A>
struct MaxSum {
  A m;
  A s;
};

template <typename A>
__device__ __forceinline__ MaxSum<A> max_sum_empty() {
  return {neg_inf<A>(), A(0)};
}

template <typename A>
__device__ __forceinline__ MaxSum<A> merge(MaxSum<A> a, MaxSum<A> b) {
  const A m = nan_max(a.m, b.m);
  if (m == neg_inf<A>()) return {m, A(0)};
  // exp(-inf - m) = 0 drops an empty side; exp(0) = 1 keeps the side that holds the max.
  return {m, a.s * dm::exp(a.m - m) + b.s * dm::exp(b.m - m)};
}

// Adds v[0, N) at once: one rescale for the batch, then one exp per value.
template <int N, typename A>
__device__ __forceinline__ MaxSum<A> add_values(MaxSum<A> acc, const A* v) {
  A cm = v[0];
#pragma unroll
  for (int i = 1; i < N; ++i) cm = nan_max(cm, v[i]);
  const A m = nan_max(acc.m, cm);
  if (m == neg_inf<A>()) return acc;
  A s = acc.s * dm::exp(acc.m - m);
#pragma unroll
  for (int i = 0; i < N; ++i) s += dm::exp(v[i] - m);
  return {m, s};
}

template <typename A>
__device__ __forceinline__ MaxSum<A> warp_max_sum(MaxSum<A> v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const MaxSum<A> o{__shfl_xor_sync(kFullMask, v.m, off), __shfl_xor_sync(kFullMask, v.s, off)};
    v = merge(v, o);
  }
  return v;
}

// The block's merged MaxSum, returned to every thread (same contract as block_sum).
template <typename A>
__device__ MaxSum<A> block_max_sum(MaxSum<A> v) {
  __shared__ A pm[32];
  __shared__ A ps[32];
  v = warp_max_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    pm[warp] = v.m;
    ps[warp] = v.s;
  }
  __syncthreads();
  const int warps = blockDim.x / 32;
  MaxSum<A> t = lane < warps ? MaxSum<A>{pm[lane], ps[lane]} : max_sum_empty<A>();
  t = warp_max_sum(t);
  __syncthreads();
  return t;
}

// N elements of T packed for one aligned access (16 bytes when N = kVec<T>).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Loads N elements at p (aligned to N * sizeof(T) when N > 1) into out[0, N) as type A.
// Callers pass register arrays at constant offsets in unrolled loops, so they stay in
// registers.
template <int N, typename A, typename T>
__device__ __forceinline__ void load_pack(const T* p, A* out) {
  const Pack<T, N> pk = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = load_as<A>(pk.v[i]);
}

// Stores in[0, N) at p (aligned as for load_pack), rounded to T.
template <int N, typename T, typename A>
__device__ __forceinline__ void store_pack(T* p, const A* in) {
  Pack<T, N> pk;
#pragma unroll
  for (int i = 0; i < N; ++i) pk.v[i] = store_as<T>(in[i]);
  *reinterpret_cast<Pack<T, N>*>(p) = pk;
}

// N packs of V elements of one row held in registers: thread t of the block holds the
// columns starting at (k * blockDim.x + t) * V for k < N (packs past the row's end are not
// loaded). Kernels keep a row here to read it from memory once; V > 1 needs the row start
// 16-byte aligned and its length a multiple of V.
template <typename T, int V, int N>
struct RowPacks {
  Pack<T, V> p[N];

  __device__ __forceinline__ static int64_t column(int k) {
    return (static_cast<int64_t>(k) * blockDim.x + threadIdx.x) * V;
  }
  __device__ __forceinline__ void load(const T* __restrict__ row, int64_t n) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const int64_t j = column(k);
      if (j < n) p[k] = *reinterpret_cast<const Pack<T, V>*>(row + j);
    }
  }
  // Calls f(k, j) for each pack k whose first column j lies before n, unrolled (k is a
  // constant in each call, so arrays indexed by it stay in registers).
  template <typename F>
  __device__ __forceinline__ static void for_each(int64_t n, F&& f) {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const int64_t j = column(k);
      if (j < n) f(k, j);
    }
  }
  // Element i of pack k as type A.
  template <typename A>
  __device__ __forceinline__ A get(int k, int i) const {
    return load_as<A>(p[k].v[i]);
  }
};

// The merged MaxSum of row xr[0, n) by the whole block, returned to every thread: each
// thread folds V-element packs (V > 1: xr 16-byte aligned, n a multiple of V), four packs in
// flight, then the block merges.
template <int V, typename A, typename T>
__device__ MaxSum<A> block_row_max_sum(const T* __restrict__ xr, int64_t n) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  MaxSum<A> acc = max_sum_empty<A>();
  int64_t j = static_cast<int64_t>(threadIdx.x) * V;
  for (; j + 3 * step < n; j += 4 * step) {
    A v[4 * V];
#pragma unroll
    for (int u = 0; u < 4; ++u) load_pack<V>(xr + j + u * step, v + u * V);
    acc = add_values<4 * V>(acc, v);
  }
  for (; j < n; j += step) {
    A v[V];
    load_pack<V>(xr + j, v);
    acc = add_values<V>(acc, v);
  }
  return block_max_sum(acc);
}

}  // namespace sp::cuda::rows
