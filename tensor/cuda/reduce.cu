// Reductions on CUDA: sum, mean, max, min, argmax, argmin over any set of dims.
//
// As on the CPU (tensor/cpu/reduce.cpp), size-1 dims are dropped and neighbours of the same
// kind merged, and the reduced groups are folded innermost first, each step an
// [A, R, B] -> [A, B] reduction with intermediate results in the accumulator type:
//  - B == 1 (rows): a warp per row for short rows, a block per row for long ones, and rows
//    split into chunks folded by separate blocks (then a second pass) when there are too
//    few rows to fill the GPU. 16-byte loads when the rows are aligned.
//  - B > 1 (columns): a block of 32 columns x 8 row lanes, reading 32 consecutive
//    elements per warp and row; rows split over blockIdx.y (then a second pass over the
//    partial rows) when there are too few columns to fill the GPU.
// No atomics: each output is folded in an order fixed by the shape and the GPU's SM count
// (which sets how long rows and columns are split), so results are the same run to run on
// one GPU model (not bitwise those of the CPU for float sums, whose order differs).
#include <algorithm>
#include <cstdint>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_kernels.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/reduce_math.cuh"
#include "tensor/reduce_groups.h"

namespace sp::cuda {
namespace {

constexpr int kThreads = 256;
// Rows up to this long get a warp each; longer ones a block.
constexpr int64_t kWarpRowMax = 1024;
// Column kernel: 32 columns (one warp wide) x kColLanes row lanes.
constexpr int kColLanes = 8;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks of kThreads that fill every SM once at full occupancy (2048 threads per SM).
int64_t full_wave(int device) { return static_cast<int64_t>(sm_count(device)) * (2048 / kThreads); }

// V elements loaded as one access (V * sizeof(T) bytes, at most 16).
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// The value written for an accumulated result: divided by the count for mean.
template <typename Out, typename Acc>
__device__ __forceinline__ Out finish(Acc v, bool divide, Acc divisor) {
  if constexpr (std::is_floating_point_v<Acc>) {
    if (divide) v = v / divisor;
  }
  return store_as<Out>(v);
}

// Folds x[lane*V + k*G*V + j] for k = 0, 1, ... and j in [0, V), in that order, for one of
// the G threads (lanes) sharing a row of n elements. The vector path (x 16-byte aligned,
// n % V == 0) and the scalar path visit the same elements in the same order, so the
// result does not depend on alignment.
template <typename Fold, int V, int G, typename Acc, typename T>
__device__ __forceinline__ Acc fold_span(const T* __restrict__ x, int64_t n, int lane, bool vec) {
  Acc acc = Fold::template init<Acc>();
  if (vec) {
    const Pack<T, V>* xv = reinterpret_cast<const Pack<T, V>*>(x);
    const int64_t nv = n / V;
#pragma unroll 4
    for (int64_t i = lane; i < nv; i += G) {
      const Pack<T, V> p = xv[i];
#pragma unroll
      for (int j = 0; j < V; ++j) acc = Fold::apply(acc, load_as<Acc>(p.v[j]));
    }
    return acc;
  }
  for (int64_t base = static_cast<int64_t>(lane) * V; base < n;
       base += static_cast<int64_t>(G) * V) {
#pragma unroll
    for (int j = 0; j < V; ++j)
      if (base + j < n) acc = Fold::apply(acc, load_as<Acc>(x[base + j]));
  }
  return acc;
}

// in: [A, R] in segments of L elements (S per row; the last one of a row may be shorter)
//   -> out: [A, S], out[a, s] = fold of in[a, s*L, min(R, (s+1)*L)).
// G == 32: a warp per segment; G == kThreads: a block per segment.
template <typename Fold, int V, int G, typename T, typename Acc, typename Out>
__global__ void __launch_bounds__(kThreads)
    row_fold_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t A, int64_t R,
                    int64_t L, int64_t S, bool vec, bool divide, Acc divisor) {
  __shared__ Acc scratch[32];
  constexpr int kPerBlock = kThreads / G;
  const int group = threadIdx.x / G, lane = threadIdx.x % G;
  const int64_t segments = A * S;
  // The loop bound is uniform over the block, as block_fold needs.
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kPerBlock; first < segments;
       first += static_cast<int64_t>(gridDim.x) * kPerBlock) {
    const int64_t seg = first + group;
    Acc acc = Fold::template init<Acc>();
    if (seg < segments) {
      const int64_t a = seg / S, s = seg % S;
      const int64_t start = s * L;
      acc = fold_span<Fold, V, G, Acc>(in + a * R + start, min(L, R - start), lane, vec);
    }
    if constexpr (G == 32) {
      acc = warp_fold<Fold>(acc);
    } else {
      acc = block_fold<Fold>(acc, scratch);
    }
    if (lane == 0 && seg < segments) out[seg] = finish<Out>(acc, divide, divisor);
  }
}

