// The device-generic optimizer path (nn/optim/generic.h) against the fused CPU loops:
// ForceGenericPath makes CPU parameters take the kernels:: path that CUDA parameters take,
// so both run here from the same init and gradients, step after step.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "nn/optim/clip.h"
#include "nn/optim/generic.h"
#include "nn/optim/sgd.h"
#include "test_util.h"

// GCC 12 warns on designated initializers that leave members to their default initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sp::optim {
namespace {

using sp::testing::test_tensor;
using Factory = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

// Max |a - b| relative to max |b| (both read as f64).
double rel_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  EXPECT_EQ(va.size(), vb.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    diff = std::max(diff, std::fabs(va[i] - vb[i]));
    ref = std::max(ref, std::fabs(vb[i]));
  }
  return ref > 0 ? diff / ref : diff;
}

std::vector<Tensor> make_params(const std::vector<Shape>& shapes, DType dtype) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < shapes.size(); ++i)
    out.push_back(sp::testing::leaf(test_tensor(shapes[i], 11 + i, dtype, 0.5)));
  return out;
}

// Gradients of step s: LCG values with every 7th element zero (a zero gradient must stay
// finite through eps1), a few large entries so update clipping acts.
Tensor make_grad(const Shape& shape, size_t param, int step, DType dtype) {
  std::vector<double> v = sp::testing::lcg_values(shape.numel(), 1000 * (param + 1) + step);
  for (size_t k = 0; k < v.size(); ++k) {
    if (k % 7 == 0) v[k] = 0.0;
    if (k % 97 == 5) v[k] *= 40.0;
  }
  return Tensor::from_vector(v, shape, dtype);
}

// Runs `steps` updates fused and generic from the same init and gradients, then compares
// parameters and every state entry.
void expect_paths_agree(const std::string& label, const Factory& make,
                        const std::vector<Shape>& shapes, DType dtype, double tol_param,
                        double tol_state, int steps = 5) {
  SCOPED_TRACE(label + " " + dtype_name(dtype));
  std::vector<Tensor> fused_params = make_params(shapes, dtype);
  std::vector<Tensor> generic_params = make_params(shapes, dtype);
  std::unique_ptr<Optimizer> fused = make(fused_params);
  std::unique_ptr<Optimizer> gen = make(generic_params);
  for (int s = 0; s < steps; ++s) {
    const double lr = 0.05 + 0.01 * s;
    for (size_t i = 0; i < shapes.size(); ++i) {
      fused_params[i].set_grad(make_grad(shapes[i], i, s, dtype));
      generic_params[i].set_grad(make_grad(shapes[i], i, s, dtype));
    }
    fused->step(lr);
    {
      ForceGenericPath force;
      gen->step(lr);
    }
    for (size_t i = 0; i < shapes.size(); ++i)
      EXPECT_LE(rel_error(generic_params[i], fused_params[i]), tol_param)
          << "param " << i << " " << shapes[i] << " step " << s;
  }
  const StateDict a = gen->state_dict(), b = fused->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].first, b[k].first);
    EXPECT_EQ(a[k].second.dtype(), b[k].second.dtype());
    EXPECT_LE(rel_error(a[k].second, b[k].second), tol_state) << a[k].first;
  }
}

// Unfactored vectors and small matrices, factored matrices with the largest axis first and
// last, and rank 3 and 5 factored parameters (batch axes before, between and after).
const std::vector<Shape> kShapes = {{300},      {4, 5},        {130, 200},
                                    {200, 130}, {3, 140, 129}, {2, 130, 3, 150, 2}};

struct DtypeTol {
  DType dtype;
  double param, state;
};
// bf16 parameters: the f32 updates agree to 1e-6, the rounded parameters to one bf16 step.
const std::vector<DtypeTol> kDtypes = {
    {DType::f32, 1e-6, 1e-6}, {DType::f64, 1e-12, 1e-12}, {DType::bf16, 8e-3, 1e-5}};

TEST(OptimGeneric, adafactor_matches_fused) {
  const std::vector<std::pair<std::string, AdafactorOptions>> configs = {
      {"default", {}},
      {"beta1", {.beta1 = 0.9}},
      {"no_param_scale", {.multiply_by_parameter_scale = false}},
      {"no_clipping", {.clipping_threshold = std::nullopt}},
      {"tight_clipping", {.clipping_threshold = 0.05}},
      {"weight_decay", {.weight_decay_rate = 1e-2}},
      {"unfactored", {.factored = false, .beta1 = 0.5}},
      {"decay_rate_step_offset", {.decay_rate = 0.5, .step_offset = 0}},
      {"small_min_dim", {.min_dim_size_to_factor = 4}},
  };
  for (const auto& [label, options] : configs)
    for (const DtypeTol& d : kDtypes)
      expect_paths_agree(
          "adafactor " + label,
          [&](std::vector<Tensor> p) {
            return std::make_unique<Adafactor>(p, std::vector<std::string>{}, options);
          },
          kShapes, d.dtype, d.param, d.state);
}

