// cat, stack, index_select / index_add, gather / scatter_add: values, dtypes, errors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;

// [rows, cols] with element (r, c) = 10 r + c.
Tensor grid(int64_t rows, int64_t cols, DType dt = DType::f32) {
  std::vector<double> v;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) v.push_back(10.0 * r + c);
  return Tensor::from_vector(v, {rows, cols}, dt);
}

Tensor ids(std::vector<int64_t> v, DType dt = DType::i64) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector(v, {n}, dt);
}

TEST(Cat, JoinsAlongAnyDim) {
  Tensor a = grid(2, 2), b = grid(1, 2), c = grid(3, 2);
  const Tensor rows = cat({a, b, c}, 0);
  EXPECT_EQ(rows.shape(), (Shape{6, 2}));
  expect_values(rows, {0, 1, 10, 11, 0, 1, 0, 1, 10, 11, 20, 21}, 0);
  const Tensor cols = cat({grid(2, 1), grid(2, 3)}, -1);
  EXPECT_EQ(cols.shape(), (Shape{2, 4}));
  expect_values(cols, {0, 0, 1, 2, 10, 10, 11, 12}, 0);
  // A transposed (non-contiguous) input and an empty one.
  const Tensor t = kernels::transpose(grid(2, 2), 0, 1);  // [[0, 10], [1, 11]]
  expect_values(cat({t, Tensor::zeros({0, 2}), grid(1, 2)}, 0), {0, 10, 1, 11, 0, 1}, 0);
  for (DType dt : {DType::bf16, DType::i64, DType::boolean}) {
    const Tensor y = cat({grid(1, 2, dt), grid(1, 1, dt)}, 1);
    EXPECT_EQ(y.dtype(), dt);
    expect_values(y, {0, 1, 0}, 0);
  }
}

TEST(Cat, RejectsMismatches) {
  EXPECT_THROW_MSG(cat({}, 0), "[cat] needs at least one tensor");
  EXPECT_THROW_MSG(cat({grid(2, 3), grid(2, 4)}, 0),
                   "[cat] tensor 1 has shape [2, 4] but tensor 0 has [2, 3]: shapes must match "
                   "except in dim 0");
  EXPECT_THROW_MSG(cat({grid(2, 3), grid(2, 3, DType::bf16)}, 0),
                   "[cat] tensor 1 has dtype bf16 but tensor 0 has f32");
  EXPECT_THROW_MSG(cat({grid(2, 3), Tensor::zeros({6})}, 0), "[cat] tensor 1 has shape [6]");
  EXPECT_THROW_MSG(cat({grid(2, 3)}, 2), "[cat]");
}

TEST(Stack, AddsANewDim) {
  Tensor a = grid(2, 2), b = kernels::cast(grid(2, 2), DType::f32);
  const Tensor s0 = stack({a, b}, 0);
  EXPECT_EQ(s0.shape(), (Shape{2, 2, 2}));
  expect_values(s0, {0, 1, 10, 11, 0, 1, 10, 11}, 0);
  const Tensor s2 = stack({grid(2, 2), Tensor::ones({2, 2})}, -1);
  EXPECT_EQ(s2.shape(), (Shape{2, 2, 2}));
  expect_values(s2, {0, 1, 1, 1, 10, 1, 11, 1}, 0);
  EXPECT_THROW_MSG(
      stack({grid(2, 2), grid(2, 3)}, 0),
      "[stack] tensor 1 has shape [2, 3] but tensor 0 has [2, 2]: all shapes must be equal");
  EXPECT_THROW_MSG(stack({}, 0), "[stack] needs at least one tensor");
}

TEST(IndexSelect, PicksSlicesWithDuplicates) {
  const Tensor x = grid(3, 4);
  for (DType idt : {DType::i64, DType::i32}) {
    expect_values(index_select(x, 0, ids({2, 0, 2}, idt)),
                  {20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23}, 0);
    expect_values(index_select(x, 1, ids({3, 3, 1}, idt)), {3, 3, 1, 13, 13, 11, 23, 23, 21}, 0);
  }
  // A middle dim of a 3-D tensor, and a non-contiguous input, and i64 data.
  const Tensor x3 = kernels::view(grid(4, 3, DType::i64), Shape{2, 2, 3});
  const Tensor y3 = index_select(x3, 1, ids({1}));
  EXPECT_EQ(y3.shape(), (Shape{2, 1, 3}));
  expect_values(y3, {10, 11, 12, 30, 31, 32}, 0);
  expect_values(index_select(kernels::transpose(x, 0, 1), 1, ids({2, 1})),
                {20, 10, 21, 11, 22, 12, 23, 13}, 0);
}

