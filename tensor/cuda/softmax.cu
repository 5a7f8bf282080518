// Softmax and log-softmax over the last dim on CUDA, forward and backward, and the fused
// softmax(scores + bias) of T5's attention.
//
// Short rows (D <= 1024): a warp per row, the row held in registers (read once, written
// once), E elements per lane. Longer f32, bf16 and f16 rows with 16-byte vectors (row
// starts aligned, D a multiple of the vector width): held in registers too, split over a
// thread-block cluster of C = 1, 2, 4 or 8 blocks that merge their max + sum of exps (the
// backward its dot product) through distributed shared memory, so each element is read
// once (forward: up to 65536 f32 / 131072 bf16 columns; backward, which holds two rows,
// half that). Longer, f64 or misaligned rows: a block per row that reads the row once for
// an online max + sum of exps and again (from L2) to write; the backward once for its dot
// product and again to write.
// fp32 accumulation (f64 for f64), as the CPU: a row of -inf gives zeros for softmax and
// -inf for log-softmax.

#include <cooperative_groups.h>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/row_reduce.cuh"

namespace sp::cuda {
namespace {

namespace cg = cooperative_groups;
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

// Row-resident long rows (f32, bf16, f16; f64 streams): a thread of a block of up to
// kClusterThreads holds 128 bytes of the row in 16-byte vectors (forward: 8 packs of x;
// backward: 4 packs each of dy and y) in at most 85 registers, so three blocks share an SM.
// Measured on an H100 at 4096 x 32128 bf16 (bench/RESULTS.md): 128 bytes a thread at three
// blocks an SM moves 84% of the copy's bytes per second forward, 64 bytes at four 68%.
constexpr unsigned kClusterThreads = 256;
constexpr int kClusterMinBlocks = 3;
constexpr int kForwardPacks = 8;
constexpr int kBackwardPacks = 4;
constexpr int kMaxCluster = 8;

// The fold of the C blocks' values (every thread of the C blocks calls it): thread b of
// each block writes the block's value into slot `rank` of block b, one cluster barrier
// makes all of them visible, and every block combines its C slots in rank order, so all get
// the same bits. After the barrier a block reads only its own shared memory, so no second
// barrier has to hold it until the others have read.
template <int C, typename T, typename Combine>
__device__ T cluster_fold(T mine, Combine combine) {
  if constexpr (C == 1) {
    return mine;
  } else {
    __shared__ T slots[C];
    cg::cluster_group cluster = cg::this_cluster();
    if (threadIdx.x < C)
      *cluster.map_shared_rank(&slots[__clusterRelativeBlockRank()], threadIdx.x) = mine;
    cluster.sync();
    T t = slots[0];
#pragma unroll
    for (int b = 1; b < C; ++b) t = combine(t, slots[b]);
    return t;
  }
}

// The part of a row a block of a cluster-per-row launch holds: row r is cluster r, and
// the block of rank b in it holds columns [b * part, min((b + 1) * part, D)).
struct RowSlice {
  int64_t at;  // the slice's first element in the tensor
  int64_t n;   // its columns
};
template <int C>
__device__ __forceinline__ RowSlice cluster_slice(int64_t d, int64_t part) {
  if constexpr (C == 1) {
    return {static_cast<int64_t>(blockIdx.x) * d, d};
  } else {
    const int64_t begin = static_cast<int64_t>(__clusterRelativeBlockRank()) * part;
    return {static_cast<int64_t>(__clusterIdx().x) * d + begin,
            d - begin < part ? d - begin : part};
  }
}

// x: [rows, D] -> y: [rows, D], D a multiple of kVec<T>, row starts aligned; a block holds
// its cluster_slice in registers, part a multiple of kVec<T>. One exp per element:
// a thread takes exp(x - m) against the max m of its own elements, and scales by
// exp(m - max) / sum once the cluster has merged every thread's (m, sum).
template <typename T, int C, bool kLog>
__global__ void __launch_bounds__(kClusterThreads, kClusterMinBlocks)
    softmax_cluster_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t d, int64_t part) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  constexpr int N = kForwardPacks;
  using Row = rows::RowPacks<T, V, N>;
  const RowSlice slice = cluster_slice<C>(d, part);
  const int64_t at = slice.at, n = slice.n;
  Row v;
  v.load(x + at, n);
  A m = rows::neg_inf<A>();
  Row::for_each(n, [&](int k, int64_t) {
#pragma unroll
    for (int i = 0; i < V; ++i) m = rows::nan_max(m, v.template get<A>(k, i));
  });
  const A own_shift = m == rows::neg_inf<A>() ? A(0) : m;
  A e[N][V];  // exp(x - own_shift), for softmax
  A sum = 0;
  Row::for_each(n, [&](int k, int64_t) {
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A ei = dm::exp(v.template get<A>(k, i) - own_shift);  // -inf entries: 0
      sum += ei;
      if constexpr (!kLog) e[k][i] = ei;
    }
  });
  const rows::MaxSum<A> all =
      cluster_fold<C>(rows::block_max_sum(rows::MaxSum<A>{m, sum}),
                      [](rows::MaxSum<A> a, rows::MaxSum<A> b) { return rows::merge(a, b); });
  const RowCoef<A> c = row_coef(all.m, all.s, kLog);
  // This thread's factor from exp(x - own_shift) to the output: 0 when all its elements are
  // -inf (they give 0), else at most 1 / sum (own max <= the row's).
  const A factor = m == rows::neg_inf<A>() ? A(0) : dm::exp(own_shift - c.shift) * c.scale;
  Row::for_each(n, [&](int k, int64_t j) {
    A o[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if constexpr (kLog) {
        o[i] = (v.template get<A>(k, i) - c.shift) - c.scale;
      } else {
        o[i] = e[k][i] * factor;
      }
    }
    rows::store_pack<V>(y + at + j, o);
  });
}

