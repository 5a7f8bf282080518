// CUDA reductions against the CPU backend: every op and dtype over every dim set of a 4-d
// tensor, sizes with 1s, long rows and columns (the split paths), argmax / argmin ties and
// NaN, empty inputs, determinism and the error for a strided input.
#include <algorithm>
#include <limits>
#include <vector>

#include "gpu/gpu_test_util.h"

namespace sp::testing {
namespace {

bool is_arg(ReduceOp op) { return op == ReduceOp::argmax || op == ReduceOp::argmin; }

DType out_dtype(ReduceOp op, DType in) {
  if (is_arg(op)) return DType::i64;
  if (op == ReduceOp::sum && !is_floating(in)) return DType::i64;
  return in;
}

Shape kept_shape(const Shape& shape, uint32_t mask) {
  Shape kept = shape;
  for (int d = 0; d < shape.size(); ++d)
    if ((mask >> d) & 1u) kept[d] = 1;
  return kept;
}

// Random values of dtype: floats in [shift - 1, shift + 1); integers in [-50, 50); bools
// mixed true and false.
Tensor random_input(const Shape& shape, DType dtype, uint64_t seed, double shift = 0.0) {
  if (dtype == DType::boolean) return random_cpu(shape, DType::i32, seed, 2.0).to(DType::boolean);
  if (!is_floating(dtype)) return random_cpu(shape, dtype, seed, 50.0);
  return random_cpu(shape, dtype, seed, 1.0, shift);
}

// The op on the GPU (poisoned output) and on the CPU from the same input; sums and means
// of floats within tolerance, everything else bitwise.
void check_reduce(ReduceOp op, const Tensor& x, uint32_t mask) {
  SCOPED_TRACE(::testing::Message()
               << reduce_name(op) << " of " << describe(x) << " mask " << mask);
  const DType odt = out_dtype(op, x.dtype());
  const Shape kept = kept_shape(x.shape(), mask);
  Tensor want = Tensor::empty(kept, odt);
  cpu_backend().reduce(op, want, x, mask);
  Tensor got = poisoned_gpu(kept, odt);
  cuda_backend().reduce(op, got, to_gpu(x), mask);
  const bool arithmetic = (op == ReduceOp::sum || op == ReduceOp::mean) && is_floating(odt);
  if (arithmetic) {
    expect_close(got, want, arithmetic_tolerance(odt));
  } else {
    expect_bitwise(got, want);
  }
}

const std::vector<DType> kAllDtypes = {DType::f32, DType::bf16, DType::f16,    DType::f64,
                                       DType::i32, DType::i64,  DType::boolean};

TEST(ReduceGpu, EveryOpDtypeAndDimSetOf4d) {
  SP_REQUIRE_CUDA();
  const Shape shape{3, 5, 7, 9};
  uint64_t seed = 1;
  for (DType dt : kAllDtypes) {
    const Tensor x = random_input(shape, dt, seed++, 0.5);
    for (uint32_t mask = 0; mask < 16; ++mask) {
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
        if (op == ReduceOp::mean && !is_floating(dt)) continue;
        check_reduce(op, x, mask);
      }
    }
    for (int d = 0; d < 4; ++d) {
      check_reduce(ReduceOp::argmax, x, 1u << d);
      check_reduce(ReduceOp::argmin, x, 1u << d);
    }
  }
}

TEST(ReduceGpu, SizeOneDims) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (const Shape& shape : {Shape{1, 4, 1, 33}, Shape{1, 1, 1, 1}, Shape{5, 1, 1, 1}}) {
    for (DType dt : {DType::f32, DType::bf16, DType::i32}) {
      const Tensor x = random_input(shape, dt, seed++, 0.5);
      for (uint32_t mask = 0; mask < 16; ++mask) {
        check_reduce(ReduceOp::sum, x, mask);
        check_reduce(ReduceOp::max, x, mask);
        if (is_floating(dt)) check_reduce(ReduceOp::mean, x, mask);
      }
      for (int d = 0; d < 4; ++d) check_reduce(ReduceOp::argmax, x, 1u << d);
    }
  }
}

