#pragma once
// Dropout driven by the module's training flag; masks come from gen (the default
// generator when null), which must outlive the module.
#include "nn/module.h"
#include "tensor/random.h"

namespace sp {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.1, Generator* gen = nullptr);
  // x: [*] -> [*]; identity in eval mode or when p == 0.
  Tensor forward(const Tensor& x) const;

  double p() const { return p_; }
  void set_generator(Generator* gen) { gen_ = gen; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace sp
