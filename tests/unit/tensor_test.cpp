// Tensor metadata, creation, views and conversions.
#include "tensor/tensor.h"

#include <gtest/gtest.h>

#include "tensor/kernels.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;

TEST(Tensor, CreationAndMetadata) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.size(-1), 3);
  expect_values(t, {0, 0, 0, 0, 0, 0});
  expect_values(Tensor::full({2}, 2.5, DType::bf16), {2.5, 2.5});
  expect_values(Tensor::arange(4), {0, 1, 2, 3});
  EXPECT_EQ(Tensor::scalar(7.0, DType::i64).item<int64_t>(), 7);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, FromAndToVectorEveryDtype) {
  const std::vector<double> v = {1.5, -2.0, 0.0, 3.0};
  for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    Tensor t = Tensor::from_vector(v, {2, 2}, dt);
    EXPECT_EQ(t.dtype(), dt);
    EXPECT_EQ(t.to_vector<double>(), v) << dtype_name(dt);
  }
  Tensor i = Tensor::from_vector(std::vector<int64_t>{3, -1, 7}, {3});
  EXPECT_EQ(i.dtype(), DType::i64);
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{3, -1, 7}));
  Tensor b = Tensor::from_vector(std::vector<bool>{true, false}, {2});
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1.f, 0.f}));
  EXPECT_THROW_MSG(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                   "[from_vector] 3 values do not fill shape [2, 2]");
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(std::nanf("")))));
  EXPECT_EQ(static_cast<float>(f16(65504.0f)), 65504.0f);
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = kernels::transpose(t, 0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_EQ(tt.strides(), (Shape{1, 3}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage(), t.storage());
  expect_values(tt, {0, 3, 1, 4, 2, 5});
  expect_values(kernels::slice(t, 1, 1, 3), {1, 2, 4, 5});
  expect_values(kernels::slice(t, 1, 0, 3, 2), {0, 2, 3, 5});
  expect_values(kernels::select(t, 0, -1), {3, 4, 5});
  Tensor e = kernels::expand(kernels::slice(t, 0, 0, 1), {3, 3});
  EXPECT_EQ(e.strides(), (Shape{0, 1}));
  expect_values(e, {0, 1, 2, 0, 1, 2, 0, 1, 2});
  expect_values(kernels::permute(Tensor::arange(6).reshape({1, 2, 3}), {2, 0, 1}),
                {0, 3, 1, 4, 2, 5});
  EXPECT_EQ(kernels::unsqueeze(t, 1).shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(kernels::squeeze(kernels::unsqueeze(t, 0), 0).shape(), (Shape{2, 3}));
  // Writing through a view changes the base.
  Tensor col = kernels::select(t, 1, 0);
  kernels::fill_(col, 9.0);
  expect_values(t, {9, 1, 2, 9, 4, 5});
}

TEST(Tensor, ViewAndReshape) {
  Tensor t = Tensor::arange(12, DType::f32);
  Tensor v = t.view({3, -1});
  EXPECT_EQ(v.shape(), (Shape{3, 4}));
  EXPECT_EQ(v.storage(), t.storage());
  Tensor tt = v.mT();  // [4, 3], not viewable as [12]
  EXPECT_FALSE(kernels::can_view(tt, {12}));
  EXPECT_THROW_MSG(tt.view({12}), "[view] cannot view [4, 3] f32");
  Tensor r = tt.reshape({12});
  EXPECT_NE(r.storage(), t.storage());
  expect_values(r, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // Splitting a transposed dim is still a view.
  Tensor s = tt.reshape({2, 2, 3});
  EXPECT_EQ(s.storage(), t.storage());
  expect_values(s, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  EXPECT_THROW_MSG(t.view({5, -1}), "[view] cannot infer the -1 in [5, -1] for 12 elements");
  EXPECT_THROW_MSG(t.view({-1, -1}), "only one dim can be -1");
  EXPECT_EQ(t.reshape({2, 3, 2}).flatten(1).shape(), (Shape{2, 6}));
}

TEST(Tensor, ContiguousCloneCast) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor c = t.mT().contiguous();
  EXPECT_TRUE(c.is_contiguous());
  expect_values(c, {1, 3, 2, 4});
  EXPECT_TRUE(t.contiguous().is_same(t));
  Tensor k = t.clone();
  EXPECT_NE(k.storage(), t.storage());
  Tensor h = t.to(DType::bf16);
  EXPECT_EQ(h.dtype(), DType::bf16);
  expect_values(h.to(DType::f64), {1, 2, 3, 4});
  expect_values(
      kernels::cast(Tensor::from_vector(std::vector<float>{-1.7f, 0.f, 2.9f}), DType::i32),
      {-1, 0, 2});
  expect_values(
      kernels::cast(Tensor::from_vector(std::vector<float>{-1.7f, 0.f, 2.9f}), DType::boolean),
      {1, 0, 1});
}

TEST(Tensor, ItemAndErrors) {
  EXPECT_DOUBLE_EQ(Tensor::full({1, 1}, 3.25).item(), 3.25);
  EXPECT_THROW_MSG(Tensor::zeros({2}).item(), "[item] tensor has 2 elements");
  EXPECT_THROW_MSG(Tensor::zeros({2}).data<double>(), "[data] tensor is f32, asked for f64");
  EXPECT_THROW_MSG(kernels::transpose(Tensor::zeros({2}), 0, 3),
                   "[transpose] dim 3 is out of range");
  EXPECT_THROW_MSG(kernels::expand(Tensor::zeros({2, 3}), {4, 3}),
                   "[expand] cannot expand [2, 3] to [4, 3]");
  EXPECT_THROW_MSG(kernels::expand(Tensor::zeros({1}), {-2}),
                   "[expand] cannot expand [1] to [-2]: dim 0 is -2 (only -1 keeps a dim)");
  EXPECT_THROW_MSG(Tensor::zeros({2, 1}).expand({2, -3}),
                   "[expand] cannot expand [2, 1] to [2, -3]");
  EXPECT_EQ(kernels::expand(Tensor::zeros({2, 1}), {2, 0}).shape(), (Shape{2, 0}));
  EXPECT_THROW_MSG(kernels::permute(Tensor::zeros({2, 3}), {0, 0}), "[permute] dim 0 repeated");
  EXPECT_THROW_MSG(Tensor::zeros({2}).as_strided({3}, {1}, 0), "reaches outside a storage of 2");
  EXPECT_THROW_MSG(dtype_from_name("f8"), "unknown dtype 'f8'");
}

TEST(Tensor, Printing) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2.5f, -3, 4}, {2, 2});
  EXPECT_EQ(t.str(), "tensor([[1, 2.5],\n [-3, 4]], shape=[2, 2], dtype=f32)");
  EXPECT_EQ(Tensor::arange(3).str(), "tensor([0, 1, 2], shape=[3], dtype=i64)");
  const std::string big = Tensor::zeros({2000}).str();
  EXPECT_NE(big.find("0, 0, 0, ..., 0, 0, 0"), std::string::npos) << big;
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

TEST(Tensor, CudaWithoutCudaIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  EXPECT_THROW_MSG(Tensor::zeros({2}, DType::f32, Device::cuda(0)), "CUDA");
}

TEST(Tensor, ScalarHasNoSizeOrStride) {
  // A scalar made by select keeps its base's dims in Shape's inline storage: size(0) used
  // to return that stale 3.
  Tensor s = kernels::select(Tensor::from_vector(std::vector<float>{1, 2, 3}), 0, 1);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_THROW_MSG(s.size(0), "[size] dim 0 is out of range for a tensor of rank 0");
  EXPECT_THROW_MSG(s.stride(-1), "[stride] dim -1 is out of range for a tensor of rank 0");
  EXPECT_THROW_MSG(Tensor::scalar(1.0).size(-1), "[size] dim -1 is out of range");
  EXPECT_THROW_MSG(Tensor::zeros({2}).size(1),
                   "[size] dim 1 is out of range for a tensor of rank 1");
  // Nor dims to index: select, slice and narrow used to read the stale size, select then
  // erasing a dim it did not have (a tensor of rank -1).
  EXPECT_THROW_MSG(s.select(0, 0), "[select] cannot select from a 0-d tensor");
  EXPECT_THROW_MSG(kernels::select(s, -1, 2), "[select] cannot select from a 0-d tensor");
  EXPECT_THROW_MSG(s.slice(0, 1, 2), "[slice] cannot slice a 0-d tensor");
  EXPECT_THROW_MSG(s.narrow(0, 0, 1), "[narrow] cannot narrow a 0-d tensor");
  const Tensor u = Tensor::ones({3});
  EXPECT_THROW_MSG(kernels::matmul(u, u).select(0, 0), "0-d tensor");
  Shape empty;
  EXPECT_THROW_MSG(empty.pop_back(), "[shape] no dim -1 to remove from a shape of 0 dims");
}

TEST(Tensor, EmptyRejectsShapesWhoseByteCountOverflows) {
  // numel wraps to 0 (2^64 elements) and 2^62 f32 elements to 0 bytes: both used to get
  // an empty storage under a huge shape.
  EXPECT_THROW_MSG(Tensor::empty({int64_t{1} << 32, int64_t{1} << 32}),
                   "[empty] shape [4294967296, 4294967296] of f32 is too large");
  EXPECT_THROW_MSG(Tensor::empty({int64_t{1} << 62}), "[empty] shape [4611686018427387904] of f32");
  EXPECT_THROW_MSG(Tensor::empty({(int64_t{1} << 61) + 1}, DType::f32), "overflows 64 bits");
  // A zero dim makes any shape empty, however large the others.
  Tensor z = Tensor::empty({int64_t{1} << 40, 0, int64_t{1} << 40});
  EXPECT_EQ(z.numel(), 0);
  EXPECT_EQ(z.nbytes(), 0);
}

TEST(Tensor, AsStridedRejectsNegativeDimsAndOverflow) {
  // (5 - 1) * 2^62 wraps to 0: the bounds check used to pass and reads went far outside.
  EXPECT_THROW_MSG(Tensor::zeros({2}).as_strided({5}, {int64_t{1} << 62}, 0),
                   "[as_strided] view [5] with strides [4611686018427387904] at offset 0 reaches "
                   "outside a storage of 2 elements");
  EXPECT_THROW_MSG(Tensor::zeros({4}).as_strided({-1}, {-1}, 0),
                   "[as_strided] negative dim in shape [-1]");
  // A broadcast whose element count wraps to 0 used to be an "empty" tensor.
  EXPECT_THROW_MSG(kernels::expand(Tensor::zeros({1}), {int64_t{1} << 32, int64_t{1} << 32}),
                   "[as_strided] view [4294967296, 4294967296] has too many elements");
  EXPECT_EQ(kernels::expand(Tensor::zeros({1}), {int64_t{1} << 31, int64_t{1} << 31}).numel(),
            int64_t{1} << 62);
  EXPECT_EQ(Tensor::zeros({4}).as_strided({0, 3}, {100, 100}, 50).numel(), 0);
}

TEST(Tensor, PrintsIntegersExactly) {
  // Through a double, 2^53 + 1 printed as 2^53 and INT64_MAX as INT64_MIN.
  EXPECT_EQ(
      Tensor::from_vector(std::vector<int64_t>{(int64_t{1} << 53) + 1, INT64_MAX, INT64_MIN}).str(),
      "tensor([9007199254740993, 9223372036854775807, -9223372036854775808], shape=[3], "
      "dtype=i64)");
  EXPECT_EQ(Tensor::from_vector(std::vector<bool>{true, false}).str(),
            "tensor([1, 0], shape=[2], dtype=bool)");
}

TEST(Tensor, ChainedViewsOffsetsAndConversions) {
  Tensor t = Tensor::arange(24, DType::f32).reshape({2, 3, 4});
  Tensor a = kernels::slice(kernels::transpose(t, 0, 2), 0, 1, 3);  // [2, 3, 2]
  EXPECT_EQ(a.shape(), (Shape{2, 3, 2}));
  expect_values(a, {1, 13, 5, 17, 9, 21, 2, 14, 6, 18, 10, 22});
  Tensor b = kernels::select(kernels::slice(t, 1, 1, 3), 2, 3);  // [2, 2]
  expect_values(b, {7, 11, 19, 23});
  EXPECT_EQ(b.offset(), 7);
  EXPECT_DOUBLE_EQ(kernels::select(kernels::select(b, 0, 1), 0, 1).item(), 23);
  Tensor v = kernels::slice(t, 0, 1, 2).view({3, 4});
  EXPECT_EQ(v.offset(), 12);
  expect_values(kernels::select(v, 0, 2), {20, 21, 22, 23});
  Tensor u = kernels::unsqueeze(kernels::slice(t, 2, 1, 3), 2);
  EXPECT_EQ(u.shape(), (Shape{2, 3, 1, 2}));
  expect_values(u.reshape({-1}), {1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  Tensor pv = kernels::slice(kernels::permute(t, {2, 0, 1}), 0, 1, 4, 2);  // [2, 2, 3]
  expect_values(pv.contiguous(), {1, 5, 9, 13, 17, 21, 3, 7, 11, 15, 19, 23});
  // Viewable exactly when the merged dims are contiguous with each other.
  EXPECT_TRUE(kernels::can_view(kernels::slice(t, 2, 0, 2), {2, 3, 2}));
  EXPECT_FALSE(kernels::can_view(kernels::slice(t, 2, 0, 2), {12}));
  EXPECT_TRUE(kernels::can_view(kernels::slice(t, 1, 0, 2), {2, 8}));
  EXPECT_FALSE(kernels::can_view(kernels::slice(t, 1, 0, 2), {16}));
  Tensor e = kernels::expand(Tensor::from_vector(std::vector<float>{1, 2}, {2, 1}), {2, 3});
  EXPECT_TRUE(kernels::can_view(e, {2, 3, 1}));
  expect_values(e.reshape({6}), {1, 1, 1, 2, 2, 2});
  // Zero-size dims.
  Tensor z = Tensor::zeros({3, 0, 2});
  EXPECT_EQ(z.view({0, 5}).shape(), (Shape{0, 5}));
  EXPECT_EQ(z.reshape({-1, 2}).shape(), (Shape{0, 2}));
  EXPECT_TRUE(z.to_vector<float>().empty());
  EXPECT_EQ(kernels::slice(t, 1, 2, 1).shape(), (Shape{2, 0, 4}));
  // item() of an offset i64 view keeps all 64 bits; from_vector converts to the dtype given.
  Tensor i = Tensor::from_vector(std::vector<int64_t>{5, (int64_t{1} << 60) + 1}, {2});
  EXPECT_EQ(kernels::select(i, 0, 1).item<int64_t>(), (int64_t{1} << 60) + 1);
  EXPECT_EQ(Tensor::from_vector(std::vector<double>{2.5}, {1}, DType::i32).item<int32_t>(), 2);
  EXPECT_TRUE(Tensor::from_vector(std::vector<float>{-0.5f}, {1}, DType::boolean).item<bool>());
  EXPECT_EQ(Tensor::from_vector(std::vector<int64_t>{257}, {1}, DType::bf16).item<float>(), 256.f);
}

}  // namespace
}  // namespace sp
