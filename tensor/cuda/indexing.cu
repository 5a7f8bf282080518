// index_select, index_add, gather and scatter_add on CUDA.
//
// As on the CPU (tensor/cpu/indexing.cpp), tensors are seen as [A, n, B] around the
// indexed dim. Selections move elements as unsigned words (up to 16 bytes for
// index_select when rows allow), so they are bitwise the CPU's. The adds give each thread
// one (a, b) column and walk n in order: two threads never touch the same output element
// (outputs of different columns differ in a or b), so there are no atomics, and each
// element sums its terms in the CPU's order with the CPU's rounding (16-bit floats add in
// f32 and round after each add, integers wrap): the results are the CPU's. The cost is
// parallelism A * B, so index_add with few columns and a long index instead sorts the
// index and gives each distinct value a block (the same sums in the same order);
// scatter_add keeps the per-column loops (its backward use, for max / min, has n = 1).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/index_common.cuh"

namespace sp::cuda {
namespace {

constexpr int kThreads = 256;
// index_add takes the sorted path when fewer (a, b) columns than this would leave most of
// the GPU idle in the per-column kernel, and the index is long enough to be worth a sort.
constexpr int64_t kFewColumns = 16384;
constexpr int64_t kLongIndex = 64;

// Sizes and strides of up to kMaxDims dims, passed to kernels by value.
struct Dims {
  int rank = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};   // of the tensor read or written through the index
  int64_t stride2[kMaxDims] = {};  // scatter_add: of src
};

int64_t prod(const Shape& s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s[i];
  return p;
}

// The add dtypes as device types; bool has no add (as on the CPU).
template <typename F>
void dispatch_add(DType dt, const char* op, F&& fn) {
  SP_CUDA_DISPATCH_ALL(dt, op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(str_cat("[", op, "] unsupported dtype bool"));
    } else {
      fn.template operator()<T>();
    }
  });
}

// dst += v as the CPU's add_to: integers wrap, 16-bit floats add in f32 and round.
template <typename T>
__device__ __forceinline__ void add_to(T& dst, T v) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    dst = static_cast<T>(static_cast<U>(static_cast<U>(dst) + static_cast<U>(v)));
  } else if constexpr (std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>) {
    dst = store_as<T>(load_as<float>(dst) + load_as<float>(v));
  } else {
    dst += v;
  }
}

// in: [A, S, Bw] words, index: [n] -> out: [A, n, Bw]; out[a, j, k] = in[a, index[j], k].
template <typename W, typename I>
__global__ void index_select_kernel(W* __restrict__ out, const W* __restrict__ in,
                                    const I* __restrict__ index, int64_t A, int64_t S, int64_t n,
                                    int64_t bw) {
  const int64_t total = A * n * bw;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / bw, k = e - r * bw;
    const int64_t a = r / n, j = r - a * n;
    out[e] = in[(a * S + static_cast<int64_t>(index[j])) * bw + k];
  }
}

// out: [A, S, B], index: [n], src: [A, n, B] -> out[a, index[j], b] += src[a, j, b], a
// thread per (a, b) walking j in order.
template <typename T, typename I>
__global__ void index_add_kernel(T* __restrict__ out, const T* __restrict__ src,
                                 const I* __restrict__ index, int64_t A, int64_t S, int64_t n,
                                 int64_t B) {
  const int64_t total = A * B;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t a = e / B, b = e - a * B;
    T* __restrict__ o = out + a * S * B + b;
    const T* __restrict__ s = src + a * n * B + b;
    for (int64_t j = 0; j < n; ++j) add_to(o[static_cast<int64_t>(index[j]) * B], s[j * B]);
  }
}

// index_add's sums by sorted index (add_sorted_rows_kernel): in T with add_to's rounding,
// as the per-column kernel and the CPU.
template <typename T>
struct AddToSum {
  using Value = T;
  static __device__ T load(T v) { return v; }
  static __device__ void add(T& acc, T v) { add_to(acc, v); }
  static __device__ T store(T acc) { return acc; }
};