// Rows and columns of +0 and -0 mixed: max keeps +0 and min -0 whatever the fold order, so
// the GPU's lanes, warps and splits give the CPU's bits.
TEST(ReduceGpu, SignedZeroTiesMatchTheCpu) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 300;
  for (const Shape& shape : {Shape{37, 4097}, Shape{4097, 37}, Shape{3, 1000, 5}}) {
    for (DType dt : {DType::f32, DType::bf16}) {
      // A negative value times 0 is -0.
      const Tensor x = kernels::binary_scalar(BinaryOp::mul, random_input(shape, dt, seed++), 0.0);
      for (uint32_t mask : {1u, 2u, 3u}) {
        check_reduce(ReduceOp::max, x, mask);
        check_reduce(ReduceOp::min, x, mask);
      }
    }
  }
}

// Reducing only size-1 dims gives the values themselves, bit for bit as the CPU: -0.0 stays
// -0.0 in a sum (a fold from +0 would make it +0.0) and a NaN keeps its payload.
TEST(ReduceGpu, SizeOneDimsKeepNegativeZeroAndNaNBits) {
  SP_REQUIRE_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (DType dt : {DType::f32, DType::bf16}) {
    const Tensor x =
        Tensor::from_vector(std::vector<float>{-0.0f, 1.5f, -nan, 0.0f}, Shape{4, 1}, dt);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max}) {
      SCOPED_TRACE(::testing::Message() << reduce_name(op) << " of " << describe(x));
      Tensor want = Tensor::empty(Shape{4, 1}, dt);
      cpu_backend().reduce(op, want, x, 2u);
      Tensor got = poisoned_gpu(Shape{4, 1}, dt);
      cuda_backend().reduce(op, got, to_gpu(x), 2u);
      expect_bitwise(got, want);
    }
  }
}

// Rows of 1, 3, 1000 and 4097 (warp rows, block rows, the scalar and vector paths) and the
// same as columns.
TEST(ReduceGpu, OddRowsAndColumns) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (int64_t n : {1, 3, 1000, 4097}) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64, DType::i64}) {
      // f16 sums of all 37 x 4097 elements stay under its 65504 maximum.
      const Tensor x = random_input(Shape{37, n}, dt, seed++, dt == DType::f16 ? 0.1 : 0.5);
      for (uint32_t mask : {1u, 2u, 3u}) {
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min}) check_reduce(op, x, mask);
        if (mask != 3u) {
          check_reduce(ReduceOp::argmax, x, mask);
          check_reduce(ReduceOp::argmin, x, mask);
        }
      }
    }
  }
}

// Long rows and columns take the split paths (partial results, then a second pass).
TEST(ReduceGpu, LongRowsAndColumns) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 300;
  for (DType dt : {DType::f32, DType::bf16, DType::f64, DType::i32}) {
    // 1M-element rows: few rows, so each is split over blocks.
    const Tensor rows = random_input(Shape{2, 1 << 20}, dt, seed++, 1.0);
    check_reduce(ReduceOp::sum, rows, 2u);
    check_reduce(ReduceOp::max, rows, 2u);
    check_reduce(ReduceOp::argmax, rows, 2u);
    if (is_floating(dt)) check_reduce(ReduceOp::mean, rows, 2u);
    // A single row of 1M + 3 (scalar path, split).
    const Tensor odd = random_input(Shape{1, (1 << 20) + 3}, dt, seed++, 1.0);
    check_reduce(ReduceOp::sum, odd, 2u);
    check_reduce(ReduceOp::min, odd, 2u);
    check_reduce(ReduceOp::argmin, odd, 2u);
    // 1M rows of 3 columns: too few columns, so the rows are split.
    const Tensor cols = random_input(Shape{1 << 20, 3}, dt, seed++, 1.0);
    check_reduce(ReduceOp::sum, cols, 1u);
    check_reduce(ReduceOp::max, cols, 1u);
    check_reduce(ReduceOp::argmax, cols, 1u);
    // 100000 rows of 64 columns: 16-byte column loads, rows split.
    const Tensor narrow = random_input(Shape{100000, 64}, dt, seed++, 1.0);
    check_reduce(ReduceOp::sum, narrow, 1u);
    check_reduce(ReduceOp::min, narrow, 1u);
    // A full reduction of 4M elements, and a middle dim.
    const Tensor big = random_input(Shape{4, 1000, 1025}, dt, seed++, 1.0);
    check_reduce(ReduceOp::sum, big, 7u);
    check_reduce(ReduceOp::sum, big, 2u);
    check_reduce(ReduceOp::min, big, 5u);
  }
}

