// Optimizers, schedules and gradient clipping (nn/optim/).
//
// The trajectories come from tests/fixtures/optim_reference.safetensors, written by
// scripts/make_optimizer_fixtures.py with optax (float64), cross-checked there against a
// NumPy transcription of T5X's Adafactor. Inputs are regenerated here from the same LCG.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"
#include "nn/optim/adafactor.h"
#include "nn/optim/adamw.h"
#include "nn/optim/clip.h"
#include "nn/optim/schedule.h"
#include "nn/optim/sgd.h"
#include "test_util.h"

// GCC 12 warns on designated initializers that leave members to their default initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace sp::optim {
namespace {

using nlohmann::json;
using sp::testing::lcg_values;

// --- fixture-driven trajectories ------------------------------------------------------

const SafetensorsFile& fixture() {
  static const SafetensorsFile f =
      SafetensorsFile::open(std::string(SP_FIXTURES_DIR) + "/optim_reference.safetensors");
  return f;
}

json fixture_cases() { return json::parse(fixture().metadata().at("cases")); }

Shape shape_of(const json& p) { return Shape(p.at("shape").get<std::vector<int64_t>>()); }

Tensor make_param(const json& p) {
  const Shape shape = shape_of(p);
  std::vector<double> v = lcg_values(shape.numel(), p.at("seed").get<uint64_t>());
  for (double& x : v) x *= p.at("init_scale").get<double>();
  Tensor t = Tensor::from_vector(v, shape, DType::f32);
  t.requires_grad_(true);
  return t;
}

Tensor make_grad(const json& p, int step, double scale) {
  const Shape shape = shape_of(p);
  std::vector<double> v = lcg_values(shape.numel(), p.at("seed").get<uint64_t>() * 1000 + step + 1);
  for (double& x : v) x *= scale;
  const int64_t zero_every = p.at("zero_every").get<int64_t>();
  if (zero_every > 0)
    for (size_t i = 0; i < v.size(); i += static_cast<size_t>(zero_every)) v[i] = 0.0;
  return Tensor::from_vector(v, shape, DType::f32);
}

template <typename T>
std::optional<T> opt(const json& j) {
  return j.is_null() ? std::nullopt : std::optional<T>(j.get<T>());
}

std::unique_ptr<Optimizer> make_optimizer(const json& c, std::vector<Tensor> params,
                                          std::vector<std::string> names) {
  const json& o = c.at("options");
  const std::string kind = c.at("optimizer");
  if (kind == "adafactor") {
    AdafactorOptions a;
    a.factored = o.at("factored");
    a.multiply_by_parameter_scale = o.at("multiply_by_parameter_scale");
    a.beta1 = opt<double>(o.at("beta1"));
    a.decay_rate = o.at("decay_rate");
    a.step_offset = o.at("step_offset");
    a.clipping_threshold = opt<double>(o.at("clipping_threshold"));
    a.weight_decay_rate = opt<double>(o.at("weight_decay_rate"));
    a.min_dim_size_to_factor = o.at("min_dim_size_to_factor");
    a.epsilon1 = o.at("epsilon1");
    a.epsilon2 = o.at("epsilon2");
    return std::make_unique<Adafactor>(std::move(params), std::move(names), a);
  }
  if (kind == "adamw")
    return std::make_unique<AdamW>(std::move(params), std::move(names),
                                   AdamWOptions{.beta1 = o.at("beta1"),
                                                .beta2 = o.at("beta2"),
                                                .eps = o.at("eps"),
                                                .weight_decay = o.at("weight_decay")});
  return std::make_unique<SGD>(std::move(params), std::move(names),
                               SGDOptions{.momentum = o.at("momentum"),
                                          .nesterov = o.at("nesterov"),
                                          .weight_decay = o.at("weight_decay")});
}

// |got - want| <= rtol |want| + atol, atol scaled by the largest |want| (values that cancel
// to near zero carry the rounding of the larger terms).
void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                  double rtol = 1e-5) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  const double atol = rtol * 0.1 * scale;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::abs(g[i] - w[i]) <= rtol * std::abs(w[i]) + atol) continue;
    if (bad++ < 3)
      ADD_FAILURE() << what << " element " << i << ": got " << g[i] << ", want " << w[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.size() << " elements differ";
}

