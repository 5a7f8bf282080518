// The vectorised bf16 conversions give exactly what bf16::from_float / to_float give.
#include "tensor/cpu/bf16_simd.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tensor/kernels.h"
#include "test_util.h"

namespace sp::cpu {
namespace {

// Every f32 whose top half is any of the 65536 patterns, with low halves that hit each
// rounding case: exact, just below / at / above the halfway point (ties to even both
// ways), the largest, and NaN payloads only in the low bits.
std::vector<float> store_inputs() {
  const uint32_t lows[] = {0x0000, 0x0001, 0x4000, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff};
  std::vector<float> v;
  v.reserve(65536 * std::size(lows));
  for (uint32_t hi = 0; hi < 65536; ++hi)
    for (uint32_t lo : lows) v.push_back(std::bit_cast<float>((hi << 16) | lo));
  return v;
}

TEST(Bf16Simd, store_matches_from_float_bit_for_bit) {
  const std::vector<float> in = store_inputs();
  // Odd length: the vector body and the scalar tail both run.
  const int64_t n = static_cast<int64_t>(in.size()) - 3;
  std::vector<bf16> out(in.size());
  f32_to_bf16(in.data(), out.data(), n);
  int64_t denormals = 0, nans = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t want = bf16::from_float(in[i]);
    const uint32_t u = std::bit_cast<uint32_t>(in[i]);
    ASSERT_EQ(out[i].bits, want) << "row conversion of 0x" << std::hex << u;
    ASSERT_EQ(f32_to_bf16(in[i]).bits, want) << "scalar conversion of 0x" << std::hex << u;
    denormals += (u & 0x7f800000u) == 0 && (u & 0x7fffffu) != 0;
    nans += (u & 0x7fffffffu) > 0x7f800000u;
  }
  // The cases the hardware instruction handles differently are covered.
  EXPECT_GT(denormals, 2000);
  EXPECT_GT(nans, 2000);
  EXPECT_EQ(out[n].bits, 0);  // nothing written past n
}

TEST(Bf16Simd, load_matches_to_float_for_all_patterns) {
  std::vector<bf16> in(65536 + 5);
  for (size_t i = 0; i < in.size(); ++i) in[i].bits = static_cast<uint16_t>(i);
  std::vector<float> out(in.size());
  bf16_to_f32(in.data(), out.data(), static_cast<int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    const uint32_t want = std::bit_cast<uint32_t>(bf16::to_float(in[i].bits));
    ASSERT_EQ(std::bit_cast<uint32_t>(out[i]), want) << "pattern " << i;
    ASSERT_EQ(std::bit_cast<uint32_t>(bf16_to_f32(in[i])), want) << "pattern " << i;
  }
}

// The bf16 rows of softmax, log-softmax and cross-entropy (vectorised passes) against a
// double reference on the same bf16 values, at lengths around the 16- and 32-lane blocks.
TEST(Bf16Simd, softmax_and_cross_entropy_rows) {
  for (int64_t d : {1, 15, 16, 17, 31, 32, 33, 47, 1000, 32128}) {
    SCOPED_TRACE(d);
    const Tensor x = sp::testing::test_tensor({2, d}, 23, DType::bf16, 6.0);
    const std::vector<double> v = x.to_vector<double>();
    std::vector<double> want(v.size()), want_log(v.size()), lse(2);
    for (int r = 0; r < 2; ++r) {
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < d; ++i) m = std::max(m, v[r * d + i]);
      for (int64_t i = 0; i < d; ++i) s += std::exp(v[r * d + i] - m);
      lse[r] = m + std::log(s);
      for (int64_t i = 0; i < d; ++i) {
        want[r * d + i] = std::exp(v[r * d + i] - m) / s;
        want_log[r * d + i] = v[r * d + i] - lse[r];
      }
    }
    // One bf16 rounding of an f32-accurate value: 2^-8 relative.
    const std::vector<double> got = kernels::softmax(x, -1, false).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 4e-3 * want[i]) << i;
    const std::vector<double> got_log = kernels::softmax(x, -1, true).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got_log[i], want_log[i], 4e-3 * std::abs(want_log[i]) + 1e-6) << i;

    const Tensor t = Tensor::from_vector<int64_t>({0, d - 1}, Shape{2});
    kernels::CrossEntropyResult ce = kernels::cross_entropy(x, t, -100, 0.0);
    sp::testing::expect_values(ce.lse, lse, 2e-6);
    const Tensor dloss = Tensor::from_vector<float>({1.0f, 0.5f}, Shape{2});
    const std::vector<double> g =
        kernels::cross_entropy_backward(dloss, x, t, ce.lse, -100, 0.0).to_vector<double>();
    for (int r = 0; r < 2; ++r)
      for (int64_t i = 0; i < d; ++i) {
        const double p = want[r * d + i] * (r == 0 ? 1.0 : 0.5);
        const double w = p - (i == (r == 0 ? 0 : d - 1) ? (r == 0 ? 1.0 : 0.5) : 0.0);
        ASSERT_NEAR(g[r * d + i], w, 4e-3 * std::abs(w) + 1e-6) << r << ", " << i;
      }
  }
}

