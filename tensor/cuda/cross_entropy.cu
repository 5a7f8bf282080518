// Fused log-softmax + negative log-likelihood (with optional z-loss) on CUDA.
//
// A block per row. The forward reads the row once for an online max + sum of exps and
// writes two numbers; the backward recomputes the probabilities from the saved logsumexp,
// reading the row once and writing it once. 16-byte vector accesses when every row start
// is aligned, scalar ones otherwise. fp32 accumulation (f64 for f64 logits), as the CPU.
// Targets are validated upstream (kernels/cross_entropy.cpp); this backend accepts i32
// and i64 targets as the CPU does.

#include "tensor/cuda/cuda_backend.h"
#include "tensor/cuda/cuda_util.h"
#include "tensor/cuda/row_reduce.cuh"

namespace sp::cuda {
namespace {

using rows::kVec;

// logits: [R, V], targets: [R] -> loss: [R], lse: [R] (A); a block per row.
// loss = lse - logit[target] + z * lse^2; ignored rows give loss 0 and lse 0.
template <typename T, int V, typename I>
__global__ void __launch_bounds__(rows::kMaxRowThreads)
    cross_entropy_kernel(const T* __restrict__ logits, const I* __restrict__ targets,
                         acc_t<T>* __restrict__ loss, acc_t<T>* __restrict__ lse, int64_t vocab,
                         int64_t ignore_index, acc_t<T> z) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  const int64_t target = static_cast<int64_t>(targets[row]);
  if (target == ignore_index) {  // uniform over the block: no thread reaches a sync
    if (threadIdx.x == 0) {
      loss[row] = A(0);
      lse[row] = A(0);
    }
    return;
  }
  const T* xr = logits + row * vocab;
  const rows::MaxSum<A> acc = rows::block_row_max_sum<V, A>(xr, vocab);
  if (threadIdx.x == 0) {
    // A row of all -inf: the CPU shifts by its max, exp(-inf - -inf) = NaN, so its lse is
    // NaN (and the loss NaN); -inf - -inf gives the same here rather than -inf + log(0).
    const A l = acc.m == rows::neg_inf<A>() ? acc.m - acc.m : acc.m + dm::log(acc.s);
    lse[row] = l;
    loss[row] = l - load_as<A>(xr[target]) + z * l * l;
  }
}

// dloss: [R], logits: [R, V], targets: [R], lse: [R] -> dlogits: [R, V]; a block per row.
// dlogits = dloss * (exp(x - lse) * (1 + 2 z lse) - onehot(target)); ignored rows zero.
template <typename T, int V, typename I>
__global__ void __launch_bounds__(rows::kMaxRowThreads)
    cross_entropy_backward_kernel(T* __restrict__ dlogits, const acc_t<T>* __restrict__ dloss,
                                  const T* __restrict__ logits, const I* __restrict__ targets,
                                  const acc_t<T>* __restrict__ lse, int64_t vocab,
                                  int64_t ignore_index, acc_t<T> z2) {
  using A = acc_t<T>;
  const int64_t row = blockIdx.x;
  const int64_t target = static_cast<int64_t>(targets[row]);
  const T* xr = logits + row * vocab;
  T* out = dlogits + row * vocab;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  if (target == ignore_index) {
    A zero[V];
#pragma unroll
    for (int i = 0; i < V; ++i) zero[i] = A(0);
    for (int64_t j = static_cast<int64_t>(threadIdx.x) * V; j < vocab; j += step)
      rows::store_pack<V>(out + j, zero);
    return;
  }
  const A g = dloss[row];
  const A shift = lse[row];
  const A scale = g * (1 + z2 * shift);
  int64_t j = static_cast<int64_t>(threadIdx.x) * V;
  // Two vectors in flight per thread, then the remainder one at a time.
  for (; j + step < vocab; j += 2 * step) {
    A v[2 * V];
    rows::load_pack<V>(xr + j, v);
    rows::load_pack<V>(xr + j + step, v + V);
#pragma unroll
    for (int u = 0; u < 2; ++u) {
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const int64_t col = j + u * step + i;
        const A e = dm::exp(v[u * V + i] - shift) * scale;
        v[u * V + i] = col == target ? e - g : e;
      }
    }
    rows::store_pack<V>(out + j, v);
    rows::store_pack<V>(out + j + step, v + V);
  }
  for (; j < vocab; j += step) {
    A v[V];
    rows::load_pack<V>(xr + j, v);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const A e = dm::exp(v[i] - shift) * scale;
      v[i] = j + i == target ? e - g : e;
    }
    rows::store_pack<V>(out + j, v);
  }
}

// f.template operator()<I>(const I* targets) for i32 or i64 targets.
template <typename F>
void dispatch_targets(const Tensor& targets, const char* op, F&& f) {
  if (targets.dtype() == DType::i64) {
    f(static_cast<const int64_t*>(address(targets)));
  } else {
    SP_CHECK(targets.dtype() == DType::i32, "[", op, "] targets must be i32 or i64, got ",
             describe(targets));
    f(static_cast<const int32_t*>(address(targets)));
  }
}