// Runs every case of the fixture whose optimizer is kind; returns how many tensors it compared.
int run_fixture_cases(const std::string& kind) {
  int compared = 0;
  for (const json& c : fixture_cases()) {
    if (c.at("optimizer") != kind) continue;
    const std::string name = c.at("name");
    SCOPED_TRACE(name);
    std::vector<Tensor> params;
    std::vector<std::string> names;
    for (const json& p : c.at("params")) {
      params.push_back(make_param(p));
      names.push_back(p.at("name"));
    }
    auto optimizer = make_optimizer(c, params, names);
    const int steps = c.at("steps");
    for (int s = 0; s < steps; ++s) {
      for (size_t i = 0; i < params.size(); ++i)
        params[i].set_grad(make_grad(c.at("params")[i], s, c.at("grad_scales")[s].get<double>()));
      optimizer->step(c.at("lrs")[s].get<double>());
      const std::string suffix = "/step" + std::to_string(s + 1);
      for (size_t i = 0; i < params.size(); ++i) {
        const std::string key = name + "/" + names[i];
        if (fixture().contains(key + suffix)) {
          expect_close(params[i], fixture().tensor(key + suffix), key + suffix);
          ++compared;
        }
        for (const auto& [state_key, state] : optimizer->state_dict()) {
          if (state_key.rfind(names[i] + ".", 0) != 0) continue;
          const std::string slot = state_key.substr(names[i].size() + 1);
          const std::string ref = key + "/" + slot + suffix;
          if (!fixture().contains(ref)) continue;
          // Second moments span many magnitudes: compare each element relative to itself.
          expect_close(state, fixture().tensor(ref), ref, slot[0] == 'v' ? 2e-5 : 1e-5);
          ++compared;
        }
      }
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string key = name + "/" + names[i] + "/final";
      expect_close(params[i], fixture().tensor(key), key);
      ++compared;
    }
  }
  return compared;
}

TEST(Optim, adafactor_matches_optax_and_t5x_trajectories) {
  EXPECT_GT(run_fixture_cases("adafactor"), 100);
}
TEST(Optim, adamw_matches_optax_trajectories) { EXPECT_GT(run_fixture_cases("adamw"), 10); }
TEST(Optim, sgd_matches_optax_trajectories) { EXPECT_GT(run_fixture_cases("sgd"), 20); }

// The fixture factors exactly the parameters the C++ factors, with the same state shapes.
TEST(Optim, adafactor_fixture_factoring_matches) {
  int factored_count = 0;
  for (const json& c : fixture_cases()) {
    if (c.at("optimizer") != "adafactor") continue;
    const std::string name = c.at("name");
    std::vector<Tensor> params;
    for (const json& p : c.at("params")) params.push_back(make_param(p));
    auto o = make_optimizer(c, params, {});
    for (Tensor& p : params) p.set_grad(Tensor::ones(p.shape()));
    o->step(0.0);
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string key = name + "/" + c.at("params")[i].at("name").get<std::string>();
      const bool ours = o->state(i, "v_row").defined();
      ASSERT_EQ(ours, fixture().contains(key + "/v_row/step5")) << key;
      if (!ours) continue;
      ++factored_count;
      EXPECT_EQ(o->state(i, "v_row").shape(), fixture().tensor(key + "/v_row/step5").shape())
          << key;
      EXPECT_EQ(o->state(i, "v_col").shape(), fixture().tensor(key + "/v_col/step5").shape())
          << key;
    }
  }
  EXPECT_GE(factored_count, 10);
}

// --- Adafactor by hand --------------------------------------------------------------

TEST(Optim, adafactor_factored_axes_follow_argsort) {
  const AdafactorOptions d;
  EXPECT_EQ(Adafactor::factored_axes({160, 130}, d), std::make_pair(0, 1));
  EXPECT_EQ(Adafactor::factored_axes({130, 160}, d), std::make_pair(1, 0));
  EXPECT_EQ(Adafactor::factored_axes({128, 128}, d),
            std::make_pair(1, 0));                                  // a tie: a0 is the later axis
  EXPECT_EQ(Adafactor::factored_axes({100, 64}, d), std::nullopt);  // the paper's prompt
  EXPECT_EQ(Adafactor::factored_axes({150, 512}, d), std::make_pair(1, 0));  // a 150-token prompt
  EXPECT_EQ(Adafactor::factored_axes({127, 4096}, d), std::nullopt);
  EXPECT_EQ(Adafactor::factored_axes({512}, d), std::nullopt);
  EXPECT_EQ(Adafactor::factored_axes({}, d), std::nullopt);
  EXPECT_EQ(Adafactor::factored_axes({8, 256, 130}, d), std::make_pair(1, 2));
  EXPECT_EQ(Adafactor::factored_axes({160, 130}, AdafactorOptions{.factored = false}),
            std::nullopt);
}

