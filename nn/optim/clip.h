#pragma once
// Gradient checks and global-norm clipping over the gradients of a parameter list.
// Parameters without a gradient are skipped. Sums are accumulated in f64 in fixed chunks,
// so the norm has the same bits whatever the thread count.
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sp::optim {

// sqrt(sum of every gradient element squared); 0 when no parameter has a gradient.
double grad_norm(const std::vector<Tensor>& params);

// Scales every gradient by max_norm / norm when the global norm exceeds max_norm
// (T5X's global_norm_clip_threshold, optax.clip_by_global_norm: no epsilon) and returns
// the norm before clipping. A non-finite norm leaves the gradients as they are (check
// them with check_finite_grads). Throws "[clip_grad_norm] max_norm must be > 0" otherwise.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// Multiplies every gradient by scale in place (in f32, f64 for f64 gradients).
void scale_grads(const std::vector<Tensor>& params, double scale);

struct FiniteCheck {
  bool finite = true;
  int64_t index = -1;        // the first parameter whose gradient has a NaN or Inf
  std::string name;          // its name when names were given, else "parameter <index>"
  int64_t bad_elements = 0;  // how many of its gradient elements are NaN or Inf
  explicit operator bool() const { return finite; }
  // "gradient of 'encoder.prompt' has 3 non-finite values (NaN or Inf)"; empty when finite.
  std::string message() const;
};

// Whether every gradient element is finite, naming the first parameter that is not.
FiniteCheck check_finite_grads(const std::vector<Tensor>& params,
                               const std::vector<std::string>& names = {});

}  // namespace sp::optim
