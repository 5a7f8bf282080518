#pragma once
// Linear: y = x W^T + b with W stored [out, in] (Hugging Face layout). When one of x and W
// is 16-bit and the other wider, it computes in the 16-bit dtype (nn/mixed_dtype.h).
#include <cstdint>
#include <memory>

#include "nn/module.h"

namespace sp {

class Linear;

// Replaces a Linear's forward, for PEFT methods that wrap linears (LoRA, IA3):
// y = adapter.forward(x, linear), where linear.base_forward(x) is the plain x W^T + b.
class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // x: [..., in] -> [..., out]
  virtual Tensor forward(const Tensor& x, const Linear& base) const = 0;
};

class Linear : public Module {
 public:
  // Zero-initialised; load a checkpoint or call init:: functions on weight / bias.
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::f32);
  // x: [..., in] -> [..., out], through the adapter when one is installed.
  Tensor forward(const Tensor& x) const;
  // x: [..., in] -> [..., out], always x W^T + b.
  Tensor base_forward(const Tensor& x) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
  std::shared_ptr<const LinearAdapter> adapter;  // null: plain linear

 private:
  int64_t in_features_;
  int64_t out_features_;
};

}  // namespace sp
