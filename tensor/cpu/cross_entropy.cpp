// Fused log-softmax + negative log-likelihood (with optional z-loss) on the CPU.
//
// Forward reads each row of logits twice (max, then sum of exps) from L2 and never writes
// the probabilities; backward recomputes them from the saved logsumexp in one pass.
#include <cmath>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/reduce_math.h"
#include "tensor/cpu/row_simd.h"

namespace sp::cpu {
namespace {

// The first row whose target is neither ignore_index nor in [0, V), or -1.
template <typename I>
int64_t first_bad_target(const I* t, int64_t rows, int64_t vocab, int64_t ignore_index) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t v = static_cast<int64_t>(t[r]);
    if (v != ignore_index && (v < 0 || v >= vocab)) return r;
  }
  return -1;
}

template <typename F>
void dispatch_targets(const Tensor& targets, const char* op, F&& f) {
  if (targets.dtype() == DType::i64) {
    f(targets.data<int64_t>());
  } else {
    SP_CHECK(targets.dtype() == DType::i32, "[", op, "] targets must be i32 or i64, got ",
             describe(targets));
    f(targets.data<int32_t>());
  }
}

template <typename I>
void check_targets(const I* t, int64_t rows, int64_t vocab, int64_t ignore_index, const char* op) {
  const int64_t bad = first_bad_target(t, rows, vocab, ignore_index);
  SP_CHECK(bad < 0, "[", op, "] target out of range at row ", bad, ": ",
           static_cast<int64_t>(t[bad < 0 ? 0 : bad]), " is not in [0, ", vocab,
           ") nor the ignore_index ", ignore_index);
}

}  // namespace

// logits: [R, V], targets: [R] -> loss: [R], lse: [R] (f32, or f64 for f64 logits).
void CpuBackend::cross_entropy(Tensor& loss, Tensor& lse, const Tensor& logits,
                               const Tensor& targets, int64_t ignore_index, double z_loss) {
  SP_CHECK(logits.dim() == 2 && logits.is_contiguous() && targets.is_contiguous(),
           "[cross_entropy] cpu kernel needs contiguous [R, V] logits, got ", describe(logits));
  const int64_t rows = logits.shape()[0], vocab = logits.shape()[1];
  if (rows == 0) return;
  SP_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using Acc = acc_t<T>;
    const T* x = logits.data<T>();
    Acc* out_loss = loss.data<Acc>();
    Acc* out_lse = lse.data<Acc>();
    const Acc z = static_cast<Acc>(z_loss);
    dispatch_targets(targets, "cross_entropy", [&](const auto* t) {
      check_targets(t, rows, vocab, ignore_index, "cross_entropy");
      parallel_for(rows, vocab * 2, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t target = static_cast<int64_t>(t[r]);
          if (target == ignore_index) {
            out_loss[r] = 0;
            out_lse[r] = 0;
            continue;
          }
          const T* row = x + r * vocab;
          const T* next = prefetch_target(row, vocab, x + r1 * vocab);
          Acc m, s;
          if constexpr (simd::kRowSimd<T>) {
            m = simd::row_max(row, vocab);
            s = simd::row_sum_exp(row, vocab, m, nullptr, next);
          } else {
            m = fold_row<MaxFold, Acc>(row, vocab);
            s = sum_exp_row<false>(row, vocab, m, static_cast<Acc*>(nullptr), next);
          }
          const Acc l = m + std::log(s);
          out_lse[r] = l;
          out_loss[r] = l - load_as<Acc>(row[target]) + z * l * l;
        }
      });
    });
  });
}

// dlogits[r, v] = dloss[r] * (softmax[r, v] * (1 + 2 z lse[r]) - (v == target[r])),
// zero rows where target == ignore_index.
void CpuBackend::cross_entropy_backward(Tensor& dlogits, const Tensor& dloss, const Tensor& logits,
                                        const Tensor& targets, const Tensor& lse,
                                        int64_t ignore_index, double z_loss) {
  SP_CHECK(logits.dim() == 2 && logits.is_contiguous() && dlogits.is_contiguous() &&
               dloss.is_contiguous() && lse.is_contiguous() && targets.is_contiguous(),
           "[cross_entropy_backward] cpu kernel needs contiguous tensors, logits ",
           describe(logits));
  const int64_t rows = logits.shape()[0], vocab = logits.shape()[1];
  if (rows == 0) return;
  SP_DISPATCH_FLOAT(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using Acc = acc_t<T>;
    const T* x = logits.data<T>();
    T* dx = dlogits.data<T>();
    const Acc* g = dloss.data<Acc>();
    const Acc* l = lse.data<Acc>();
    const Acc z2 = static_cast<Acc>(2 * z_loss);
    dispatch_targets(targets, "cross_entropy_backward", [&](const auto* t) {
      check_targets(t, rows, vocab, ignore_index, "cross_entropy_backward");
      parallel_for(rows, vocab * 2, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t target = static_cast<int64_t>(t[r]);
          T* __restrict out = dx + r * vocab;
          if (target == ignore_index) {
            for (int64_t v = 0; v < vocab; ++v) out[v] = store_as<T>(Acc(0));
            continue;
          }
          const T* __restrict row = x + r * vocab;
          const Acc shift = l[r];
          const Acc scale = g[r] * (1 + z2 * shift);
          if constexpr (simd::kRowSimd<T>) {
            simd::row_exp_scale(row, shift, scale, out, vocab);
          } else {
            for (int64_t v = 0; v < vocab; ++v)
              out[v] = store_as<T>(exp_acc(load_as<Acc>(row[v]) - shift) * scale);
          }
          out[target] = store_as<T>(exp_acc(load_as<Acc>(row[target]) - shift) * scale - g[r]);
        }
      });
    });
  });
}

}  // namespace sp::cpu