TEST(IndexSelect, BackwardAddsDuplicates) {
  Tensor x = leaf(Tensor::zeros({3, 2}));
  index_select(x, 0, ids({2, 0, 2})).backward(grid(3, 2));
  expect_values(x.grad(), {10, 11, 0, 0, 20, 22}, 0);
}

TEST(IndexSelect, RejectsBadIndices) {
  const Tensor x = grid(3, 4);
  EXPECT_THROW_MSG(index_select(x, 1, ids({0, 1, 4})),
                   "[index_select] index 4 at position 2 is out of range for dim 1 of size 4");
  EXPECT_THROW_MSG(index_select(x, 0, ids({-1})),
                   "[index_select] index -1 at position 0 is out of range for dim 0 of size 3");
  EXPECT_THROW_MSG(index_select(x, 0, Tensor::zeros({2})),
                   "[index_select] index must be i32 or i64: index is [2] f32");
  EXPECT_THROW_MSG(index_select(x, 0, Tensor::zeros({2, 1}, DType::i64)),
                   "[index_select] index must be 1-D: index is [2, 1] i64");
  EXPECT_THROW_MSG(index_select(x, 2, ids({0})), "[index_select]");
}

TEST(IndexAdd, AccumulatesDuplicates) {
  const Tensor base = Tensor::ones({3, 2}, DType::f64);
  const Tensor src = kernels::cast(grid(4, 2), DType::f64);
  const Tensor y = kernels::index_add(base, 0, ids({1, 1, 0, 1}), src);
  // Row 1 += src rows 0, 1, 3; row 0 += src row 2.
  expect_values(y, {21, 22, 41, 44, 1, 1}, 0);
  expect_values(base, {1, 1, 1, 1, 1, 1}, 0);  // base untouched
  const Tensor yi = kernels::index_add(Tensor::zeros({2, 3}, DType::i32), 1, ids({2, 2}),
                                       Tensor::ones({2, 2}, DType::i32));
  expect_values(yi, {0, 0, 2, 0, 0, 2}, 0);
  EXPECT_THROW_MSG(kernels::index_add(base, 0, ids({0}), src),
                   "[index_add] src must be [1, 2]: src is [4, 2] f64");
}

TEST(Gather, PicksAlongDim) {
  const Tensor x = grid(3, 4);
  // dim 1: out[i][j] = x[i][index[i][j]]
  Tensor i1 = Tensor::from_vector(std::vector<int64_t>{3, 0, 0, 1, 1, 1, 2, 3, 0}, {3, 3});
  expect_values(gather(x, 1, i1), {3, 0, 0, 11, 11, 11, 22, 23, 20}, 0);
  // dim 0 with an index smaller than x in dim 1: out[i][j] = x[index[i][j]][j]
  Tensor i0 = Tensor::from_vector(std::vector<int32_t>{2, 0, 1, 1}, {2, 2});
  expect_values(gather(x, 0, i0), {20, 1, 10, 11}, 0);
  // A non-contiguous x: xt[i][j] = x[j][i] = 10 j + i.
  const Tensor xt = kernels::transpose(x, 0, 1);  // [4, 3]
  Tensor it = Tensor::from_vector(std::vector<int64_t>{2, 0}, {2, 1});
  expect_values(gather(xt, 1, it), {20, 1}, 0);
}

TEST(Gather, BackwardScatterAdds) {
  Tensor x = leaf(Tensor::zeros({2, 3}, DType::f64));
  Tensor index = Tensor::from_vector(std::vector<int64_t>{2, 2, 0, 1}, {2, 2});
  gather(x, 1, index).backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}));
  expect_values(x.grad(), {0, 0, 3, 3, 4, 0}, 0);
}

