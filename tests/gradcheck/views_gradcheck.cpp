// Gradchecks of Tensor's differentiable views and conversions.
#include <gtest/gtest.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_reshape) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].reshape({3, -1}) * 2.0; };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({2, 6}, 1))});
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({4, 3}, 2)))});  // copies
}

TEST(Gradcheck, gradcheck_view) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].view({2, 2, 3}) * 2.0; };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({4, 3}, 3))});
}

TEST(Gradcheck, gradcheck_permute) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}) * in[1]; };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({2, 3, 4}, 4)), leaf(test_tensor({4, 2, 3}, 5))});
}

TEST(Gradcheck, gradcheck_transpose) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].transpose(0, 1) * in[1]; };
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({3, 4}, 6))), leaf(test_tensor({4, 3}, 7))});
}

TEST(Gradcheck, gradcheck_slice) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].slice(1, 1, 5, 2) * in[0].slice(1, 0, 2); };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({3, 6}, 8))});
}

TEST(Gradcheck, gradcheck_narrow) {
  Fn f = [](const std::vector<Tensor>& in) { return square(in[0].narrow(0, 1, 2)); };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({4, 3}, 9))});
}

TEST(Gradcheck, gradcheck_select) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].select(1, -1) * in[0].select(1, 0); };
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({3, 4}, 10)))});
}

TEST(Gradcheck, gradcheck_flatten) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].flatten(1, 2) * in[1]; };
  EXPECT_GRADCHECK(
      f, {leaf(non_contiguous(test_tensor({2, 3, 4}, 30))), leaf(test_tensor({2, 12}, 31))});
  Fn all = [](const std::vector<Tensor>& in) { return square(in[0].flatten()); };
  EXPECT_GRADCHECK(all, {leaf(test_tensor({3, 4}, 32))});
  EXPECT_GRADCHECK(all, {leaf(test_tensor({}, 33))});  // a scalar becomes [1]
}

TEST(Gradcheck, gradcheck_mT) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].mT() * in[1]; };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({2, 3, 4}, 34)), leaf(test_tensor({2, 4, 3}, 35))});
}

TEST(Gradcheck, gradcheck_expand) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 4}) * in[1]; };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({3, 1}, 11)), leaf(test_tensor({2, 3, 4}, 12))});
}

TEST(Gradcheck, gradcheck_squeeze_unsqueeze) {
  Fn f = [](const std::vector<Tensor>& in) {
    return in[0].unsqueeze(1).squeeze(2) * in[1].squeeze();
  };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({3, 1}, 13)), leaf(test_tensor({1, 3, 1}, 14))});
}

TEST(Gradcheck, gradcheck_contiguous_clone) {
  Fn f = [](const std::vector<Tensor>& in) { return in[0].contiguous() * in[0].clone(); };
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({3, 4}, 15)))});
}

TEST(Gradcheck, GradcheckCatchesAWrongBackward) {
  // An op whose backward is deliberately wrong (a factor of 2 missing) must fail gradcheck.
  Fn wrong = [](const std::vector<Tensor>& in) {
    Tensor out = kernels::binary(BinaryOp::mul, in[0], in[0]);
    record("wrong_square", out, {in[0]}, [x = in[0]](const Tensor& g, Inputs& inputs) {
      inputs.accumulate(0, g * x.detach());
    });
    return out;
  };
  const GradcheckResult r = gradcheck(wrong, {leaf(test_tensor({3}, 16, DType::f64, 1.0, 2.0))});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("input 0 element 0"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace sp
