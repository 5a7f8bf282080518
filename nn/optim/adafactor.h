#pragma once
// Adafactor as T5X's t5x/adafactor.py (and optax.adafactor, which computes the same), for
// one parameter X with gradient g at update t = step_count() - step_offset:
//
//   decay  = 1 - (t + 1)^-decay_rate                   0 at the first update (in f32)
//   scale  = lr * max(RMS(X), eps2)                     lr alone without parameter scaling
//   G      = g^2 + eps1
//   factored (rank >= 2, second-largest dim >= min_dim_size_to_factor):
//     a0 = the largest axis, a1 = the second largest; ties keep axis order, so a0 is the
//     later of two equal axes (numpy's argsort of the shape, as T5X and optax do)
//     v_row = decay v_row + (1 - decay) mean(G, a0)     shape: X's without a0
//     v_col = decay v_col + (1 - decay) mean(G, a1)     shape: X's without a1
//     U = g * (v_row / mean(v_row, a1))^-1/2 (along a0) * v_col^-1/2 (along a1)
//   otherwise: v = decay v + (1 - decay) G,  U = g / sqrt(v)
//   U /= max(1, RMS(U) / clipping_threshold)            when clipping_threshold is set
//   S = scale * U;  with beta1: m = beta1 m + (1 - beta1) S,  S = m
//   X = (1 - weight_decay_rate) X - S                   (weight decay not scaled by lr)
//
// Where this differs from a plain reading of the paper, T5X wins: momentum averages the
// lr-scaled update S (so it carries old learning rates), weight decay shrinks the
// parameter before the update is subtracted, and step_offset is subtracted from the step
// (fine-tuning from step N with step_offset N restarts the second-moment decay).
// For rank > 2, the axes other than a0 and a1 act as batch axes of the factored moments
// (optax's and flax's rule; T5X itself asks for an explicit factor rule there). RMS(X)
// and RMS(U) are over the whole parameter.
//
// Each parameter costs three passes over its gradient (the moments; RMS(U), which needs
// the moments; the update) and one read + one write of the parameter, parallel over
// blocks of rows, with every reduction in f64 in an order independent of the thread count.
#include <optional>
#include <utility>

#include "nn/optim/optimizer.h"

namespace sp::optim {

struct AdafactorOptions {
  bool factored = true;
  bool multiply_by_parameter_scale = true;
  std::optional<double> beta1;  // momentum in [0, 1): keeps "m"
  double decay_rate = 0.8;      // exponent in (0, 1]
  int64_t step_offset = 0;
  std::optional<double> clipping_threshold = 1.0;  // > 0
  std::optional<double> weight_decay_rate;         // in [0, 1)
  int64_t min_dim_size_to_factor = 128;
  double epsilon1 = 1e-30;  // > 0: keeps zero gradients finite
  double epsilon2 = 1e-3;
};

class Adafactor : public Optimizer {
 public:
  // Throws "[adafactor] <option> must be ..." for an option out of range.
  Adafactor(std::vector<Tensor> params, std::vector<std::string> names = {},
            AdafactorOptions options = {});

  const AdafactorOptions& options() const { return options_; }

  // (a0, a1): the axes v_row and v_col average over, or nullopt when X is not factored.
  static std::optional<std::pair<int, int>> factored_axes(const Shape& shape,
                                                          const AdafactorOptions& options);

 protected:
  std::vector<StateSlot> state_slots(const Shape& shape) const override;
  void check_step(int64_t step) const override;
  void update(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state, double lr,
              int64_t step) override;
  void update_generic(const Tensor& param, const Tensor& grad, std::vector<Tensor>& state,
                      double lr, int64_t step) override;

 private:
  // 1 - (t + 1)^-decay_rate at t = step - step_offset, evaluated in f32.
  double decay_at(int64_t step) const;

  AdafactorOptions options_;
  std::vector<double> scratch_;  // partial sums, reused across updates
};

}  // namespace sp::optim
