// Fused RMS norm forward and backward on CUDA (T5's layer norm), the same function as
// tensor/cpu/rms_norm.cpp:
//   r = 1 / sqrt(sum(x^2) / D + eps),  n = x * r,  n rounded to a 16-bit weight's dtype,
//   y = n * w;  backward: dn = dy * w,  dx = r * dn - x * r^3 * sum(dn * x) / D,
//   dw = sum over rows of dy * n.
// Accumulation in A = f32 (f64 when x or weight is f64).
//
// Rows of up to kResidentPacks x kResidentThreads 16-byte vectors (8192 bf16 or 4096 f32
// columns; half as many in the backward), their starts aligned, are held in registers
// (rows::RowPacks), so each is read from memory once. Forward: a block per row. Backward: a fixed
// number of row chunks (a function of R only), a block per chunk walking its rows, loading the next
// row while it reduces this one; each thread keeps the dw partial of its columns in registers, and
// a second kernel sums the chunks' partials in a fixed order: no atomics, so dw is the same run to
// run. Wider rows take streaming kernels that read a row twice (the second time from L2) and keep
// the dw partial in shared memory (global memory when D is too wide); so do misaligned rows (a view
// at an odd offset), with scalar accesses.
#include <algorithm>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/row_reduce.cuh"

namespace sp::cuda {
namespace {

struct NoWeight {};

template <typename W>
inline constexpr bool kHasWeight = !std::is_same_v<W, NoWeight>;

// Accumulation type: f64 when x or the weight is f64.
template <typename X, typename W>
using rms_acc_t =
    std::conditional_t<std::is_same_v<X, double> || std::is_same_v<W, double>, double, float>;

// The output's (and dy's) type: the weight's, or x's without a weight.
template <typename X, typename W>
using rms_out_t = std::conditional_t<kHasWeight<W>, W, X>;

// Elements per vector access: 16 bytes of the widest type involved.
template <typename X, typename W>
inline constexpr int kRmsVec = 16 /
                               static_cast<int>(std::max(sizeof(X),
                                                         kHasWeight<W> ? sizeof(W) : sizeof(X)));

// Dynamic shared memory for a dw partial: under the 48 KB a block may use without opting
// in, leaving room for block_sum's static buffer.
constexpr size_t kSmemLimit = 40 * 1024;
// dw partials: at most this many row chunks (a function of R only, for reproducibility).
constexpr int64_t kMaxChunks = 1024;
// Row-resident kernels: up to this many threads a block, with up to this many vectors each
// (the backward, which holds two rows of x and dy and a dw partial, up to half as many, so
// that two blocks share an SM).
constexpr unsigned kResidentThreads = 256;
constexpr int kResidentPacks = 4;
constexpr int kResidentBackwardPacks = 2;

// The normalised value as the multiply sees it: rounded to a 16-bit weight's dtype.
template <typename W, typename A>
__device__ __forceinline__ A cast_like_weight(A n) {
  if constexpr (std::is_same_v<W, __nv_bfloat16> || std::is_same_v<W, __half>) {
    return load_as<A>(store_as<W>(static_cast<float>(n)));
  } else {
    return n;
  }
}

// Loads V weights at j (1 when there is none).
template <int V, typename W, typename A>
__device__ __forceinline__ void load_weight(const W* w, int64_t j, A* out) {
  if constexpr (kHasWeight<W>) {
    rows::load_pack<V>(w + j, out);
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = A(1);
  }
}

// x: [R, D], w: [D] or none -> y: [R, D] (rms_out_t), rstd: [R] (A); a block per row held
// in registers (N packs a thread), read once.
template <typename X, typename W, int V, int N>
__global__ void __launch_bounds__(kResidentThreads)
    rms_norm_resident_kernel(const X* __restrict__ x, const W* __restrict__ w,
                             rms_out_t<X, W>* __restrict__ y, rms_acc_t<X, W>* __restrict__ rstd,
                             int64_t d, rms_acc_t<X, W> inv_d, rms_acc_t<X, W> eps) {
  using A = rms_acc_t<X, W>;
  using Row = rows::RowPacks<X, V, N>;
  const int64_t row = blockIdx.x;
  Row xr;
  xr.load(x + row * d, d);
  A ss = 0;
  Row::for_each(d, [&](int k, int64_t) {
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A v = xr.template get<A>(k, i);
      ss += v * v;
    }
  });
  ss = rows::block_sum(ss);
  const A rs = A(1) / sqrt(ss * inv_d + eps);
  if (threadIdx.x == 0) rstd[row] = rs;
  Row::for_each(d, [&](int k, int64_t j) {
    A v[V], wv[V];
    load_weight<V>(w, j, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A n = cast_like_weight<W>(xr.template get<A>(k, i) * rs);
      v[i] = kHasWeight<W> ? n * wv[i] : n;
    }
    rows::store_pack<V>(y + row * d + j, v);
  });
}

// x: [R, D], w: [D] or none -> y: [R, D] (rms_out_t), rstd: [R] (A); a block per row, any
// D: the row is read for the sum of squares and again (from L2) to write.
template <typename X, typename W, int V>
__global__ void __launch_bounds__(1024)
    rms_norm_kernel(const X* __restrict__ x, const W* __restrict__ w,
                    rms_out_t<X, W>* __restrict__ y, rms_acc_t<X, W>* __restrict__ rstd, int64_t d,
                    rms_acc_t<X, W> inv_d, rms_acc_t<X, W> eps) {
  using A = rms_acc_t<X, W>;
  const int64_t row = blockIdx.x;
  const X* xr = x + row * d;
  auto* yr = y + row * d;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  A ss = 0;
#pragma unroll 2
  for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < d; j += step) {
    A v[V];
    rows::load_pack<V>(xr + j, v);
#pragma unroll
    for (int i = 0; i < V; ++i) ss += v[i] * v[i];
  }
  ss = rows::block_sum(ss);
  const A rs = A(1) / sqrt(ss * inv_d + eps);
  if (threadIdx.x == 0) rstd[row] = rs;
#pragma unroll 2
  for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < d; j += step) {
    A v[V], wv[V];
    rows::load_pack<V>(xr + j, v);
    load_weight<V>(w, j, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A n = cast_like_weight<W>(v[i] * rs);
      v[i] = kHasWeight<W> ? n * wv[i] : n;
    }
    rows::store_pack<V>(yr + j, v);
  }
}