// in: [A, R, B] -> out: [splits, A, B], out[k, a, b] = fold over r in split k of in[a, r, b].
// Block (32, kColLanes): thread x owns C consecutive columns (one 16-byte load per row when
// C > 1), thread y is a row lane; the lanes are folded in order at the end. blockIdx.x runs
// over (a, block of 32 * C columns), blockIdx.y over the splits of R (rows_per_split each).
template <typename Fold, int C, typename T, typename Acc, typename Out>
__global__ void __launch_bounds__(32 * kColLanes)
    col_fold_kernel(const T* __restrict__ in, Out* __restrict__ out, int64_t A, int64_t R,
                    int64_t B, int64_t rows_per_split, bool divide, Acc divisor) {
  __shared__ Acc part[kColLanes][32 * C + 1];
  const int64_t col_blocks = (B + 32 * C - 1) / (32 * C);
  const int64_t a = blockIdx.x / col_blocks;
  const int64_t b0 = (blockIdx.x % col_blocks) * (32 * C) + threadIdx.x * C;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_split;
  const int64_t r1 = min(R, r0 + rows_per_split);
  Acc acc[C];
#pragma unroll
  for (int j = 0; j < C; ++j) acc[j] = Fold::template init<Acc>();
  // With C > 1 the host guarantees B % C == 0 and 16-byte alignment, so a thread's
  // columns are all in range or all out.
  if (b0 < B) {
    const T* __restrict__ x = in + a * R * B + b0;
#pragma unroll 4
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      if constexpr (C == 1) {
        acc[0] = Fold::apply(acc[0], load_as<Acc>(x[r * B]));
      } else {
        const Pack<T, C> p = *reinterpret_cast<const Pack<T, C>*>(x + r * B);
#pragma unroll
        for (int j = 0; j < C; ++j) acc[j] = Fold::apply(acc[j], load_as<Acc>(p.v[j]));
      }
    }
  }
#pragma unroll
  for (int j = 0; j < C; ++j) part[threadIdx.y][threadIdx.x * C + j] = acc[j];
  __syncthreads();
  if (threadIdx.y != 0 || b0 >= B) return;
  Out* __restrict__ o = out + (static_cast<int64_t>(blockIdx.y) * A + a) * B + b0;
#pragma unroll
  for (int j = 0; j < C; ++j) {
    Acc v = acc[j];
#pragma unroll
    for (int k = 1; k < kColLanes; ++k) v = Fold::apply(v, part[k][threadIdx.x * C + j]);
    o[j] = finish<Out>(v, divide, divisor);
  }
}

template <typename T>
Tensor scratch(int64_t n, int device) {
  return Tensor::empty(Shape{n}, dtype_of<T>::value, Device::cuda(device));
}

