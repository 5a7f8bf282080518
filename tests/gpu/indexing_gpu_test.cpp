// CUDA index_select, index_add, gather and scatter_add against the CPU backend: dims 0, 1
// and 2 of 3-d tensors, duplicate indices, i32 and i64 indices, every dtype the CPU takes,
// strided inputs where the primitive accepts them, and the bool error of the adds.
#include <vector>

#include "gpu/gpu_test_util.h"

namespace sp::testing {
namespace {

const std::vector<DType> kAllDtypes = {DType::f32, DType::bf16, DType::f16,    DType::f64,
                                       DType::i32, DType::i64,  DType::boolean};

Tensor random_values(const Shape& shape, DType dtype, uint64_t seed) {
  if (dtype == DType::boolean) return random_cpu(shape, DType::i32, seed, 2.0).to(DType::boolean);
  if (!is_floating(dtype)) return random_cpu(shape, dtype, seed, 1000.0);
  return random_cpu(shape, dtype, seed);
}

// Indices in [0, size) of shape, with duplicates (more indices than size, or forced).
Tensor random_index(const Shape& shape, int64_t size, DType dtype, uint64_t seed) {
  std::vector<double> r = lcg_values(shape.numel(), seed);
  std::vector<int64_t> v(r.size());
  for (size_t i = 0; i < r.size(); ++i)
    v[i] = std::min<int64_t>(size - 1, static_cast<int64_t>((r[i] + 1.0) * 0.5 * size));
  if (v.size() > 2) v[1] = v[0];  // at least one duplicate
  if (!v.empty()) v.back() = size - 1;
  return Tensor::from_vector(v, shape).to(dtype);
}

// Bitwise for integers, bools, f32 and f64: the adds start from the output's value and add
// in the CPU's order (position order per element). 16-bit floats within tolerance.
void expect_same(const Tensor& got, const Tensor& want) {
  if (want.dtype() == DType::f16 || want.dtype() == DType::bf16) {
    expect_close(got, want, arithmetic_tolerance(want.dtype()));
  } else {
    expect_bitwise(got, want);
  }
}

using AddPrim = void (Backend::*)(Tensor&, int, const Tensor&, const Tensor&);

// base plus src at index along dim by prim (&Backend::index_add or &Backend::scatter_add),
// on the CPU and from the same values on the GPU (src_g: src there, in any layout): checks
// that they agree (expect_same) and returns the GPU's result.
Tensor expect_add_matches(AddPrim prim, const Tensor& base, int dim, const Tensor& index,
                          const Tensor& src, const Tensor& src_g) {
  Tensor want = kernels::clone(base);
  (cpu_backend().*prim)(want, dim, index, src);
  Tensor got = to_gpu(base);
  (cuda_backend().*prim)(got, dim, to_gpu(index), src_g);
  expect_same(got, want);
  return got;
}

TEST(IndexingGpu, IndexSelectEveryDimAndDtype) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 1;
  // {4, 10, 8}: 32-byte f32 rows along dim 1 (16-byte words); the others odd.
  for (const Shape& shape : {Shape{6, 7, 9}, Shape{4, 10, 8}, Shape{3, 5, 1}}) {
    for (DType dt : kAllDtypes) {
      const Tensor x = random_values(shape, dt, seed++);
      for (int dim = 0; dim < 3; ++dim) {
        for (DType it : {DType::i32, DType::i64}) {
          SCOPED_TRACE(::testing::Message()
                       << describe(x) << " dim " << dim << " index " << dtype_name(it));
          const Tensor index = random_index(Shape{11}, shape[dim], it, seed++);
          Shape out_shape = shape;
          out_shape[dim] = 11;
          Tensor want = Tensor::empty(out_shape, dt);
          cpu_backend().index_select(want, x, dim, index);
          Tensor got = poisoned_gpu(out_shape, dt);
          cuda_backend().index_select(got, to_gpu(x), dim, to_gpu(index));
          expect_bitwise(got, want);
        }
      }
    }
  }
}

TEST(IndexingGpu, IndexSelectLarge) {
  SP_REQUIRE_CUDA();
  const Tensor x = random_values(Shape{16, 300, 1024}, DType::bf16, 50);
  const Tensor index = random_index(Shape{400}, 300, DType::i64, 51);
  expect_bitwise(kernels::index_select(to_gpu(x), 1, to_gpu(index)),
                 kernels::index_select(x, 1, index));
}

TEST(IndexingGpu, IndexAddEveryDimAndDtype) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 100;
  for (const Shape& shape : {Shape{6, 7, 9}, Shape{3, 5, 1}}) {
    for (DType dt : kAllDtypes) {
      if (dt == DType::boolean) continue;
      const Tensor base = random_values(shape, dt, seed++);
      for (int dim = 0; dim < 3; ++dim) {
        for (DType it : {DType::i32, DType::i64}) {
          SCOPED_TRACE(::testing::Message()
                       << describe(base) << " dim " << dim << " index " << dtype_name(it));
          const Tensor index = random_index(Shape{13}, shape[dim], it, seed++);
          Shape src_shape = shape;
          src_shape[dim] = 13;
          const Tensor src = random_values(src_shape, dt, seed++);
          expect_add_matches(&Backend::index_add, base, dim, index, src, to_gpu(src));
        }
      }
    }
  }
}

