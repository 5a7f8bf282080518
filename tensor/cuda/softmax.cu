// Softmax and log-softmax over the last dim on CUDA, forward and backward, and the fused
// softmax(scores + bias) of T5's attention.
//
// Short rows (D <= 1024): a warp per row, the row held in registers (read once, written
// once), E elements per lane. Long rows: a block per row; the forward reads the row once
// for an online max + sum of exps and again (from L2) to write, the backward once for its
// dot product and again to write. Both take 16-byte vector accesses when every row start
// is aligned (base pointers 16-byte aligned and D a multiple of the vector width), scalar
// ones otherwise. fp32 accumulation (f64 for f64), as the CPU: a row of -inf gives zeros
// for softmax and -inf for log-softmax.

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/row_reduce.cuh"

namespace sp::cuda {
namespace {

using rows::kVec;

constexpr int kWarpMaxCols = 1024;  // 32 lanes x 32 elements
constexpr int kWarpRowsPerBlock = 4;

// The shift and the scale the CPU uses for a row of max m and sum of exps s:
// softmax y = exp(x - shift) * scale, log-softmax y = (x - shift) - scale.
template <typename A>
struct RowCoef {
  A shift;
  A scale;
};

template <typename A>
__device__ __forceinline__ RowCoef<A> row_coef(A m, A s, bool log) {
  const A shift = m == rows::neg_inf<A>() ? A(0) : m;
  // s == 0 only when every entry is -inf; a NaN s (NaN in the row) stays NaN.
  if (log) return {shift, s > 0 ? dm::log(s) : (s == 0 ? -rows::neg_inf<A>() : s)};
  return {shift, s > 0 ? A(1) / s : (s == 0 ? A(0) : s)};
}

// One warp's row held in registers, v[E] (padding lanes -inf), normalised and stored to yr.
// Lane l holds elements (c * 32 + l) * V + i for chunk c < E / V, i < V.
template <typename T, int E, int V, typename A>
__device__ __forceinline__ void warp_row_softmax(A (&v)[E], T* __restrict__ yr, int d, bool log) {
  const int lane = threadIdx.x;
  A m = v[0];
#pragma unroll
  for (int i = 1; i < E; ++i) m = rows::nan_max(m, v[i]);
  m = rows::warp_max(m);
  const A shift = m == rows::neg_inf<A>() ? A(0) : m;
  A s = 0;
#pragma unroll
  for (int i = 0; i < E; ++i) {
    const A e = dm::exp(v[i] - shift);  // padding: exp(-inf) = 0
    s += e;
    if (!log) v[i] = e;
  }
  s = rows::warp_sum(s);
  const RowCoef<A> k = row_coef(m, s, log);
#pragma unroll
  for (int i = 0; i < E; ++i) v[i] = log ? (v[i] - k.shift) - k.scale : v[i] * k.scale;
#pragma unroll
  for (int c = 0; c < E / V; ++c) {
    const int j = (c * 32 + lane) * V;
    if (j < d) rows::store_pack<V>(yr + j, v + c * V);
  }
}

// x: [rows, D] -> y: [rows, D], D <= 32 * E; a warp per row, kWarpRowsPerBlock rows per
// block, the row read once into registers (warp_row_softmax's layout).
template <typename T, int E, int V>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock)
    softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t nrows, int d,
                        bool log) {
  using A = acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + threadIdx.y;
  if (row >= nrows) return;  // the whole warp leaves: no block-wide sync below
  const int lane = threadIdx.x;
  const T* xr = x + row * d;
  A v[E];
#pragma unroll
  for (int c = 0; c < E / V; ++c) {
    const int j = (c * 32 + lane) * V;
    if (j < d) {  // D is a multiple of V when V > 1
      rows::load_pack<V>(xr + j, v + c * V);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) v[c * V + i] = rows::neg_inf<A>();
    }
  }
  warp_row_softmax<T, E, V>(v, y + row * d, d, log);
}

// Where each row's bias starts: rows are numbered over the leading dims of the output (all
// but the last), and the bias is expanded to the output's shape (stride 0 where broadcast).
struct BiasRows {
  static constexpr int kMaxDims = 7;
  int dims = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};

  // Unrolled over kMaxDims, so size and stride are read where the launch put them: a loop
  // bound by `dims` indexes them at run time, which copies the struct to local memory in
  // every thread (a 120-byte stack frame that held the kernel to 42% of copy bandwidth on
  // an H100; 75% without it).
  __device__ int64_t offset(int64_t row) const {
    int64_t off = 0;
#pragma unroll
    for (int i = kMaxDims - 1; i >= 0; --i) {
      if (i < dims) {
        off += (row % size[i]) * stride[i];
        row /= size[i];
      }
    }
    return off;
  }
};

