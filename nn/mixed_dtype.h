#pragma once
// Where dtypes meet in a model that mixes them. A bf16 run keeps the tensors it trains in
// f32 and casts the frozen rest to bf16 (experiments/training/dtype_policy.h); the layers
// then compute in the 16-bit dtype, so the frozen backbone keeps bf16's matmul speed and
// memory, and a trained f32 tensor is cast where it is used. The cast is differentiable:
// the f32 tensor gets an f32 gradient (autocast's rule for weights).
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "tensor/tensor.h"

namespace sp {

// The dtype with fewer bytes per element; a when both have the same size.
DType narrower_dtype(DType a, DType b);

// The dtype two tensors meet in: their common dtype, or the 16-bit one (bf16, f16) when the
// other is wider. Other pairs (f32 with f64, bf16 with f16) have none: nullopt, and the op's
// own dtype check reports them.
std::optional<DType> meeting_dtype(DType a, DType b);

// t itself when it already has dtype d, else the autograd cast of t to d.
Tensor cast_if_needed(const Tensor& t, DType d);

// x W^T + b computed in the dtype x and W meet in (x, W and b cast to it). With grad mode
// off inside a WeightCastCache, W's cast is made once and reused.
Tensor mixed_linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Evaluation inside a mixed-precision run: the weights stay f32 and each decoded token
// would cast every one of them to bf16 again. While a cache is alive on this thread (the
// innermost, when nested) and grad mode is off, mixed_linear casts each weight once and
// reuses the cast. The weights must not change while it lives, as in evaluation; the casts
// are dropped with it. Each entry keeps its source tensor alive, so no other tensor can
// take its storage's address while the entry exists.
//
//   { NoGradGuard no_grad; WeightCastCache casts; decode(...); }
class WeightCastCache {
 public:
  WeightCastCache();
  ~WeightCastCache();
  WeightCastCache(const WeightCastCache&) = delete;
  WeightCastCache& operator=(const WeightCastCache&) = delete;

  // The innermost live cache of this thread, or nullptr.
  static WeightCastCache* current();
  // weight cast to d, made on the first call for that view and dtype.
  Tensor cast(const Tensor& weight, DType d);
  int64_t size() const { return static_cast<int64_t>(casts_.size()); }

 private:
  using Key = std::tuple<const void*, int64_t, std::vector<int64_t>, std::vector<int64_t>, DType>;
  struct Entry {
    Tensor source;
    Tensor cast;
  };
  std::map<Key, Entry> casts_;
  WeightCastCache* outer_;
};

}  // namespace sp