// First update, not factored, no parameter scaling: v = g^2 + eps1, U = g / sqrt(v) is the
// sign of g (0 for g = 0), RMS(U) = sqrt(2/3) < 1 so no clipping.
TEST(Optim, adafactor_first_step_by_hand) {
  Tensor x = sp::testing::leaf(Tensor::from_vector<float>({1, 2, 3}));
  x.set_grad(Tensor::from_vector<float>({0.5f, -2.0f, 0.0f}));
  Adafactor o({x}, {"x"}, {.multiply_by_parameter_scale = false});
  o.step(0.1);
  sp::testing::expect_values(x, {0.9, 2.1, 3.0}, 1e-7);
  sp::testing::expect_values(o.state(0, "v"), {0.25, 4.0, 1e-30}, 1e-6);
  EXPECT_EQ(o.step_count(), 1);
  // Second update with the same g: v = decay v + (1 - decay) g^2 stays g^2 whatever the
  // decay, so U is the sign again.
  o.step(0.1);
  sp::testing::expect_values(x, {0.8, 2.2, 3.0}, 1e-7);
  sp::testing::expect_values(o.state(0, "v"), {0.25, 4.0, 1e-30}, 1e-6);
  // Parameter scaling multiplies the step by max(RMS(x), eps2).
  Adafactor scaled({x}, {"x"});
  scaled.step(0.1);
  const double rms = std::sqrt((0.8 * 0.8 + 2.2 * 2.2 + 9.0) / 3.0);
  sp::testing::expect_values(x, {0.8 - 0.1 * rms, 2.2 + 0.1 * rms, 3.0}, 1e-6);
  Tensor tiny = sp::testing::leaf(Tensor::from_vector<float>({1e-5f, -1e-5f}));
  tiny.set_grad(Tensor::from_vector<float>({1.0f, 1.0f}));
  Adafactor floor({tiny}, {"tiny"});
  floor.step(1.0);
  sp::testing::expect_values(tiny, {1e-5 - 1e-3, -1e-5 - 1e-3}, 1e-6);
}

// Update clipping: U = sign(g) has RMS 1; with threshold 0.5 it is halved.
TEST(Optim, adafactor_update_clipping_by_hand) {
  Tensor x = sp::testing::leaf(Tensor::from_vector<float>({0, 0, 0, 0}));
  x.set_grad(Tensor::from_vector<float>({1, -1, 2, -3}));
  Adafactor o({x}, {}, {.multiply_by_parameter_scale = false, .clipping_threshold = 0.5});
  o.step(1.0);
  sp::testing::expect_values(x, {-0.5, 0.5, -0.5, 0.5}, 1e-6);
}

// step_offset N makes step N behave like a fresh first update (T5X subtracts it).
TEST(Optim, adafactor_step_offset_restarts_the_decay) {
  const Tensor init = sp::testing::test_tensor({40, 24}, 7, DType::f32);
  Tensor a = sp::testing::leaf(init.clone()), b = sp::testing::leaf(init.clone());
  Adafactor fresh({a}, {"w"}, {.min_dim_size_to_factor = 16});
  Adafactor offset({b}, {"w"}, {.step_offset = 3, .min_dim_size_to_factor = 16});
  offset.load_state_dict({{"step", Tensor::scalar(3, DType::i64)}});
  for (int s = 0; s < 3; ++s) {
    const Tensor g = sp::testing::test_tensor({40, 24}, 100 + s, DType::f32);
    a.set_grad(g.clone());
    b.set_grad(g.clone());
    fresh.step(0.01);
    offset.step(0.01);
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>()) << "step " << s;
  }
  EXPECT_EQ(offset.step_count(), 6);
  Adafactor early({sp::testing::leaf(init.clone())}, {}, {.step_offset = 2});
  EXPECT_THROW_MSG(early.step(0.1), "[adafactor] step 0 is below step_offset 2");
}

// bf16 parameters: the same f32 arithmetic, rounded once on the way back.
TEST(Optim, adafactor_bf16_param_is_the_rounded_f32_update) {
  const Tensor init = kernels::cast(sp::testing::test_tensor({40, 24}, 9, DType::f32), DType::bf16);
  Tensor p16 = sp::testing::leaf(init.clone());
  Tensor p32 = sp::testing::leaf(kernels::cast(init, DType::f32));
  const Tensor g = kernels::cast(sp::testing::test_tensor({40, 24}, 10, DType::f32), DType::bf16);
  p16.set_grad(g.clone());
  p32.set_grad(kernels::cast(g, DType::f32));
  AdafactorOptions o{.beta1 = 0.9, .weight_decay_rate = 1e-3, .min_dim_size_to_factor = 16};
  Adafactor a({p16}, {}, o), b({p32}, {}, o);
  a.step(0.05);
  b.step(0.05);
  EXPECT_EQ(p16.dtype(), DType::bf16);
  EXPECT_EQ(a.state(0, "m").dtype(), DType::f32);
  EXPECT_EQ(p16.to_vector<float>(), kernels::cast(p32, DType::bf16).to_vector<float>());
}

// f64 parameters keep f64 state and agree with the f32 update to f32 precision.
TEST(Optim, adafactor_f64_param_matches_f32) {
  const Tensor init = sp::testing::test_tensor({40, 24}, 3, DType::f64);
  Tensor p64 = sp::testing::leaf(init.clone()),
         p32 = sp::testing::leaf(kernels::cast(init, DType::f32));
  AdafactorOptions o{.min_dim_size_to_factor = 16};
  Adafactor a({p64}, {}, o), b({p32}, {}, o);
  for (int s = 0; s < 3; ++s) {
    const Tensor g = sp::testing::test_tensor({40, 24}, 20 + s, DType::f64);
    p64.set_grad(g.clone());
    p32.set_grad(kernels::cast(g, DType::f32));
    a.step(0.1);
    b.step(0.1);
  }
  EXPECT_EQ(a.state(0, "v_row").dtype(), DType::f64);
  expect_close(p32, p64, "f32 vs f64", 1e-5);
}