// dy: [R, D] (rms_out_t), x: [R, D], w: [D] or none, rstd: [R] -> dx: [R, D] (X) when not
// null, and when part is not null part[c, D] (A) = the dw partial of row chunk c. A block
// per chunk c = blockIdx.x of rows [R * c / chunks, R * (c + 1) / chunks), each row held in
// registers (N packs a thread) and the next one loaded while this one is reduced; each
// thread owns the same columns in every row, so its dw partial stays in registers.
template <typename X, typename W, int V, int N>
__global__ void __launch_bounds__(kResidentThreads, 2)
    rms_norm_backward_resident_kernel(const rms_out_t<X, W>* __restrict__ dy,
                                      const X* __restrict__ x, const W* __restrict__ w,
                                      const rms_acc_t<X, W>* __restrict__ rstd, X* __restrict__ dx,
                                      rms_acc_t<X, W>* __restrict__ part, int64_t nrows, int64_t d,
                                      rms_acc_t<X, W> inv_d) {
  using A = rms_acc_t<X, W>;
  using XRow = rows::RowPacks<X, V, N>;
  using GRow = rows::RowPacks<rms_out_t<X, W>, V, N>;
  const int64_t c = blockIdx.x, chunks = gridDim.x;
  const int64_t r0 = nrows * c / chunks, r1 = nrows * (c + 1) / chunks;
  A acc[N][V];
#pragma unroll
  for (int k = 0; k < N; ++k)
#pragma unroll
    for (int i = 0; i < V; ++i) acc[k][i] = A(0);
  XRow xr, x_next;
  GRow gr, g_next;
  if (r0 < r1) {
    xr.load(x + r0 * d, d);
    gr.load(dy + r0 * d, d);
  }
  for (int64_t r = r0; r < r1; ++r) {
    const bool more = r + 1 < r1;  // uniform over the block
    if (more) {
      x_next.load(x + (r + 1) * d, d);
      g_next.load(dy + (r + 1) * d, d);
    }
    const A rs = rstd[r];
    A coef = 0;
    if (dx != nullptr) {  // uniform over the block
      A dot = 0;
      XRow::for_each(d, [&](int k, int64_t j) {
        A wv[V];
        load_weight<V>(w, j, wv);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const A g = gr.template get<A>(k, i);
          dot += (kHasWeight<W> ? g * wv[i] : g) * xr.template get<A>(k, i);
        }
      });
      dot = rows::block_sum(dot);
      coef = rs * rs * rs * dot * inv_d;
    }
    XRow::for_each(d, [&](int k, int64_t j) {
      if (dx != nullptr) {
        A wv[V], o[V];
        load_weight<V>(w, j, wv);
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const A g = gr.template get<A>(k, i);
          const A dn = kHasWeight<W> ? g * wv[i] : g;
          o[i] = rs * dn - xr.template get<A>(k, i) * coef;
        }
        rows::store_pack<V>(dx + r * d + j, o);
      }
      if (part != nullptr) {
#pragma unroll
        for (int i = 0; i < V; ++i)
          acc[k][i] +=
              gr.template get<A>(k, i) * cast_like_weight<W>(xr.template get<A>(k, i) * rs);
      }
    });
    if (more) {
      xr = x_next;
      gr = g_next;
    }
  }
  if (part != nullptr) {
    XRow::for_each(d, [&](int k, int64_t j) { rows::store_pack<V>(part + c * d + j, acc[k]); });
  }
}

