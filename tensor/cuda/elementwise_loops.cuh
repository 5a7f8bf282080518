#pragma once
// The one loop under unary, binary, where, activation_backward, copy and strided fill:
// out[i] = f(in_0[i], in_1[i], ...) over operands of one shape with any strides (stride 0
// broadcasts), out being operand 0 of the OffsetCalc.
//
// The functor receives the stored values (device storage types) and returns the stored
// output, so each op does its own widening to acc_t and rounding back (copies need the
// exact CPU conversions, where needs none).
//
// Two launches of the same kernel template serve every layout:
// - V > 1 (16-byte accesses for the widest operand): when the innermost merged dim has
//   stride 1 or 0 in every operand (stride 1 in out), its size is a multiple of V (or it
//   is the only dim: the tail then goes to a V = 1 launch), and every stride-1 operand's
//   pointer and outer strides keep each V-vector 16-byte aligned. Stride-1 operands are
//   read as one vector; stride-0 ones (a broadcast row or scalar) as one element. This
//   covers contiguous tensors (one dim: no division at all) and [R, D] op [D].
// - V = 1: any strides, one element per thread step.
// Grid-stride loops over int64 indices; the divisions are 32-bit when the count allows.
#include <algorithm>
#include <cstdint>
#include <utility>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/strided_index.cuh"

namespace sp::cuda {

inline constexpr int kElementwiseThreads = 256;

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

// V elements at p + off: one aligned vector load, or one element repeated when bcast.
template <int V, typename T>
__device__ __forceinline__ Vec<T, V> load_vec(const T* p, int64_t off, bool bcast) {
  Vec<T, V> r;
  if constexpr (V == 1) {
    r.v[0] = p[off];
  } else {
    if (bcast) {
      const T x = p[off];
#pragma unroll
      for (int k = 0; k < V; ++k) r.v[k] = x;
    } else {
      r = *reinterpret_cast<const Vec<T, V>*>(p + off);
    }
  }
  return r;
}

template <int V, typename F, typename Out, typename... VecT>
__device__ __forceinline__ void compute_store(const F& f, Out* o, const VecT&... x) {
  Vec<Out, V> r;
#pragma unroll
  for (int k = 0; k < V; ++k) r.v[k] = f(x.v[k]...);
  *reinterpret_cast<Vec<Out, V>*>(o) = r;
}

template <int V, typename F, typename Out, typename... In, size_t... I>
__device__ __forceinline__ void apply_at(const F& f, Out* out, const int64_t* off, uint32_t bcast,
                                         std::index_sequence<I...>, const In*... in) {
  compute_store<V>(f, out + off[0], load_vec<V>(in, off[I + 1], ((bcast >> (I + 1)) & 1u) != 0)...);
}

// out, in...: the loop of calc (n elements, or n V-vectors when V > 1) -> out = f(in...).
template <int V, typename F, typename Out, typename... In>
__global__ void __launch_bounds__(kElementwiseThreads)
    elementwise_kernel(OffsetCalc<1 + sizeof...(In)> calc, int64_t n, uint32_t bcast, F f,
                       Out* out, const In*... in) {
  constexpr int N = 1 + sizeof...(In);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    int64_t off[N];
    calc.get(i, off);
    apply_at<V>(f, out, off, bcast, std::index_sequence_for<In...>{}, in...);
  }
}

namespace detail {

template <int V, typename F, typename Out, typename... In, size_t... I, int N>
void launch_loop(const char* op, OffsetCalc<N> calc, int64_t n, uint32_t bcast, const F& f,
                 char* const (&base)[N], std::index_sequence<I...>) {
  if (n <= 0) return;
  calc.narrow = n < (int64_t{1} << 31);
  elementwise_kernel<V, F, Out, In...>
      <<<grid_for(n, kElementwiseThreads), kElementwiseThreads, 0, current_stream()>>>(
          calc, n, bcast, f, reinterpret_cast<Out*>(base[0]),
          reinterpret_cast<const In*>(base[I + 1])...);
  SP_CUDA_CHECK_LAUNCH(op);
}

// Whether calc's loop can run V elements per step (see the top of the file); sets bcast
// to the operands read as broadcast scalars along the inner dim.
template <int N>
bool vectorizable(const OffsetCalc<N>& calc, char* const (&base)[N], const int (&esize)[N], int v,
                  uint32_t& bcast) {
  bcast = 0;
  if (calc.strides[0][0] != 1) return false;
  if (calc.ndim > 1 && calc.sizes[0] % v != 0) return false;
  for (int k = 0; k < N; ++k) {
    const int64_t s = calc.strides[0][k];
    if (s == 0) {
      bcast |= 1u << k;
      continue;
    }
    if (s != 1) return false;
    if (reinterpret_cast<uintptr_t>(base[k]) % (static_cast<uintptr_t>(v) * esize[k]) != 0)
      return false;
    for (int d = 1; d < calc.ndim; ++d)
      if (calc.strides[d][k] % v != 0) return false;
  }
  return true;
}

}  // namespace detail

// out, ins...: same shape, any strides, on the current device -> out = f(ins...) elementwise.
// Out and In... are the device storage types of out and ins (uint8_t for a bool condition).
template <typename Out, typename... In, typename F, typename... Ts>
void launch_elementwise(const char* op, const F& f, const Tensor& out, const Ts&... ins) {
  static_assert(sizeof...(In) == sizeof...(Ts), "one storage type per input tensor");
  constexpr int N = 1 + sizeof...(In);
  if (out.numel() == 0) return;
  const Shape* const strides[N] = {&out.strides(), &ins.strides()...};
  const OffsetCalc<N> calc = make_offset_calc<N>(out.shape(), strides);
  char* const base[N] = {static_cast<char*>(address(out)), static_cast<char*>(address(ins))...};
  const int esize[N] = {static_cast<int>(sizeof(Out)), static_cast<int>(sizeof(In))...};
  constexpr int kWidest = static_cast<int>(std::max({sizeof(Out), sizeof(In)...}));
  constexpr int kVec = kWidest >= 16 ? 1 : 16 / kWidest;
  const auto seq = std::index_sequence_for<In...>{};

  uint32_t bcast = 0;
  if constexpr (kVec > 1) {
    if (detail::vectorizable(calc, base, esize, kVec, bcast)) {
      OffsetCalc<N> vc = calc;
      const int64_t inner = calc.sizes[0];
      const int64_t inner_vecs = inner / kVec;
      vc.sizes[0] = inner_vecs;
      for (int k = 0; k < N; ++k) vc.strides[0][k] *= kVec;
      int64_t nvec = inner_vecs;
      for (int d = 1; d < calc.ndim; ++d) nvec *= calc.sizes[d];
      if (nvec > 0) {
        detail::launch_loop<kVec, F, Out, In...>(op, vc, nvec, bcast, f, base, seq);
      }
      // Only a one-dim loop can have a tail (vectorizable demands V | inner otherwise).
      const int64_t tail = inner - inner_vecs * kVec;
      if (tail > 0) {
        OffsetCalc<N> tc = calc;
        tc.sizes[0] = tail;
        char* tbase[N];
        for (int k = 0; k < N; ++k)
          tbase[k] = base[k] + inner_vecs * kVec * calc.strides[0][k] * esize[k];
        detail::launch_loop<1, F, Out, In...>(op, tc, tail, 0, f, tbase, seq);
      }
      return;
    }
  }
  detail::launch_loop<1, F, Out, In...>(op, calc, out.numel(), 0, f, base, seq);
}

}  // namespace sp::cuda
