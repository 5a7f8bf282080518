// Embedding lookup and its scatter-add backward on the CPU.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/index_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace sp::cpu {
namespace {

// Columns per work item of the backward: a cache line of f32.
constexpr int64_t kColumnBlock = 16;

// dw: [V, D] += dy: [N, D] rows at ids: [N]
template <typename DW, typename DY, typename I>
void scatter_rows(Tensor& dweight, const Tensor& dy, const Tensor& ids) {
  using A =
      std::conditional_t<std::is_same_v<DW, double> || std::is_same_v<DY, double>, double, float>;
  const int64_t n = ids.numel();
  const int64_t d = dweight.size(1);
  const int64_t blocks = (d + kColumnBlock - 1) / kColumnBlock;
  DW* dw = dweight.data<DW>();
  const DY* g = dy.data<DY>();
  const I* idp = ids.data<I>();
  parallel_for(blocks, n * kColumnBlock, [&](int64_t b0, int64_t b1) {
    const int64_t j0 = b0 * kColumnBlock, j1 = std::min(b1 * kColumnBlock, d);
    for (int64_t i = 0; i < n; ++i) {
      DW* dst = dw + static_cast<int64_t>(idp[i]) * d;
      const DY* src = g + i * d;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) {
        const A v = static_cast<A>(static_cast<compute_t<DW>>(dst[j])) +
                    static_cast<A>(static_cast<compute_t<DY>>(src[j]));
        if constexpr (std::is_same_v<DW, bf16> || std::is_same_v<DW, f16>) {
          dst[j] = DW(static_cast<float>(v));
        } else {
          dst[j] = static_cast<DW>(v);
        }
      }
    }
  });
}

}  // namespace

// weight: [V, D], ids: [N] -> out [N, D]; ids are in range (checked upstream).
void CpuBackend::embedding(Tensor& out, const Tensor& weight, const Tensor& ids) {
  const int64_t n = ids.numel();
  const int64_t d = weight.size(1);
  const size_t row_bytes = static_cast<size_t>(d * weight.element_size());
  const char* w = static_cast<const char*>(weight.data_ptr());
  char* o = static_cast<char*>(out.data_ptr());
  dispatch_index(ids, [&]<typename I>() {
    const I* idp = ids.data<I>();
    parallel_for(n, d, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(o + i * row_bytes, w + static_cast<int64_t>(idp[i]) * row_bytes, row_bytes);
    });
  });
}

// dweight: [V, D] += rows of dy: [N, D] scattered by ids: [N]. Threads own column ranges,
// so repeated ids never race, and each element sums its rows in id order: deterministic.
void CpuBackend::embedding_backward(Tensor& dweight, const Tensor& dy, const Tensor& ids) {
  if (ids.numel() == 0 || dweight.size(1) == 0) return;
  SP_DISPATCH_FLOAT(dweight.dtype(), "embedding_backward", [&]<typename DW>() {
    SP_DISPATCH_FLOAT(dy.dtype(), "embedding_backward", [&]<typename DY>() {
      dispatch_index(ids, [&]<typename I>() { scatter_rows<DW, DY, I>(dweight, dy, ids); });
    });
  });
}

}  // namespace sp::cpu