TEST(OptimGeneric, adamw_matches_fused) {
  const std::vector<std::pair<std::string, AdamWOptions>> configs = {
      {"default", {}},
      {"no_bias_correction", {.bias_correction = false}},
      {"no_decay", {.beta1 = 0.5, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.0}},
  };
  for (const auto& [label, options] : configs)
    for (const DtypeTol& d : kDtypes)
      expect_paths_agree(
          "adamw " + label,
          [&](std::vector<Tensor> p) {
            return std::make_unique<AdamW>(p, std::vector<std::string>{}, options);
          },
          kShapes, d.dtype, d.param, d.state);
}

TEST(OptimGeneric, sgd_matches_fused) {
  const std::vector<std::pair<std::string, SGDOptions>> configs = {
      {"plain", {}},
      {"momentum", {.momentum = 0.9}},
      {"nesterov_decay", {.momentum = 0.8, .nesterov = true, .weight_decay = 1e-3}},
      {"decay", {.weight_decay = 1e-2}},
  };
  for (const auto& [label, options] : configs)
    for (const DtypeTol& d : kDtypes)
      expect_paths_agree(
          "sgd " + label,
          [&](std::vector<Tensor> p) {
            return std::make_unique<SGD>(p, std::vector<std::string>{}, options);
          },
          kShapes, d.dtype, d.param, d.state);
}

// Steps from a restored state continue the same on the generic path.
TEST(OptimGeneric, adafactor_resume_from_fused_state) {
  const std::vector<Shape> shapes = {{130, 200}, {50}};
  std::vector<Tensor> p1 = make_params(shapes, DType::f32), p2 = make_params(shapes, DType::f32);
  Adafactor fused(p1, {}, {.beta1 = 0.9}), gen(p2, {}, {.beta1 = 0.9});
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      p1[i].set_grad(make_grad(shapes[i], i, s, DType::f32));
      p2[i].set_grad(make_grad(shapes[i], i, s, DType::f32));
    }
    fused.step(0.1);
    if (s == 1) {
      gen.load_state_dict(fused.state_dict());
      for (size_t i = 0; i < shapes.size(); ++i) {
        Tensor dst = p2[i];
        kernels::copy_(dst, p1[i]);
      }
    } else if (s > 1) {
      ForceGenericPath force;
      gen.step(0.1);
    }
  }
  for (size_t i = 0; i < shapes.size(); ++i) EXPECT_LE(rel_error(p2[i], p1[i]), 1e-6);
  EXPECT_EQ(gen.step_count(), fused.step_count());
}

TEST(OptimGeneric, clip_and_finite_check_match_fused) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    auto make = [&] {
      std::vector<Tensor> ps = make_params({{100, 30}, {7}}, dtype);
      ps[0].set_grad(make_grad({100, 30}, 0, 0, dtype));
      ps[1].set_grad(sp::testing::non_contiguous(make_grad({7}, 1, 0, dtype)));
      return ps;
    };
    std::vector<Tensor> a = make(), b = make();
    const double na = clip_grad_norm(a, 1.5);
    double nb = 0;
    {
      ForceGenericPath force;
      nb = clip_grad_norm(b, 1.5);
      EXPECT_NEAR(grad_norm(b), 1.5, 1.5 * (dtype == DType::bf16 ? 1e-2 : 1e-6));
    }
    EXPECT_NEAR(nb, na, na * 1e-12);
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_LE(rel_error(b[i].grad(), a[i].grad()), dtype == DType::f64 ? 1e-15 : 1e-7);

    Tensor c = sp::testing::leaf(Tensor::zeros({5}, dtype));
    c.set_grad(Tensor::from_vector<double>(
        {1, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
         std::numeric_limits<double>::quiet_NaN(), 2},
        {5}, dtype));
    const FiniteCheck fused = check_finite_grads({a[0], c}, {"a", "c"});
    ForceGenericPath force;
    const FiniteCheck gen = check_finite_grads({a[0], c}, {"a", "c"});
    EXPECT_FALSE(gen);
    EXPECT_EQ(gen.index, fused.index);
    EXPECT_EQ(gen.bad_elements, 3);
    EXPECT_EQ(gen.message(), fused.message());
    EXPECT_TRUE(check_finite_grads({a[0]}));
  }
}

}  // namespace
}  // namespace sp::optim