// index_add with few columns: sort the index with its positions (CUB's radix sort is
// stable), then a block per distinct index value and per a.
template <typename T, typename I>
void index_add_sorted(T* out, const T* src, const I* index, int64_t A, int64_t S, int64_t n,
                      int64_t B, int device) {
  const char* op = "index_add";
  cudaStream_t s = stream(device);
  const SortedIndex sorted = sort_index<I>(index, n, S, device, op);
  add_sorted_rows_kernel<AddToSum<T>><<<sorted_rows_grid(n, A), kStage, 0, s>>>(
      out, src, sorted.key_data(), sorted.pos_data(), A, S, n, B);
  SP_CUDA_CHECK_LAUNCH(op);
}

// index: [d0, ..., dk] contiguous (dims.size), in: strides dims.stride
//   -> out (index's shape): out[p] = in[p with coordinate dim replaced by index[p]].
template <typename U, typename I>
__global__ void gather_kernel(U* __restrict__ out, const U* __restrict__ in,
                              const I* __restrict__ index, int64_t total, int dim, Dims dims) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = e, off = 0;
    for (int d = dims.rank - 1; d >= 0; --d) {
      const int64_t c = rest % dims.size[d];
      rest /= dims.size[d];
      off += (d == dim ? static_cast<int64_t>(index[e]) : c) * dims.stride[d];
    }
    out[e] = in[off];
  }
}

// index: [d0, ..., dk] contiguous (dims.size, n = dims.size[dim]); out: strides dims.stride;
// src: strides dims.stride2 -> out[p with coordinate dim = index[p]] += src[p]. A thread per
// position off dim (a, b), walking the indexed dim in order.
template <typename T, typename I>
__global__ void scatter_add_kernel(T* __restrict__ out, const T* __restrict__ src,
                                   const I* __restrict__ index, int64_t columns, int dim,
                                   Dims dims) {
  const int64_t n = dims.size[dim];
  int64_t inner = 1;  // index elements per step along dim
  for (int d = dim + 1; d < dims.rank; ++d) inner *= dims.size[d];
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < columns;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // e = a * inner + b; the index element of (a, j, b) is (a * n + j) * inner + b.
    const int64_t a = e / inner, b = e - a * inner;
    int64_t rest = e, out_off = 0, src_off = 0;
    for (int d = dims.rank - 1; d >= 0; --d) {
      if (d == dim) continue;
      const int64_t c = rest % dims.size[d];
      rest /= dims.size[d];
      out_off += c * dims.stride[d];
      src_off += c * dims.stride2[d];
    }
    const I* __restrict__ ix = index + a * n * inner + b;
    for (int64_t j = 0; j < n; ++j) {
      add_to(out[out_off + static_cast<int64_t>(ix[j * inner]) * dims.stride[dim]],
             src[src_off + j * dims.stride2[dim]]);
    }
  }
}

Dims dims_of(const Shape& shape, const Shape& strides) {
  Dims dims;
  dims.rank = shape.size();
  for (int d = 0; d < dims.rank; ++d) {
    dims.size[d] = shape[d];
    dims.stride[d] = strides[d];
  }
  return dims;
}

}  // namespace

// in: [A, S, B] contiguous, index: [n] -> out [A, n, B]
void CudaBackend::index_select(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  SP_CHECK(in.is_contiguous() && out.is_contiguous() && index.is_contiguous(),
           "[index_select] cuda index_select needs contiguous tensors: in ", describe(in),
           ", index ", describe(index));
  const int64_t A = prod(in.shape(), 0, dim), S = in.size(dim);
  const int64_t B = prod(in.shape(), dim + 1, in.dim());
  const int64_t n = index.numel();
  if (out.numel() == 0) return;
  const int device = in.device().index;
  DeviceGuard guard(device);
  const int64_t row_bytes = B * in.element_size();
  const int w = word_size(row_bytes, address(in), address(out));
  dispatch_index(index, "index_select", [&]<typename I>() {
    dispatch_word(w, [&]<typename W>() {
      const int64_t bw = row_bytes / w;
      index_select_kernel<W, I><<<grid_for(A * n * bw, kThreads), kThreads, 0, stream(device)>>>(
          static_cast<W*>(address(out)), static_cast<const W*>(address(in)),
          static_cast<const I*>(address(index)), A, S, n, bw);
      SP_CUDA_CHECK_LAUNCH("index_select");
    });
  });
}