// A non-contiguous parameter (a transposed layout) is updated in place like a contiguous one.
TEST(Optim, adafactor_non_contiguous_param) {
  const Tensor init = sp::testing::test_tensor({24, 40}, 5, DType::f32);
  Tensor strided = sp::testing::leaf(sp::testing::non_contiguous(init));
  ASSERT_FALSE(strided.is_contiguous());
  Tensor plain = sp::testing::leaf(init.clone());
  const Tensor g = sp::testing::test_tensor({24, 40}, 6, DType::f32);
  strided.set_grad(g.clone());
  plain.set_grad(g.clone());
  Adafactor a({strided}, {}, {.min_dim_size_to_factor = 16}),
      b({plain}, {}, {.min_dim_size_to_factor = 16});
  a.step(0.1);
  b.step(0.1);
  EXPECT_FALSE(strided.is_contiguous());
  EXPECT_EQ(strided.to_vector<float>(), plain.to_vector<float>());
}

// A large factored matrix takes the parallel path; its result does not depend on the
// thread count (reductions run in fixed blocks).
TEST(Optim, adafactor_thread_count_does_not_change_bits) {
  const Tensor init = sp::testing::test_tensor({700, 200}, 8, DType::f32);
  const Tensor g = sp::testing::test_tensor({700, 200}, 9, DType::f32);
  std::vector<std::vector<float>> results;
  const int threads = omp_get_max_threads();
  for (int t : {1, 2, 3}) {
    omp_set_num_threads(t);
    Tensor p = sp::testing::leaf(init.clone());
    Tensor v = sp::testing::leaf(Tensor::from_vector(std::vector<float>(140000, 0.5f)));
    Adafactor o({p, v}, {}, {.beta1 = 0.9});
    for (int s = 0; s < 2; ++s) {
      p.set_grad(g.clone());
      v.set_grad(g.reshape({140000}).clone());
      o.step(0.01);
    }
    results.push_back(p.to_vector<float>());
    auto vv = v.to_vector<float>();
    results.back().insert(results.back().end(), vv.begin(), vv.end());
  }
  omp_set_num_threads(threads);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// --- the Optimizer base: state, skipping, errors ------------------------------------------

std::unique_ptr<Optimizer> make_by_kind(const std::string& kind, std::vector<Tensor> params,
                                        std::vector<std::string> names) {
  if (kind == "adafactor")
    return std::make_unique<Adafactor>(
        std::move(params), std::move(names),
        AdafactorOptions{.beta1 = 0.9, .weight_decay_rate = 1e-4, .min_dim_size_to_factor = 16});
  if (kind == "adamw") return std::make_unique<AdamW>(std::move(params), std::move(names));
  return std::make_unique<SGD>(std::move(params), std::move(names),
                               SGDOptions{.momentum = 0.9, .nesterov = true});
}

// Stop after 3 updates, save the state (through safetensors bytes), restore it into a new
// optimizer over restored parameters, continue: identical bits to an uninterrupted run.
TEST(Optim, state_dict_round_trip_resumes_exactly) {
  for (const std::string kind : {"adafactor", "adamw", "sgd"}) {
    SCOPED_TRACE(kind);
    const std::vector<Shape> shapes = {{40, 24}, {30}, {3, 20, 18}};
    const std::vector<std::string> names = {"enc.w", "enc.b", "dec.k"};
    auto grads = [&](int step, size_t i) {
      return sp::testing::test_tensor(shapes[i], 50 + 7 * step + i, DType::f32);
    };
    std::vector<Tensor> run;
    for (size_t i = 0; i < shapes.size(); ++i)
      run.push_back(sp::testing::leaf(sp::testing::test_tensor(shapes[i], i + 1, DType::f32)));
    auto first = make_by_kind(kind, run, names);
    first->set_schedule(Schedule::cosine(0.05, 10).with_warmup(2));
    std::vector<std::pair<std::string, Tensor>> saved_params;
    std::vector<uint8_t> saved_state;
    for (int s = 0; s < 5; ++s) {
      if (s == 3) {
        for (size_t i = 0; i < run.size(); ++i)
          saved_params.emplace_back(names[i], run[i].detach().clone());
        saved_state = serialize_safetensors(first->state_dict());
      }
      for (size_t i = 0; i < run.size(); ++i) run[i].set_grad(grads(s, i));
      first->step();
    }
    const SafetensorsFile file = SafetensorsFile::from_bytes(saved_state);
    StateDict restored;
    for (const std::string& key : file.names()) restored.emplace_back(key, file.tensor(key));
    std::vector<Tensor> resumed;
    for (auto& [n, t] : saved_params) resumed.push_back(sp::testing::leaf(t.clone()));
    auto second = make_by_kind(kind, resumed, names);
    second->set_schedule(Schedule::cosine(0.05, 10).with_warmup(2));
    second->load_state_dict(restored);
    EXPECT_EQ(second->step_count(), 3);
    for (int s = 3; s < 5; ++s) {
      for (size_t i = 0; i < resumed.size(); ++i) resumed[i].set_grad(grads(s, i));
      second->step();
    }
    for (size_t i = 0; i < run.size(); ++i)
      EXPECT_EQ(resumed[i].to_vector<float>(), run[i].to_vector<float>()) << names[i];
    const StateDict a = first->state_dict(), b = second->state_dict();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      EXPECT_EQ(a[k].first, b[k].first);
      EXPECT_EQ(a[k].second.to_vector<double>(), b[k].second.to_vector<double>()) << a[k].first;
    }
  }
}

