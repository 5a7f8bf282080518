#pragma once
// What the gather/scatter families share (embedding.cu, indexing.cu): moving rows as the
// widest words the sizes and addresses allow, the index dtype dispatch, and sorting an
// index with its positions so that a block per distinct value can add that value's rows
// in position order (deterministic, no atomics).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"

namespace sp::cuda {

// The widest word (16, 8, 4, 2 or 1 bytes) dividing the row size and both addresses.
inline int word_size(int64_t row_bytes, const void* a, const void* b) {
  const uintptr_t bits = static_cast<uintptr_t>(row_bytes) | reinterpret_cast<uintptr_t>(a) |
                         reinterpret_cast<uintptr_t>(b);
  for (int w = 16; w > 1; w /= 2)
    if (bits % w == 0) return w;
  return 1;
}

// fn<W>() with W the unsigned word of `size` bytes (uint4 for 16).
template <typename F>
void dispatch_word(int size, F&& fn) {
  switch (size) {
    case 16: fn.template operator()<uint4>(); return;
    case 8: fn.template operator()<uint64_t>(); return;
    case 4: fn.template operator()<uint32_t>(); return;
    case 2: fn.template operator()<uint16_t>(); return;
    default: fn.template operator()<uint8_t>(); return;
  }
}

// fn<I>() with I the index type (int32_t or int64_t); other dtypes throw naming op.
template <typename F>
void dispatch_index(const Tensor& index, const char* op, F&& fn) {
  if (index.dtype() == DType::i32) {
    fn.template operator()<int32_t>();
  } else {
    SP_CHECK(index.dtype() == DType::i64, "[", op, "] index must be i32 or i64: index is ",
             describe(index));
    fn.template operator()<int64_t>();
  }
}

// keys: [n] = index as unsigned keys, pos: [n] = 0, 1, ..., n-1 (the sort's input).
// static: each .cu that includes this gets its own kernel, not one symbol shared across
// translation units.
template <typename I>
static __global__ void sort_input_kernel(const I* __restrict__ index, uint32_t* __restrict__ keys,
                                  int32_t* __restrict__ pos, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keys[i] = static_cast<uint32_t>(index[i]);
    pos[i] = static_cast<int32_t>(i);
  }
}

// An index sorted with its positions: keys [n] ascending (u32 in i32 storage), pos [n] the
// original positions, increasing within a run of equal keys (CUB's radix sort is stable).
struct SortedIndex {
  Tensor keys;
  Tensor pos;
  const uint32_t* key_data() const { return static_cast<const uint32_t*>(address(keys)); }
  const int32_t* pos_data() const { return static_cast<const int32_t*>(address(pos)); }
};

// index: [n] with values in [0, bound) (checked upstream), n < 2^31 -> sorted on device's
// stream. The temporaries go back to the caching allocator while the sort may still run:
// safe, because every later use of a block is ordered on the same stream.
template <typename I>
SortedIndex sort_index(const I* index, int64_t n, int64_t bound, int device, const char* op) {
  constexpr int kThreads = 256;
  cudaStream_t s = stream(device);
  const Device dev = Device::cuda(device);
  Tensor keys_in = Tensor::empty(Shape{n}, DType::i32, dev);
  Tensor pos_in = Tensor::empty(Shape{n}, DType::i32, dev);
  SortedIndex out{Tensor::empty(Shape{n}, DType::i32, dev),
                  Tensor::empty(Shape{n}, DType::i32, dev)};
  auto* ki = static_cast<uint32_t*>(address(keys_in));
  auto* ko = static_cast<uint32_t*>(address(out.keys));
  auto* pi = static_cast<int32_t*>(address(pos_in));
  auto* po = static_cast<int32_t*>(address(out.pos));
  sort_input_kernel<I><<<grid_for(n, kThreads), kThreads, 0, s>>>(index, ki, pi, n);
  SP_CUDA_CHECK_LAUNCH(op);
  // Only the bits a value < bound can have take part in the sort.
  const int end_bit =
      std::max(1, static_cast<int>(std::bit_width(static_cast<uint64_t>(bound - 1))));
  size_t temp_bytes = 0;
  SP_CUDA_CHECK(op, cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, ki, ko, pi, po,
                                                    static_cast<int>(n), 0, end_bit, s));
  Tensor temp = Tensor::empty(Shape{static_cast<int64_t>(temp_bytes) + 1}, DType::boolean, dev);
  SP_CUDA_CHECK(op, cub::DeviceRadixSort::SortPairs(address(temp), temp_bytes, ki, ko, pi, po,
                                                    static_cast<int>(n), 0, end_bit, s));
  return out;
}

