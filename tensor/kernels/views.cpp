// Views: new shape/strides/offset over the same storage, no data movement.
#include <algorithm>

#include "tensor/kernels.h"

namespace sp::kernels {

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SP_CHECK(infer < 0, "[", op, "] only one dim can be -1, got ", shape);
      infer = i;
    } else {
      SP_CHECK(shape[i] >= 0, "[", op, "] invalid dim ", shape[i], " in ", shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SP_CHECK(known != 0 && numel % known == 0, "[", op, "] cannot infer the -1 in ", shape, " for ",
             numel, " elements");
    out[infer] = numel / known;
  }
  SP_CHECK(out.numel() == numel, "[", op, "] shape ", shape, " is invalid for ", numel, " elements");
  return out;
}

namespace {

// Strides that let `shape` view a tensor of old shape/strides without copying, or false.
// Dims of the old layout that are contiguous with each other form chunks; each chunk can
// be re-split freely.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape,
                  Shape& strides) {
  strides.resize(shape.size());
  if (old_shape.numel() == 0) {
    strides = contiguous_strides(shape);
    return true;
  }
  int view_d = shape.size() - 1;
  int64_t chunk_base_stride = old_strides.size() ? old_strides.back() : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = old_shape.size() - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  // Leading size-1 dims of the view.
  for (; view_d >= 0; --view_d) strides[view_d] = 1;
  return true;
}

}  // namespace

bool can_view(const Tensor& x, const Shape& shape) {
  Shape strides;
  return view_strides(x.shape(), x.strides(), infer_shape(shape, x.numel(), "view"), strides);
}

Tensor view(const Tensor& x, const Shape& shape) {
  const Shape target = infer_shape(shape, x.numel(), "view");
  Shape strides;
  SP_CHECK(view_strides(x.shape(), x.strides(), target, strides), "[view] cannot view ",
           describe(x), " with strides ", x.strides(), " as ", target,
           ": the layout does not allow it; use reshape (which copies)");
  return x.as_strided(target, strides, x.offset());
}

Tensor permute(const Tensor& x, const Shape& dims) {
  SP_CHECK(dims.size() == x.dim(), "[permute] ", dims.size(), " dims given for a tensor of rank ",
           x.dim(), ": ", dims);
  Shape shape, strides;
  bool seen[kMaxDims] = {};
  for (int i = 0; i < dims.size(); ++i) {
    const int d = wrap_dim(dims[i], x.dim(), "permute");
    SP_CHECK(!seen[d], "[permute] dim ", dims[i], " repeated in ", dims);
    seen[d] = true;
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  return x.as_strided(shape, strides, x.offset());
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  const int a = wrap_dim(d0, x.dim(), "transpose"), b = wrap_dim(d1, x.dim(), "transpose");
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return x.as_strided(shape, strides, x.offset());
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  SP_CHECK(x.dim() > 0, "[slice] cannot slice a 0-d tensor: it has no dims");
  const int d = wrap_dim(dim, x.dim(), "slice");
  SP_CHECK(step > 0, "[slice] step must be positive, got ", step);
  const int64_t n = x.shape()[d];
  auto clampi = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return x.as_strided(shape, strides, x.offset() + start * x.strides()[d]);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  SP_CHECK(x.dim() > 0, "[select] cannot select from a 0-d tensor: it has no dims");
  const int d = wrap_dim(dim, x.dim(), "select");
  const int64_t n = x.shape()[d];
  SP_CHECK(index >= -n && index < n, "[select] index ", index, " is out of range for dim ", dim,
           " of size ", n);
  if (index < 0) index += n;
  Shape shape = x.shape(), strides = x.strides();
  const int64_t offset = x.offset() + index * strides[d];
  shape.erase(d);
  strides.erase(d);
  return x.as_strided(shape, strides, offset);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  SP_CHECK(shape.size() >= x.dim(), "[expand] cannot expand ", x.shape(), " to fewer dims ", shape);
  const int lead = shape.size() - x.dim();
  Shape out_shape, strides;
  for (int i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      SP_CHECK(shape[i] >= 0, "[expand] new leading dim must be given, got ", shape);
      out_shape.push_back(shape[i]);
      strides.push_back(0);
      continue;
    }
    const int64_t have = x.shape()[i - lead];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    SP_CHECK(want >= 0, "[expand] cannot expand ", x.shape(), " to ", shape, ": dim ", i, " is ",
             shape[i], " (only -1 keeps a dim)");
    SP_CHECK(have == want || have == 1, "[expand] cannot expand ", x.shape(), " to ", shape,
             ": dim ", i, " is ", have, ", not 1");
    out_shape.push_back(want);
    strides.push_back(have == want ? x.strides()[i - lead] : 0);
  }
  return x.as_strided(out_shape, strides, x.offset());
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  const int d = wrap_dim(dim, x.dim(), "squeeze");
  if (x.dim() == 0 || x.shape()[d] != 1) return x.as_strided(x.shape(), x.strides(), x.offset());
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(d);
  strides.erase(d);
  return x.as_strided(shape, strides, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  shape.insert(d, 1);
  strides.insert(d, stride);
  return x.as_strided(shape, strides, x.offset());
}

}  // namespace sp::kernels
