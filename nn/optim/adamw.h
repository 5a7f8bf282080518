#pragma once
// AdamW (Loshchilov & Hutter; PyTorch's torch.optim.AdamW, optax.adamw), at update
// t = step_count() + 1 (the global count, as optax; PyTorch counts per parameter, which is
// the same while every parameter gets a gradient at every step):
//
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g^2
//   x = x - lr * weight_decay * x - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//
// Without bias_correction the (1 - beta^t) divisors are 1. One fused pass per parameter.
#include "nn/optim/optimizer.h"

namespace sp::optim {

struct AdamWOptions {
  double beta1 = 0.9;          // [0, 1)
  double beta2 = 0.999;        // [0, 1)
  double eps = 1e-8;           // > 0
  double weight_decay = 0.01;  // >= 0, decoupled and scaled by lr
  bool bias_correction = true;
};

class AdamW : public Optimizer {
 public:
  // Throws "[adamw] <option> must be ..." for an option out of range.
  AdamW(std::vector<Tensor> params, std::vector<std::string> names = {}, AdamWOptions options = {});

  const AdamWOptions& options() const { return options_; }

 protected:
  std::vector<StateSlot> state_slots(const Shape& shape) const override;
  void update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state, double lr,
              int64_t step) override;
  void update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                      double lr, int64_t step) override;

 private:
  AdamWOptions options_;
};

}  // namespace sp::optim