TEST(Optim, state_dict_names_entries_by_parameter_and_slot) {
  Tensor w = sp::testing::leaf(Tensor::zeros({160, 130})),
         p = sp::testing::leaf(Tensor::zeros({100, 64}));
  w.set_grad(Tensor::ones({160, 130}));
  p.set_grad(Tensor::ones({100, 64}));
  Adafactor o({w, p}, {"shared.weight", "prompt"}, {.beta1 = 0.9});
  o.step(0.1);
  std::vector<std::string> keys;
  for (const auto& [k, t] : o.state_dict()) keys.push_back(k + " " + t.shape().str());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"shared.weight.v_row [130]", "shared.weight.v_col [160]",
                                      "shared.weight.m [160, 130]", "prompt.v [100, 64]",
                                      "prompt.m [100, 64]", "step []"}));
}

TEST(Optim, params_without_grads_are_untouched_and_get_no_state) {
  for (const std::string kind : {"adafactor", "adamw", "sgd"}) {
    SCOPED_TRACE(kind);
    Tensor a = sp::testing::leaf(sp::testing::test_tensor({20, 8}, 1, DType::f32));
    Tensor frozen_now = sp::testing::leaf(sp::testing::test_tensor({5}, 2, DType::f32));
    const std::vector<float> before = frozen_now.to_vector<float>();
    auto o = make_by_kind(kind, {a, frozen_now}, {"a", "b"});
    a.set_grad(Tensor::ones({20, 8}));
    o->step(0.1);
    EXPECT_EQ(frozen_now.to_vector<float>(), before);
    EXPECT_TRUE(o->has_state(0));
    EXPECT_FALSE(o->has_state(1));
    for (const auto& [k, t] : o->state_dict()) EXPECT_NE(k.rfind("b.", 0), 0u) << k;
    EXPECT_EQ(o->step_count(), 1);
    o->zero_grad();
    EXPECT_FALSE(a.grad().defined());
    const std::vector<float> a_before = a.to_vector<float>();
    o->step(0.1);  // nothing has a gradient: nothing moves
    EXPECT_EQ(a.to_vector<float>(), a_before);
  }
}

TEST(Optim, load_state_dict_errors_name_the_entry) {
  Tensor w = sp::testing::leaf(Tensor::zeros({40, 24}));
  Adafactor o({w}, {"w"}, {.beta1 = 0.9, .min_dim_size_to_factor = 16});
  const Tensor step = Tensor::scalar(2, DType::i64);
  EXPECT_THROW_MSG(o.load_state_dict({}), "[adafactor] state is missing entry 'step'");
  EXPECT_THROW_MSG(
      o.load_state_dict(
          {{"w.v_row", Tensor::zeros({24})}, {"w.v_col", Tensor::zeros({40})}, {"step", step}}),
      "[adafactor] state is missing entry 'w.m'");
  EXPECT_THROW_MSG(o.load_state_dict({{"w.v_row", Tensor::zeros({40})}, {"step", step}}),
                   "[adafactor] state entry 'w.v_row' has shape [40], expected [24] for parameter "
                   "of shape [40, 24]");
  EXPECT_THROW_MSG(o.load_state_dict({{"w.v", Tensor::zeros({40, 24})}, {"step", step}}),
                   "[adafactor] state has an unknown entry 'w.v'");
  EXPECT_THROW_MSG(o.load_state_dict({{"step", Tensor::scalar(1.5)}}),
                   "[adafactor] state entry 'step' must be one integer");
  EXPECT_THROW_MSG(
      o.load_state_dict({{"w.m", Tensor::zeros({40, 24}, DType::i32)}, {"step", step}}),
      "state entry 'w.m' is [40, 24] i32: expected a floating dtype");
  EXPECT_EQ(o.step_count(), 0);  // a failed load changes nothing
  o.load_state_dict({{"step", step}});
  EXPECT_EQ(o.step_count(), 2);
}

