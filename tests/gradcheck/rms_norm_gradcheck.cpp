// Gradcheck of the fused RMS norm backward.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_rms_norm) {
  Fn with_weight = [](const std::vector<Tensor>& in) { return rms_norm(in[0], in[1], 1e-6); };
  EXPECT_GRADCHECK(with_weight,
                   {leaf(test_tensor({3, 4}, 1)), leaf(test_tensor({4}, 2, DType::f64, 1.0, 0.5))});
  EXPECT_GRADCHECK(with_weight, {leaf(test_tensor({2, 3, 5}, 3)), leaf(test_tensor({5}, 4))});
  EXPECT_GRADCHECK(with_weight,
                   {leaf(non_contiguous(test_tensor({4, 3}, 5))), leaf(test_tensor({3}, 6))});
  // One of the two frozen: the kernel computes only the other gradient.
  EXPECT_GRADCHECK(with_weight, {test_tensor({3, 4}, 7), leaf(test_tensor({4}, 8))});
  EXPECT_GRADCHECK(with_weight, {leaf(test_tensor({3, 4}, 9)), test_tensor({4}, 10)});
  Fn no_weight = [](const std::vector<Tensor>& in) { return rms_norm(in[0], Tensor(), 1e-6); };
  EXPECT_GRADCHECK(no_weight, {leaf(test_tensor({3, 4}, 11))});
  EXPECT_GRADCHECK(no_weight, {leaf(non_contiguous(test_tensor({3, 4}, 12)))});
}

}  // namespace
}  // namespace sp
