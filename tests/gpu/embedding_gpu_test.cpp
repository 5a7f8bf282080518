// CUDA embedding lookup (bitwise the CPU's) and its deterministic scatter-add backward
// (within tolerance of the CPU; f32 and f64 bitwise), for every float dtype, i32 and i64
// ids, repeated ids and the first and last rows, odd widths and a T5-sized table.
#include <vector>

#include "gpu/gpu_test_util.h"

namespace sp::testing {
namespace {

const std::vector<DType> kFloats = {DType::f32, DType::bf16, DType::f16, DType::f64};

// n ids in [0, v), with 0 and v - 1 at fixed positions and every fourth id repeating id 3
// (a long run of one id, longer than the backward's 128-row stage when n is large).
Tensor make_ids(int64_t n, int64_t v, DType dtype, uint64_t seed) {
  std::vector<double> r = lcg_values(n, seed);
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = std::min<int64_t>(v - 1, static_cast<int64_t>((r[i] + 1.0) * 0.5 * v));
    if (i % 4 == 1) ids[i] = std::min<int64_t>(3, v - 1);
  }
  ids[0] = 0;
  if (n > 2) ids[n - 1] = v - 1;
  if (n > 5) ids[5] = v - 1;
  return Tensor::from_vector(ids, Shape{n}).to(dtype);
}

void check_forward(int64_t v, int64_t d, int64_t n, DType wdt, DType idt, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "embedding V " << v << " D " << d << " N " << n << " "
                                    << dtype_name(wdt) << " ids " << dtype_name(idt));
  const Tensor weight = random_cpu(Shape{v, d}, wdt, seed);
  const Tensor ids = make_ids(n, v, idt, seed + 1);
  Tensor want = Tensor::empty(Shape{n, d}, wdt);
  cpu_backend().embedding(want, weight, ids);
  Tensor got = poisoned_gpu(Shape{n, d}, wdt);
  cuda_backend().embedding(got, to_gpu(weight), to_gpu(ids));
  expect_bitwise(got, want);
}

void check_backward(int64_t v, int64_t d, int64_t n, DType wdt, DType gdt, DType idt,
                    uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "embedding_backward V " << v << " D " << d << " N " << n << " dweight "
               << dtype_name(wdt) << " dy " << dtype_name(gdt) << " ids " << dtype_name(idt));
  // dweight starts non-zero: the primitive adds to it.
  const Tensor dweight = random_cpu(Shape{v, d}, wdt, seed);
  const Tensor dy = random_cpu(Shape{n, d}, gdt, seed + 1);
  const Tensor ids = make_ids(n, v, idt, seed + 2);
  Tensor want = kernels::clone(dweight);
  cpu_backend().embedding_backward(want, dy, ids);
  Tensor got = to_gpu(dweight);
  cuda_backend().embedding_backward(got, to_gpu(dy), to_gpu(ids));
  if (wdt == DType::f64 || (wdt == DType::f32 && gdt != DType::f64)) {
    // The accumulator is dweight's own type and each element adds its rows in position
    // order, as the CPU does: the same bits.
    expect_bitwise(got, want);
  } else if (wdt == DType::f32) {
    // f64 dy: the CPU rounds to f32 after each add, the GPU once.
    expect_close(got, want, 1e-5);
  } else {
    // 16-bit dweight: the GPU accumulates in f32 and rounds once, the CPU rounds after
    // every add, so compare with an f64 reference (and loosely with the CPU).
    Tensor exact = dweight.to(DType::f64);
    cpu_backend().embedding_backward(exact, dy.to(DType::f64), ids);
    expect_close(got, exact, arithmetic_tolerance(wdt));
    expect_close(got, want, 5e-2);
  }
}

TEST(EmbeddingGpu, ForwardEveryDtypeAndWidth) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 1;
  for (DType wdt : kFloats) {
    for (DType idt : {DType::i32, DType::i64}) {
      for (int64_t d : {1, 3, 8, 768, 4097}) check_forward(1000, d, 777, wdt, idt, seed += 3);
    }
  }
  // One row, one id.
  check_forward(1, 5, 1, DType::f32, DType::i64, 99);
}

