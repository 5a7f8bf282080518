#include "nn/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "tensor/error.h"

namespace sp::optim {

Schedule Schedule::constant(double lr) {
  Schedule s;
  s.kind_ = Kind::constant;
  s.peak_lr_ = lr;
  s.validate();
  return s;
}

Schedule Schedule::rsqrt(double peak_lr, int64_t offset, int64_t start_step) {
  Schedule s;
  s.kind_ = Kind::rsqrt;
  s.peak_lr_ = peak_lr;
  s.rsqrt_offset_ = offset;
  s.rsqrt_start_ = start_step;
  s.validate();
  return s;
}

Schedule Schedule::linear(double peak_lr, int64_t total_steps, double final_fraction) {
  Schedule s;
  s.kind_ = Kind::linear;
  s.peak_lr_ = peak_lr;
  s.total_steps_ = total_steps;
  s.final_fraction_ = final_fraction;
  s.validate();
  return s;
}

Schedule Schedule::cosine(double peak_lr, int64_t total_steps, double final_fraction) {
  Schedule s = linear(peak_lr, total_steps, final_fraction);
  s.kind_ = Kind::cosine;
  return s;
}

Schedule Schedule::step_decay(double peak_lr, int64_t every, double factor) {
  Schedule s;
  s.kind_ = Kind::step;
  s.peak_lr_ = peak_lr;
  s.every_ = every;
  s.factor_ = factor;
  s.validate();
  return s;
}

Schedule Schedule::with_warmup(int64_t warmup_steps, double init_fraction) const {
  Schedule s = *this;
  s.warmup_steps_ = warmup_steps;
  s.warmup_init_ = init_fraction;
  s.validate();
  return s;
}

void Schedule::validate() const {
  SP_CHECK(std::isfinite(peak_lr_) && peak_lr_ >= 0,
           "[schedule] learning rate must be finite and >= 0, got ", peak_lr_);
  SP_CHECK(warmup_steps_ >= 0, "[schedule] warmup_steps must be >= 0, got ", warmup_steps_);
  SP_CHECK(warmup_init_ >= 0 && warmup_init_ <= 1,
           "[schedule] warmup init_fraction must be in [0, 1], got ", warmup_init_);
  switch (kind_) {
    case Kind::constant: break;
    case Kind::rsqrt:
      SP_CHECK(rsqrt_offset_ >= 1, "[schedule] rsqrt offset must be >= 1, got ", rsqrt_offset_);
      SP_CHECK(rsqrt_start_ >= 0, "[schedule] rsqrt start step must be >= 0, got ", rsqrt_start_);
      break;
    case Kind::linear:
    case Kind::cosine:
      SP_CHECK(total_steps_ > warmup_steps_, "[schedule] total_steps (", total_steps_,
               ") must exceed warmup_steps (", warmup_steps_, ")");
      SP_CHECK(final_fraction_ >= 0 && final_fraction_ <= 1,
               "[schedule] final_fraction must be in [0, 1], got ", final_fraction_);
      break;
    case Kind::step:
      SP_CHECK(every_ >= 1, "[schedule] step decay every must be >= 1, got ", every_);
      SP_CHECK(factor_ > 0 && factor_ <= 1, "[schedule] step decay factor must be in (0, 1], got ",
               factor_);
      break;
  }
}

double Schedule::lr(int64_t step) const {
  SP_CHECK(step >= 0, "[schedule] step must be >= 0, got ", step);
  const double s = static_cast<double>(step);
  const double w = static_cast<double>(warmup_steps_);
  double warm = 1.0;
  if (step < warmup_steps_) warm = warmup_init_ + (1.0 - warmup_init_) * s / w;
  double decay = 1.0;
  switch (kind_) {
    case Kind::constant: break;
    case Kind::rsqrt:
      decay = 1.0 / std::sqrt(std::max(static_cast<double>(rsqrt_start_) + s,
                                       static_cast<double>(rsqrt_offset_)));
      break;
    case Kind::linear:
    case Kind::cosine: {
      const double progress =
          std::clamp((s - w) / (static_cast<double>(total_steps_) - w), 0.0, 1.0);
      decay = kind_ == Kind::linear
                  ? 1.0 - (1.0 - final_fraction_) * progress
                  : final_fraction_ + (1.0 - final_fraction_) * 0.5 *
                                          (1.0 + std::cos(std::numbers::pi * progress));
      break;
    }
    case Kind::step:
      if (step >= warmup_steps_)
        decay = std::pow(factor_, static_cast<double>((step - warmup_steps_) / every_));
      break;
  }
  return peak_lr_ * warm * decay;
}

std::string Schedule::str() const {
  std::ostringstream os;
  switch (kind_) {
    case Kind::constant: os << "constant(" << peak_lr_ << ")"; break;
    case Kind::rsqrt:
      os << "rsqrt(peak " << peak_lr_ << ", offset " << rsqrt_offset_;
      if (rsqrt_start_ > 0) os << ", from step " << rsqrt_start_;
      os << ")";
      break;
    case Kind::linear:
    case Kind::cosine:
      os << (kind_ == Kind::linear ? "linear" : "cosine") << "(peak " << peak_lr_ << ", total "
         << total_steps_ << ", final " << final_fraction_ << ")";
      break;
    case Kind::step:
      os << "step_decay(peak " << peak_lr_ << ", every " << every_ << ", factor " << factor_ << ")";
      break;
  }
  if (warmup_steps_ > 0) os << " + warmup " << warmup_steps_;
  return os.str();
}

}  // namespace sp::optim