// V consecutive elements at p: one 16-byte load when packed (p aligned), else one by one.
template <int V, typename T, typename A>
__device__ __forceinline__ void load_elems(const T* p, A* out, bool packed) {
  if (packed) {
    rows::load_pack<V>(p, out);
    return;
  }
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = load_as<A>(p[i]);
}

// softmax(x + bias) over rows of D <= 32 * E, as softmax_warp_kernel: the sum is rounded to
// T first and the lanes hold the elements softmax_warp_kernel's would (V is the layout; an
// operand off a 16-byte boundary is read element by element), so the result is bit for bit
// the binary add then the softmax.
template <typename T, int E, int V>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock)
    add_softmax_warp_kernel(const T* __restrict__ x, const T* __restrict__ bias, BiasRows b,
                            T* __restrict__ y, int64_t nrows, int d, bool x_packed,
                            bool bias_packed) {
  using A = acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + threadIdx.y;
  if (row >= nrows) return;
  const int lane = threadIdx.x;
  const T* xr = x + row * d;
  const T* br = bias + b.offset(row);
  A v[E];
#pragma unroll
  for (int c = 0; c < E / V; ++c) {
    const int j = (c * 32 + lane) * V;
    if (j < d) {
      A xv[V], bv[V];
      load_elems<V>(xr + j, xv, x_packed);
      load_elems<V>(br + j, bv, bias_packed);
#pragma unroll
      for (int i = 0; i < V; ++i) v[c * V + i] = load_as<A>(store_as<T>(xv[i] + bv[i]));
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) v[c * V + i] = rows::neg_inf<A>();
    }
  }
  warp_row_softmax<T, E, V>(v, y + row * d, d, false);
}

// dy, y: [rows, D] -> dx: [rows, D], D <= 32 * E; layout as softmax_warp_kernel.
// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
template <typename T, int E, int V>
__global__ void __launch_bounds__(32 * kWarpRowsPerBlock)
    softmax_backward_warp_kernel(const T* __restrict__ dy, const T* __restrict__ y,
                                 T* __restrict__ dx, int64_t nrows, int d, bool log) {
  using A = acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + threadIdx.y;
  if (row >= nrows) return;
  const int lane = threadIdx.x;
  const int64_t base = row * d;
  A g[E], p[E];
#pragma unroll
  for (int c = 0; c < E / V; ++c) {
    const int j = (c * 32 + lane) * V;
    if (j < d) {
      rows::load_pack<V>(dy + base + j, g + c * V);
      rows::load_pack<V>(y + base + j, p + c * V);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) g[c * V + i] = p[c * V + i] = A(0);
    }
  }
  A s = 0;
#pragma unroll
  for (int i = 0; i < E; ++i) s += log ? g[i] : g[i] * p[i];
  s = rows::warp_sum(s);
#pragma unroll
  for (int i = 0; i < E; ++i) g[i] = log ? g[i] - dm::exp(p[i]) * s : p[i] * (g[i] - s);
#pragma unroll
  for (int c = 0; c < E / V; ++c) {
    const int j = (c * 32 + lane) * V;
    if (j < d) rows::store_pack<V>(dx + base + j, g + c * V);
  }
}

// x: [rows, D] -> y: [rows, D]; a block per row, any D. Pass 1 reads the row for the
// online max + sum (four vectors in flight per thread), pass 2 re-reads it from L2 and writes.
template <typename T, int V>
__global__ void __launch_bounds__(rows::kMaxRowThreads)
    softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t d, bool log) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  const T* xr = x + row * d;
  T* yr = y + row * d;
  const rows::MaxSum<A> acc = rows::block_row_max_sum<V, A>(xr, d);
  const RowCoef<A> k = row_coef(acc.m, acc.s, log);
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
#pragma unroll 2
  for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < d; j += step) {
    A v[V];
    rows::load_pack<V>(xr + j, v);
#pragma unroll
    for (int i = 0; i < V; ++i)
      v[i] = log ? (v[i] - k.shift) - k.scale : dm::exp(v[i] - k.shift) * k.scale;
    rows::store_pack<V>(yr + j, v);
  }
}