// One [A, R, B] -> [A, B] step: out[a, b] = finish(fold over r of in[a, r, b]).
// allow_split: whether the step may fold partial results in a second pass (not inside one).
template <typename Fold, typename In, typename Acc, typename Out>
void reduce_step(const In* in, Out* out, int64_t A, int64_t R, int64_t B, bool divide, Acc divisor,
                 int device, bool allow_split = true) {
  const char* op = "reduce";
  cudaStream_t stream = cuda::stream(device);
  const int64_t wave = full_wave(device);
  if (B == 1) {
    constexpr int V = static_cast<int>(16 / sizeof(In)) > 0 ? static_cast<int>(16 / sizeof(In)) : 1;
    // Split long rows when there are too few of them to give every SM a few blocks.
    int64_t S = 1, L = R;
    if (allow_split && A < 2 * wave / 8 && R > 8 * kThreads * V) {
      S = std::min(ceil_div(2 * wave, A), ceil_div(R, 2 * kThreads * V));
      L = ceil_div(ceil_div(R, S), kThreads * V) * (kThreads * V);
      S = ceil_div(R, L);
    }
    const bool vec = reinterpret_cast<uintptr_t>(in) % 16 == 0 && R % V == 0 && L % V == 0;
    if (S > 1) {
      Tensor part = scratch<Acc>(A * S, device);
      Acc* p = static_cast<Acc*>(address(part));
      row_fold_kernel<Fold, V, kThreads, In, Acc, Acc>
          <<<static_cast<unsigned>(std::min(A * S, wave * 8)), kThreads, 0, stream>>>(
              in, p, A, R, L, S, vec, false, divisor);
      SP_CUDA_CHECK_LAUNCH(op);
      reduce_step<Fold, Acc, Acc, Out>(p, out, A, S, 1, divide, divisor, device, false);
      return;
    }
    if (R <= kWarpRowMax) {
      const int64_t blocks = std::min(ceil_div(A, kThreads / 32), wave * 8);
      row_fold_kernel<Fold, V, 32, In, Acc, Out>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(in, out, A, R, R, 1, vec, divide,
                                                                   divisor);
    } else {
      const int64_t blocks = std::min(A, wave * 8);
      row_fold_kernel<Fold, V, kThreads, In, Acc, Out>
          <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(in, out, A, R, R, 1, vec, divide,
                                                                   divisor);
    }
    SP_CUDA_CHECK_LAUNCH(op);
    return;
  }
  // Columns per thread: a 16-byte load when the rows allow it. The split plan depends on
  // the shape alone (not on alignment), so the order of each column's fold does too.
  constexpr int CV = static_cast<int>(16 / sizeof(In)) > 0 ? static_cast<int>(16 / sizeof(In)) : 1;
  const int64_t cols = B % CV == 0 ? CV : 1;
  const bool vec = cols > 1 && reinterpret_cast<uintptr_t>(in) % 16 == 0;
  const int64_t blocks_x = A * ceil_div(B, 32 * cols);
  SP_CHECK(A * ceil_div(B, 32) <= 0x7fffffff, "[reduce] too many columns: [", A, ", ", R, ", ", B,
           "]");
  int64_t splits = 1, rows_per_split = R;
  if (allow_split && blocks_x < wave && R >= 64) {
    splits = std::min({ceil_div(wave, blocks_x), ceil_div(R, 32), int64_t{65535}});
    rows_per_split = ceil_div(ceil_div(R, splits), kColLanes) * kColLanes;
    splits = ceil_div(R, rows_per_split);
  }
  Tensor part;
  auto launch = [&]<typename O>(O* dst, bool last) {
    const dim3 block(32, kColLanes);
    if (vec) {
      const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(splits));
      col_fold_kernel<Fold, CV, In, Acc, O>
          <<<grid, block, 0, stream>>>(in, dst, A, R, B, rows_per_split, last && divide, divisor);
    } else {
      // One column per thread (unaligned input, or B % CV != 0); the same splits, so each
      // column folds the same rows in the same order as the vector kernel would.
      const dim3 grid(static_cast<unsigned>(A * ceil_div(B, 32)), static_cast<unsigned>(splits));
      col_fold_kernel<Fold, 1, In, Acc, O>
          <<<grid, block, 0, stream>>>(in, dst, A, R, B, rows_per_split, last && divide, divisor);
    }
    SP_CUDA_CHECK_LAUNCH(op);
  };
  if (splits > 1) {
    part = scratch<Acc>(splits * A * B, device);
    Acc* p = static_cast<Acc*>(address(part));
    launch(p, false);
    reduce_step<Fold, Acc, Acc, Out>(p, out, 1, splits, A * B, divide, divisor, device, false);
    return;
  }
  launch(out, true);
}

