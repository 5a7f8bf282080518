#pragma once
// Linear: y = x W^T + b with W stored [out, in] (Hugging Face layout).
#include <cstdint>

#include "nn/module.h"

namespace sp {

class Linear : public Module {
 public:
  // Zero-initialised; load a checkpoint or call init:: functions on weight / bias.
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::f32);
  // x: [..., in] -> [..., out]
  Tensor forward(const Tensor& x) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined

 private:
  int64_t in_features_;
  int64_t out_features_;
};

}  // namespace sp