// dy, y: [rows, D] -> dx: [rows, D]; layout as softmax_cluster_kernel, formulas as the
// warp kernel's. kLog is a template argument: as a runtime flag the compiler computed both
// formulas, an exp per element, and the kernel ran at half the speed.
template <typename T, int C, bool kLog>
__global__ void __launch_bounds__(kClusterThreads, kClusterMinBlocks)
    softmax_backward_cluster_kernel(const T* __restrict__ dy, const T* __restrict__ y,
                                    T* __restrict__ dx, int64_t d, int64_t part) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  constexpr int N = kBackwardPacks;
  using Row = rows::RowPacks<T, V, N>;
  const RowSlice slice = cluster_slice<C>(d, part);
  const int64_t at = slice.at, n = slice.n;
  Row g, p;
  g.load(dy + at, n);
  p.load(y + at, n);
  A s = 0;
  Row::for_each(n, [&](int k, int64_t) {
#pragma unroll
    for (int i = 0; i < V; ++i)
      s += kLog ? g.template get<A>(k, i) : g.template get<A>(k, i) * p.template get<A>(k, i);
  });
  s = cluster_fold<C>(rows::block_sum(s), [](A a, A b) { return a + b; });
  Row::for_each(n, [&](int k, int64_t j) {
    A o[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A gi = g.template get<A>(k, i), pi = p.template get<A>(k, i);
      o[i] = kLog ? gi - dm::exp(pi) * s : pi * (gi - s);
    }
    rows::store_pack<V>(dx + at + j, o);
  });
}

// How rows of d columns (a multiple of kVec<T>) split over a cluster of blocks whose
// threads hold `packs` 16-byte vectors each: C blocks (the fewest of 1, 2, 4, 8 that hold
// the row; 0 when none does, or T is f64) of `threads` threads, each block holding `part`
// columns.
struct ClusterSplit {
  int blocks = 0;
  unsigned threads = 0;
  int64_t part = 0;
};
template <typename T>
ClusterSplit cluster_split(int64_t d, int packs) {
  if constexpr (std::is_same_v<T, double>) {
    return {};
  } else {
    const int64_t block_vectors = int64_t{packs} * kClusterThreads;
    const int64_t vectors = d / kVec<T>;
    for (int c = 1; c <= kMaxCluster; c *= 2) {
      const int64_t part = (vectors + c - 1) / c;  // in vectors
      if (part > block_vectors) continue;
      const unsigned threads = static_cast<unsigned>((part + packs - 1) / packs + 31) / 32 * 32;
      return {c, threads, part * kVec<T>};
    }
    return {};
  }
}

