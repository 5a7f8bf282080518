// Embedding lookup and its scatter-add backward on CUDA.
//
// Forward: a gather of rows, moved as the widest words (up to 16 bytes) the row size and
// pointers allow: bitwise the CPU's.
// Backward: deterministic without atomics. The ids are sorted with their positions (CUB's
// radix sort is stable, so each id's positions stay in increasing order); then one block
// per distinct id adds that id's dy rows, in position order, to its dweight row in
// registers and writes it once. That is the CPU's order for each element (the CPU walks
// ids in position order), so f32 and f64 results are bitwise the CPU's when dy has
// dweight's dtype. The accumulator is the wider of the two: f32 dweight with f64 dy, and
// 16-bit dweight, sum in the wider type and round once, as the CPU's sums do
// (tensor/kernels/embedding.cpp).
#include <cstdint>
#include <type_traits>

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/device_types.cuh"
#include "tensor/cuda/index_common.cuh"

namespace sp::cuda {
namespace {

constexpr int kThreads = 256;

// out: [N, Dw] words <- weight: [V, Dw] words at rows ids: [N].
template <typename W, typename I>
__global__ void embedding_kernel(W* __restrict__ out, const W* __restrict__ weight,
                                 const I* __restrict__ ids, int64_t n, int64_t dw) {
  const int64_t total = n * dw;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / dw, k = e - i * dw;
    out[e] = weight[static_cast<int64_t>(ids[i]) * dw + k];
  }
}

// The embedding backward's sums (add_sorted_rows_kernel): in f64 when either side is f64,
// else f32, rounded to dweight's dtype once.
template <typename DW, typename DY>
struct WideSum {
  using Value =
      std::conditional_t<std::is_same_v<DW, double> || std::is_same_v<DY, double>, double, float>;
  static __device__ Value load(DW v) { return load_as<Value>(v); }
  static __device__ void add(Value& acc, DY v) { acc += load_as<Value>(v); }
  static __device__ DW store(Value acc) { return store_as<DW>(acc); }
};

}  // namespace

// weight: [V, D], ids: [N] (i32/i64, in range: checked upstream) -> out [N, D].
void CudaBackend::embedding(Tensor& out, const Tensor& weight, const Tensor& ids) {
  SP_CHECK(weight.is_contiguous() && ids.is_contiguous() && out.is_contiguous(),
           "[embedding] cuda embedding needs contiguous tensors: weight ", describe(weight),
           ", ids ", describe(ids));
  const int64_t n = ids.numel();
  const int64_t d = weight.size(1);
  if (n == 0 || d == 0) return;
  const int device = weight.device().index;
  DeviceGuard guard(device);
  const int64_t row_bytes = d * weight.element_size();
  const int w = word_size(row_bytes, address(weight), address(out));
  dispatch_index(ids, "embedding", [&]<typename I>() {
    dispatch_word(w, [&]<typename W>() {
      const int64_t dw = row_bytes / w;
      embedding_kernel<W, I><<<grid_for(n * dw, kThreads), kThreads, 0, stream(device)>>>(
          static_cast<W*>(address(out)), static_cast<const W*>(address(weight)),
          static_cast<const I*>(address(ids)), n, dw);
      SP_CUDA_CHECK_LAUNCH("embedding");
    });
  });
}

// dweight: [V, D] += rows of dy: [N, D] scattered by ids: [N]; repeated ids accumulate in
// position order (deterministic).
void CudaBackend::embedding_backward(Tensor& dweight, const Tensor& dy, const Tensor& ids) {
  const char* op = "embedding_backward";
  SP_CHECK(dweight.is_contiguous() && dy.is_contiguous() && ids.is_contiguous(), "[", op,
           "] cuda embedding_backward needs contiguous tensors: dweight ", describe(dweight),
           ", dy ", describe(dy), ", ids ", describe(ids));
  const int64_t n = ids.numel();
  const int64_t v = dweight.size(0), d = dweight.size(1);
  SP_CHECK(is_floating(dweight.dtype()) && is_floating(dy.dtype()), "[", op,
           "] unsupported dtype: expected floating dweight and dy (f32, bf16, f16, f64), got ",
           describe(dweight), " and ", describe(dy));
  if (n == 0 || d == 0) return;
  SP_CHECK(n <= 0x7fffffff && v <= 0xffffffffll, "[", op,
           "] at most 2^31 - 1 ids and 2^32 rows: ", n, " ids, ", v, " rows");
  const int device = dweight.device().index;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  SortedIndex sorted;
  dispatch_index(ids, op, [&]<typename I>() {
    sorted = sort_index<I>(static_cast<const I*>(address(ids)), n, v, device, op);
  });
  SP_CUDA_DISPATCH_FLOAT(dweight.dtype(), op, [&]<typename DW>() {
    SP_CUDA_DISPATCH_FLOAT(dy.dtype(), op, [&]<typename DY>() {
      add_sorted_rows_kernel<WideSum<DW, DY>><<<sorted_rows_grid(n, 1), kStage, 0, s>>>(
          static_cast<DW*>(address(dweight)), static_cast<const DY*>(address(dy)),
          sorted.key_data(), sorted.pos_data(), 1, v, n, d);
      SP_CUDA_CHECK_LAUNCH(op);
    });
  });
}

}  // namespace sp::cuda
