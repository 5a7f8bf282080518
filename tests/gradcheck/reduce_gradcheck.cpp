// Gradchecks of the reductions: several dims, keepdim, non-contiguous inputs.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_sum) {
  Fn last = [](const std::vector<Tensor>& in) { return sum(in[0], {1}); };
  Fn keep = [](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}, true) * in[1]; };
  Fn all = [](const std::vector<Tensor>& in) { return sum(square(in[0])); };
  EXPECT_GRADCHECK(last, {leaf(test_tensor({3, 4}, 1))});
  EXPECT_GRADCHECK(last, {leaf(non_contiguous(test_tensor({3, 4}, 2)))});
  EXPECT_GRADCHECK(keep, {leaf(test_tensor({2, 3, 4}, 3)), leaf(test_tensor({1, 3, 1}, 4))});
  EXPECT_GRADCHECK(all, {leaf(non_contiguous(test_tensor({2, 3}, 5)))});
}

TEST(Gradcheck, gradcheck_mean) {
  Fn first = [](const std::vector<Tensor>& in) { return mean(in[0], {0}) * in[1]; };
  Fn keep = [](const std::vector<Tensor>& in) { return mean(in[0], {-1, 0}, true); };
  Fn all = [](const std::vector<Tensor>& in) { return mean(square(in[0])); };
  EXPECT_GRADCHECK(first, {leaf(test_tensor({3, 4}, 6)), leaf(test_tensor({4}, 7))});
  EXPECT_GRADCHECK(keep, {leaf(non_contiguous(test_tensor({2, 3, 4}, 8)))});
  EXPECT_GRADCHECK(all, {leaf(test_tensor({3, 2}, 9))});
}

TEST(Gradcheck, gradcheck_max) {
  Fn rows = [](const std::vector<Tensor>& in) { return max(in[0], 1); };
  Fn cols = [](const std::vector<Tensor>& in) { return max(in[0], 0, true) * in[1]; };
  Fn all = [](const std::vector<Tensor>& in) { return max(in[0]); };
  EXPECT_GRADCHECK(rows, {leaf(test_tensor({3, 4}, 10))});
  EXPECT_GRADCHECK(rows, {leaf(non_contiguous(test_tensor({3, 4}, 11)))});
  EXPECT_GRADCHECK(cols, {leaf(test_tensor({3, 4}, 12)), leaf(test_tensor({1, 4}, 13))});
  EXPECT_GRADCHECK(all, {leaf(non_contiguous(test_tensor({3, 4}, 14)))});
}

TEST(Gradcheck, gradcheck_min) {
  Fn mid = [](const std::vector<Tensor>& in) { return min(in[0], 1); };
  Fn last = [](const std::vector<Tensor>& in) { return min(in[0], -1, true); };
  EXPECT_GRADCHECK(mid, {leaf(test_tensor({2, 3, 4}, 15))});
  EXPECT_GRADCHECK(last, {leaf(non_contiguous(test_tensor({3, 4}, 16)))});
}

}  // namespace
}  // namespace sp