TEST(Optim, bad_configuration_errors) {
  auto p = [] { return std::vector<Tensor>{sp::testing::leaf(Tensor::zeros({3}))}; };
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.decay_rate = 0.0}),
                   "[adafactor] decay_rate must be in (0, 1], got 0");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.decay_rate = 1.5}),
                   "[adafactor] decay_rate must be in (0, 1], got 1.5");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.beta1 = 1.0}),
                   "[adafactor] beta1 must be in [0, 1), got 1");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.step_offset = -1}), "[adafactor] step_offset must be >= 0");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.clipping_threshold = 0.0}),
                   "[adafactor] clipping_threshold must be > 0");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.weight_decay_rate = 1.0}),
                   "[adafactor] weight_decay_rate must be in [0, 1)");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.min_dim_size_to_factor = 0}),
                   "[adafactor] min_dim_size_to_factor must be >= 1");
  EXPECT_THROW_MSG(Adafactor(p(), {}, {.epsilon1 = 0.0}), "[adafactor] epsilon1 must be > 0");
  EXPECT_THROW_MSG(AdamW(p(), {}, {.beta2 = 1.0}), "[adamw] beta2 must be in [0, 1), got 1");
  EXPECT_THROW_MSG(AdamW(p(), {}, {.eps = 0.0}), "[adamw] eps must be > 0");
  EXPECT_THROW_MSG(AdamW(p(), {}, {.weight_decay = -1.0}), "[adamw] weight_decay must be >= 0");
  EXPECT_THROW_MSG(SGD(p(), {}, {.nesterov = true}), "[sgd] nesterov needs momentum > 0");
  EXPECT_THROW_MSG(SGD(p(), {}, {.momentum = -0.5}), "[sgd] momentum must be in [0, 1), got -0.5");

  EXPECT_THROW_MSG(SGD(std::vector<Tensor>{}), "[sgd] got an empty parameter list");
  EXPECT_THROW_MSG(SGD({Tensor::zeros({3})}),
                   "[sgd] parameter '0' must be a leaf that requires grad");
  EXPECT_THROW_MSG(
      SGD({sp::testing::leaf(Tensor::zeros({3})), sp::testing::leaf(Tensor::zeros({2}))},
          {"a", "a"}),
      "[sgd] duplicate parameter name 'a'");
  EXPECT_THROW_MSG(SGD(p(), {"a", "b"}), "[sgd] 2 names for 1 parameters");
  EXPECT_THROW_MSG(SGD(p(), {"step"}), "reserved name 'step'");

  SGD sgd(p());
  EXPECT_THROW_MSG(sgd.step(-0.1), "[sgd] learning rate must be finite and >= 0, got -0.1");
  EXPECT_THROW_MSG(sgd.step(std::nan("")), "[sgd] learning rate must be finite and >= 0, got nan");
  EXPECT_THROW_MSG(sgd.step(), "[sgd] step() without a learning rate needs set_schedule()");
  EXPECT_EQ(sgd.step_count(), 0);
}

// step() takes lr(step_count()) from the schedule: SGD moves x by exactly that.
TEST(Optim, step_uses_the_schedule) {
  Tensor x = sp::testing::leaf(Tensor::from_vector<double>({0.0}));
  SGD o({x});
  o.set_schedule(Schedule::linear(1.0, 4).with_warmup(2));  // 0, 0.5, 1, 0.5, 0
  for (int s = 0; s < 5; ++s) {
    x.set_grad(Tensor::from_vector<double>({1.0}));
    o.step();
  }
  EXPECT_DOUBLE_EQ(x.item(), -2.0);
}

// AdamW's first update by hand: m = 0.1 g, v = 0.001 g^2, bias correction gives
// mhat = g, vhat = g^2, so x -= lr (wd x + g / (|g| + eps)).
TEST(Optim, adamw_first_step_by_hand) {
  Tensor x = sp::testing::leaf(Tensor::from_vector<double>({1.0, -2.0}));
  x.set_grad(Tensor::from_vector<double>({0.5, -4.0}));
  AdamW o({x}, {}, {.eps = 1e-8, .weight_decay = 0.1});
  o.step(0.01);
  sp::testing::expect_values(
      x, {1.0 - 0.01 * (0.1 + 0.5 / (0.5 + 1e-8)), -2.0 - 0.01 * (-0.2 - 4.0 / (4.0 + 1e-8))},
      1e-12);
  sp::testing::expect_values(o.state(0, "m"), {0.05, -0.4}, 1e-12);
  sp::testing::expect_values(o.state(0, "v"), {0.00025, 0.016}, 1e-12);
}

