// Gradcheck of dropout: each evaluation builds the same generator, so the mask is fixed.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_dropout) {
  Fn f = [](const std::vector<Tensor>& in) {
    Generator gen(42);
    return dropout(in[0], 0.4, true, &gen);
  };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({4, 6}, 1))});
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({6, 4}, 2)))});
}

}  // namespace
}  // namespace sp