// dy: [R, D] (rms_out_t), x: [R, D], w: [D] or none, rstd: [R] -> dx: [R, D] (X) when not
// null, and when part is not null part[c, D] (A) = the dw partial of row chunk c. A block
// per chunk c = blockIdx.x of rows [R * c / chunks, R * (c + 1) / chunks). Each thread
// owns the same columns in every loop, so its dw accumulators need no synchronisation.
template <typename X, typename W, int V>
__global__ void __launch_bounds__(1024)
    rms_norm_backward_kernel(const rms_out_t<X, W>* __restrict__ dy, const X* __restrict__ x,
                             const W* __restrict__ w, const rms_acc_t<X, W>* __restrict__ rstd,
                             X* __restrict__ dx, rms_acc_t<X, W>* __restrict__ part, int64_t nrows,
                             int64_t d, bool part_in_smem, rms_acc_t<X, W> inv_d) {
  using A = rms_acc_t<X, W>;
  extern __shared__ __align__(16) unsigned char smem[];
  const int64_t c = blockIdx.x, chunks = gridDim.x;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  const int64_t j0 = static_cast<int64_t>(threadIdx.x) * V;
  A* acc = nullptr;
  if (part != nullptr) {
    acc = part_in_smem ? reinterpret_cast<A*>(smem) : part + c * d;
    for (int64_t j = j0; j < d; j += step)
#pragma unroll
      for (int i = 0; i < V; ++i) acc[j + i] = A(0);
  }
  const int64_t r0 = nrows * c / chunks, r1 = nrows * (c + 1) / chunks;
  for (int64_t r = r0; r < r1; ++r) {
    const A rs = rstd[r];
    const X* xr = x + r * d;
    const auto* gr = dy + r * d;
    A coef = 0;
    if (dx != nullptr) {  // uniform over the block
      A dot = 0;
#pragma unroll 2
      for (int64_t j = j0; j < d; j += step) {
        A xv[V], g[V], wv[V];
        rows::load_pack<V>(xr + j, xv);
        rows::load_pack<V>(gr + j, g);
        load_weight<V>(w, j, wv);
#pragma unroll
        for (int i = 0; i < V; ++i) dot += (kHasWeight<W> ? g[i] * wv[i] : g[i]) * xv[i];
      }
      dot = rows::block_sum(dot);
      coef = rs * rs * rs * dot * inv_d;
    }
#pragma unroll 2
    for (int64_t j = j0; j < d; j += step) {
      A xv[V], g[V], wv[V];
      rows::load_pack<V>(xr + j, xv);
      rows::load_pack<V>(gr + j, g);
      if (dx != nullptr) {
        load_weight<V>(w, j, wv);
        A o[V];
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const A dn = kHasWeight<W> ? g[i] * wv[i] : g[i];
          o[i] = rs * dn - xv[i] * coef;
        }
        rows::store_pack<V>(dx + r * d + j, o);
      }
      if (acc != nullptr) {
#pragma unroll
        for (int i = 0; i < V; ++i) acc[j + i] += g[i] * cast_like_weight<W>(xv[i] * rs);
      }
    }
  }
  if (part != nullptr && part_in_smem) {
    A* out = part + c * d;
    for (int64_t j = j0; j < d; j += step)
#pragma unroll
      for (int i = 0; i < V; ++i) out[j + i] = acc[j + i];
  }
}