// SGD with momentum 0.5 over g = 1, 1: b = 1, 1.5; nesterov uses g + 0.5 b.
TEST(Optim, sgd_momentum_by_hand) {
  Tensor x = sp::testing::leaf(Tensor::from_vector<double>({0.0})),
         y = sp::testing::leaf(Tensor::from_vector<double>({0.0}));
  SGD heavy({x}, {}, {.momentum = 0.5}), nesterov({y}, {}, {.momentum = 0.5, .nesterov = true});
  for (int s = 0; s < 2; ++s) {
    x.set_grad(Tensor::from_vector<double>({1.0}));
    y.set_grad(Tensor::from_vector<double>({1.0}));
    heavy.step(1.0);
    nesterov.step(1.0);
  }
  EXPECT_DOUBLE_EQ(x.item(), -(1.0 + 1.5));
  EXPECT_DOUBLE_EQ(y.item(), -((1.0 + 0.5) + (1.0 + 0.75)));
}

// --- schedules ---------------------------------------------------------------------

TEST(Schedule, values_at_known_steps) {
  EXPECT_DOUBLE_EQ(Schedule::constant(0.3).lr(0), 0.3);
  EXPECT_DOUBLE_EQ(Schedule::constant(0.3).lr(123456), 0.3);
  const Schedule t5 = Schedule::rsqrt();
  EXPECT_DOUBLE_EQ(t5.lr(0), 0.01);
  EXPECT_DOUBLE_EQ(t5.lr(9999), 0.01);
  EXPECT_DOUBLE_EQ(t5.lr(40000), 0.005);
  EXPECT_DOUBLE_EQ(t5.lr(1000000), 0.001);
  EXPECT_DOUBLE_EQ(Schedule::rsqrt(2.0, 100).with_warmup(100).lr(50), 0.5 * 2.0 / 10.0);
  // Continued from step 1M, as T5's LM adaptation continued T5 1.1's pretraining.
  const Schedule continued = Schedule::rsqrt(1.0, 10000, 1000000);
  EXPECT_DOUBLE_EQ(continued.lr(0), 0.001);
  EXPECT_DOUBLE_EQ(continued.lr(210000), 1.0 / 1100.0);
  EXPECT_DOUBLE_EQ(Schedule::rsqrt(1.0, 10000, 5000).lr(4999), 0.01);  // still below the offset
  EXPECT_EQ(continued.str(), "rsqrt(peak 1, offset 10000, from step 1000000)");
  EXPECT_EQ(t5.str(), "rsqrt(peak 1, offset 10000)");

  const Schedule lin = Schedule::linear(1.0, 100);
  EXPECT_DOUBLE_EQ(lin.lr(0), 1.0);
  EXPECT_DOUBLE_EQ(lin.lr(25), 0.75);
  EXPECT_DOUBLE_EQ(lin.lr(100), 0.0);
  EXPECT_DOUBLE_EQ(lin.lr(200), 0.0);
  const Schedule warm_lin = Schedule::linear(2.0, 110, 0.1).with_warmup(10);
  EXPECT_DOUBLE_EQ(warm_lin.lr(0), 0.0);
  EXPECT_DOUBLE_EQ(warm_lin.lr(5), 1.0);
  EXPECT_DOUBLE_EQ(warm_lin.lr(10), 2.0);
  EXPECT_DOUBLE_EQ(warm_lin.lr(60), 2.0 * (1.0 - 0.9 * 0.5));
  EXPECT_DOUBLE_EQ(warm_lin.lr(110), 0.2);
  EXPECT_DOUBLE_EQ(warm_lin.lr(1000), 0.2);

  const Schedule cos = Schedule::cosine(1.0, 100);
  EXPECT_DOUBLE_EQ(cos.lr(0), 1.0);
  EXPECT_NEAR(cos.lr(25), 0.8535533905932737, 1e-15);
  EXPECT_NEAR(cos.lr(50), 0.5, 1e-15);
  EXPECT_NEAR(cos.lr(100), 0.0, 1e-15);
  const Schedule warm_cos = Schedule::cosine(1.0, 120, 0.1).with_warmup(20, 0.1);
  EXPECT_DOUBLE_EQ(warm_cos.lr(0), 0.1);
  EXPECT_DOUBLE_EQ(warm_cos.lr(10), 0.55);
  EXPECT_NEAR(warm_cos.lr(70), 0.55, 1e-15);
  EXPECT_NEAR(warm_cos.lr(120), 0.1, 1e-15);

  const Schedule steps = Schedule::step_decay(1.0, 10, 0.5);
  EXPECT_DOUBLE_EQ(steps.lr(9), 1.0);
  EXPECT_DOUBLE_EQ(steps.lr(10), 0.5);
  EXPECT_DOUBLE_EQ(steps.lr(25), 0.25);
  EXPECT_DOUBLE_EQ(steps.with_warmup(4).lr(2), 0.5);
  EXPECT_DOUBLE_EQ(steps.with_warmup(4).lr(14), 0.5);  // decay counts from the end of warm-up
  EXPECT_EQ(warm_cos.str(), "cosine(peak 1, total 120, final 0.1) + warmup 20");
}

