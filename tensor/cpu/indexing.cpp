// index_select, index_add, gather and scatter_add on the CPU.
//
// Every tensor is seen as [A, n, B] around the indexed dim (A = the dims before it, B =
// the dims after). The adds parallelise over (A, column blocks of B) and walk n in order
// inside, so repeated indices never race and sums do not depend on the thread count.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/index_dispatch.h"
#include "tensor/cpu/parallel.h"

namespace sp::cpu {
namespace {

constexpr int64_t kColumnBlock = 16;

// Moves elements as unsigned words of their size: selection never needs their values.
template <typename F>
void dispatch_size(DType dt, F&& fn) {
  switch (dtype_size(dt)) {
    case 1: fn.template operator()<uint8_t>(); return;
    case 2: fn.template operator()<uint16_t>(); return;
    case 4: fn.template operator()<uint32_t>(); return;
    default: fn.template operator()<uint64_t>(); return;
  }
}

// dst += v; integers wrap (two's complement) instead of overflowing, 16-bit floats add in f32.
template <typename T>
inline void add_to(T& dst, T v) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    dst = static_cast<T>(static_cast<U>(static_cast<U>(dst) + static_cast<U>(v)));
  } else if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
    dst = T(static_cast<float>(dst) + static_cast<float>(v));
  } else {
    dst += v;
  }
}

template <typename F>
void dispatch_add(DType dt, const char* op, F&& fn) {
  SP_DISPATCH_ALL(dt, op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      fail(str_cat("[", op, "] unsupported dtype bool"));
    } else {
      fn.template operator()<T>();
    }
  });
}

int64_t prod(const Shape& s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s[i];
  return p;
}

// Element offsets (by strides) of every row-major position over dims [from, to) of shape.
std::vector<int64_t> offsets(const Shape& shape, const Shape& strides, int from, int to) {
  std::vector<int64_t> out(static_cast<size_t>(prod(shape, from, to)));
  Shape idx;
  idx.resize(to - from, 0);
  int64_t off = 0;
  for (auto& o : out) {
    o = off;
    for (int d = to - 1; d >= from; --d) {
      off += strides[d];
      if (++idx[d - from] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d - from] = 0;
    }
  }
  return out;
}

// Calls fn(a, b_begin, b_end) over the work items (a, column block) of [0, A) x [0, B),
// grouped per thread into one column range per a.
template <typename F>
void for_each_column_range(int64_t A, int64_t B, int64_t cost_per_column, F&& fn) {
  const int64_t blocks = (B + kColumnBlock - 1) / kColumnBlock;
  parallel_for(A * blocks, kColumnBlock * cost_per_column, [&](int64_t i0, int64_t i1) {
    for (int64_t a = i0 / blocks; a <= (i1 - 1) / blocks; ++a) {
      const int64_t first = std::max(i0, a * blocks) - a * blocks;
      const int64_t last = std::min(i1, (a + 1) * blocks) - a * blocks;
      fn(a, first * kColumnBlock, std::min(last * kColumnBlock, B));
    }
  });
}

}  // namespace

// in: [A, S, B] contiguous, index: [n] -> out [A, n, B]
void CpuBackend::index_select(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  const int64_t A = prod(in.shape(), 0, dim), S = in.size(dim);
  const int64_t B = prod(in.shape(), dim + 1, in.dim());
  const int64_t n = index.numel();
  if (out.numel() == 0) return;
  dispatch_size(in.dtype(), [&]<typename U>() {
    const U* src = static_cast<const U*>(in.data_ptr());
    U* dst = static_cast<U*>(out.data_ptr());
    dispatch_index(index, [&]<typename I>() {
      const I* idx = index.data<I>();
      parallel_for(A * n, B, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t a = r / n, j = r % n;
          const U* s = src + (a * S + static_cast<int64_t>(idx[j])) * B;
          U* d = dst + r * B;
          for (int64_t k = 0; k < B; ++k) d[k] = s[k];
        }
      });
    });
  });
}