TEST(Gather, RejectsBadIndices) {
  const Tensor x = grid(3, 4);
  EXPECT_THROW_MSG(
      gather(x, 1, Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 3, 4, 0}, {2, 3})),
      "[gather] index 4 at position 4 is out of range for dim 1 of size 4");
  EXPECT_THROW_MSG(gather(x, 1, Tensor::zeros({3}, DType::i64)),
                   "[gather] index must have x's rank: index is [3] i64, x is [3, 4] f32");
  EXPECT_THROW_MSG(
      gather(x, 1, Tensor::zeros({4, 1}, DType::i64)),
      "[gather] index is larger than x in dim 0: index is [4, 1] i64, x is [3, 4] f32");
}

TEST(ScatterAdd, AccumulatesDuplicates) {
  const Tensor base = Tensor::zeros({2, 3});
  Tensor index = Tensor::from_vector(std::vector<int64_t>{2, 2, 0, 1, 1, 1}, {2, 3});
  const Tensor src = grid(2, 3);
  // Row 0: out[0][2] += 0 + 1, out[0][0] += 2; row 1: out[1][1] += 10 + 11 + 12.
  expect_values(kernels::scatter_add(base, 1, index, src), {2, 0, 1, 0, 33, 0}, 0);
  // dim 0 with an index smaller than src.
  Tensor i0 = Tensor::from_vector(std::vector<int64_t>{1, 1}, {1, 2});
  expect_values(kernels::scatter_add(Tensor::zeros({2, 3}), 0, i0, src), {0, 0, 0, 0, 1, 0}, 0);
  EXPECT_THROW_MSG(kernels::scatter_add(base, 1, index, Tensor::zeros({2, 3}, DType::f64)),
                   "[scatter_add] src must have base's dtype");
  EXPECT_THROW_MSG(kernels::scatter_add(base, 0, index, src),
                   "[scatter_add] index 2 at position 0 is out of range for dim 0 of size 2");
  EXPECT_THROW_MSG(kernels::scatter_add(Tensor::zeros({2, 3}, DType::boolean), 0, i0,
                                        Tensor::zeros({2, 3}, DType::boolean)),
                   "[scatter_add] unsupported dtype bool");
}

// 16-bit sums are formed in f32 and rounded once: added term by term in bf16, a sum stops
// growing at 256 when each term is 1.
TEST(IndexAdd, SixteenBitSumsRoundOnce) {
  for (DType dt : {DType::bf16, DType::f16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = leaf(Tensor::zeros({1, 4}, dt));
    sum(index_select(x, 0, Tensor::zeros({1000}, DType::i64))).backward();
    expect_values(x.grad(), {1000, 1000, 1000, 1000}, 0);
    Tensor y = leaf(Tensor::zeros({1, 3}, dt));
    sum(gather(y, 1, Tensor::zeros({1, 1000}, DType::i64))).backward();
    expect_values(y.grad(), {1000, 0, 0}, 0);
    // 1000 terms of 0.1 (bf16 would stall at 32, f16 at 256, rounding after each add).
    const Tensor sum =
        kernels::index_add(Tensor::zeros({1, 1}, dt), 0, Tensor::zeros({1000}, DType::i64),
                           Tensor::full({1000, 1}, 0.1).to(dt));
    EXPECT_NEAR(sum.to_vector<double>()[0], 100.0, 0.5);
  }
}

TEST(Indexing, LargeShapesMatchLoops) {
  // Enough work for the parallel paths: [64, 300, 40] along the middle dim.
  const int64_t a = 64, s = 300, b = 40, n = 500;
  const Tensor x = testing::test_tensor({a, s, b}, 3, DType::f64);
  std::vector<int64_t> iv(n);
  for (int64_t j = 0; j < n; ++j) iv[j] = (j * 37) % s;
  const Tensor sel = index_select(x, 1, ids(iv));
  const std::vector<double> xv = x.to_vector<double>(), sv = sel.to_vector<double>();
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < b; ++k)
        ASSERT_EQ(sv[(i * n + j) * b + k], xv[(i * s + iv[j]) * b + k]);
  // index_add back: every row of x gets the sum of the rows that picked it.
  const Tensor added = kernels::index_add(Tensor::zeros({a, s, b}, DType::f64), 1, ids(iv), sel);
  std::vector<double> expected(a * s * b, 0.0);
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < b; ++k) expected[(i * s + iv[j]) * b + k] += sv[(i * n + j) * b + k];
  expect_values(added, expected, 1e-12);
}

}  // namespace
}  // namespace sp
