#include "nn/mixed_dtype.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace sp {

DType narrower_dtype(DType a, DType b) { return dtype_size(b) < dtype_size(a) ? b : a; }

Tensor cast_if_needed(const Tensor& t, DType d) { return t.dtype() == d ? t : cast(t, d); }

std::optional<DType> meeting_dtype(DType a, DType b) {
  if (a == b) return a;
  const DType narrow = narrower_dtype(a, b);
  if (dtype_size(narrow) != 2 || dtype_size(a) == dtype_size(b)) return std::nullopt;
  return narrow;
}

Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::optional<DType> d = meeting_dtype(x.dtype(), weight.dtype());
  if (!d) return linear(x, weight, bias);  // reports the mismatch
  WeightCastCache* cache = WeightCastCache::current();
  const Tensor w = weight.dtype() != *d && cache && !GradMode::is_enabled()
                       ? cache->cast(weight, *d)
                       : cast_if_needed(weight, *d);
  return linear(cast_if_needed(x, *d), w, bias.defined() ? cast_if_needed(bias, *d) : bias);
}

namespace {
thread_local WeightCastCache* innermost_cache = nullptr;
}  // namespace

WeightCastCache::WeightCastCache() : outer_(innermost_cache) { innermost_cache = this; }

WeightCastCache::~WeightCastCache() { innermost_cache = outer_; }

WeightCastCache* WeightCastCache::current() { return innermost_cache; }

Tensor WeightCastCache::cast(const Tensor& weight, DType d) {
  const Shape& shape = weight.shape();
  const Shape& strides = weight.strides();
  Key key{weight.storage().get(),
          weight.offset(),
          {shape.begin(), shape.end()},
          {strides.begin(), strides.end()},
          d};
  auto it = casts_.find(key);
  if (it == casts_.end())
    it = casts_.emplace(std::move(key), Entry{weight, cast_if_needed(weight.detach(), d)}).first;
  return it->second.cast;
}

}  // namespace sp
