#pragma once
// Helpers for the `gpu` suite: every CUDA op is checked against the CPU backend on the
// same inputs. Each test starts with SP_REQUIRE_CUDA(), so a machine without a usable GPU
// reports the test as skipped, never as passed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda_emulation.h"
#include "tensor/cuda_hooks.h"
#include "test_util.h"

#define SP_REQUIRE_CUDA()                                              \
  do {                                                                \
    if (!::sp::cuda_available()) GTEST_SKIP() << ::sp::cuda_unavailable_reason(); \
  } while (0)

// For tests of the CUDA backend's own behaviour (its argument checks, plan cache, pinned
// staging): also skipped on the host-emulated device (SP_EMULATE_CUDA=1), whose primitives
// are the CPU's.
#define SP_REQUIRE_REAL_CUDA()                                                               \
  do {                                                                                       \
    SP_REQUIRE_CUDA();                                                                       \
    if (::sp::cuda_emulated()) GTEST_SKIP() << "emulated CUDA: this checks the CUDA backend"; \
  } while (0)

namespace sp::testing {

inline Tensor to_gpu(const Tensor& t) { return kernels::to_device(t, Device::cuda(0)); }
inline Tensor to_cpu(const Tensor& t) { return kernels::to_device(t, Device::cpu()); }

// Random values in [shift - scale, shift + scale) of dtype on the CPU; a fresh seed per check.
inline Tensor random_cpu(const Shape& shape, DType dtype, uint64_t seed, double scale = 1.0,
                         double shift = 0.0) {
  return test_tensor(shape, seed, DType::f64, scale, shift).to(dtype);
}

// An output on the GPU filled with NaN (or all-ones bits for integers), so an element the
// kernel never writes fails the comparison.
inline Tensor poisoned_gpu(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype, Device::cuda(0));
  kernels::fill_(t, is_floating(dtype) ? std::numeric_limits<double>::quiet_NaN() : -1.0);
  return t;
}

// A contiguous GPU view of x's shape that starts one element into its storage (so no row
// start is 16-byte aligned), holding x's values: the kernels' unaligned paths.
inline Tensor misaligned_gpu(const Tensor& x) {
  const int64_t n = x.numel();
  Tensor flat = Tensor::empty(Shape{n + 1}, x.dtype());
  kernels::fill_(flat, 0.0);
  Tensor tail = kernels::slice(flat, 0, 1, n + 1);
  kernels::copy_(tail, kernels::view(kernels::contiguous(x), Shape{n}));
  return kernels::view(kernels::slice(to_gpu(flat), 0, 1, n + 1), x.shape());
}

// The raw bytes of a contiguous CPU copy of t.
inline std::vector<unsigned char> bytes_of(const Tensor& t) {
  const Tensor c = kernels::contiguous(to_cpu(t));
  std::vector<unsigned char> b(static_cast<size_t>(c.nbytes()));
  if (!b.empty()) std::memcpy(b.data(), c.data_ptr(), b.size());
  return b;
}

// gpu and cpu hold the same bits (copies, casts, gathers, RNG).
inline void expect_bitwise(const Tensor& gpu, const Tensor& cpu) {
  ASSERT_EQ(gpu.shape(), cpu.shape());
  ASSERT_EQ(gpu.dtype(), cpu.dtype());
  const std::vector<unsigned char> g = bytes_of(gpu), c = bytes_of(kernels::contiguous(cpu));
  ASSERT_EQ(g.size(), c.size());
  const int64_t esize = gpu.element_size();
  for (size_t i = 0; i < g.size(); ++i) {
    if (g[i] != c[i]) {
      ADD_FAILURE() << "first differing element " << static_cast<int64_t>(i) / esize << " of "
                    << describe(gpu) << ": gpu " << to_cpu(gpu).reshape(Shape{gpu.numel()})
                           .to_vector<double>()[i / esize]
                    << ", cpu " << kernels::contiguous(cpu).reshape(Shape{cpu.numel()})
                           .to_vector<double>()[i / esize];
      return;
    }
  }
}

// ||gpu - cpu|| / ||cpu|| <= rel_tol, computed in f64; NaN anywhere fails.
inline void expect_close(const Tensor& gpu, const Tensor& cpu, double rel_tol) {
  ASSERT_EQ(gpu.shape(), cpu.shape()) << describe(gpu) << " vs " << describe(cpu);
  const std::vector<double> g = to_cpu(gpu).to_vector<double>();
  const std::vector<double> c = cpu.to_vector<double>();
  double diff2 = 0, ref2 = 0, max_abs = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(g[i]) != std::isnan(c[i])) {
      ADD_FAILURE() << "NaN mismatch at element " << i << ": gpu " << g[i] << ", cpu " << c[i];
      return;
    }
    if (std::isnan(g[i])) continue;
    if (std::isinf(g[i]) || std::isinf(c[i])) {
      if (g[i] != c[i]) {
        ADD_FAILURE() << "inf mismatch at element " << i << ": gpu " << g[i] << ", cpu " << c[i];
        return;
      }
      continue;
    }
    diff2 += (g[i] - c[i]) * (g[i] - c[i]);
    ref2 += c[i] * c[i];
    max_abs = std::max(max_abs, std::abs(g[i] - c[i]));
  }
  const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  EXPECT_LE(rel, rel_tol) << describe(gpu) << ": relative error " << rel << ", max abs error "
                          << max_abs;
}

// The tolerance for arithmetic in dtype: f32 far under 1e-3, bf16/f16 operands ~1e-2.
inline double arithmetic_tolerance(DType dtype) {
  switch (dtype) {
    case DType::f64: return 1e-12;
    case DType::f32: return 1e-5;
    default: return 1e-2;
  }
}

}  // namespace sp::testing