// out: [A, S, B] contiguous, index: [n], src: [A, n, B] contiguous; out[a, index[j], b] +=
// src[a, j, b] (duplicates accumulate in j order).
void CudaBackend::index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  SP_CHECK(out.is_contiguous() && src.is_contiguous() && index.is_contiguous(),
           "[index_add] cuda index_add needs contiguous tensors: out ", describe(out), ", src ",
           describe(src));
  const int64_t A = prod(out.shape(), 0, dim), S = out.size(dim);
  const int64_t B = prod(out.shape(), dim + 1, out.dim());
  const int64_t n = index.numel();
  if (A * B * n == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  // Few columns and a long index: the per-column kernel would run a long serial loop on
  // a few threads (index_add along dim 0 of a [rows, D] table, as the backward of an
  // index_select of rows). Both paths compute the CPU's sums in the CPU's order.
  const bool sorted =
      A * B < kFewColumns && n >= kLongIndex && n <= 0x7fffffff && S <= 0xffffffffll;
  dispatch_add(out.dtype(), "index_add", [&]<typename T>() {
    dispatch_index(index, "index_add", [&]<typename I>() {
      if (sorted) {
        index_add_sorted<T, I>(static_cast<T*>(address(out)), static_cast<const T*>(address(src)),
                               static_cast<const I*>(address(index)), A, S, n, B, device);
        return;
      }
      index_add_kernel<T, I><<<grid_for(A * B, kThreads), kThreads, 0, stream(device)>>>(
          static_cast<T*>(address(out)), static_cast<const T*>(address(src)),
          static_cast<const I*>(address(index)), A, S, n, B);
      SP_CUDA_CHECK_LAUNCH("index_add");
    });
  });
}

// in: any strides, index: contiguous, in's rank (sizes <= in's off dim) -> out (index's
// shape): out[a, j, b] = in[a, index[a, j, b], b].
void CudaBackend::gather(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  SP_CHECK(out.is_contiguous() && index.is_contiguous(),
           "[gather] cuda gather needs a contiguous index and out: index ", describe(index));
  const int64_t total = out.numel();
  if (total == 0) return;
  const int device = in.device().index;
  DeviceGuard guard(device);
  const Dims dims = dims_of(index.shape(), in.strides());
  dispatch_index(index, "gather", [&]<typename I>() {
    dispatch_word(static_cast<int>(in.element_size()), [&]<typename U>() {
      gather_kernel<U, I><<<grid_for(total, kThreads), kThreads, 0, stream(device)>>>(
          static_cast<U*>(address(out)), static_cast<const U*>(address(in)),
          static_cast<const I*>(address(index)), total, dim, dims);
      SP_CUDA_CHECK_LAUNCH("gather");
    });
  });
}

// out: any strides, index: contiguous [A, n, B] (out's rank, sizes <= out's off dim), src:
// any strides (sizes >= index's): out[a, index[a, j, b], b] += src[a, j, b].
void CudaBackend::scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  SP_CHECK(index.is_contiguous(),
           "[scatter_add] cuda scatter_add needs a contiguous index: ", describe(index));
  if (index.numel() == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  Dims dims = dims_of(index.shape(), out.strides());
  for (int d = 0; d < dims.rank; ++d) dims.stride2[d] = src.stride(d);
  const int64_t columns = index.numel() / index.size(dim);
  dispatch_add(out.dtype(), "scatter_add", [&]<typename T>() {
    dispatch_index(index, "scatter_add", [&]<typename I>() {
      scatter_add_kernel<T, I><<<grid_for(columns, kThreads), kThreads, 0, stream(device)>>>(
          static_cast<T*>(address(out)), static_cast<const T*>(address(src)),
          static_cast<const I*>(address(index)), columns, dim, dims);
      SP_CUDA_CHECK_LAUNCH("scatter_add");
    });
  });
}

}  // namespace sp::cuda