// part: [chunks, D] (A) -> dw: [D] (W). A block sums 32 columns: slice y of the block adds
// chunks y, y + kDwSlices, ... in order (coalesced across the columns, many loads in flight
// at once), then the slices are added in a fixed tree: the same bits every run.
constexpr int kDwSlices = 32;
template <typename W, typename A>
__global__ void __launch_bounds__(32 * kDwSlices)
    rms_norm_dweight_kernel(const A* __restrict__ part, W* __restrict__ dw, int64_t chunks,
                            int64_t d) {
  __shared__ A sums[kDwSlices][33];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  A s = 0;
  if (j < d) {
#pragma unroll 8
    for (int64_t c = threadIdx.y; c < chunks; c += kDwSlices) s += part[c * d + j];
  }
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
#pragma unroll
  for (int half = kDwSlices / 2; half > 0; half /= 2) {
    if (threadIdx.y < half) sums[threadIdx.y][threadIdx.x] += sums[threadIdx.y + half][threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.y == 0 && j < d) dw[j] = store_as<W>(sums[0][threadIdx.x]);
}

// Threads for a block per row: about two vectors per thread, 64 to 1024 threads.
unsigned row_threads(int64_t d, int v) {
  const int64_t vectors = (d + v - 1) / v;
  const int64_t t = ((vectors + 1) / 2 + 31) / 32 * 32;
  return static_cast<unsigned>(std::clamp<int64_t>(t, 64, 1024));
}

// How one block holds a row of n elements in registers as RowPacks: `threads` (a multiple
// of 32, 32 to max_threads) with `packs` V-element packs each, packs the smallest power of
// two up to max_packs that fits; packs == 0 when the row does not fit.
struct ResidentRow {
  int packs = 0;
  unsigned threads = 0;
};
ResidentRow resident_row(int64_t n, int vec, int max_packs, unsigned max_threads) {
  const int64_t vectors = (n + vec - 1) / vec;
  for (int packs = 1; packs <= max_packs; packs *= 2) {
    const int64_t t = ((vectors + packs - 1) / packs + 31) / 32 * 32;
    if (t <= max_threads) return {packs, static_cast<unsigned>(t < 32 ? 32 : t)};
  }
  return {};
}

// Calls fn.template operator()<N>() for a resident row's packs per thread: 1, 2 or (when
// kMax is 4) 4.
template <int kMax, typename F>
void with_packs(int packs, F&& fn) {
  if (packs == 1) return fn.template operator()<1>();
  if constexpr (kMax >= 4) {
    if (packs == 4) return fn.template operator()<4>();
  }
  fn.template operator()<2>();
}

// Calls fn.template operator()<X, W>() for x's dtype and weight's (NoWeight if undefined),
// as device storage types.
template <typename F>
void dispatch_xw(DType xt, const Tensor& weight, const char* op, F&& fn) {
  SP_CUDA_DISPATCH_FLOAT(xt, op, [&]<typename X>() {
    if (!weight.defined()) {
      fn.template operator()<X, NoWeight>();
      return;
    }
    SP_CUDA_DISPATCH_FLOAT(weight.dtype(), op,
                           [&]<typename W>() { fn.template operator()<X, W>(); });
  });
}

template <typename W>
const W* weight_ptr(const Tensor& weight) {
  if constexpr (kHasWeight<W>) {
    return static_cast<const W*>(address(weight));
  } else {
    return nullptr;
  }
}

// The host-side dtype of device type A (f32 or f64).
template <typename A>
constexpr DType acc_dtype() {
  return std::is_same_v<A, double> ? DType::f64 : DType::f32;
}

}  // namespace