Tensor from_floats(const std::vector<double>& v, const Shape& shape, DType dt) {
  return Tensor::from_vector(v, shape, DType::f64).to(dt);
}

// Ties resolve to the first index; a NaN wins over every number and the first NaN wins;
// positions past the first threads' elements exercise the cross-thread combine.
TEST(ReduceGpu, ArgTiesAndNan) {
  SP_REQUIRE_CUDA();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t n = 5000;
  std::vector<std::vector<double>> rows;
  rows.push_back(std::vector<double>(n, 1.0));  // all equal: index 0
  {
    std::vector<double> r(n, 0.0);
    r[300] = 7;
    r[4000] = 7;
    r[3000] = -7;
    r[4999] = -7;
    rows.push_back(r);  // max first at 300, min first at 3000
  }
  {
    std::vector<double> r(n, 0.0);
    r[700] = nan;
    r[4500] = nan;
    r[10] = inf;
    rows.push_back(r);  // NaN first at 700 for both
  }
  {
    std::vector<double> r(n, -inf);
    r[n - 1] = inf;
    r[n - 2] = -0.0;
    rows.push_back(r);
  }
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  const int64_t m = static_cast<int64_t>(rows.size());
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const Tensor x = from_floats(flat, Shape{m, n}, dt);
    check_reduce(ReduceOp::argmax, x, 2u);
    check_reduce(ReduceOp::argmin, x, 2u);
    // The same as columns: [n, m].
    const Tensor xt = kernels::contiguous(kernels::transpose(x, 0, 1));
    check_reduce(ReduceOp::argmax, xt, 1u);
    check_reduce(ReduceOp::argmin, xt, 1u);
    // max / min propagate NaN; sums of NaN are NaN.
    check_reduce(ReduceOp::max, x, 2u);
    check_reduce(ReduceOp::min, xt, 1u);
  }
  // Integer ties.
  std::vector<double> ints(3 * 600, 5.0);
  ints[600 + 599] = 9;
  ints[600 + 257] = 9;
  ints[1200 + 511] = -3;
  for (DType dt : {DType::i32, DType::i64}) {
    const Tensor x = from_floats(ints, Shape{3, 600}, dt);
    check_reduce(ReduceOp::argmax, x, 2u);
    check_reduce(ReduceOp::argmin, x, 2u);
  }
}

TEST(ReduceGpu, EmptyInputs) {
  SP_REQUIRE_CUDA();
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean}) {
    // [0, 5] over dim 0 -> [1, 5] of 0 (sum) or NaN (mean), as on the CPU.
    const Tensor x = Tensor::empty(Shape{0, 5}, DType::f32);
    Tensor want = Tensor::empty(Shape{1, 5}, DType::f32);
    cpu_backend().reduce(op, want, x, 1u);
    Tensor got = poisoned_gpu(Shape{1, 5}, DType::f32);
    cuda_backend().reduce(op, got, to_gpu(x), 1u);
    expect_close(got, want, 0.0);
    // [0, 5] over dim 1 -> [0, 1]: nothing to write.
    Tensor none = Tensor::empty(Shape{0, 1}, DType::f32, Device::cuda(0));
    cuda_backend().reduce(op, none, to_gpu(x), 2u);
  }
}

TEST(ReduceGpu, Deterministic) {
  SP_REQUIRE_CUDA();
  const Tensor x = to_gpu(random_input(Shape{3, 1 << 19}, DType::f32, 400));
  const Tensor y = to_gpu(random_input(Shape{1 << 16, 40}, DType::bf16, 401));
  Tensor a = poisoned_gpu(Shape{3, 1}, DType::f32), b = poisoned_gpu(Shape{3, 1}, DType::f32);
  cuda_backend().reduce(ReduceOp::sum, a, x, 2u);
  cuda_backend().reduce(ReduceOp::sum, b, x, 2u);
  expect_bitwise(a, to_cpu(b));
  Tensor c = poisoned_gpu(Shape{1, 40}, DType::bf16), d = poisoned_gpu(Shape{1, 40}, DType::bf16);
  cuda_backend().reduce(ReduceOp::mean, c, y, 1u);
  cuda_backend().reduce(ReduceOp::mean, d, y, 1u);
  expect_bitwise(c, to_cpu(d));
}

