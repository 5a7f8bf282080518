#pragma once
// Helpers shared by the test suites.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace sp::testing {

// Deterministic values in [-1, 1) from a tiny LCG: tests stay independent of the engine's RNG.
inline std::vector<double> lcg_values(int64_t n, uint64_t seed) {
  std::vector<double> v(n);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<double>(s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  }
  return v;
}

// A tensor of shape with values lcg_values * scale + shift, in dtype.
inline Tensor test_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::f64,
                          double scale = 1.0, double shift = 0.0) {
  std::vector<double> v = lcg_values(shape.numel(), seed);
  for (double& x : v) x = x * scale + shift;
  return Tensor::from_vector(v, shape, dtype);
}

// The same values as x in a layout that is not contiguous (the last two dims transposed
// in memory), as a fresh leaf.
inline Tensor non_contiguous(const Tensor& x) {
  if (x.dim() < 2) {
    // Every other element of a buffer twice as long.
    Tensor wide = Tensor::zeros(Shape{x.numel() * 2}, x.dtype());
    Tensor view = kernels::slice(wide, 0, 0, x.numel() * 2, 2);
    kernels::copy_(view, x.reshape(Shape{x.numel()}));
    return kernels::view(view, x.shape().empty() ? Shape{} : x.shape());
  }
  Tensor t = kernels::contiguous(kernels::transpose(x.detach(), -1, -2));
  return kernels::transpose(t, -1, -2);
}

inline Tensor leaf(Tensor t) {
  t.requires_grad_(true);
  return t;
}

// Asserts every element of t is within tol of the expected value.
inline void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  const std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size()) << "tensor " << describe(t);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], tol * std::max(1.0, std::abs(expected[i]))) << "at element " << i;
}

}  // namespace sp::testing

// EXPECT_THROW_MSG(statement, "substring"): statement throws sp::Error containing substring.
#define EXPECT_THROW_MSG(statement, substring)                                          \
  do {                                                                                 \
    try {                                                                              \
      statement;                                                                       \
      ADD_FAILURE() << "expected sp::Error containing \"" << (substring) << "\"";      \
    } catch (const ::sp::Error& e) {                                                   \
      EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)              \
          << "message was: " << e.what();                                              \
    }                                                                                  \
  } while (0)

// EXPECT_GRADCHECK(fn, inputs[, options]): fn's backward matches central differences.
#define EXPECT_GRADCHECK(fn, ...)                                              \
  do {                                                                        \
    const ::sp::GradcheckResult gc_ = ::sp::gradcheck(fn, __VA_ARGS__);       \
    EXPECT_TRUE(gc_.ok) << "max abs error " << gc_.max_abs_error << "\n" << gc_.message; \
  } while (0)