// Reduces the groups marked reduced (at least one; CudaBackend::reduce copies when only
// size-1 dims are), innermost first; intermediate results stay in Acc and only the last
// step divides (mean) and converts to Out.
template <typename Fold, typename T, typename Out>
void reduce_groups(const T* in, Out* out, ReduceGroups groups, int64_t out_numel, bool mean,
                   int64_t extent, int device) {
  using Acc = reduce_acc_t<T>;
  const Acc divisor = static_cast<Acc>(extent);
  Tensor held;  // the previous step's result
  const Acc* src = nullptr;
  for (int step = 0;; ++step) {
    const int g = groups.last_reduced();
    int64_t A, R, B;
    groups.around(g, A, R, B);
    groups.remove(g);
    const bool last = groups.last_reduced() < 0;
    if (last) {
      if (step == 0) {
        reduce_step<Fold, T, Acc, Out>(in, out, A, R, B, mean, divisor, device);
      } else {
        reduce_step<Fold, Acc, Acc, Out>(src, out, A, R, B, mean, divisor, device);
      }
      return;
    }
    Tensor next = scratch<Acc>(A * B, device);
    Acc* dst = static_cast<Acc*>(address(next));
    if (step == 0) {
      reduce_step<Fold, T, Acc, Acc>(in, dst, A, R, B, false, divisor, device);
    } else {
      reduce_step<Fold, Acc, Acc, Acc>(src, dst, A, R, B, false, divisor, device);
    }
    held = next;  // keeps dst alive (stream order makes reusing the old block safe)
    src = dst;
  }
}

// Whether v beats best for argmax (Max) / argmin: NaN beats everything; ties do not.
template <bool Max, typename Acc>
__device__ __forceinline__ bool beats(Acc v, Acc best) {
  const bool better = Max ? v > best : v < best;
  return better || (is_nan(v) && !is_nan(best));
}

constexpr int64_t kNoIndex = 0x7fffffffffffffffll;

// The better of two candidates (value, index): the one that beats the other, else (equal,
// or both NaN) the smaller index; kNoIndex marks an empty candidate.
template <bool Max, typename Acc>
__device__ __forceinline__ void arg_combine(Acc& v, int64_t& i, Acc w, int64_t j) {
  if (j == kNoIndex) return;
  const bool take = i == kNoIndex || beats<Max>(w, v) || (!beats<Max>(v, w) && j < i);
  if (take) {
    v = w;
    i = j;
  }
}

// in: [A, R] -> out: [A] i64, the first index of the max (min), or of the first NaN.
// A block per row.
template <bool Max, typename T>
__global__ void __launch_bounds__(kThreads)
    arg_row_kernel(const T* __restrict__ in, int64_t* __restrict__ out, int64_t A, int64_t R) {
  using Acc = reduce_acc_t<T>;
  __shared__ Acc sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t a = blockIdx.x; a < A; a += gridDim.x) {
    const T* __restrict__ x = in + a * R;
    Acc best = Acc(0);
    int64_t idx = kNoIndex;
    for (int64_t r = threadIdx.x; r < R; r += kThreads) {
      const Acc v = load_as<Acc>(x[r]);
      if (idx == kNoIndex || beats<Max>(v, best)) {
        best = v;
        idx = r;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const Acc w = __shfl_down_sync(0xffffffffu, best, offset);
      const int64_t j = __shfl_down_sync(0xffffffffu, idx, offset);
      arg_combine<Max>(best, idx, w, j);
    }
    __syncthreads();  // the previous row's readers of sv / si are done
    if (lane == 0) {
      sv[warp] = best;
      si[warp] = idx;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int k = 1; k < kThreads / 32; ++k) arg_combine<Max>(best, idx, sv[k], si[k]);
      out[a] = idx;
    }
  }
}

// in: [A, R, B] -> out: [A, B] i64; a thread per column scans r in order (as the CPU).
template <bool Max, typename T>
__global__ void arg_col_kernel(const T* __restrict__ in, int64_t* __restrict__ out, int64_t A,
                               int64_t R, int64_t B) {
  using Acc = reduce_acc_t<T>;
  const int64_t total = A * B;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t a = e / B, b = e % B;
    const T* __restrict__ x = in + a * R * B + b;
    Acc best = load_as<Acc>(x[0]);
    int64_t idx = 0;
    for (int64_t r = 1; r < R; ++r) {
      const Acc v = load_as<Acc>(x[r * B]);
      if (beats<Max>(v, best)) {
        best = v;
        idx = r;
      }
    }
    out[e] = idx;
  }
}