// dy, y: [rows, D] -> dx: [rows, D]; a block per row, any D (formulas as the warp kernel).
template <typename T, int V>
__global__ void __launch_bounds__(rows::kMaxRowThreads)
    softmax_backward_block_kernel(const T* __restrict__ dy, const T* __restrict__ y,
                                  T* __restrict__ dx, int64_t d, bool log) {
  using A = acc_t<T>;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * d;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  A s = 0;
#pragma unroll 2
  for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < d; j += step) {
    A g[V], p[V];
    rows::load_pack<V>(dy + base + j, g);
    if (!log) rows::load_pack<V>(y + base + j, p);
#pragma unroll
    for (int i = 0; i < V; ++i) s += log ? g[i] : g[i] * p[i];
  }
  s = rows::block_sum(s);
#pragma unroll 2
  for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < d; j += step) {
    A g[V], p[V];
    rows::load_pack<V>(dy + base + j, g);
    rows::load_pack<V>(y + base + j, p);
#pragma unroll
    for (int i = 0; i < V; ++i) g[i] = log ? g[i] - dm::exp(p[i]) * s : p[i] * (g[i] - s);
    rows::store_pack<V>(dx + base + j, g);
  }
}

// Calls f.template operator()<E>() with E, the elements per lane for a warp row of d
// columns: the smallest of 4, 8, 16, 32 with 32 * E >= d.
template <typename F>
void with_lane_elems(int64_t d, F&& f) {
  if (d <= 128) return f.template operator()<4>();
  if (d <= 256) return f.template operator()<8>();
  if (d <= 512) return f.template operator()<16>();
  return f.template operator()<32>();
}