// Calls f.template operator()<C>(config) with config a launch of nrows clusters of
// split.blocks blocks (C = split.blocks, a template argument), on the current stream.
template <typename F>
void with_cluster_launch(int64_t nrows, const ClusterSplit& split, const char* op, F&& f) {
  SP_CHECK(nrows * split.blocks <= 0x7fffffff, "[", op, "] too many rows for one launch: ", nrows);
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(split.blocks);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(nrows * split.blocks));
  config.blockDim = dim3(split.threads);
  config.stream = current_stream();
  config.attrs = attr;
  config.numAttrs = split.blocks > 1 ? 1 : 0;
  switch (split.blocks) {
    case 1: return f.template operator()<1>(config);
    case 2: return f.template operator()<2>(config);
    case 4: return f.template operator()<4>(config);
    default: return f.template operator()<8>(config);
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

// Launches the warp, cluster or block kernel for a [rows, d] problem: warp<E, V>(blocks,
// threads, stream), cluster<C>(config, part) (a cluster kernel whose threads hold
// cluster_packs vectors) or block<V>(blocks, threads, stream), with 16-byte vectors
// (V = kVec<T>) when `aligned` and d % kVec<T> == 0.
template <typename T, typename Warp, typename Cluster, typename Block>
void launch_rows(int64_t nrows, int64_t d, bool aligned, int cluster_packs, const char* op,
                 Warp&& warp, Cluster&& cluster, Block&& block) {
  constexpr int kV = kVec<T>;
  const bool vec = aligned && d % kV == 0;
  const ClusterSplit split =
      vec && d > kWarpMaxCols ? cluster_split<T>(d, cluster_packs) : ClusterSplit{};
  if (d <= kWarpMaxCols) {
    launch_warp_rows<T>(nrows, d, vec, op, warp);
  } else if (split.blocks > 0) {
    with_cluster_launch(nrows, split, op, [&]<int C>(const cudaLaunchConfig_t& config) {
      cluster.template operator()<C>(config, split.part);
    });
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
        nrows, d, rows::all_aligned16(x, y), kForwardPacks, name,
        [&]<int E, int V>(unsigned blocks, dim3 threads, cudaStream_t s) {
          softmax_warp_kernel<T, E, V>
              <<<blocks, threads, 0, s>>>(x, y, nrows, static_cast<int>(d), log);
        },
        [&]<int C>(const cudaLaunchConfig_t& config, int64_t part) {
          if constexpr (!std::is_same_v<T, double>) {
            auto* kernel =
                log ? softmax_cluster_kernel<T, C, true> : softmax_cluster_kernel<T, C, false>;
            SP_CUDA_CHECK(name, cudaLaunchKernelEx(&config, kernel, x, y, d, part));
          }
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
        nrows, d, rows::all_aligned16(g, p, o), kBackwardPacks, name,
        [&]<int E, int V>(unsigned blocks, dim3 threads, cudaStream_t s) {
          softmax_backward_warp_kernel<T, E, V>
              <<<blocks, threads, 0, s>>>(g, p, o, nrows, static_cast<int>(d), log);
        },
        [&]<int C>(const cudaLaunchConfig_t& config, int64_t part) {
          if constexpr (!std::is_same_v<T, double>) {
            auto* kernel = log ? softmax_backward_cluster_kernel<T, C, true>
                               : softmax_backward_cluster_kernel<T, C, false>;
            SP_CUDA_CHECK(name, cudaLaunchKernelEx(&config, kernel, g, p, o, d, part));
          }
        },
        [&]<int V>(unsigned blocks, unsigned threads, cudaStream_t s) {
          softmax_backward_block_kernel<T, V><<<blocks, threads, 0, s>>>(g, p, o, d, log);
        });
  });
}

}  // namespace sp::cuda
