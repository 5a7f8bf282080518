// Joining and indexing: validation (ranks, shapes, dtypes, every index in range) and
// allocation around the backend's index_select / index_add / gather / scatter_add, and cat
// as copies into slices of the output.
#include "tensor/kernels.h"

namespace sp::kernels {
namespace {

const char* what(const Tensor& t) { return t.defined() ? "" : "undefined"; }

void check_index_dtype(const char* op, const Tensor& index) {
  SP_CHECK(index.defined() && (index.dtype() == DType::i32 || index.dtype() == DType::i64), "[", op,
           "] index must be i32 or i64: index is ",
           index.defined() ? describe(index) : what(index));
}

// Every value of index in [0, size); on the host, since a bad index would read or write
// outside the tensor on any device.
void check_index_range(const char* op, const Tensor& index, int dim, int64_t size) {
  const Tensor host = index.device().is_cpu() ? contiguous(index) : to_device(index, Device::cpu());
  const int64_t n = host.numel();
  auto scan = [&]<typename I>(const I* p) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = static_cast<int64_t>(p[i]);
      SP_CHECK(v >= 0 && v < size, "[", op, "] index ", v, " at position ", i,
               " is out of range for dim ", dim, " of size ", size);
    }
  };
  if (host.dtype() == DType::i32) {
    scan(host.data<int32_t>());
  } else {
    scan(host.data<int64_t>());
  }
}

void check_same_device(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                       const char* b_name) {
  SP_CHECK(a.device() == b.device(), "[", op, "] ", a_name, " and ", b_name,
           " on different devices: ", a_name, " on ", a.device(), ", ", b_name, " on ", b.device());
}

int checked_dim(const char* op, const Tensor& x, int64_t dim) {
  SP_CHECK(x.defined(), "[", op, "] input is undefined");
  SP_CHECK(x.dim() >= 1, "[", op, "] input must have at least one dim: input is ", describe(x));
  return wrap_dim(dim, x.dim(), op);
}

Tensor contiguous_copy(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_(out, x);
  return out;
}

bool addable(DType t) { return t != DType::boolean; }

// index: [n] -> checks for index_select / index_add along dim of size.
void check_index_1d(const char* op, const Tensor& index, int dim, int64_t size) {
  check_index_dtype(op, index);
  SP_CHECK(index.dim() == 1, "[", op, "] index must be 1-D: index is ", describe(index));
  check_index_range(op, index, dim, size);
}

// index has x's rank and, off dim, sizes no larger than limit's.
void check_index_nd(const char* op, const Tensor& index, int dim, const Tensor& limit,
                    const char* limit_name, bool check_dim_too) {
  SP_CHECK(index.dim() == limit.dim(), "[", op, "] index must have ", limit_name,
           "'s rank: index is ", describe(index), ", ", limit_name, " is ", describe(limit));
  for (int d = 0; d < index.dim(); ++d) {
    if (d == dim && !check_dim_too) continue;
    SP_CHECK(index.size(d) <= limit.size(d), "[", op, "] index is larger than ", limit_name,
             " in dim ", d, ": index is ", describe(index), ", ", limit_name, " is ",
             describe(limit));
  }
}

}  // namespace

// xs: k tensors [..., n_i, ...] (equal except in dim) -> [..., sum n_i, ...]
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  SP_CHECK(!xs.empty(), "[cat] needs at least one tensor");
  const Tensor& first = xs[0];
  const int d = checked_dim("cat", first, dim);
  Shape shape = first.shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    SP_CHECK(x.defined(), "[cat] tensor ", i, " is undefined");
    SP_CHECK(x.dtype() == first.dtype(), "[cat] tensor ", i, " has dtype ", dtype_name(x.dtype()),
             " but tensor 0 has ", dtype_name(first.dtype()));
    SP_CHECK(x.device() == first.device(), "[cat] tensor ", i, " is on ", x.device(),
             " but tensor 0 on ", first.device());
    bool same = x.dim() == first.dim();
    for (int k = 0; same && k < x.dim(); ++k) same = k == d || x.size(k) == first.size(k);
    SP_CHECK(same, "[cat] tensor ", i, " has shape ", x.shape(), " but tensor 0 has ",
             first.shape(), ": shapes must match except in dim ", d);
    total += x.size(d);
  }
  shape[d] = total;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t len = x.size(d);
    if (len > 0 && x.numel() > 0) {
      Tensor part = slice(out, d, offset, offset + len);
      copy_(part, x);
    }
    offset += len;
  }
  return out;
}