TEST(Schedule, errors) {
  EXPECT_THROW_MSG(Schedule::constant(-1.0),
                   "[schedule] learning rate must be finite and >= 0, got -1");
  EXPECT_THROW_MSG(Schedule::linear(1.0, 10).with_warmup(10),
                   "[schedule] total_steps (10) must exceed warmup_steps (10)");
  EXPECT_THROW_MSG(Schedule::cosine(1.0, 10, 1.5),
                   "[schedule] final_fraction must be in [0, 1], got 1.5");
  EXPECT_THROW_MSG(Schedule::rsqrt(1.0, 0), "[schedule] rsqrt offset must be >= 1, got 0");
  EXPECT_THROW_MSG(Schedule::rsqrt(1.0, 10, -1),
                   "[schedule] rsqrt start step must be >= 0, got -1");
  EXPECT_THROW_MSG(Schedule::step_decay(1.0, 0, 0.5),
                   "[schedule] step decay every must be >= 1, got 0");
  EXPECT_THROW_MSG(Schedule::step_decay(1.0, 5, 0.0),
                   "[schedule] step decay factor must be in (0, 1], got 0");
  EXPECT_THROW_MSG(Schedule::constant(1.0).with_warmup(-5),
                   "[schedule] warmup_steps must be >= 0, got -5");
  EXPECT_THROW_MSG(Schedule::constant(1.0).lr(-1), "[schedule] step must be >= 0, got -1");
}

// --- clipping and finite checks ------------------------------------------------------------

TEST(Clip, global_norm_and_scaled_grads) {
  Tensor a = sp::testing::leaf(Tensor::zeros({2, 2})),
         b = sp::testing::leaf(Tensor::zeros({1}, DType::bf16));
  Tensor none = sp::testing::leaf(Tensor::zeros({3}));
  a.set_grad(Tensor::from_vector<float>({3, 4, 0, 0}, {2, 2}));
  b.set_grad(Tensor::from_vector<float>({12}, {1}, DType::bf16));
  const std::vector<Tensor> params = {a, b, none};
  EXPECT_DOUBLE_EQ(grad_norm(params), 13.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 20.0), 13.0);  // under the threshold: unchanged
  sp::testing::expect_values(a.grad(), {3, 4, 0, 0}, 0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 6.5), 13.0);
  sp::testing::expect_values(a.grad(), {1.5, 2, 0, 0}, 1e-7);
  sp::testing::expect_values(b.grad(), {6}, 0);
  EXPECT_FALSE(none.grad().defined());
  EXPECT_NEAR(grad_norm(params), 6.5, 1e-6);
  EXPECT_DOUBLE_EQ(grad_norm({none}), 0.0);
  EXPECT_THROW_MSG(clip_grad_norm(params, 0.0),
                   "[clip_grad_norm] max_norm must be > 0 and finite, got 0");
}

// A strided gradient is clipped too (replaced by a contiguous copy); a parameter listed
// twice is scaled once.
TEST(Clip, strided_and_repeated_grads) {
  Tensor a = sp::testing::leaf(Tensor::zeros({2, 3}));
  a.set_grad(sp::testing::non_contiguous(Tensor::from_vector<float>({1, 2, 2, 0, 0, 0}, {2, 3})));
  ASSERT_FALSE(a.grad().is_contiguous());
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, a}, 1.5), 3.0);
  sp::testing::expect_values(a.grad(), {0.5, 1, 1, 0, 0, 0}, 1e-7);
}

TEST(Clip, non_finite_norm_leaves_grads) {
  Tensor a = sp::testing::leaf(Tensor::zeros({2}));
  a.set_grad(Tensor::from_vector<float>({std::numeric_limits<float>::quiet_NaN(), 100.0f}));
  EXPECT_TRUE(std::isnan(clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(a.grad().to_vector<float>()[1], 100.0f);
}

TEST(Clip, finite_check_names_the_parameter) {
  Tensor a = sp::testing::leaf(Tensor::zeros({4})),
         b = sp::testing::leaf(Tensor::zeros({2, 2}, DType::bf16));
  Tensor c = sp::testing::leaf(Tensor::zeros({3}));
  a.set_grad(Tensor::from_vector<float>({1, 2, 3, 4}));
  b.set_grad(Tensor::from_vector<float>(
      {1, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
       std::numeric_limits<float>::quiet_NaN()},
      {2, 2}, DType::bf16));
  FiniteCheck ok = check_finite_grads({a, c});
  EXPECT_TRUE(ok);
  EXPECT_EQ(ok.message(), "");
  FiniteCheck named = check_finite_grads({a, b, c}, {"enc.w", "prompt", "dec.w"});
  EXPECT_FALSE(named);
  EXPECT_EQ(named.index, 1);
  EXPECT_EQ(named.bad_elements, 3);
  EXPECT_EQ(named.message(), "gradient of 'prompt' has 3 non-finite values (NaN or Inf)");
  EXPECT_EQ(check_finite_grads({a, b}).name, "parameter 1");
  EXPECT_THROW_MSG(check_finite_grads({a}, {"x", "y"}),
                   "[check_finite_grads] 2 names for 1 parameters");
}

}  // namespace
}  // namespace sp::optim