void check_rows(const char* op, const Tensor& logits, const Tensor& targets) {
  SP_CHECK(logits.dim() == 2 && logits.is_contiguous() && targets.is_contiguous() &&
               targets.numel() == logits.size(0),
           "[", op, "] cuda kernel needs contiguous [R, V] logits and [R] targets, got logits ",
           describe(logits), ", targets ", describe(targets));
  SP_CHECK(logits.size(0) <= 0x7fffffff, "[", op,
           "] too many rows for one launch: ", logits.size(0));
}

}  // namespace

// logits: [R, V], targets: [R] -> loss: [R], lse: [R] (f32, or f64 for f64 logits).
void CudaBackend::cross_entropy(Tensor& loss, Tensor& lse, const Tensor& logits,
                                const Tensor& targets, int64_t ignore_index, double z_loss) {
  const char* op = "cross_entropy";
  check_rows(op, logits, targets);
  const int64_t nrows = logits.size(0), vocab = logits.size(1);
  if (nrows == 0) return;
  SP_CHECK(vocab > 0, "[", op, "] empty vocab dim: ", describe(logits));
  DeviceGuard guard(logits.device().index);
  SP_CUDA_DISPATCH_FLOAT(logits.dtype(), op, [&]<typename T>() {
    using A = acc_t<T>;
    SP_CHECK(loss.dtype() == dtype_of<A>::value && lse.dtype() == dtype_of<A>::value, "[", op,
             "] loss and lse must be ", dtype_name(dtype_of<A>::value), ": loss is ",
             describe(loss), ", lse is ", describe(lse));
    const T* x = static_cast<const T*>(address(logits));
    A* lp = static_cast<A*>(address(loss));
    A* sp = static_cast<A*>(address(lse));
    constexpr int kV = kVec<T>;
    const bool vec = rows::aligned16(x) && vocab % kV == 0;
    const auto blocks = static_cast<unsigned>(nrows);
    cudaStream_t s = current_stream();
    const A z = static_cast<A>(z_loss);
    dispatch_targets(targets, op, [&]<typename I>(const I* t) {
      if (vec) {
        cross_entropy_kernel<T, kV, I><<<blocks, rows::block_threads(vocab, kV), 0, s>>>(
            x, t, lp, sp, vocab, ignore_index, z);
      } else {
        cross_entropy_kernel<T, 1, I>
            <<<blocks, rows::block_threads(vocab, 1), 0, s>>>(x, t, lp, sp, vocab, ignore_index, z);
      }
      SP_CUDA_CHECK_LAUNCH(op);
    });
  });
}

// dlogits[r, v] = dloss[r] * (softmax[r, v] * (1 + 2 z lse[r]) - (v == target[r])),
// zero rows where target == ignore_index.
void CudaBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& dloss, const Tensor& logits,
                                         const Tensor& targets, const Tensor& lse,
                                         int64_t ignore_index, double z_loss) {
  const char* op = "cross_entropy_backward";
  check_rows(op, logits, targets);
  SP_CHECK(dlogits.is_contiguous() && dloss.is_contiguous() && lse.is_contiguous() &&
               dlogits.dtype() == logits.dtype(),
           "[", op, "] cuda kernel needs contiguous tensors and dlogits of the logits' dtype, ",
           "dlogits ", describe(dlogits));
  const int64_t nrows = logits.size(0), vocab = logits.size(1);
  if (nrows == 0 || vocab == 0) return;
  DeviceGuard guard(logits.device().index);
  SP_CUDA_DISPATCH_FLOAT(logits.dtype(), op, [&]<typename T>() {
    using A = acc_t<T>;
    SP_CHECK(dloss.dtype() == dtype_of<A>::value && lse.dtype() == dtype_of<A>::value, "[", op,
             "] dloss and lse must be ", dtype_name(dtype_of<A>::value), ": dloss is ",
             describe(dloss), ", lse is ", describe(lse));
    const T* x = static_cast<const T*>(address(logits));
    T* dx = static_cast<T*>(address(dlogits));
    const A* g = static_cast<const A*>(address(dloss));
    const A* l = static_cast<const A*>(address(lse));
    constexpr int kV = kVec<T>;
    const bool vec = rows::all_aligned16(x, dx) && vocab % kV == 0;
    const auto blocks = static_cast<unsigned>(nrows);
    cudaStream_t s = current_stream();
    const A z2 = static_cast<A>(2 * z_loss);
    dispatch_targets(targets, op, [&]<typename I>(const I* t) {
      if (vec) {
        cross_entropy_backward_kernel<T, kV, I><<<blocks, rows::block_threads(vocab, kV), 0, s>>>(
            dx, g, x, t, l, vocab, ignore_index, z2);
      } else {
        cross_entropy_backward_kernel<T, 1, I><<<blocks, rows::block_threads(vocab, 1), 0, s>>>(
            dx, g, x, t, l, vocab, ignore_index, z2);
      }
      SP_CUDA_CHECK_LAUNCH(op);
    });
  });
}

}  // namespace sp::cuda
