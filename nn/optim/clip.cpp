#include "nn/optim/clip.h"

#include <cmath>
#include <set>

#include "nn/optim/generic.h"
#include "nn/optim/optim_kernels.h"
#include "tensor/kernels.h"

namespace sp::optim {

using detail::load;
using detail::store;

namespace {

// The gradients to look at: defined, one per distinct buffer (a parameter listed twice
// must not be scaled twice), contiguous (a strided one is replaced by a contiguous copy).
std::vector<Tensor> gradients(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> out;
  std::set<std::pair<const Storage*, int64_t>> seen;  // the buffer, without touching it
  for (const Tensor& p : params) {
    SP_CHECK(p.defined(), "[", op, "] got an undefined parameter");
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    if (!g.is_contiguous()) {
      g = kernels::contiguous(g);
      Tensor owner = p;
      owner.set_grad(g);
    }
    if (seen.insert({g.storage().get(), g.offset()}).second) out.push_back(g);
  }
  return out;
}

template <typename T>
double sum_squares_kernel(const T* d, int64_t n, std::vector<double>& scratch) {
  return detail::chunked_sum(n, 1, scratch, [&](int64_t b, int64_t e) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) {
      const double v = load<double>(d[i]);
      s += v * v;
    }
    return s;
  });
}

template <typename T>
void scale_kernel(T* d, int64_t n, double scale) {
  using C = detail::update_t<T>;
  const C s = static_cast<C>(scale);
  detail::chunked_for(n, 1, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) d[i] = store<T>(load<C>(d[i]) * s);
  });
}

template <typename T>
int64_t count_non_finite_kernel(const T* d, int64_t n, std::vector<double>& scratch) {
  return static_cast<int64_t>(detail::chunked_sum(n, 1, scratch, [&](int64_t b, int64_t e) {
    int64_t count = 0;
#pragma omp simd reduction(+ : count)
    for (int64_t k = b; k < e; ++k) count += std::isfinite(load<double>(d[k])) ? 0 : 1;
    return static_cast<double>(count);
  }));
}

// g: [n] -> sum of g^2 in f64
double sum_squares(const Tensor& g, std::vector<double>& scratch) {
  if (use_generic_path(g)) return generic::sum_f64(generic::square(kernels::cast(g, DType::f64)));
  return SP_DISPATCH_FLOAT(g.dtype(), "grad_norm", [&]<typename T>() {
    return sum_squares_kernel(g.data<T>(), g.numel(), scratch);
  });
}

double norm_of(const std::vector<Tensor>& grads) {
  std::vector<double> scratch;
  double total = 0;
  for (const Tensor& g : grads) total += sum_squares(g, scratch);
  return std::sqrt(total);
}

}  // namespace

double grad_norm(const std::vector<Tensor>& params) {
  return norm_of(gradients(params, "grad_norm"));
}

namespace {

void scale_each(const std::vector<Tensor>& grads, double scale) {
  for (const Tensor& g : grads) {
    if (use_generic_path(g)) {
      // d = store(load<C>(d) * C(scale)), C = f64 for f64 gradients, else f32.
      Tensor out = g;
      const DType cdt = g.dtype() == DType::f64 ? DType::f64 : DType::f32;
      kernels::copy_(out, generic::mul_s(kernels::cast(g, cdt), scale));
      continue;
    }
    SP_DISPATCH_FLOAT(g.dtype(), "scale_grads",
                      [&]<typename T>() { scale_kernel(g.data<T>(), g.numel(), scale); });
    g.storage()->bump_version();
  }
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  SP_CHECK(max_norm > 0 && std::isfinite(max_norm),
           "[clip_grad_norm] max_norm must be > 0 and finite, got ", max_norm);
  const std::vector<Tensor> grads = gradients(params, "clip_grad_norm");
  const double norm = norm_of(grads);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  scale_each(grads, max_norm / norm);
  return norm;
}

void scale_grads(const std::vector<Tensor>& params, double scale) {
  scale_each(gradients(params, "scale_grads"), scale);
}

std::string FiniteCheck::message() const {
  if (finite) return "";
  return str_cat("gradient of '", name, "' has ", bad_elements, " non-finite value",
                 bad_elements == 1 ? "" : "s", " (NaN or Inf)");
}

FiniteCheck check_finite_grads(const std::vector<Tensor>& params,
                               const std::vector<std::string>& names) {
  SP_CHECK(names.empty() || names.size() == params.size(), "[check_finite_grads] ", names.size(),
           " names for ", params.size(), " parameters");
  FiniteCheck out;
  std::vector<double> scratch;
  for (size_t i = 0; i < params.size(); ++i) {
    SP_CHECK(params[i].defined(), "[check_finite_grads] parameter ", i, " is undefined");
    const Tensor g0 = params[i].grad();
    if (!g0.defined() || g0.numel() == 0) continue;
    const Tensor g = kernels::contiguous(g0);
    const int64_t bad = use_generic_path(g)
                            ? generic::count_non_finite(g)
                            : SP_DISPATCH_FLOAT(g.dtype(), "check_finite_grads", [&]<typename T>() {
                                return count_non_finite_kernel(g.data<T>(), g.numel(), scratch);
                              });
    if (bad > 0) {
      out.finite = false;
      out.index = static_cast<int64_t>(i);
      out.name = names.empty() ? str_cat("parameter ", i) : names[i];
      out.bad_elements = bad;
      return out;
    }
  }
  return out;
}

}  // namespace sp::optim
