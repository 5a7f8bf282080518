// fill and copy (strided, converting dtype) on the CPU.
#include <cstring>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/parallel.h"

namespace sp::cpu {
namespace {

template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<compute_t<From>>(v) != compute_t<From>(0);
  } else if constexpr (std::is_same_v<To, bf16> || std::is_same_v<To, f16>) {
    return To(static_cast<float>(static_cast<compute_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<compute_t<From>>(v));
  }
}

// Dims of out/in with size-1 dims dropped and neighbours merged where both layouts allow,
// so most copies become one long inner loop.
struct CopyLayout {
  Shape shape, out_strides, in_strides;
};

CopyLayout collapse(const Shape& shape, const Shape& os, const Shape& is) {
  CopyLayout l;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    const int n = l.shape.size();
    if (n > 0 && l.out_strides[n - 1] == os[i] * shape[i] && l.in_strides[n - 1] == is[i] * shape[i]) {
      l.shape[n - 1] *= shape[i];
      l.out_strides[n - 1] = os[i];
      l.in_strides[n - 1] = is[i];
    } else {
      l.shape.push_back(shape[i]);
      l.out_strides.push_back(os[i]);
      l.in_strides.push_back(is[i]);
    }
  }
  if (l.shape.empty()) {
    l.shape.push_back(1);
    l.out_strides.push_back(1);
    l.in_strides.push_back(1);
  }
  return l;
}

template <typename To, typename From>
void copy_typed(To* out, const From* in, const CopyLayout& l) {
  const int nd = l.shape.size();
  const int64_t inner = l.shape[nd - 1];
  const int64_t os = l.out_strides[nd - 1], is = l.in_strides[nd - 1];
  const int64_t rows = l.shape.numel() / inner;
  if (rows == 1) {
    // One long row: split it across threads by element ranges.
    parallel_for(inner, 1, [&](int64_t begin, int64_t end) {
      To* po = out + begin * os;
      const From* pi = in + begin * is;
      const int64_t n = end - begin;
      if (os == 1 && is == 1) {
        if constexpr (std::is_same_v<To, From>) {
          std::memcpy(po, pi, static_cast<size_t>(n) * sizeof(To));
        } else {
          for (int64_t k = 0; k < n; ++k) po[k] = convert<To>(pi[k]);
        }
      } else {
        for (int64_t k = 0; k < n; ++k) po[k * os] = convert<To>(pi[k * is]);
      }
    });
    return;
  }
  parallel_for(rows, inner, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t o = 0, i = 0, rem = r;
      for (int d = nd - 2; d >= 0; --d) {
        const int64_t idx = rem % l.shape[d];
        rem /= l.shape[d];
        o += idx * l.out_strides[d];
        i += idx * l.in_strides[d];
      }
      To* po = out + o;
      const From* pi = in + i;
      if (os == 1 && is == 1) {
        if constexpr (std::is_same_v<To, From>) {
          std::memcpy(po, pi, static_cast<size_t>(inner) * sizeof(To));
        } else {
          for (int64_t k = 0; k < inner; ++k) po[k] = convert<To>(pi[k]);
        }
      } else {
        for (int64_t k = 0; k < inner; ++k) po[k * os] = convert<To>(pi[k * is]);
      }
    }
  });
}

}  // namespace

// out: any layout, value converted to out's dtype.
void CpuBackend::fill(Tensor& out, double value) {
  SP_DISPATCH_ALL(out.dtype(), "fill", [&]<typename T>() {
    const T v = convert<T>(value);
    T* p = static_cast<T*>(out.data_ptr());
    if (out.is_contiguous()) {
      parallel_for(out.numel(), 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] = v;
      });
      return;
    }
    Tensor src = Tensor::scalar(value, out.dtype());
    Shape zeros;
    zeros.resize(out.dim());
    copy(out, src.as_strided(out.shape(), zeros, 0));
  });
}

// out, in: same shape, any layout and dtypes.
void CpuBackend::copy(Tensor& out, const Tensor& in) {
  const CopyLayout l = collapse(out.shape(), out.strides(), in.strides());
  if (out.numel() == 0) return;
  SP_DISPATCH_ALL(out.dtype(), "copy", [&]<typename To>() {
    SP_DISPATCH_ALL(in.dtype(), "copy", [&]<typename From>() {
      copy_typed(static_cast<To*>(out.data_ptr()), static_cast<const From*>(in.data_ptr()), l);
    });
  });
}

}  // namespace sp::cpu