// Launches warp.template operator()<E, V>(blocks, threads, stream) for [rows, d <=
// kWarpMaxCols], with 16-byte vectors (V = kVec<T>) when `vec`, else V = 1.
template <typename T, typename Warp>
void launch_warp_rows(int64_t nrows, int64_t d, bool vec, const char* op, Warp&& warp) {
  constexpr int kV = kVec<T>;
  SP_CHECK(nrows / kWarpRowsPerBlock < 0x7fffffff, "[", op,
           "] too many rows for one launch: ", nrows);
  const dim3 threads(32, kWarpRowsPerBlock);
  const auto blocks = static_cast<unsigned>((nrows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock);
  cudaStream_t s = current_stream();
  with_lane_elems(d, [&]<int E>() {
    if constexpr (E >= kV) {
      if (vec) return warp.template operator()<E, kV>(blocks, threads, s);
    }
    warp.template operator()<E, 1>(blocks, threads, s);
  });
}

// Launches the warp or block kernel for a [rows, d] problem: K<T, E, V> for warps,
// B<T, V> for blocks, chosen with 16-byte vectors when `aligned` and d % kVec<T> == 0.
template <typename T, typename Warp, typename Block>
void launch_rows(int64_t nrows, int64_t d, bool aligned, const char* op, Warp&& warp,
                 Block&& block) {
  constexpr int kV = kVec<T>;
  const bool vec = aligned && d % kV == 0;
  if (d <= kWarpMaxCols) {
    launch_warp_rows<T>(nrows, d, vec, op, warp);
  } else {
    SP_CHECK(nrows <= 0x7fffffff, "[", op, "] too many rows for one launch: ", nrows);
    const auto blocks = static_cast<unsigned>(nrows);
    cudaStream_t s = current_stream();
    if (vec) {
      block.template operator()<kV>(blocks, rows::block_threads(d, kV), s);
    } else {
      block.template operator()<1>(blocks, rows::block_threads(d, 1), s);
    }
  }
  SP_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// in: [..., D] -> out: [..., D], contiguous (the dispatching layer moves the dim last).
void CudaBackend::softmax(Tensor& out, const Tensor& in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  SP_CHECK(in.is_contiguous() && out.is_contiguous(), "[", name,
           "] cuda softmax needs contiguous tensors, got ", describe(in));
  if (in.numel() == 0) return;
  const int64_t d = in.dim() == 0 ? 1 : in.shape().back();
  const int64_t nrows = in.numel() / d;
  DeviceGuard guard(in.device().index);
  SP_CUDA_DISPATCH_FLOAT(in.dtype(), name, [&]<typename T>() {
    const T* x = static_cast<const T*>(address(in));
    T* y = static_cast<T*>(address(out));
    launch_rows<T>(
        nrows, d, rows::all_aligned16(x, y), name,
        [&]<int E, int V>(unsigned blocks, dim3 threads, cudaStream_t s) {
          softmax_warp_kernel<T, E, V>
              <<<blocks, threads, 0, s>>>(x, y, nrows, static_cast<int>(d), log);
        },
        [&]<int V>(unsigned blocks, unsigned threads, cudaStream_t s) {
          softmax_block_kernel<T, V><<<blocks, threads, 0, s>>>(x, y, d, log);
        });
  });
}

// in: [..., D] contiguous, bias: expanded to in's shape with unit stride along D (the
// dispatching layer makes it so) -> out = softmax(in + bias), contiguous. Rows that fit a
// warp are fused; longer ones (and biases of more dims than BiasRows holds) take the
// backend's add then softmax, which gives the same bits.
void CudaBackend::add_softmax(Tensor& out, const Tensor& in, const Tensor& bias) {
  const char* name = "add_softmax";
  SP_CHECK(in.is_contiguous() && out.is_contiguous(), "[", name,
           "] cuda add_softmax needs contiguous scores, got ", describe(in));
  SP_CHECK(bias.shape() == in.shape() && bias.dtype() == in.dtype(), "[", name, "] bias ",
           describe(bias), " does not match the scores ", describe(in));
  if (in.numel() == 0) return;
  const int64_t d = in.dim() == 0 ? 1 : in.shape().back();
  const int lead = in.dim() == 0 ? 0 : in.dim() - 1;
  if (d > kWarpMaxCols || lead > BiasRows::kMaxDims || (d > 1 && bias.strides().back() != 1)) {
    Backend::add_softmax(out, in, bias);
    return;
  }
  const int64_t nrows = in.numel() / d;
  DeviceGuard guard(in.device().index);
  SP_CUDA_DISPATCH_FLOAT(in.dtype(), name, [&]<typename T>() {
    const T* x = static_cast<const T*>(address(in));
    const T* b = static_cast<const T*>(address(bias));
    T* y = static_cast<T*>(address(out));
    BiasRows rows_of;
    rows_of.dims = lead;
    bool strides_aligned = true;  // bias rows a multiple of 16 bytes apart
    for (int i = 0; i < lead; ++i) {
      rows_of.size[i] = in.shape()[i];
      rows_of.stride[i] = bias.strides()[i];
      strides_aligned = strides_aligned && rows_of.stride[i] % kVec<T> == 0;
    }
    // The layout add then softmax would have: its sum is a fresh (aligned) tensor.
    const bool vec = rows::aligned16(y) && d % kVec<T> == 0;
    const bool x_packed = rows::aligned16(x);
    const bool bias_packed = rows::aligned16(b) && strides_aligned;
    launch_warp_rows<T>(nrows, d, vec, name,
                        [&]<int E, int V>(unsigned blocks, dim3 threads, cudaStream_t s) {
                          add_softmax_warp_kernel<T, E, V><<<blocks, threads, 0, s>>>(
                              x, b, rows_of, y, nrows, static_cast<int>(d), x_packed, bias_packed);
                        });
    SP_CUDA_CHECK_LAUNCH(name);
  });
}

// dy, y: [..., D] -> dx: [..., D], all contiguous.
void CudaBackend::softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  SP_CHECK(dx.is_contiguous() && dy.is_contiguous() && y.is_contiguous(), "[", name,
           "] cuda softmax backward needs contiguous tensors");
  SP_CHECK(dy.dtype() == y.dtype() && dx.dtype() == y.dtype(), "[", name,
           "] dy, y and dx need one dtype: dy is ", describe(dy), ", y is ", describe(y));
  if (y.numel() == 0) return;
  const int64_t d = y.dim() == 0 ? 1 : y.shape().back();
  const int64_t nrows = y.numel() / d;
  DeviceGuard guard(y.device().index);
  SP_CUDA_DISPATCH_FLOAT(y.dtype(), name, [&]<typename T>() {
    const T* g = static_cast<const T*>(address(dy));
    const T* p = static_cast<const T*>(address(y));
    T* o = static_cast<T*>(address(dx));
    launch_rows<T>(
        nrows, d, rows::all_aligned16(g, p, o), name,
        [&]<int E, int V>(unsigned blocks, dim3 threads, cudaStream_t s) {
          softmax_backward_warp_kernel<T, E, V>
              <<<blocks, threads, 0, s>>>(g, p, o, nrows, static_cast<int>(d), log);
        },
        [&]<int V>(unsigned blocks, unsigned threads, cudaStream_t s) {
          softmax_backward_block_kernel<T, V><<<blocks, threads, 0, s>>>(g, p, o, d, log);
        });
  });
}

}  // namespace sp::cuda