// x: [R, D], weight: [D] or undefined -> out: [R, D], rstd: [R]; all contiguous.
void CudaBackend::rms_norm(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& weight,
                           double eps) {
  const char* op = "rms_norm";
  SP_CHECK(x.is_contiguous() && out.is_contiguous() && rstd.is_contiguous() &&
               (!weight.defined() || weight.is_contiguous()),
           "[", op, "] cuda kernel needs contiguous tensors, x is ", describe(x));
  const int64_t d = x.size(-1);
  const int64_t nrows = d == 0 ? 0 : x.numel() / d;
  if (nrows == 0) return;
  SP_CHECK(nrows <= 0x7fffffff, "[", op, "] too many rows for one launch: ", nrows);
  DeviceGuard guard(x.device().index);
  dispatch_xw(x.dtype(), weight, op, [&]<typename X, typename W>() {
    using A = rms_acc_t<X, W>;
    using O = rms_out_t<X, W>;
    SP_CHECK(rstd.dtype() == acc_dtype<A>(), "[", op, "] rstd must be ", dtype_name(acc_dtype<A>()),
             ", got ", describe(rstd));
    const X* xp = static_cast<const X*>(address(x));
    const W* wp = weight_ptr<W>(weight);
    O* yp = static_cast<O*>(address(out));
    A* rp = static_cast<A*>(address(rstd));
    constexpr int kV = kRmsVec<X, W>;
    const bool vec =
        rows::all_aligned16(xp, yp) && (wp == nullptr || rows::aligned16(wp)) && d % kV == 0;
    const A inv_d = A(1) / static_cast<A>(d);
    const A e = static_cast<A>(eps);
    const auto blocks = static_cast<unsigned>(nrows);
    cudaStream_t s = current_stream();
    const ResidentRow res = resident_row(d, kV, kResidentPacks, kResidentThreads);
    if (vec && res.packs > 0) {
      with_packs<kResidentPacks>(res.packs, [&]<int N>() {
        rms_norm_resident_kernel<X, W, kV, N>
            <<<blocks, res.threads, 0, s>>>(xp, wp, yp, rp, d, inv_d, e);
      });
    } else if (vec) {
      rms_norm_kernel<X, W, kV><<<blocks, row_threads(d, kV), 0, s>>>(xp, wp, yp, rp, d, inv_d, e);
    } else {
      rms_norm_kernel<X, W, 1><<<blocks, row_threads(d, 1), 0, s>>>(xp, wp, yp, rp, d, inv_d, e);
    }
    SP_CUDA_CHECK_LAUNCH(op);
  });
}

