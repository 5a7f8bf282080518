// CUDA softmax / log-softmax, forward and backward, against the CPU backend: every float
// dtype, rows from 1 to 140000 columns (the warp-per-row, cluster and block-per-row
// kernels, with and without 16-byte vectors), masked rows, misaligned views, rank 0 and
// errors; and the fused softmax(scores + bias).
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.h"
#include "tensor/kernels.h"

namespace sp::testing {
namespace {

const std::vector<DType> kFloatDtypes = {DType::f32, DType::bf16, DType::f16, DType::f64};
// Warp rows up to 1024 columns; row-resident clusters of 1 to 8 blocks, a block holding
// 8192 f32 / 16384 16-bit columns forward and half that backward (f32 forward: 1 block at
// 4096 and 6000, 2 at 12000, 4 at 32128, 8 at 60000; bf16 forward: 1, 1, 1, 2, 4, and 8 at
// 100000; f32 backward: 1, 2, 4, 8; bf16 backward: 1, 1, 2, 4, 8); streaming blocks past
// them (140000; backward also f32 from 60000 and bf16 at 100000), for f64, and for
// lengths off the vector width (4097, 1025).
const std::vector<Shape> kShapes = {
    Shape{1, 1},      Shape{3, 7},     Shape{64, 1000},  Shape{37, 4097}, Shape{8, 32128},
    Shape{4096, 768}, Shape{5, 3, 64}, Shape{2, 1025},   Shape{6, 4096},  Shape{4, 6000},
    Shape{5, 12000},  Shape{3, 60000}, Shape{2, 100000}, Shape{2, 140000}};

// The CUDA backend's forward on xg into a poisoned output.
Tensor gpu_softmax(const Tensor& xg, bool log) {
  Tensor out = poisoned_gpu(xg.shape(), xg.dtype());
  cuda_backend().softmax(out, xg, log);
  return out;
}

Tensor cpu_softmax(const Tensor& x, bool log) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  cpu_backend().softmax(out, kernels::contiguous(x), log);
  return out;
}

Tensor gpu_softmax_backward(const Tensor& dyg, const Tensor& yg, bool log) {
  Tensor dx = poisoned_gpu(yg.shape(), yg.dtype());
  cuda_backend().softmax_backward(dx, dyg, yg, log);
  return dx;
}

Tensor cpu_softmax_backward(const Tensor& dy, const Tensor& y, bool log) {
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  cpu_backend().softmax_backward(dx, kernels::contiguous(dy), kernels::contiguous(y), log);
  return dx;
}

TEST(GpuSoftmax, ForwardMatchesCpuForEveryDtypeAndShape) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (DType dt : kFloatDtypes) {
    for (const Shape& shape : kShapes) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(str_cat(dtype_name(dt), " ", shape, log ? " log" : ""));
        const Tensor x = random_cpu(shape, dt, ++seed, 4.0);
        expect_close(gpu_softmax(to_gpu(x), log), cpu_softmax(x, log), arithmetic_tolerance(dt));
      }
    }
  }
}

TEST(GpuSoftmax, BackwardMatchesCpuForEveryDtypeAndShape) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (DType dt : kFloatDtypes) {
    for (const Shape& shape : kShapes) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(str_cat(dtype_name(dt), " ", shape, log ? " log" : ""));
        const Tensor y = cpu_softmax(random_cpu(shape, dt, ++seed, 4.0), log);
        const Tensor dy = random_cpu(shape, dt, ++seed);
        expect_close(gpu_softmax_backward(to_gpu(dy), to_gpu(y), log),
                     cpu_softmax_backward(dy, y, log), arithmetic_tolerance(dt));
      }
    }
  }
}

