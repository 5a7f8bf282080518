#pragma once
// OptimizerSpec (experiments/spec/spec.h) -> an optimizer over named tensors, with its
// learning-rate schedule set, as every training stage needs it (the runner's stages, `softprompt
// pretrain` and `lm-adapt`).
#include <cstdint>
#include <memory>

#include "experiments/spec/spec.h"
#include "experiments/training/trainer.h"
#include "nn/optim/optimizer.h"

namespace sp {

// The schedule of spec over total_steps (linear and cosine reach final_fraction at step
// total_steps, after the last update).
optim::Schedule make_schedule(const OptimizerSpec& spec, int64_t total_steps);

// adafactor | adamw | sgd over params; throws "[optimizer] unknown optimizer '...'" otherwise.
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerSpec& spec,
                                                 const NamedTensorList& params,
                                                 int64_t total_steps);

}  // namespace sp