// Few columns and a long index take the sorted path (a block per distinct index value):
// dim 0 of 2-d tables (one and two column passes) and dim 1 of a 3-d tensor (several a).
TEST(IndexingGpu, IndexAddLongIndex) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 150;
  struct Case {
    Shape base;
    int dim;
    int64_t n;
  };
  const std::vector<Case> cases = {{Shape{50, 96}, 0, 5000},
                                   {Shape{20, 700}, 0, 1000},
                                   {Shape{3, 40, 20}, 1, 300},
                                   {Shape{1, 1}, 0, 200}};
  for (const Case& c : cases) {
    for (DType dt : kAllDtypes) {
      if (dt == DType::boolean) continue;
      for (DType it : {DType::i32, DType::i64}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " base " << c.base << " dim "
                                          << c.dim << " n " << c.n << " index " << dtype_name(it));
        const Tensor base = random_values(c.base, dt, seed++);
        const Tensor index = random_index(Shape{c.n}, c.base[c.dim], it, seed++);
        Shape src_shape = c.base;
        src_shape[c.dim] = c.n;
        const Tensor src = random_values(src_shape, dt, seed++);
        const Tensor got =
            expect_add_matches(&Backend::index_add, base, c.dim, index, src, to_gpu(src));
        // The same inputs give the same bits.
        Tensor again = to_gpu(base);
        cuda_backend().index_add(again, c.dim, to_gpu(index), to_gpu(src));
        expect_bitwise(again, to_cpu(got));
      }
    }
  }
}

TEST(IndexingGpu, GatherEveryDimAndDtype) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 200;
  const Shape shape{6, 7, 9};
  for (DType dt : kAllDtypes) {
    const Tensor x = random_values(shape, dt, seed++);
    for (int dim = 0; dim < 3; ++dim) {
      for (DType it : {DType::i32, DType::i64}) {
        SCOPED_TRACE(::testing::Message()
                     << describe(x) << " dim " << dim << " index " << dtype_name(it));
        // Smaller than x off dim, longer than x along dim (duplicates).
        Shape is{5, 4, 8};
        is[dim] = 12;
        const Tensor index = random_index(is, shape[dim], it, seed++);
        Tensor want = Tensor::empty(is, dt);
        cpu_backend().gather(want, x, dim, index);
        Tensor got = poisoned_gpu(is, dt);
        cuda_backend().gather(got, to_gpu(x), dim, to_gpu(index));
        expect_bitwise(got, want);
      }
    }
  }
}

