// Gradcheck of the embedding scatter-add backward.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_embedding) {
  // Repeated ids: their gradients add up in one row; row 4 gets none.
  const Tensor ids = Tensor::from_vector(std::vector<int64_t>{1, 0, 1, 3, 1, 2}, {2, 3});
  Fn f = [ids](const std::vector<Tensor>& in) { return embedding(in[0], ids); };
  EXPECT_GRADCHECK(f, {leaf(test_tensor({5, 3}, 1))});
  EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({5, 3}, 2)))});
}

}  // namespace
}  // namespace sp
