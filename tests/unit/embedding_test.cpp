// Embedding lookup and its scatter-add backward: values, dtypes, repeated ids, errors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;
using testing::test_tensor;

TEST(Embedding, GathersRows) {
  // Row v of the table is [10 v, 10 v + 1].
  Tensor w = Tensor::from_vector(std::vector<float>{0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  for (DType idt : {DType::i64, DType::i32}) {
    Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 0, 3, 1, 2, 2}, {2, 3}, idt);
    const Tensor y = embedding(w, ids);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
    expect_values(y, {30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 20, 21}, 0);
  }
  const Tensor yb =
      embedding(kernels::cast(w, DType::bf16), Tensor::from_vector(std::vector<int64_t>{2}));
  EXPECT_EQ(yb.dtype(), DType::bf16);
  expect_values(yb, {20, 21}, 0);
  // No ids: an empty [0, D] result.
  EXPECT_EQ(embedding(w, Tensor::from_vector(std::vector<int64_t>{})).shape(), (Shape{0, 2}));
}

TEST(Embedding, BackwardSumsRepeatedIds) {
  Tensor w = leaf(Tensor::zeros({4, 2}));
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 3, 1, 1});
  Tensor dy = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  embedding(w, ids).backward(dy);
  // Row 1 gets dy rows 0, 2, 3; row 3 gets dy row 1; rows 0 and 2 nothing.
  expect_values(w.grad(), {0, 0, 13, 16, 0, 0, 3, 4}, 0);
}

TEST(Embedding, BackwardLargeAgainstReference) {
  const int64_t vocab = 53, d = 100, n = 2000;  // d not a multiple of the column block
  std::vector<int64_t> idv(n);
  for (int64_t i = 0; i < n; ++i) idv[i] = (i * 7 + i / 13) % vocab;
  Tensor ids = Tensor::from_vector(idv, {40, 50}, DType::i32);
  const Tensor dy = test_tensor({40, 50, d}, 1, DType::f64);
  const std::vector<double> g = dy.to_vector<double>();
  std::vector<double> expected(vocab * d, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) expected[idv[i] * d + j] += g[i * d + j];
  const Tensor dw = kernels::embedding_backward(dy, ids, vocab, DType::f64);
  EXPECT_EQ(dw.shape(), (Shape{vocab, d}));
  expect_values(dw, expected, 1e-12);
  // A bf16 gradient accumulates in f32 and rounds once: close to the f64 sums.
  const Tensor dwb =
      kernels::embedding_backward(kernels::cast(dy, DType::bf16), ids, vocab, DType::bf16);
  EXPECT_EQ(dwb.dtype(), DType::bf16);
  expect_values(dwb, expected, 2e-2);
  // Deterministic: the same bits twice.
  const Tensor again = kernels::embedding_backward(dy, ids, vocab, DType::f64);
  EXPECT_EQ(dw.to_vector<double>(), again.to_vector<double>());
}

TEST(Embedding, RejectsOutOfRangeIds) {
  Tensor w = Tensor::zeros({32, 4});
  EXPECT_THROW_MSG(embedding(w, Tensor::from_vector(std::vector<int64_t>{0, 5, 31, 40, 2})),
                   "[embedding] id 40 at position 3 is out of range for a table of 32 rows");
  EXPECT_THROW_MSG(embedding(w, Tensor::from_vector(std::vector<int32_t>{-1})),
                   "[embedding] id -1 at position 0 is out of range for a table of 32 rows");
  EXPECT_THROW_MSG(embedding(w, Tensor::from_vector(std::vector<float>{1})),
                   "[embedding] ids must be i32 or i64: ids are [1] f32");
  EXPECT_THROW_MSG(embedding(Tensor::zeros({32}), Tensor::from_vector(std::vector<int64_t>{1})),
                   "[embedding] weight must be [V, D]: weight is [32] f32");
  EXPECT_THROW_MSG(
      kernels::embedding_backward(Tensor::zeros({2, 3}),
                                  Tensor::from_vector(std::vector<int64_t>{1, 2, 3}), 10,
                                  DType::f32),
      "[embedding_backward] dy must be [*ids.shape, D]: dy is [2, 3] f32, ids are [3] i64");
}

}  // namespace
}  // namespace sp