// add_softmax on the device (the fused warp kernel; rows past 1024 columns add, then take
// the softmax) against the CPU's fused kernel and, bit for bit, against the device's own
// add then softmax: T5's bias layouts (a position bias broadcast over the batch, a padding
// mask broadcast over heads and queries, a full bias), rows with and without 16-byte
// vectors, and views that start off a 16-byte boundary.
TEST(GpuSoftmax, AddSoftmaxMatchesCpuAndAddThenSoftmax) {
  SP_REQUIRE_CUDA();
  struct Case {
    Shape x, bias;
  };
  const std::vector<Case> cases = {
      {{4, 6, 9, 356}, {1, 6, 9, 356}},  // position bias
      {{4, 6, 9, 356}, {4, 1, 1, 356}},  // padding mask
      {{3, 5, 355}, {3, 5, 355}},        // full bias, odd rows: scalar loads
      {{2, 3, 64}, {64}},                // one row broadcast everywhere
      {{7, 1}, {7, 1}},                  // one column
      {{2, 3, 1500}, {1, 3, 1500}},      // past a warp: add then softmax
  };
  uint64_t seed = 500;
  for (DType dt : kFloatDtypes) {
    for (const Case& c : cases) {
      SCOPED_TRACE(str_cat(dtype_name(dt), " x ", c.x, " bias ", c.bias));
      const Tensor x = random_cpu(c.x, dt, ++seed, 4.0);
      const Tensor bias = random_cpu(c.bias, dt, ++seed, 4.0);
      const Tensor xg = to_gpu(x), bg = to_gpu(bias);
      const Tensor fused = kernels::add_softmax(xg, bg);
      expect_close(fused, kernels::add_softmax(x, bias), arithmetic_tolerance(dt));
      expect_bitwise(fused,
                     to_cpu(kernels::softmax(kernels::binary(BinaryOp::add, xg, bg), -1, false)));
    }
    // Scores and bias one element into their buffers, and bias rows 65 elements apart (off
    // 16-byte boundaries): read element by element, still the same bits.
    SCOPED_TRACE(str_cat(dtype_name(dt), " misaligned"));
    const Tensor x = random_cpu({4 * 6 * 9 * 64 + 1}, dt, ++seed, 4.0);
    const Tensor bias = random_cpu({6 * 9 * 64 + 1}, dt, ++seed, 4.0);
    const Tensor xg = kernels::slice(to_gpu(x), 0, 1, x.numel()).reshape(Shape{4, 6, 9, 64});
    const Tensor bg = kernels::slice(to_gpu(bias), 0, 1, bias.numel()).reshape(Shape{1, 6, 9, 64});
    expect_bitwise(kernels::add_softmax(xg, bg),
                   to_cpu(kernels::softmax(kernels::binary(BinaryOp::add, xg, bg), -1, false)));
    const Tensor xa = to_gpu(random_cpu({4, 6, 9, 64}, dt, ++seed, 4.0));
    const Tensor spaced =
        kernels::slice(to_gpu(random_cpu({6, 9, 65}, dt, ++seed, 4.0)), -1, 0, 64);
    expect_bitwise(kernels::add_softmax(xa, spaced),
                   to_cpu(kernels::softmax(kernels::binary(BinaryOp::add, xa, spaced), -1, false)));
  }
}

