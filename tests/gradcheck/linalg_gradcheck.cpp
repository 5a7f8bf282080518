// Gradcheck of matmul and linear: batches, broadcast batch dims, transposed inputs, 1-D
// operands, frozen operands.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_matmul) {
  Fn mm = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({3, 4}, 1)), leaf(test_tensor({4, 2}, 2))});
  // batched, and broadcast batch dims on either side
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({2, 3, 4}, 3)), leaf(test_tensor({2, 4, 2}, 4))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({2, 3, 4}, 5)), leaf(test_tensor({4, 2}, 6))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({3, 4}, 7)), leaf(test_tensor({2, 4, 2}, 8))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({2, 1, 3, 4}, 9)), leaf(test_tensor({1, 2, 4, 2}, 10))});
  // transposed (non-contiguous) inputs
  EXPECT_GRADCHECK(mm, {leaf(non_contiguous(test_tensor({3, 4}, 11))),
                        leaf(non_contiguous(test_tensor({4, 2}, 12)))});
  EXPECT_GRADCHECK(mm, {leaf(non_contiguous(test_tensor({2, 3, 4}, 13))),
                        leaf(non_contiguous(test_tensor({4, 2}, 14)))});
  // 1-D operands
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({4}, 15)), leaf(test_tensor({4, 3}, 16))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({3, 4}, 17)), leaf(test_tensor({4}, 18))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({4}, 19)), leaf(test_tensor({4}, 20))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({2, 3, 4}, 21)), leaf(test_tensor({4}, 22))});
  // one operand frozen
  EXPECT_GRADCHECK(mm, {test_tensor({2, 3, 4}, 23), leaf(test_tensor({4, 2}, 24))});
  EXPECT_GRADCHECK(mm, {leaf(test_tensor({2, 3, 4}, 25)), test_tensor({4, 2}, 26)});
}

TEST(Gradcheck, gradcheck_linear) {
  Fn with_bias = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  Fn no_bias = [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); };
  EXPECT_GRADCHECK(with_bias, {leaf(test_tensor({3, 4}, 1)), leaf(test_tensor({2, 4}, 2)),
                               leaf(test_tensor({2}, 3))});
  EXPECT_GRADCHECK(no_bias, {leaf(test_tensor({3, 4}, 4)), leaf(test_tensor({2, 4}, 5))});
  // 3-D input, rows flattened
  EXPECT_GRADCHECK(with_bias, {leaf(test_tensor({2, 3, 4}, 6)), leaf(test_tensor({5, 4}, 7)),
                               leaf(test_tensor({5}, 8))});
  EXPECT_GRADCHECK(no_bias, {leaf(test_tensor({2, 3, 4}, 9)), leaf(test_tensor({5, 4}, 10))});
  // a transposed input that cannot be flattened without a copy, a transposed weight
  EXPECT_GRADCHECK(with_bias,
                   {leaf(non_contiguous(test_tensor({2, 3, 4}, 11))),
                    leaf(non_contiguous(test_tensor({5, 4}, 12))), leaf(test_tensor({5}, 13))});
  // 1-D input; frozen weight; frozen input
  EXPECT_GRADCHECK(with_bias, {leaf(test_tensor({4}, 14)), leaf(test_tensor({3, 4}, 15)),
                               leaf(test_tensor({3}, 16))});
  EXPECT_GRADCHECK(with_bias, {leaf(test_tensor({2, 3, 4}, 17)), test_tensor({5, 4}, 18),
                               leaf(test_tensor({5}, 19))});
  EXPECT_GRADCHECK(
      with_bias, {test_tensor({2, 3, 4}, 20), leaf(test_tensor({5, 4}, 21)), test_tensor({5}, 22)});
}

}  // namespace
}  // namespace sp
