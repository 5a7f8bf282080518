// Gradchecks of cat, stack, index_select and gather.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_cat) {
  Fn rows = [](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[2]}, 0); };
  EXPECT_GRADCHECK(rows, {leaf(test_tensor({2, 3}, 1)), leaf(test_tensor({1, 3}, 2)),
                          leaf(non_contiguous(test_tensor({3, 3}, 3)))});
  Fn cols = [](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[0]}, -1); };
  EXPECT_GRADCHECK(cols, {leaf(test_tensor({3, 2}, 4)), test_tensor({3, 4}, 5)});
}

TEST(Gradcheck, gradcheck_stack) {
  Fn first = [](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, 0); };
  EXPECT_GRADCHECK(first,
                   {leaf(test_tensor({3, 4}, 6)), leaf(non_contiguous(test_tensor({3, 4}, 7)))});
  Fn last = [](const std::vector<Tensor>& in) { return stack({in[0], in[1], in[0]}, -1); };
  EXPECT_GRADCHECK(last, {leaf(test_tensor({3, 4}, 8)), leaf(test_tensor({3, 4}, 9))});
}

TEST(Gradcheck, gradcheck_index_select) {
  const Tensor index = Tensor::from_vector(std::vector<int64_t>{2, 0, 2, 3, 2});
  Fn f0 = [index](const std::vector<Tensor>& in) { return index_select(in[0], 0, index); };
  EXPECT_GRADCHECK(f0, {leaf(test_tensor({4, 3}, 10))});
  Fn f1 = [index](const std::vector<Tensor>& in) { return index_select(in[0], 1, index); };
  EXPECT_GRADCHECK(f1, {leaf(non_contiguous(test_tensor({3, 4}, 11)))});
}

TEST(Gradcheck, gradcheck_gather) {
  const Tensor i1 = Tensor::from_vector(
      std::vector<int64_t>{0, 3, 3, 1, 2, 2, 2, 0, 1, 1, 3, 0, 0, 0, 2}, {3, 5});
  Fn f1 = [i1](const std::vector<Tensor>& in) { return gather(in[0], 1, i1); };
  EXPECT_GRADCHECK(f1, {leaf(test_tensor({3, 4}, 12))});
  EXPECT_GRADCHECK(f1, {leaf(non_contiguous(test_tensor({3, 4}, 13)))});
  const Tensor i0 = Tensor::from_vector(std::vector<int64_t>{2, 0, 2, 1}, {2, 2});
  Fn f0 = [i0](const std::vector<Tensor>& in) { return gather(in[0], 0, i0); };
  EXPECT_GRADCHECK(f0, {leaf(test_tensor({3, 4}, 14))});
}

}  // namespace
}  // namespace sp