// Rows of all -inf give zeros (softmax) and -inf (log-softmax) as on the CPU, and a
// partly masked row ignores its -inf entries, in the warp, cluster and block kernels (with
// 16-byte vectors at 4096 and 32128 columns, without at 4097); at 32128 the blocks that
// hold the masked first half of row 4 see only -inf.
TEST(GpuSoftmax, MaskedRowsMatchCpu) {
  SP_REQUIRE_CUDA();
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t d : {5, 64, 768, 4096, 4097, 32128}) {
    const int64_t rows = 5;
    std::vector<double> v =
        random_cpu(Shape{rows, d}, DType::f64, 300 + d, 3.0).to_vector<double>();
    for (int64_t j = 0; j < d; ++j) v[1 * d + j] = -inf;     // fully masked
    for (int64_t j = 0; j < d; j += 2) v[2 * d + j] = -inf;  // half masked
    v[3 * d + d - 1] = -inf;                                 // last entry masked
    for (int64_t j = 0; j < d / 2; ++j) v[4 * d + j] = -inf;  // first half masked
    for (DType dt : kFloatDtypes) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(str_cat(dtype_name(dt), " d=", d, log ? " log" : ""));
        const Tensor x = Tensor::from_vector(v, Shape{rows, d}, dt);
        const Tensor g = gpu_softmax(to_gpu(x), log);
        const Tensor c = cpu_softmax(x, log);
        expect_close(g, c, arithmetic_tolerance(dt));
        const std::vector<double> row1 = to_cpu(kernels::select(g, 0, 1)).to_vector<double>();
        for (double e : row1) ASSERT_EQ(e, log ? -inf : 0.0);
      }
    }
  }
}

// Views that start at an odd element take the scalar path and still compute the same.
TEST(GpuSoftmax, MisalignedViewsMatchCpu) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 400;
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& shape : {Shape{6, 64}, Shape{9, 1000}, Shape{3, 4097}, Shape{2, 32128}}) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(str_cat(dtype_name(dt), " ", shape, log ? " log" : ""));
        const Tensor x = random_cpu(shape, dt, ++seed, 4.0);
        const Tensor xg = misaligned_gpu(x);
        ASSERT_TRUE(xg.is_contiguous());
        ASSERT_EQ(xg.offset(), 1);
        expect_close(gpu_softmax(xg, log), cpu_softmax(x, log), arithmetic_tolerance(dt));
        const Tensor dy = random_cpu(shape, dt, ++seed);
        const Tensor y = cpu_softmax(x, log);
        expect_close(gpu_softmax_backward(misaligned_gpu(dy), misaligned_gpu(y), log),
                     cpu_softmax_backward(dy, y, log), arithmetic_tolerance(dt));
      }
    }
  }
}

// Through the dispatching layer: the last dim (others need a strided GPU copy, tested with
// copy), a scalar, an empty tensor.
TEST(GpuSoftmax, KernelsApiOnLastDimScalarsAndEmpty) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_cpu(Shape{4, 33, 6}, DType::f32, 500, 3.0);
  for (int64_t dim : {-1, 2}) {
    expect_close(kernels::softmax(to_gpu(x), dim, false), kernels::softmax(x, dim, false), 1e-5);
    expect_close(kernels::softmax(to_gpu(x), dim, true), kernels::softmax(x, dim, true), 1e-5);
  }
  const Tensor s = Tensor::scalar(2.5, DType::f32);
  expect_close(kernels::softmax(to_gpu(s), -1, false), kernels::softmax(s, -1, false), 0);
  expect_close(kernels::softmax(to_gpu(s), 0, true), kernels::softmax(s, 0, true), 0);
  const Tensor e = Tensor::empty(Shape{0, 7}, DType::f32, Device::cuda(0));
  EXPECT_EQ(kernels::softmax(e, -1, false).numel(), 0);
  const Tensor dy = random_cpu(Shape{4, 33, 6}, DType::f32, 501);
  const Tensor y = kernels::softmax(x, 2, true);
  expect_close(kernels::softmax_backward(to_gpu(dy), to_gpu(y), 2, true),
               kernels::softmax_backward(dy, y, 2, true), 1e-5);
}

TEST(GpuSoftmax, RejectsNonFloatDtypesNamingTheOp) {
  SP_REQUIRE_CUDA();
  const Tensor xi = to_gpu(Tensor::arange(6, DType::i32).reshape(Shape{2, 3}));
  Tensor out = Tensor::empty(Shape{2, 3}, DType::i32, Device::cuda(0));
  EXPECT_THROW_MSG(cuda_backend().softmax(out, xi, true), "[log_softmax] unsupported dtype i32");
}

}  // namespace
}  // namespace sp::testing