// A view starting one element into its buffer defeats the 16-byte loads: the scalar
// paths must give the CPU's values and the same bits as the aligned vector paths.
TEST(ReduceGpu, UnalignedViewsMatchAligned) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 450;
  for (DType dt : {DType::f32, DType::bf16, DType::f64}) {
    for (const Shape& shape : {Shape{37, 1000}, Shape{3, 100000}, Shape{50000, 64}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << shape);
      const Tensor x = random_input(shape, dt, seed++, 0.5);
      const Tensor flat = random_input(Shape{shape.numel() + 1}, dt, seed++);
      const Tensor aligned = to_gpu(x);
      // Copy x's values into elements [1, numel] of buffer through a host round trip.
      std::vector<double> values = flat.to_vector<double>();
      const std::vector<double> xv = x.to_vector<double>();
      std::copy(xv.begin(), xv.end(), values.begin() + 1);
      const Tensor buffer =
          to_gpu(Tensor::from_vector(values, Shape{shape.numel() + 1}, DType::f64).to(dt));
      const Tensor view = buffer.as_strided(shape, Shape{shape[1], 1}, 1);
      ASSERT_TRUE(view.is_contiguous());
      for (uint32_t mask : {1u, 2u}) {
        check_reduce(ReduceOp::sum, x, mask);
        const Shape kept = kept_shape(shape, mask);
        Tensor want = Tensor::empty(kept, dt);
        cpu_backend().reduce(ReduceOp::sum, want, x, mask);
        Tensor from_view = poisoned_gpu(kept, dt);
        cuda_backend().reduce(ReduceOp::sum, from_view, view, mask);
        expect_close(from_view, want, arithmetic_tolerance(dt));
        Tensor from_aligned = poisoned_gpu(kept, dt);
        cuda_backend().reduce(ReduceOp::sum, from_aligned, aligned, mask);
        expect_bitwise(from_view, to_cpu(from_aligned));
      }
    }
  }
}

// Integer and bool inputs whose rows and columns allow 16-byte loads: bool's 16-element
// packs (rows, and columns with their 32 KB of int64 partials in shared memory), which the
// shapes above never reach, and i32 / i64 packs; unaligned views too, which must give the
// CPU's values and the aligned path's bits. Long rows and tall columns take the split paths.
TEST(ReduceGpu, IntegerAndBoolVectorPaths) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 700;
  for (DType dt : {DType::boolean, DType::i32, DType::i64}) {
    for (const Shape& shape : {Shape{40, 64}, Shape{3, 40000}, Shape{50000, 32}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << shape);
      const Tensor x = random_input(shape, dt, seed++);
      const Tensor view = misaligned_gpu(x);
      ASSERT_TRUE(view.is_contiguous());
      for (uint32_t mask : {1u, 2u}) {
        for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::argmax}) {
          check_reduce(op, x, mask);
          const Shape kept = kept_shape(shape, mask);
          const DType odt = out_dtype(op, dt);
          Tensor want = Tensor::empty(kept, odt);
          cpu_backend().reduce(op, want, x, mask);
          Tensor from_view = poisoned_gpu(kept, odt);
          cuda_backend().reduce(op, from_view, view, mask);
          expect_bitwise(from_view, want);
        }
      }
    }
  }
}

// Through the dispatch layer: keepdim off, negative dims, and a float reduction of all dims.
TEST(ReduceGpu, DispatchLayer) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_input(Shape{6, 10, 33}, DType::f32, 500, 0.5);
  const Tensor xg = to_gpu(x);
  expect_close(kernels::reduce(ReduceOp::sum, xg, {-1}, false),
               kernels::reduce(ReduceOp::sum, x, {-1}, false), 1e-5);
  expect_close(kernels::reduce(ReduceOp::mean, xg, {}, false),
               kernels::reduce(ReduceOp::mean, x, {}, false), 1e-5);
  expect_bitwise(kernels::reduce(ReduceOp::argmax, xg, {1}, false),
                 kernels::reduce(ReduceOp::argmax, x, {1}, false));
}

TEST(ReduceGpu, StridedInputIsAnError) {
  SP_REQUIRE_CUDA();
  const Tensor x = to_gpu(random_input(Shape{4, 6}, DType::f32, 600));
  const Tensor xt = kernels::transpose(x, 0, 1);
  Tensor out = poisoned_gpu(Shape{6, 1}, DType::f32);
  try {
    cuda_backend().reduce(ReduceOp::sum, out, xt, 2u);
    ADD_FAILURE() << "expected an error for a strided input";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[sum]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("contiguous"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sp::testing