// Adding rows by a sorted index (embedding backward, index_add with few columns): a block of
// kStage threads per run of equal keys, positions staged kStage at a time, kColsPerThread
// columns per thread per pass.
inline constexpr int kStage = 128;
inline constexpr int kColsPerThread = 4;

// out: [A, S, B] += src: [A, n, B], row (a, pos[p]) of src into row (a, keys[p]) of out
// (keys: [n] sorted; pos increasing within a run of equal keys). Block (i, a) works only if
// keys[i] starts a run: it folds the run's rows, in position order, into registers and
// writes its out row once, so each element sums its terms in the CPU's order, without
// atomics. Sum says how: Sum::Value the register type, Sum::load(out element),
// Sum::add(Value&, src element), Sum::store(Value) -> out element.
template <typename Sum, typename TO, typename TS>
__global__ void __launch_bounds__(kStage)
    add_sorted_rows_kernel(TO* __restrict__ out, const TS* __restrict__ src,
                           const uint32_t* __restrict__ keys, const int32_t* __restrict__ pos,
                           int64_t A, int64_t S, int64_t n, int64_t B) {
  using V = typename Sum::Value;
  __shared__ int32_t rows[kStage];
  const int64_t first = blockIdx.x;
  const uint32_t id = keys[first];
  if (first > 0 && keys[first - 1] == id) return;  // uniform over the block
  for (int64_t a = blockIdx.y; a < A; a += gridDim.y) {
    TO* __restrict__ dst = out + (a * S + id) * B;
    const TS* __restrict__ sa = src + a * n * B;
    for (int64_t c0 = 0; c0 < B; c0 += static_cast<int64_t>(kStage) * kColsPerThread) {
      V acc[kColsPerThread];
#pragma unroll
      for (int c = 0; c < kColsPerThread; ++c) {
        const int64_t col = c0 + c * kStage + threadIdx.x;
        acc[c] = col < B ? Sum::load(dst[col]) : V(0);
      }
      for (int64_t p0 = first;; p0 += kStage) {
        const int64_t p = p0 + threadIdx.x;
        const bool mine = p < n && keys[p] == id;
        __syncthreads();  // the previous stage's readers are done
        if (mine) rows[threadIdx.x] = pos[p];
        // The run is contiguous in the sorted keys, so the staged rows are a prefix.
        const int count = __syncthreads_count(mine);
#pragma unroll 4
        for (int k = 0; k < count; ++k) {
          const TS* __restrict__ row = sa + static_cast<int64_t>(rows[k]) * B;
#pragma unroll
          for (int c = 0; c < kColsPerThread; ++c) {
            const int64_t col = c0 + c * kStage + threadIdx.x;
            if (col < B) Sum::add(acc[c], row[col]);
          }
        }
        if (count < kStage) break;
      }
#pragma unroll
      for (int c = 0; c < kColsPerThread; ++c) {
        const int64_t col = c0 + c * kStage + threadIdx.x;
        if (col < B) dst[col] = Sum::store(acc[c]);
      }
    }
  }
}

// The grid of add_sorted_rows_kernel: a block per sorted position (most return at once)
// and per a, a capped at gridDim.y's limit (the kernel strides over the rest).
inline dim3 sorted_rows_grid(int64_t n, int64_t A) {
  return dim3(static_cast<unsigned>(n), static_cast<unsigned>(std::min<int64_t>(A, 65535)));
}

}  // namespace sp::cuda
