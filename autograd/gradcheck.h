#pragma once
// gradcheck: compares an op's backward with central differences in f64.
//
// With a random projection v of the output, the analytic vector-Jacobian product J^T v
// (one backward pass) must match, for every element of every input that requires grad,
// (v . f(x + h e) - v . f(x - h e)) / 2h.
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sp {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the first mismatches, naming input and element
};

// inputs must be f64 CPU tensors; those with requires_grad() are checked. They may be
// non-contiguous views: perturbations write through to their storage.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace sp
