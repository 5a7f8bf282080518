// Reductions on the CPU: sum, mean, max, min, argmax, argmin over any set of dims.
//
// After dropping size-1 dims and merging neighbours, every reduction is a sequence of
// [A, R, B] -> [A, B] steps (reduce the middle dim): B == 1 is a row reduction
// (contiguous, folded with vector lanes), B > 1 a column reduction (rows of B added into
// an accumulator row, vectorised along B). Work is split into pieces that depend only on
// the shape, and partial results are combined in a fixed order, so results are the same
// for every thread count.
#include <algorithm>
#include <vector>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/parallel.h"
#include "tensor/cpu/reduce_math.h"
#include "tensor/reduce_groups.h"

namespace sp::cpu {
namespace {

// A row reduction longer than this is split into blocks reduced in parallel.
constexpr int64_t kRowBlock = 16384;
// Column reductions accumulate this many columns at a time (32 KiB of f32): long row
// segments keep the reads sequential, which matters more than an L1-resident accumulator.
constexpr int64_t kColChunk = 8192;
// Target elements per piece of a column reduction before its rows are split in blocks.
constexpr int64_t kColPiece = 65536;
// The most rows a column block folds in sequence; blocks are then combined pairwise.
constexpr int64_t kColBlockRows = 1024;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Uninitialised scratch from the caching allocator: a large std::vector would be zeroed,
// and mmapped and page-faulted afresh on every call.
template <typename Acc>
class Scratch {
 public:
  explicit Scratch(int64_t n)
      : t_(Tensor::empty(Shape{n}, dtype_of<Acc>::value)), p_(t_.template data<Acc>()) {}
  Acc* data() const { return p_; }
  Acc& operator[](int64_t i) const { return p_[i]; }

 private:
  Tensor t_;
  Acc* p_;
};

// acc[0, n) = fold(acc, rows x[r * ld + (0, n)]) for r in [0, rows). Eight rows per pass
// keep the partial result in a register (an eighth of the accumulator traffic); the order
// stays row by row.
template <typename Fold, typename Acc, typename In>
void fold_cols(const In* __restrict x, int64_t rows, int64_t ld, int64_t n, Acc* __restrict acc) {
  constexpr int kRows = 8;
  for (int64_t b = 0; b < n; ++b) acc[b] = Fold::template init<Acc>();
  int64_t r = 0;
  for (; r + kRows <= rows; r += kRows) {
    const In* __restrict xr = x + r * ld;
    for (int64_t b = 0; b < n; ++b) {
      Acc a = acc[b];
      for (int k = 0; k < kRows; ++k) a = Fold::apply(a, load_as<Acc>(xr[k * ld + b]));
      acc[b] = a;
    }
  }
  for (; r < rows; ++r) {
    const In* __restrict xr = x + r * ld;
    for (int64_t b = 0; b < n; ++b) acc[b] = Fold::apply(acc[b], load_as<Acc>(xr[b]));
  }
}

// Folds p[k * stride] for k in [0, n) pairwise: the rounding error of a sum of n partial
// results then grows with log(n), not n (summed one after another, the partials of a 1e7-
// element row drifted by up to 12 ulp). The order depends only on n: still deterministic.
template <typename Fold, typename Acc>
Acc fold_pairwise(const Acc* p, int64_t n, int64_t stride) {
  if (n == 1) return p[0];
  const int64_t half = n / 2;
  return Fold::apply(fold_pairwise<Fold>(p, half, stride),
                     fold_pairwise<Fold>(p + half * stride, n - half, stride));
}

// out[a, b] = fold over r of in[a, r, b]; in: [A, R, B] contiguous -> out: [A, B].
template <typename Fold, typename Acc, typename In>
void reduce_arb(const In* in, Acc* out, int64_t A, int64_t R, int64_t B) {
  if (B == 1) {
    const int64_t blocks = ceil_div(R, kRowBlock);
    if (blocks == 1) {
      parallel_for(A, R, [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) out[a] = fold_row<Fold, Acc>(in + a * R, R);
      });
      return;
    }
    Scratch<Acc> part(A * blocks);
    parallel_for(A * blocks, kRowBlock, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t a = i / blocks, k = i % blocks;
        const int64_t start = k * kRowBlock, len = std::min(kRowBlock, R - start);
        part[i] = fold_row<Fold, Acc>(in + a * R + start, len);
      }
    });
    for (int64_t a = 0; a < A; ++a)
      out[a] = fold_pairwise<Fold>(part.data() + a * blocks, blocks, 1);
    return;
  }
  const int64_t chunk = std::min(B, kColChunk);
  const int64_t chunks = ceil_div(B, chunk);
  // Rows per block: enough work per piece to be worth a thread, at least 64 rows so the
  // partial results stay small next to the input (at most 1/64 of it), and at most
  // kColBlockRows, since each block sums its rows one after another.
  const int64_t rows_per_block = std::clamp<int64_t>(kColPiece / chunk, 64, kColBlockRows);
  const int64_t blocks = ceil_div(R, rows_per_block);
  auto piece = [&](int64_t i, Acc* dst_base, int64_t r0, int64_t rows) {
    const int64_t a = (i / chunks), c = i % chunks;
    const int64_t b0 = c * chunk, n = std::min(chunk, B - b0);
    fold_cols<Fold, Acc>(in + (a * R + r0) * B + b0, rows, B, n, dst_base + a * B + b0);
  };
  if (blocks == 1) {
    parallel_for(A * chunks, R * chunk, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) piece(i, out, 0, R);
    });
    return;
  }
  // Partial results per block of rows: part[k] is [A, B].
  Scratch<Acc> part(blocks * A * B);
  const int64_t items = A * chunks * blocks;
  parallel_for(items, rows_per_block * chunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t k = i % blocks, rest = i / blocks;
      const int64_t r0 = k * rows_per_block;
      piece(rest, part.data() + k * A * B, r0, std::min(rows_per_block, R - r0));
    }
  });
  const int64_t total = A * B;
  parallel_for(ceil_div(total, kColChunk), kColChunk * blocks, [&](int64_t c0, int64_t c1) {
    const int64_t e0 = c0 * kColChunk, e1 = std::min(total, c1 * kColChunk);
    // Pairwise over the blocks (see fold_pairwise), in place: step w folds block k + w
    // into block k for k a multiple of 2w, whole rows of partials at a time.
    for (int64_t w = 1; w < blocks; w *= 2) {
      for (int64_t k = 0; k + w < blocks; k += 2 * w) {
        Acc* __restrict dst = part.data() + k * total;
        const Acc* __restrict src = part.data() + (k + w) * total;
        for (int64_t e = e0; e < e1; ++e) dst[e] = Fold::apply(dst[e], src[e]);
      }
    }
    for (int64_t e = e0; e < e1; ++e) out[e] = part[e];
  });
}