// bf16 RMS norm rows (vectorised) against the T5 formula in double: n = x * rstd rounded
// to bf16, times the bf16 weight, rounded to bf16.
TEST(Bf16Simd, rms_norm_rows) {
  for (int64_t d : {16, 33, 512}) {
    SCOPED_TRACE(d);
    const Tensor x = sp::testing::test_tensor({3, d}, 29, DType::bf16, 2.0);
    const Tensor w = sp::testing::test_tensor({d}, 31, DType::bf16, 0.5, 1.0);
    kernels::RmsNormResult r = kernels::rms_norm(x, w, 1e-6);
    ASSERT_EQ(r.out.dtype(), DType::bf16);
    const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
    const std::vector<double> got = r.out.to_vector<double>();
    for (int64_t row = 0; row < 3; ++row) {
      double ss = 0;
      for (int64_t j = 0; j < d; ++j) ss += xv[row * d + j] * xv[row * d + j];
      const double rs = 1 / std::sqrt(ss / static_cast<double>(d) + 1e-6);
      for (int64_t j = 0; j < d; ++j) {
        const double n = bf16::to_float(bf16::from_float(static_cast<float>(xv[row * d + j] * rs)));
        const double want = n * wv[j];
        ASSERT_NEAR(got[row * d + j], want, 8e-3 * std::abs(want) + 1e-6) << row << ", " << j;
      }
    }
    // Backward: dx = r dn - x r^3 sum(dn x) / D with dn = dy w; dw = sum over rows of
    // dy bf16(x r). Both gradients, then dx alone and dw alone (the other paths).
    const Tensor dy = sp::testing::test_tensor({3, d}, 37, DType::bf16, 1.0);
    const std::vector<double> gv = dy.to_vector<double>(), rv = r.rstd.to_vector<double>();
    std::vector<double> want_dx(3 * d), want_dw(d, 0.0);
    for (int64_t row = 0; row < 3; ++row) {
      const double rs = rv[row];
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += gv[row * d + j] * wv[j] * xv[row * d + j];
      for (int64_t j = 0; j < d; ++j) {
        const double x0 = xv[row * d + j];
        want_dx[row * d + j] = rs * gv[row * d + j] * wv[j] - x0 * rs * rs * rs * dot / d;
        want_dw[j] +=
            gv[row * d + j] * bf16::to_float(bf16::from_float(static_cast<float>(x0 * rs)));
      }
    }
    for (int which = 0; which < 3; ++which) {
      kernels::RmsNormGrads g =
          kernels::rms_norm_backward(dy, x, w, r.rstd, which != 2, which != 1);
      if (which != 2) {
        const std::vector<double> dx = g.dx.to_vector<double>();
        for (size_t i = 0; i < dx.size(); ++i)
          ASSERT_NEAR(dx[i], want_dx[i], 8e-3 * std::abs(want_dx[i]) + 2e-3)
              << which << " dx " << i;
      }
      if (which != 1) {
        const std::vector<double> dw = g.dweight.to_vector<double>();
        for (size_t i = 0; i < dw.size(); ++i)
          ASSERT_NEAR(dw[i], want_dw[i], 8e-3 * std::abs(want_dw[i]) + 2e-3)
              << which << " dw " << i;
      }
    }
  }
}

// Masked rows give zeros (-inf for log-softmax), a NaN anywhere makes its row NaN, in
// bf16 and f32 alike.
TEST(Bf16Simd, masked_and_nan_rows) {
  const float inf = std::numeric_limits<float>::infinity();
  for (DType dt : {DType::f32, DType::bf16}) {
    for (int64_t d : {5, 40}) {
      std::vector<float> v(static_cast<size_t>(3 * d), -inf);
      for (int64_t i = 0; i < d; ++i) {
        v[d + i] = static_cast<float>(i % 7) - 3.0f;
        v[2 * d + i] = static_cast<float>(i % 5);
      }
      v[2 * d + d / 2] = std::numeric_limits<float>::quiet_NaN();
      const Tensor x = Tensor::from_vector(v, Shape{3, d}, dt);
      const std::vector<double> y = kernels::softmax(x, -1, false).to_vector<double>();
      const std::vector<double> l = kernels::softmax(x, -1, true).to_vector<double>();
      for (int64_t i = 0; i < d; ++i) {
        EXPECT_EQ(y[i], 0.0);
        EXPECT_EQ(l[i], -inf);
        EXPECT_TRUE(std::isfinite(y[d + i]));
        EXPECT_TRUE(std::isnan(y[2 * d + i])) << dtype_name(dt) << " " << d << " " << i;
        EXPECT_TRUE(std::isnan(l[2 * d + i])) << dtype_name(dt) << " " << d << " " << i;
      }
      const Tensor t = Tensor::from_vector<int64_t>({-100, 1, 1}, Shape{3});
      const std::vector<double> loss =
          kernels::cross_entropy(x, t, -100, 0.0).loss.to_vector<double>();
      EXPECT_TRUE(std::isfinite(loss[1]));
      EXPECT_TRUE(std::isnan(loss[2]));
    }
  }
}

}  // namespace
}  // namespace sp::cpu
