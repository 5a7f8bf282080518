#pragma once
// T5 feed-forward: wo(dropout(act(wi x))) or, gated, wo(dropout(act(wi_0 x) * wi_1 x)).
#include <memory>

#include "models/t5/config.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"

namespace sp {

class T5DenseActDense : public Module {
 public:
  T5DenseActDense(const T5Config& c, DType dtype, Generator* dropout_gen = nullptr);
  // x: [..., D] -> [..., D]
  Tensor forward(const Tensor& x) const;

  bool gated() const { return gated_; }

  std::unique_ptr<Linear> wi;    // not gated
  std::unique_ptr<Linear> wi_0;  // gated
  std::unique_ptr<Linear> wi_1;  // gated
  Linear wo;

 private:
  bool gated_;
  T5Activation act_;
  Dropout dropout_;
};

}  // namespace sp