// out: [A, S, B] contiguous, index: [n], src: [A, n, B] contiguous; out[a, index[j], b] +=
// src[a, j, b].
void CpuBackend::index_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const int64_t A = prod(out.shape(), 0, dim), S = out.size(dim);
  const int64_t B = prod(out.shape(), dim + 1, out.dim());
  const int64_t n = index.numel();
  if (A * B * n == 0) return;
  dispatch_add(out.dtype(), "index_add", [&]<typename T>() {
    T* o = out.data<T>();
    const T* s = src.data<T>();
    dispatch_index(index, [&]<typename I>() {
      const I* idx = index.data<I>();
      for_each_column_range(A, B, n, [&](int64_t a, int64_t b0, int64_t b1) {
        for (int64_t j = 0; j < n; ++j) {
          T* d = o + (a * S + static_cast<int64_t>(idx[j])) * B;
          const T* sr = s + (a * n + j) * B;
          for (int64_t b = b0; b < b1; ++b) add_to(d[b], sr[b]);
        }
      });
    });
  });
}

// in: any strides, index: [A, n, B] contiguous (index.size(d) <= in.size(d) off dim)
//   -> out [A, n, B]: out[a, j, b] = in[a, index[a, j, b], b].
void CpuBackend::gather(Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  const Shape& is = index.shape();
  const int64_t n = is[dim];
  const std::vector<int64_t> off_a = offsets(is, in.strides(), 0, dim);
  const std::vector<int64_t> off_b = offsets(is, in.strides(), dim + 1, is.size());
  const int64_t A = static_cast<int64_t>(off_a.size()), B = static_cast<int64_t>(off_b.size());
  const int64_t sd = in.stride(dim);
  if (out.numel() == 0) return;
  dispatch_size(in.dtype(), [&]<typename U>() {
    const U* src = static_cast<const U*>(in.data_ptr());
    U* dst = static_cast<U*>(out.data_ptr());
    dispatch_index(index, [&]<typename I>() {
      const I* idx = index.data<I>();
      parallel_for(A * n, B, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const U* s = src + off_a[static_cast<size_t>(r / n)];
          const I* ir = idx + r * B;
          U* d = dst + r * B;
          for (int64_t b = 0; b < B; ++b) d[b] = s[static_cast<int64_t>(ir[b]) * sd + off_b[b]];
        }
      });
    });
  });
}

// out: contiguous, index: [A, n, B] contiguous, src: any strides (index.size(d) <=
// src.size(d), and <= out.size(d) off dim): out[a, index[a, j, b], b] += src[a, j, b].
void CpuBackend::scatter_add(Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const Shape& is = index.shape();
  const int64_t n = is[dim];
  if (index.numel() == 0) return;
  const std::vector<int64_t> out_a = offsets(is, out.strides(), 0, dim);
  const std::vector<int64_t> out_b = offsets(is, out.strides(), dim + 1, is.size());
  const std::vector<int64_t> src_a = offsets(is, src.strides(), 0, dim);
  const std::vector<int64_t> src_b = offsets(is, src.strides(), dim + 1, is.size());
  const int64_t A = static_cast<int64_t>(out_a.size()), B = static_cast<int64_t>(out_b.size());
  const int64_t od = out.stride(dim), sd = src.stride(dim);
  dispatch_add(out.dtype(), "scatter_add", [&]<typename T>() {
    T* o = out.data<T>();
    const T* s = src.data<T>();
    dispatch_index(index, [&]<typename I>() {
      const I* idx = index.data<I>();
      for_each_column_range(A, B, n, [&](int64_t a, int64_t b0, int64_t b1) {
        T* oa = o + out_a[static_cast<size_t>(a)];
        const T* sa = s + src_a[static_cast<size_t>(a)];
        for (int64_t j = 0; j < n; ++j) {
          const I* ir = idx + (a * n + j) * B;
          const T* sj = sa + j * sd;
          for (int64_t b = b0; b < b1; ++b)
            add_to(oa[static_cast<int64_t>(ir[b]) * od + out_b[b]], sj[src_b[b]]);
        }
      });
    });
  });
}

}  // namespace sp::cpu