TEST(EmbeddingGpu, ForwardT5Table) {
  SP_REQUIRE_CUDA();
  check_forward(32128, 768, 8192, DType::bf16, DType::i32, 7);
  check_forward(32128, 768, 8192, DType::f32, DType::i64, 8);
}

TEST(EmbeddingGpu, BackwardEveryDtypePair) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 200;
  for (DType wdt : kFloats) {
    for (DType gdt : kFloats) {
      for (DType idt : {DType::i32, DType::i64}) {
        check_backward(50, 33, 300, wdt, gdt, idt, seed += 3);
      }
    }
  }
}

TEST(EmbeddingGpu, BackwardWidthsAndLongRuns) {
  SP_REQUIRE_CUDA();
  uint64_t seed = 300;
  // Widths below, at and above one pass (128 threads x 4 columns); n large enough that
  // id 3 repeats in runs over several 128-row stages.
  for (int64_t d : {1, 7, 512, 513, 1300}) {
    check_backward(97, d, 1000, DType::f32, DType::f32, DType::i64, seed += 3);
    check_backward(97, d, 1000, DType::f32, DType::bf16, DType::i32, seed += 3);
  }
  // A single id and a table of one row.
  check_backward(10, 16, 1, DType::f32, DType::f32, DType::i32, seed += 3);
  check_backward(1, 16, 300, DType::f64, DType::f64, DType::i64, seed += 3);
}

TEST(EmbeddingGpu, BackwardT5Table) {
  SP_REQUIRE_CUDA();
  check_backward(32128, 768, 8192, DType::f32, DType::bf16, DType::i32, 400);
  check_backward(32128, 768, 8192, DType::f32, DType::f32, DType::i64, 401);
}

TEST(EmbeddingGpu, BackwardDeterministic) {
  SP_REQUIRE_CUDA();
  const Tensor dy = to_gpu(random_cpu(Shape{4096, 96}, DType::bf16, 500));
  const Tensor ids = to_gpu(make_ids(4096, 64, DType::i64, 501));
  Tensor a = Tensor::zeros(Shape{64, 96}, DType::f32, Device::cuda(0));
  Tensor b = Tensor::zeros(Shape{64, 96}, DType::f32, Device::cuda(0));
  cuda_backend().embedding_backward(a, dy, ids);
  cuda_backend().embedding_backward(b, dy, ids);
  expect_bitwise(a, to_cpu(b));
}

// Through the dispatch layer: ids of any shape, and the backward into a fresh table.
TEST(EmbeddingGpu, DispatchLayer) {
  SP_REQUIRE_CUDA();
  const Tensor weight = random_cpu(Shape{40, 24}, DType::f32, 600);
  const Tensor ids = make_ids(30, 40, DType::i64, 601).reshape(Shape{5, 6});
  expect_bitwise(kernels::embedding(to_gpu(weight), to_gpu(ids)), kernels::embedding(weight, ids));
  const Tensor dy = random_cpu(Shape{5, 6, 24}, DType::f32, 602);
  expect_bitwise(kernels::embedding_backward(to_gpu(dy), to_gpu(ids), 40, DType::f32),
                 kernels::embedding_backward(dy, ids, 40, DType::f32));
}

TEST(EmbeddingGpu, IntegerGradientIsAnError) {
  SP_REQUIRE_CUDA();
  Tensor dweight = Tensor::zeros(Shape{4, 3}, DType::i32, Device::cuda(0));
  const Tensor dy = to_gpu(random_cpu(Shape{2, 3}, DType::f32, 700));
  const Tensor ids = to_gpu(make_ids(2, 4, DType::i64, 701));
  try {
    cuda_backend().embedding_backward(dweight, dy, ids);
    ADD_FAILURE() << "expected an error for an i32 dweight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[embedding_backward]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("i32"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sp::testing
