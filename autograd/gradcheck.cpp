#include "autograd/gradcheck.h"

#include <cmath>
#include <random>
#include <sstream>

#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

double dot(const Tensor& a, const std::vector<double>& v) {
  const std::vector<double> x = a.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * v[i];
  return s;
}

// Storage offsets (in elements) of every element of t in row-major logical order.
std::vector<int64_t> element_offsets(const Tensor& t) {
  std::vector<int64_t> offsets;
  offsets.reserve(t.numel());
  Shape idx;
  idx.resize(t.dim());
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t off = t.offset();
    for (int d = 0; d < t.dim(); ++d) off += idx[d] * t.strides()[d];
    offsets.push_back(off);
    for (int d = t.dim() - 1; d >= 0; --d) {
      if (++idx[d] < t.shape()[d]) break;
      idx[d] = 0;
    }
  }
  return offsets;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    SP_CHECK(x.dtype() == DType::f64 && x.device().is_cpu(), "[gradcheck] input ", i,
             " must be an f64 CPU tensor, got ", describe(x));
    SP_CHECK(x.is_leaf(), "[gradcheck] input ", i, " must be a leaf");
  }
  GradcheckResult result;
  std::ostringstream msg;
  int reported = 0;

  // Analytic: one backward pass with a random projection of the output.
  for (const Tensor& x : inputs)
    if (x.defined()) const_cast<Tensor&>(x).zero_grad();
  Tensor out = fn(inputs);
  SP_CHECK(out.dtype() == DType::f64, "[gradcheck] the function must return f64, got ", describe(out));
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(out.numel());
  for (double& x : v) x = normal(rng);
  if (out.requires_grad()) out.backward(Tensor::from_vector(v, out.shape()));

  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* base = static_cast<double*>(x.storage()->data());
    const std::vector<int64_t> offsets = element_offsets(x);
    for (int64_t j = 0; j < x.numel(); ++j) {
      double& e = base[offsets[j]];
      const double saved = e;
      e = saved + options.eps;
      const double plus = dot(fn(inputs), v);
      e = saved - options.eps;
      const double minus = dot(fn(inputs), v);
      e = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double err = std::abs(analytic[j] - numeric);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(err <= options.atol + options.rtol * std::abs(numeric))) {
        result.ok = false;
        if (reported++ < 5)
          msg << "input " << i << " element " << j << ": analytic " << analytic[j] << ", numeric "
              << numeric << "\n";
      }
    }
  }
  result.message = msg.str();
  return result;
}

}  // namespace sp
