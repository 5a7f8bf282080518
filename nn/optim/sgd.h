#pragma once
// SGD with optional momentum, Nesterov and (coupled, L2) weight decay, as PyTorch's
// torch.optim.SGD with dampening 0 (and optax.chain(add_decayed_weights, sgd)):
//
//   d = g + weight_decay * x
//   momentum > 0:  b = momentum * b + d;  d = nesterov ? d + momentum * b : b
//   x = x - lr * d
//
// The buffer ("momentum" state, only with momentum > 0) starts at zero, so the first
// update gives b = d as PyTorch's does.
#include "nn/optim/optimizer.h"

namespace sp::optim {

struct SGDOptions {
  double momentum = 0.0;      // [0, 1)
  bool nesterov = false;      // needs momentum > 0
  double weight_decay = 0.0;  // >= 0
};

class SGD : public Optimizer {
 public:
  // Throws "[sgd] <option> must be ..." for an option out of range.
  SGD(std::vector<Tensor> params, std::vector<std::string> names = {}, SGDOptions options = {});

  const SGDOptions& options() const { return options_; }

 protected:
  std::vector<StateSlot> state_slots(const Shape& shape) const override;
  void update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state, double lr,
              int64_t step) override;
  void update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                      double lr, int64_t step) override;

 private:
  SGDOptions options_;
};

}  // namespace sp::optim