// Whether v beats best for argmax (Max) / argmin: NaN beats everything, ties keep the first.
template <bool Max, typename Acc>
inline bool beats(Acc v, Acc best) {
  if constexpr (Max) return v > best || (v != v && best == best);
  else return v < best || (v != v && best == best);
}

// out[a, b] = first r where in[a, r, b] is the max (min); R >= 1.
template <bool Max, typename Acc, typename In>
void arg_arb(const In* in, int64_t* out, int64_t A, int64_t R, int64_t B) {
  using Fold = std::conditional_t<Max, MaxFold, MinFold>;
  if (B == 1) {
    parallel_for(A, R * 2, [&](int64_t a0, int64_t a1) {
      for (int64_t a = a0; a < a1; ++a) {
        const In* x = in + a * R;
        // Vectorised pass for the value, then the first position holding it.
        const Acc m = fold_row<Fold, Acc>(x, R);
        const bool nan = m != m;
        int64_t found = 0;
        for (int64_t i0 = 0; i0 < R; i0 += 64) {
          const int64_t i1 = std::min(R, i0 + 64);
          bool any = false;
          for (int64_t i = i0; i < i1; ++i) {
            const Acc v = load_as<Acc>(x[i]);
            any |= nan ? v != v : v == m;
          }
          if (!any) continue;
          for (found = i0; found < i1; ++found) {
            const Acc v = load_as<Acc>(x[found]);
            if (nan ? v != v : v == m) break;
          }
          break;
        }
        out[a] = found;
      }
    });
    return;
  }
  const int64_t chunk = std::min(B, kColChunk);
  const int64_t chunks = ceil_div(B, chunk);
  parallel_for(A * chunks, R * chunk, [&](int64_t i0, int64_t i1) {
    std::vector<Acc> best(chunk);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t a = i / chunks, b0 = (i % chunks) * chunk, n = std::min(chunk, B - b0);
      const In* x = in + a * R * B + b0;
      int64_t* __restrict idx = out + a * B + b0;
      for (int64_t b = 0; b < n; ++b) {
        best[b] = load_as<Acc>(x[b]);
        idx[b] = 0;
      }
      for (int64_t r = 1; r < R; ++r) {
        const In* __restrict xr = x + r * B;
        for (int64_t b = 0; b < n; ++b) {
          const Acc v = load_as<Acc>(xr[b]);
          const bool take = beats<Max>(v, best[b]);
          best[b] = take ? v : best[b];
          idx[b] = take ? r : idx[b];
        }
      }
    }
  });
}