// gather reads in through its strides: a transposed view on both devices.
TEST(IndexingGpu, GatherStridedInput) {
  SP_REQUIRE_CUDA();
  const Tensor base = random_values(Shape{9, 7, 6}, DType::f32, 300);
  const Tensor x = kernels::transpose(base, 0, 2);  // [6, 7, 9], not contiguous
  const Tensor xg = kernels::transpose(to_gpu(base), 0, 2);
  ASSERT_FALSE(xg.is_contiguous());
  for (int dim = 0; dim < 3; ++dim) {
    Shape is{6, 7, 9};
    is[dim] = 10;
    const Tensor index = random_index(is, x.size(dim), DType::i64, 301 + dim);
    Tensor want = Tensor::empty(is, DType::f32);
    cpu_backend().gather(want, x, dim, index);
    Tensor got = poisoned_gpu(is, DType::f32);
    cuda_backend().gather(got, xg, dim, to_gpu(index));
    expect_bitwise(got, want);
  }
}

TEST(IndexingGpu, ScatterAddEveryDimAndDtype) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 400;
  const Shape shape{6, 7, 9};
  for (DType dt : kAllDtypes) {
    if (dt == DType::boolean) continue;
    const Tensor base = random_values(shape, dt, seed++);
    for (int dim = 0; dim < 3; ++dim) {
      for (DType it : {DType::i32, DType::i64}) {
        SCOPED_TRACE(::testing::Message()
                     << describe(base) << " dim " << dim << " index " << dtype_name(it));
        // index smaller than base off dim and long along dim (duplicates); src larger than
        // index in every dim.
        Shape is{5, 4, 8};
        is[dim] = 12;
        Shape ss{6, 5, 9};
        ss[dim] = 13;
        const Tensor index = random_index(is, shape[dim], it, seed++);
        const Tensor src = random_values(ss, dt, seed++);
        expect_add_matches(&Backend::scatter_add, base, dim, index, src, to_gpu(src));
      }
    }
  }
}

// scatter_add reads src through its strides.
TEST(IndexingGpu, ScatterAddStridedSource) {
  SP_REQUIRE_CUDA();
  const Tensor base = random_values(Shape{6, 7, 9}, DType::f32, 500);
  const Tensor src_mem = random_values(Shape{9, 7, 6}, DType::f32, 501);
  const Tensor src = kernels::transpose(src_mem, 0, 2);
  const Tensor srcg = kernels::transpose(to_gpu(src_mem), 0, 2);
  for (int dim = 0; dim < 3; ++dim) {
    Shape is{6, 7, 9};
    is[dim] = 4;
    const Tensor index = random_index(is, base.size(dim), DType::i32, 502 + dim);
    expect_add_matches(&Backend::scatter_add, base, dim, index, src, srcg);
  }
}

// Through the dispatch layer, with many duplicates into few rows.
TEST(IndexingGpu, DispatchLayerAdds) {
  SP_REQUIRE_CUDA();
  const Tensor base = random_values(Shape{4, 3, 50}, DType::f32, 600);
  const Tensor index = random_index(Shape{200}, 3, DType::i64, 601);
  const Tensor src = random_values(Shape{4, 200, 50}, DType::f32, 602);
  expect_bitwise(kernels::index_add(to_gpu(base), 1, to_gpu(index), to_gpu(src)),
                 kernels::index_add(base, 1, index, src));
  const Tensor sindex = random_index(Shape{4, 200, 50}, 3, DType::i32, 603);
  expect_bitwise(kernels::scatter_add(to_gpu(base), 1, to_gpu(sindex), to_gpu(src)),
                 kernels::scatter_add(base, 1, sindex, src));
}

TEST(IndexingGpu, BoolAddsAreErrors) {
  SP_REQUIRE_CUDA();
  Tensor out = Tensor::zeros(Shape{4, 3}, DType::boolean, Device::cuda(0));
  const Tensor src = to_gpu(random_values(Shape{2, 3}, DType::boolean, 700));
  const Tensor index = to_gpu(random_index(Shape{2}, 4, DType::i64, 701));
  EXPECT_THROW_MSG(cuda_backend().index_add(out, 0, index, src),
                   "[index_add] unsupported dtype bool");
  const Tensor sindex = to_gpu(random_index(Shape{2, 3}, 4, DType::i64, 702));
  EXPECT_THROW_MSG(cuda_backend().scatter_add(out, 0, sindex, src),
                   "[scatter_add] unsupported dtype bool");
}

}  // namespace
}  // namespace sp::testing
