#include "experiments/training/optimizer_factory.h"

#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"
#include "tensor/error.h"

namespace sp {

optim::Schedule make_schedule(const OptimizerSpec& spec, int64_t total_steps) {
  const ScheduleSpec& s = spec.schedule;
  optim::Schedule schedule = optim::Schedule::constant(spec.lr);
  if (s.kind == "constant") {
  } else if (s.kind == "rsqrt") {
    schedule = optim::Schedule::rsqrt(spec.lr, s.rsqrt_offset, s.rsqrt_start_step);
  } else if (s.kind == "linear") {
    schedule = optim::Schedule::linear(spec.lr, total_steps, s.final_fraction);
  } else if (s.kind == "cosine") {
    schedule = optim::Schedule::cosine(spec.lr, total_steps, s.final_fraction);
  } else if (s.kind == "step") {
    schedule = optim::Schedule::step_decay(spec.lr, s.decay_every, s.decay_factor);
  } else {
    fail(str_cat("[optimizer] unknown schedule '", s.kind,
                 "' (expected constant, rsqrt, linear, cosine or step)"));
  }
  if (s.warmup_steps > 0) schedule = schedule.with_warmup(s.warmup_steps, s.warmup_init);
  return schedule;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerSpec& spec,
                                                 const NamedTensorList& params,
                                                 int64_t total_steps) {
  std::unique_ptr<optim::Optimizer> opt;
  if (spec.name == "adafactor") {
    optim::AdafactorOptions o;
    o.factored = spec.factored;
    o.multiply_by_parameter_scale = spec.multiply_by_parameter_scale;
    o.beta1 = spec.beta1;
    o.decay_rate = spec.decay_rate;
    o.clipping_threshold =
        spec.clipping_threshold > 0 ? std::optional<double>(spec.clipping_threshold) : std::nullopt;
    if (spec.weight_decay > 0) o.weight_decay_rate = spec.weight_decay;
    opt = std::make_unique<optim::Adafactor>(tensors_of(params), names_of(params), o);
  } else if (spec.name == "adamw") {
    optim::AdamWOptions o;
    o.beta1 = spec.beta1.value_or(0.9);
    o.beta2 = spec.beta2;
    o.eps = spec.epsilon;
    o.weight_decay = spec.weight_decay;
    opt = std::make_unique<optim::AdamW>(tensors_of(params), names_of(params), o);
  } else if (spec.name == "sgd") {
    optim::SGDOptions o;
    o.momentum = spec.momentum;
    o.weight_decay = spec.weight_decay;
    opt = std::make_unique<optim::SGD>(tensors_of(params), names_of(params), o);
  } else {
    fail(str_cat("[optimizer] unknown optimizer '", spec.name,
                 "' (expected adafactor, adamw or sgd)"));
  }
  opt->set_schedule(make_schedule(spec, total_steps));
  return opt;
}

}  // namespace sp
