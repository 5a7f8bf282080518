// Gradchecks of softmax and log-softmax on the last and other dims, non-contiguous inputs.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_softmax) {
  Fn last = [](const std::vector<Tensor>& in) { return softmax(in[0]); };
  Fn first = [](const std::vector<Tensor>& in) { return softmax(in[0], 0); };
  Fn mid = [](const std::vector<Tensor>& in) { return softmax(in[0], 1) * in[1]; };
  EXPECT_GRADCHECK(last, {leaf(test_tensor({3, 4}, 1, DType::f64, 3.0))});
  EXPECT_GRADCHECK(last, {leaf(non_contiguous(test_tensor({3, 4}, 2, DType::f64, 3.0)))});
  EXPECT_GRADCHECK(first, {leaf(test_tensor({3, 4}, 3, DType::f64, 3.0))});
  EXPECT_GRADCHECK(
      mid, {leaf(test_tensor({2, 3, 2}, 4, DType::f64, 3.0)), leaf(test_tensor({2, 3, 2}, 5))});
}

TEST(Gradcheck, gradcheck_add_softmax) {
  // Gradients for both inputs, the bias broadcast over the leading dims, as attention's.
  Fn fn = [](const std::vector<Tensor>& in) { return add_softmax(in[0], in[1]) * in[2]; };
  EXPECT_GRADCHECK(
      fn, {leaf(test_tensor({2, 3, 4}, 9, DType::f64, 3.0)),
           leaf(test_tensor({1, 3, 4}, 10, DType::f64, 3.0)), leaf(test_tensor({2, 3, 4}, 11))});
  EXPECT_GRADCHECK(fn,
                   {leaf(non_contiguous(test_tensor({3, 4}, 12, DType::f64, 3.0))),
                    leaf(test_tensor({3, 1}, 13, DType::f64, 3.0)), leaf(test_tensor({3, 4}, 14))});
}

TEST(Gradcheck, gradcheck_log_softmax) {
  Fn last = [](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); };
  Fn first = [](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); };
  EXPECT_GRADCHECK(last, {leaf(test_tensor({3, 4}, 6, DType::f64, 3.0))});
  EXPECT_GRADCHECK(last, {leaf(non_contiguous(test_tensor({3, 4}, 7, DType::f64, 3.0)))});
  EXPECT_GRADCHECK(first, {leaf(non_contiguous(test_tensor({4, 3}, 8, DType::f64, 3.0)))});
}

}  // namespace
}  // namespace sp
