#pragma once
// Learning-rate schedules: a small value type, lr(step) with step the number of updates
// made before the one being taken (0 for the first update).
//
//   lr(step) = peak_lr * warmup(step) * decay(step)
//
//   warmup(step) = init + (1 - init) * step / W   for step < W, else 1   (W = warmup_steps)
//   decay(step), by kind:
//     constant:  1
//     rsqrt:     1 / sqrt(max(start + step, rsqrt_offset))   (T5: peak_lr 1, offset 10000;
//                start 0, or the steps already taken when continuing a run's schedule)
//     linear:    1 - (1 - final) * progress
//     cosine:    final + (1 - final) * (1 + cos(pi * progress)) / 2
//     step:      factor ^ floor((step - W) / every)  for step >= W, else 1
//   progress = clamp((step - W) / (total_steps - W), 0, 1): linear and cosine decays start
//   where the warm-up ends and reach final_fraction at total_steps (absolute steps, as in
//   Hugging Face's get_*_schedule_with_warmup and optax's warmup_cosine_decay_schedule).
//
//   Schedule s = Schedule::cosine(0.3, /*total_steps=*/30000, /*final_fraction=*/0.1)
//                    .with_warmup(1000);
//   double lr = s.lr(step);
#include <cstdint>
#include <string>

namespace sp::optim {

class Schedule {
 public:
  enum class Kind { constant, rsqrt, linear, cosine, step };

  // constant(0): a placeholder for members that are assigned later.
  Schedule() = default;

  static Schedule constant(double lr);
  // T5 pretraining: peak_lr / sqrt(max(start_step + step, offset)); the defaults give
  // 1/sqrt(max(step, 1e4)). start_step continues a schedule: T5's LM adaptation ran on at
  // steps 1M..1.1M of T5 1.1's pretraining, so its rate was 1/sqrt(1e6 + step).
  static Schedule rsqrt(double peak_lr = 1.0, int64_t offset = 10000, int64_t start_step = 0);
  static Schedule linear(double peak_lr, int64_t total_steps, double final_fraction = 0.0);
  static Schedule cosine(double peak_lr, int64_t total_steps, double final_fraction = 0.0);
  // Multiplies the rate by factor every `every` steps.
  static Schedule step_decay(double peak_lr, int64_t every, double factor);

  // The same decay with a linear warm-up over the first warmup_steps steps, from
  // init_fraction * lr to the decayed rate (linear/cosine/step decays start after it).
  Schedule with_warmup(int64_t warmup_steps, double init_fraction = 0.0) const;

  // Throws sp::Error "[schedule] ..." for a negative step.
  double lr(int64_t step) const;

  Kind kind() const { return kind_; }
  double peak_lr() const { return peak_lr_; }
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t total_steps() const { return total_steps_; }
  // "cosine(peak 0.3, total 30000, final 0.1) + warmup 1000" for logs.
  std::string str() const;

 private:
  void validate() const;

  Kind kind_ = Kind::constant;
  double peak_lr_ = 0.0;
  int64_t warmup_steps_ = 0;
  double warmup_init_ = 0.0;
  int64_t total_steps_ = 0;      // linear, cosine
  double final_fraction_ = 0.0;  // linear, cosine
  int64_t rsqrt_offset_ = 10000;
  int64_t rsqrt_start_ = 0;
  int64_t every_ = 1;    // step
  double factor_ = 1.0;  // step
};

}  // namespace sp::optim
