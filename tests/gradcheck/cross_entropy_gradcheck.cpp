// Gradcheck of the fused cross-entropy: every reduction, ignore_index and z-loss.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::leaf;
using testing::non_contiguous;
using testing::test_tensor;
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

TEST(Gradcheck, gradcheck_cross_entropy) {
  const Tensor targets = Tensor::from_vector<int64_t>({2, -100, 0, 4});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (double z : {0.0, 0.1}) {
      CrossEntropyOptions o;
      o.reduction = r;
      o.z_loss = z;
      Fn f = [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets, o); };
      SCOPED_TRACE(::testing::Message() << "reduction " << static_cast<int>(r) << " z " << z);
      EXPECT_GRADCHECK(f, {leaf(test_tensor({4, 5}, 1, DType::f64, 2.0))});
      EXPECT_GRADCHECK(f, {leaf(non_contiguous(test_tensor({4, 5}, 2, DType::f64, 2.0)))});
    }
  }
  // [B, T, V] logits, i32 targets, another ignore_index.
  CrossEntropyOptions o;
  o.ignore_index = 1;
  o.z_loss = 0.05;
  const Tensor t3 = Tensor::from_vector<int32_t>({0, 1, 2, 3, 1, 2}, {2, 3});
  Fn f3 = [&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t3, o); };
  EXPECT_GRADCHECK(f3, {leaf(test_tensor({2, 3, 4}, 3, DType::f64, 2.0))});
}

}  // namespace
}  // namespace sp
