// Softmax and log-softmax over the last dim on the CPU, forward and backward.
//
// One row at a time, fp32 accumulation (f64 for f64): a max pass, an exp-and-sum pass and
// a scaling pass. Rows up to hundreds of KiB stay in L2 between passes, so memory sees
// one read and one write per element.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/loops.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/reduce_math.h"
#include "tensor/cpu/row_simd.h"

namespace sp::cpu {
namespace {

// x: [D] -> y: [D]. A row of -inf (every entry masked) gives zeros for softmax and -inf
// for log-softmax rather than NaN. next: what to prefetch (prefetch_target); scratch:
// D accumulators for 16-bit T, so the exps are computed once and rounded once.
template <typename T>
void softmax_row(const T* x, T* y, int64_t d, bool log, const T* next, acc_t<T>* scratch) {
  using Acc = acc_t<T>;
  if constexpr (simd::kRowSimd<T>) {
    const float m = simd::row_max(x, d);
    const float shift = m == -std::numeric_limits<float>::infinity() ? 0.0f : m;
    if (log) {
      const float s = simd::row_sum_exp(x, d, shift, nullptr, next);
      // A NaN sum (NaN in the row) stays NaN, as the generic path's NaN max makes it.
      const float c = s > 0 ? std::log(s) : (s == 0 ? std::numeric_limits<float>::infinity() : s);
      simd::row_sub2(x, shift, c, y, d);
    } else {
      float* e = nullptr;
      if constexpr (std::is_same_v<T, float>) {
        e = y;
      } else {
        e = scratch;
      }
      const float s = simd::row_sum_exp(x, d, shift, e, next);
      simd::row_scale(e, s > 0 ? 1.0f / s : (s == 0 ? 0.0f : s), y, d);
    }
    return;
  }
  const Acc m = fold_row<MaxFold, Acc>(x, d);
  const Acc shift = m == -std::numeric_limits<Acc>::infinity() ? Acc(0) : m;
  if (log) {
    const Acc s = sum_exp_row<false>(x, d, shift, static_cast<Acc*>(nullptr), next);
    // s == 0 only when every entry is -inf (otherwise the max contributes exp(0) = 1); a
    // NaN s (a NaN or +inf in the row) stays NaN, as in the vector path and on CUDA.
    // (x - shift) is exact near the max; adding shift to log(s) first would round at the
    // magnitude of x.
    const Acc c = s > 0 ? std::log(s) : (s == 0 ? std::numeric_limits<Acc>::infinity() : s);
    for (int64_t i = 0; i < d; ++i) y[i] = store_as<T>((load_as<Acc>(x[i]) - shift) - c);
    return;
  }
  Acc* e = nullptr;
  if constexpr (std::is_same_v<T, Acc>) {
    e = y;  // the exps are scaled in place
  } else {
    e = scratch;
  }
  const Acc s = sum_exp_row<true>(x, d, shift, e, next);
  const Acc inv = s > 0 ? Acc(1) / s : (s == 0 ? Acc(0) : s);
  for (int64_t i = 0; i < d; ++i) y[i] = store_as<T>(e[i] * inv);
}

// dy, y: [D] -> dx: [D].
// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy).
template <typename T>
void softmax_backward_row(const T* __restrict dy, const T* __restrict y, T* __restrict dx,
                          int64_t d, bool log) {
  using Acc = acc_t<T>;
  if (log) {
    const Acc s = fold_row<SumFold, Acc>(dy, d);
    for (int64_t i = 0; i < d; ++i)
      dx[i] = store_as<T>(load_as<Acc>(dy[i]) - exp_acc(load_as<Acc>(y[i])) * s);
    return;
  }
  const Acc dot = sum_row2<Acc>(dy, y, d, [](Acc a, Acc b) { return a * b; });
  for (int64_t i = 0; i < d; ++i)
    dx[i] = store_as<T>(load_as<Acc>(y[i]) * (load_as<Acc>(dy[i]) - dot));
}

// The offset, in elements, of row r's first element in t (rows: every dim but the last).
int64_t row_offset(const Tensor& t, int64_t r) {
  int64_t off = 0;
  for (int dim = t.dim() - 2; dim >= 0; --dim) {
    const int64_t n = t.size(dim);
    off += (r % n) * t.stride(dim);
    r /= n;
  }
  return off;
}

}  // namespace

// in: [..., D] -> out: [..., D], all contiguous.
void CpuBackend::softmax(Tensor& out, const Tensor& in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  SP_CHECK(in.is_contiguous() && out.is_contiguous(), "[", name,
           "] cpu softmax needs contiguous tensors, got ", describe(in));
  if (in.numel() == 0) return;
  const int64_t d = in.dim() == 0 ? 1 : in.shape().back();
  const int64_t rows = in.numel() / d;
  SP_DISPATCH_FLOAT(in.dtype(), name, [&]<typename T>() {
    const T* x = in.data<T>();
    T* y = out.data<T>();
    parallel_for(rows, d * 4, [&](int64_t r0, int64_t r1) {
      std::vector<acc_t<T>> scratch(std::is_same_v<T, acc_t<T>> ? 0 : d);
      for (int64_t r = r0; r < r1; ++r) {
        const T* next = prefetch_target(x + r * d, d, x + r1 * d);
        softmax_row(x + r * d, y + r * d, d, log, next, scratch.data());
      }
    });
  });
}

// in: [..., D] contiguous, bias: in's shape, any outer strides -> out = softmax(in + bias).
// Each row's sum is rounded to T as binary add rounds it, into a scratch row that stays in
// L1, and softmaxed from there: memory sees in and bias read and out written, once.
void CpuBackend::add_softmax(Tensor& out, const Tensor& in, const Tensor& bias) {
  SP_CHECK(in.is_contiguous() && out.is_contiguous(),
           "[add_softmax] cpu add_softmax needs contiguous scores, got ", describe(in));
  const int64_t d = in.dim() == 0 ? 1 : in.shape().back();
  SP_CHECK(bias.shape() == in.shape() && (d == 1 || bias.strides().back() == 1),
           "[add_softmax] bias must be expanded to the scores' shape with unit stride in the "
           "last dim, got ",
           describe(bias), " for scores ", describe(in));
  if (in.numel() == 0) return;
  const int64_t rows = in.numel() / d;
  SP_DISPATCH_FLOAT(in.dtype(), "add_softmax", [&]<typename T>() {
    const T* x = in.data<T>();
    const T* b = bias.data<T>();
    T* y = out.data<T>();
    parallel_for(rows, d * 5, [&](int64_t r0, int64_t r1) {
      std::vector<T> sum(d);
      std::vector<acc_t<T>> scratch(std::is_same_v<T, acc_t<T>> ? 0 : d);
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * d;
        const T* br = b + row_offset(bias, r);
        if constexpr (simd::kRowSimd<T>) {
          simd::row_add(xr, br, sum.data(), d);
        } else {
          for (int64_t i = 0; i < d; ++i) sum[i] = store<T>(load(xr[i]) + load(br[i]));
        }
        softmax_row(sum.data(), y + r * d, d, false, prefetch_target(xr, d, x + r1 * d),
                    scratch.data());
      }
    });
  });
}

// dy, y: [..., D] -> dx: [..., D], all contiguous.
void CpuBackend::softmax_backward(Tensor& dx, const Tensor& dy, const Tensor& y, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  SP_CHECK(dx.is_contiguous() && dy.is_contiguous() && y.is_contiguous(), "[", name,
           "] cpu softmax backward needs contiguous tensors");
  if (y.numel() == 0) return;
  const int64_t d = y.dim() == 0 ? 1 : y.shape().back();
  const int64_t rows = y.numel() / d;
  SP_DISPATCH_FLOAT(y.dtype(), name, [&]<typename T>() {
    const T* g = dy.data<T>();
    const T* p = y.data<T>();
    T* o = dx.data<T>();
    parallel_for(rows, d * 3, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        softmax_backward_row(g + r * d, p + r * d, o + r * d, d, log);
    });
  });
}

}  // namespace sp::cpu