// Reduces the groups marked reduced, innermost first, each step an [A, R, B] reduction;
// intermediate results stay in Acc.
template <typename Fold, typename Acc, typename In>
void reduce_steps(const In* in, ReduceGroups groups, Acc* out, int64_t out_numel) {
  if (groups.last_reduced() < 0) {
    parallel_for(out_numel, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] = load_as<Acc>(in[i]);
    });
    return;
  }
  Scratch<Acc> tmp[2] = {Scratch<Acc>(0), Scratch<Acc>(0)};
  const Acc* src = nullptr;
  for (int step = 0;; ++step) {
    const int g = groups.last_reduced();
    int64_t A, R, B;
    groups.around(g, A, R, B);
    groups.remove(g);
    const bool last = groups.last_reduced() < 0;
    Acc* dst = out;
    if (!last) {
      tmp[step % 2] = Scratch<Acc>(A * B);
      dst = tmp[step % 2].data();
    }
    if (step == 0) {
      reduce_arb<Fold, Acc>(in, dst, A, R, B);
    } else {
      reduce_arb<Fold, Acc>(src, dst, A, R, B);
    }
    if (last) return;
    src = dst;
  }
}

}  // namespace

// in: [d0, ..., dn] contiguous -> out: same rank, dims in dims_mask set to 1.
void CpuBackend::reduce(ReduceOp op, Tensor& out, const Tensor& in, uint32_t dims_mask) {
  const char* name = reduce_name(op);
  SP_CHECK(in.is_contiguous() && out.is_contiguous(), "[", name,
           "] cpu reduce needs contiguous tensors, got ", describe(in));
  int64_t extent = 1;
  const ReduceGroups groups = ReduceGroups::of(in.shape(), dims_mask, extent);
  const int64_t out_numel = out.numel();
  if (out_numel == 0) return;
  if (in.numel() == 0) {
    // Only an empty sum or mean gets here (the dispatch layer rejects the others).
    fill(out, op == ReduceOp::mean ? std::numeric_limits<double>::quiet_NaN() : 0.0);
    return;
  }

  if (op == ReduceOp::argmax || op == ReduceOp::argmin) {
    SP_CHECK(out.dtype() == DType::i64, "[", name, "] writes i64, out is ", describe(out));
    int64_t* idx = out.data<int64_t>();
    const int g = groups.last_reduced();
    if (g < 0) {
      std::fill(idx, idx + out_numel, int64_t{0});
      return;
    }
    int64_t A, R, B;
    groups.around(g, A, R, B);
    SP_DISPATCH_ALL(in.dtype(), name, [&]<typename T>() {
      if (op == ReduceOp::argmax) {
        arg_arb<true, acc_t<T>>(in.data<T>(), idx, A, R, B);
      } else {
        arg_arb<false, acc_t<T>>(in.data<T>(), idx, A, R, B);
      }
    });
    return;
  }

  SP_DISPATCH_ALL(in.dtype(), name, [&]<typename T>() {
    using Acc = acc_t<T>;
    const bool direct = out.dtype() == dtype_of<Acc>::value;
    Scratch<Acc> buffer(direct ? 0 : out_numel);
    Acc* dst = direct ? out.data<Acc>() : buffer.data();
    const T* src = in.data<T>();
    switch (op) {
      case ReduceOp::max: reduce_steps<MaxFold, Acc>(src, groups, dst, out_numel); break;
      case ReduceOp::min: reduce_steps<MinFold, Acc>(src, groups, dst, out_numel); break;
      default: reduce_steps<SumFold, Acc>(src, groups, dst, out_numel); break;
    }
    if (op == ReduceOp::mean) {
      if constexpr (std::is_floating_point_v<Acc>) {
        const Acc n = static_cast<Acc>(extent);
        for (int64_t i = 0; i < out_numel; ++i) dst[i] /= n;
      }
    }
    if (direct) return;
    SP_DISPATCH_ALL(out.dtype(), name, [&]<typename O>() {
      O* o = out.data<O>();
      parallel_for(out_numel, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) o[i] = store_as<O>(dst[i]);
      });
    });
  });
}

}  // namespace sp::cpu