// x: [..., S, ...], index: [n] -> [..., n, ...]
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const int d = checked_dim("index_select", x, dim);
  check_index_1d("index_select", index, d, x.size(d));
  check_same_device("index_select", x, "x", index, "index");
  Shape shape = x.shape();
  shape[d] = index.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  backend_for(x).index_select(out, contiguous(x), d, contiguous(index));
  return out;
}

// base plus what add(out, src) adds into out, a fresh contiguous copy of base. 16-bit values
// are summed in f32 and rounded once, as embedding_backward's gradients are: rounded after
// every add, a bf16 sum of ones stops growing at 256.
template <typename Add>
Tensor added(const Tensor& base, const Tensor& src, bool any, Add&& add) {
  const bool narrow = base.dtype() == DType::bf16 || base.dtype() == DType::f16;
  const DType sum_dtype = narrow ? DType::f32 : base.dtype();
  Tensor out = narrow ? cast(base, sum_dtype) : contiguous_copy(base);
  if (any) add(out, contiguous(cast(src, sum_dtype)));
  return cast(out, base.dtype());
}

// base: [..., S, ...], index: [n], src: [..., n, ...] -> base with src's slices added at
// the indexed positions (duplicates accumulate).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  const int d = checked_dim("index_add", base, dim);
  SP_CHECK(addable(base.dtype()), "[index_add] unsupported dtype bool");
  check_index_1d("index_add", index, d, base.size(d));
  SP_CHECK(src.defined() && src.dtype() == base.dtype(),
           "[index_add] src must have base's dtype: ", "base is ", describe(base), ", src is ",
           src.defined() ? describe(src) : what(src));
  Shape expected = base.shape();
  expected[d] = index.numel();
  SP_CHECK(src.shape() == expected, "[index_add] src must be ", expected, ": src is ",
           describe(src), ", base is ", describe(base), ", index is ", describe(index));
  check_same_device("index_add", base, "base", index, "index");
  check_same_device("index_add", base, "base", src, "src");
  return added(base, src, src.numel() > 0, [&](Tensor& out, const Tensor& s) {
    backend_for(base).index_add(out, d, contiguous(index), s);
  });
}

// x: [..., S, ...], index: x's rank, sizes <= x's off dim -> index's shape, x's dtype
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const int d = checked_dim("gather", x, dim);
  check_index_dtype("gather", index);
  check_index_nd("gather", index, d, x, "x", false);
  check_index_range("gather", index, d, x.size(d));
  check_same_device("gather", x, "x", index, "index");
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  backend_for(x).gather(out, contiguous(x), d, contiguous(index));
  return out;
}

// base: [..., S, ...], index: base's rank, src: at least index's sizes
//   -> base with out[..., index[i], ...] += src[i] (duplicates accumulate)
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src) {
  const int d = checked_dim("scatter_add", base, dim);
  SP_CHECK(addable(base.dtype()), "[scatter_add] unsupported dtype bool");
  check_index_dtype("scatter_add", index);
  SP_CHECK(src.defined() && src.dtype() == base.dtype(),
           "[scatter_add] src must have base's dtype: base is ", describe(base), ", src is ",
           src.defined() ? describe(src) : what(src));
  check_index_nd("scatter_add", index, d, base, "base", false);
  check_index_nd("scatter_add", index, d, src, "src", true);
  check_index_range("scatter_add", index, d, base.size(d));
  check_same_device("scatter_add", base, "base", index, "index");
  check_same_device("scatter_add", base, "base", src, "src");
  return added(base, src, index.numel() > 0, [&](Tensor& out, const Tensor& s) {
    backend_for(base).scatter_add(out, d, contiguous(index), s);
  });
}

}  // namespace sp::kernels