template <bool Max, typename T>
void arg_reduce(const T* in, int64_t* out, int64_t A, int64_t R, int64_t B, int device) {
  cudaStream_t stream = cuda::stream(device);
  const char* op = Max ? "argmax" : "argmin";
  if (B == 1) {
    const int64_t blocks = std::min(A, full_wave(device) * 8);
    arg_row_kernel<Max, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(in, out, A, R);
  } else {
    arg_col_kernel<Max, T><<<grid_for(A * B, kThreads), kThreads, 0, stream>>>(in, out, A, R, B);
  }
  SP_CUDA_CHECK_LAUNCH(op);
}

}  // namespace

// in: [d0, ..., dn] contiguous -> out: same rank, dims in dims_mask set to 1 (contiguous);
// argmax / argmin write i64.
void CudaBackend::reduce(ReduceOp op, Tensor& out, const Tensor& in, uint32_t dims_mask) {
  const char* name = reduce_name(op);
  SP_CHECK(in.is_contiguous() && out.is_contiguous(), "[", name,
           "] cuda reduce needs contiguous tensors, got ", describe(in), " -> ", describe(out));
  int64_t extent = 1;
  const ReduceGroups groups = ReduceGroups::of(in.shape(), dims_mask, extent);
  const int64_t out_numel = out.numel();
  if (out_numel == 0) return;
  if (in.numel() == 0) {
    // Only an empty sum or mean gets here (the dispatch layer rejects the others).
    fill(out, op == ReduceOp::mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    return;
  }
  const int device = in.device().index;
  DeviceGuard guard(device);

  if (op == ReduceOp::argmax || op == ReduceOp::argmin) {
    SP_CHECK(out.dtype() == DType::i64, "[", name, "] writes i64, out is ", describe(out));
    int64_t* idx = static_cast<int64_t*>(address(out));
    const int g = groups.last_reduced();
    if (g < 0) {
      fill(out, 0.0);
      return;
    }
    int64_t A, R, B;
    groups.around(g, A, R, B);
    SP_CUDA_DISPATCH_ALL(in.dtype(), name, [&]<typename T>() {
      const T* x = static_cast<const T*>(address(in));
      if (op == ReduceOp::argmax) {
        arg_reduce<true, T>(x, idx, A, R, B, device);
      } else {
        arg_reduce<false, T>(x, idx, A, R, B, device);
      }
    });
    return;
  }

  if (groups.last_reduced() < 0) {
    // Only size-1 dims are reduced: a conversion, value for value as the CPU's (a sum's
    // fold would start from +0 and turn -0.0 into +0.0); a mean divides by 1.
    launch_copy(out, in.as_strided(out.shape(), contiguous_strides(out.shape()), in.offset()));
    return;
  }
  const bool mean = op == ReduceOp::mean;
  SP_CUDA_DISPATCH_ALL(in.dtype(), name, [&]<typename T>() {
    using Acc = reduce_acc_t<T>;
    const T* x = static_cast<const T*>(address(in));
    // out holds T (max, min, float sums) or the accumulator type (integer sums: i64).
    auto run = [&]<typename Out>() {
      Out* o = static_cast<Out*>(address(out));
      switch (op) {
        case ReduceOp::max:
          reduce_groups<MaxFold>(x, o, groups, out_numel, false, extent, device);
          break;
        case ReduceOp::min:
          reduce_groups<MinFold>(x, o, groups, out_numel, false, extent, device);
          break;
        default: reduce_groups<SumFold>(x, o, groups, out_numel, mean, extent, device); break;
      }
    };
    if (out.dtype() == in.dtype()) {
      run.template operator()<T>();
    } else {
      SP_CHECK(out.dtype() == dtype_of<Acc>::value, "[", name, "] cannot write ", describe(out),
               " from ", describe(in));
      run.template operator()<Acc>();
    }
  });
}

}  // namespace sp::cuda