// dy: [R, D], x: [R, D], weight: [D] or undefined, rstd: [R] -> dx: [R, D] if defined,
// dweight: [D] if defined (overwritten).
void CudaBackend::rms_norm_backward(Tensor& dx, Tensor& dweight, const Tensor& dy, const Tensor& x,
                                    const Tensor& weight, const Tensor& rstd) {
  const char* op = "rms_norm_backward";
  SP_CHECK(x.is_contiguous() && dy.is_contiguous() && rstd.is_contiguous() &&
               (!dx.defined() || dx.is_contiguous()) &&
               (!dweight.defined() || dweight.is_contiguous()) &&
               (!weight.defined() || weight.is_contiguous()),
           "[", op, "] cuda kernel needs contiguous tensors, x is ", describe(x));
  SP_CHECK(!dweight.defined() || weight.defined(), "[", op, "] dweight without a weight");
  const int64_t d = x.size(-1);
  const int64_t nrows = d == 0 ? 0 : x.numel() / d;
  const bool need_dx = dx.defined(), need_dw = dweight.defined();
  DeviceGuard guard(x.device().index);
  cudaStream_t s = current_stream();
  if (nrows == 0 || (!need_dx && !need_dw)) {
    if (need_dw && dweight.numel() > 0)  // all-zero bits are 0 in every float dtype
      SP_CUDA_CHECK(op,
                    cudaMemsetAsync(address(dweight), 0, static_cast<size_t>(dweight.nbytes()), s));
    return;
  }
  dispatch_xw(x.dtype(), weight, op, [&]<typename X, typename W>() {
    using A = rms_acc_t<X, W>;
    using O = rms_out_t<X, W>;
    SP_CHECK(rstd.dtype() == acc_dtype<A>(), "[", op, "] rstd must be ", dtype_name(acc_dtype<A>()),
             ", got ", describe(rstd));
    const DType out_dtype = weight.defined() ? weight.dtype() : x.dtype();
    SP_CHECK(dy.dtype() == out_dtype, "[", op, "] dy must have the forward output's dtype ",
             dtype_name(out_dtype), ", got ", describe(dy));
    const X* xp = static_cast<const X*>(address(x));
    const W* wp = weight_ptr<W>(weight);
    const O* gp = static_cast<const O*>(address(dy));
    const A* rp = static_cast<const A*>(address(rstd));
    X* dxp = need_dx ? static_cast<X*>(address(dx)) : nullptr;
    constexpr int kV = kRmsVec<X, W>;
    const bool vec = rows::all_aligned16(xp, gp) && (wp == nullptr || rows::aligned16(wp)) &&
                     (dxp == nullptr || rows::aligned16(dxp)) && d % kV == 0;

    // dw needs few chunks (each writes a [D] partial); dx alone takes a block per row.
    const int64_t chunks = need_dw ? std::min(nrows, kMaxChunks) : nrows;
    SP_CHECK(chunks <= 0x7fffffff, "[", op, "] too many rows for one launch: ", nrows);
    Tensor partial;
    A* pp = nullptr;
    if (need_dw) {
      partial = Tensor::empty(Shape{chunks, d}, acc_dtype<A>(), x.device());
      pp = static_cast<A*>(address(partial));
    }
    const A inv_d = A(1) / static_cast<A>(d);
    const auto blocks = static_cast<unsigned>(chunks);
    const ResidentRow res = resident_row(d, kV, kResidentBackwardPacks, kResidentThreads);
    const bool in_smem = need_dw && static_cast<size_t>(d) * sizeof(A) <= kSmemLimit;
    const size_t smem = in_smem ? static_cast<size_t>(d) * sizeof(A) : 0;
    if (vec && res.packs > 0) {
      with_packs<kResidentBackwardPacks>(res.packs, [&]<int N>() {
        rms_norm_backward_resident_kernel<X, W, kV, N>
            <<<blocks, res.threads, 0, s>>>(gp, xp, wp, rp, dxp, pp, nrows, d, inv_d);
      });
    } else if (vec) {
      rms_norm_backward_kernel<X, W, kV><<<blocks, row_threads(d, kV), smem, s>>>(
          gp, xp, wp, rp, dxp, pp, nrows, d, in_smem, inv_d);
    } else {
      rms_norm_backward_kernel<X, W, 1><<<blocks, row_threads(d, 1), smem, s>>>(
          gp, xp, wp, rp, dxp, pp, nrows, d, in_smem, inv_d);
    }
    SP_CUDA_CHECK_LAUNCH(op);
    if constexpr (kHasWeight<W>) {
      if (need_dw) {
        const auto col_blocks = static_cast<unsigned>((d + 31) / 32);
        rms_norm_dweight_kernel<W, A><<<col_blocks, dim3(32, kDwSlices), 0, s>>>(
            pp, static_cast<W*>(address(dweight)), chunks, d);
        SP_CUDA_CHECK_LAUNCH(op);
      }
    }
  });
}

}  // namespace sp::cuda
