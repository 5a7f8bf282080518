#include "tensor/shape.h"

namespace sp {

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < n_; ++i) {
    if (i) s += ", ";
    s += std::to_string(d_[i]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

Shape contiguous_strides(const Shape& shape) {
  Shape strides;
  strides.resize(shape.size());
  // Unsigned: the running product of an empty shape's other dims may pass 2^63 (as for
  // [2^40, 0, 2^40]); those strides are never used to address memory.
  uint64_t s = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    strides[i] = static_cast<int64_t>(s);
    s *= static_cast<uint64_t>(std::max<int64_t>(shape[i], 1));
  }
  return strides;
}

int wrap_dim(int64_t dim, int rank, const char* op) {
  const int64_t lo = rank == 0 ? -1 : -rank, hi = rank == 0 ? 0 : rank - 1;
  SP_CHECK(dim >= lo && dim <= hi, "[", op, "] dim ", dim, " is out of range for a tensor of rank ",
           rank);
  return static_cast<int>(dim < 0 ? dim + std::max(rank, 1) : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int n = std::max(a.size(), b.size());
  Shape out;
  out.resize(n);
  for (int i = 0; i < n; ++i) {
    const int ia = i - (n - a.size()), ib = i - (n - b.size());
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    SP_CHECK(da == db || da == 1 || db == 1, "[", op, "] shapes do not broadcast: ", a, " and ", b);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace sp
