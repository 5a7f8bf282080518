// The engine: accumulation, needs-grad, grad mode, detach, release of saved tensors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "nn/optim/sgd.h"
#include "tensor/allocator.h"
#include "tensor/kernels.h"
#include "test_util.h"

namespace sp {
namespace {

using testing::expect_values;
using testing::leaf;

TEST(Autograd, LeafGradientsAccumulateAcrossPasses) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{1, 2, 3}));
  sum(x * 2.0).backward();
  expect_values(x.grad(), {2, 2, 2});
  sum(x * 3.0).backward();
  expect_values(x.grad(), {5, 5, 5});
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, DiamondSumsBothPaths) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{1, -2, 0.5}));
  Tensor y = x * x + x;  // dy/dx = 2x + 1
  y.backward(Tensor::ones({3}, DType::f64));
  expect_values(x.grad(), {3, -3, 2});
}

TEST(Autograd, SameInputTwiceGetsBothContributions) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{3}));
  (x * x).backward();
  expect_values(x.grad(), {6});
}

TEST(Autograd, GivenGradientAndImplicitGradientRules) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{1, 2}));
  Tensor y = x * 3.0;
  y.backward(Tensor::from_vector(std::vector<double>{1, 10}));
  expect_values(x.grad(), {3, 30});
  EXPECT_THROW_MSG((x * 3.0).backward(),
                   "[backward] a gradient can be implied only for a one-element");
  EXPECT_THROW_MSG((x * 3.0).backward(Tensor::ones({3}, DType::f64)),
                   "[backward] gradient shape [3]");
  EXPECT_THROW_MSG(Tensor::ones({1}).backward(), "[backward] the tensor does not require grad");
}

TEST(Autograd, GraphRunsOnce) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{1, 2}));
  Tensor loss = sum(exp(x));
  loss.backward();
  EXPECT_THROW_MSG(loss.backward(), "was already used by a backward pass");
}

TEST(Autograd, FrozenInputsGetNoGradient) {
  Tensor a = leaf(Tensor::from_vector(std::vector<float>{1, 2}));
  Tensor b = Tensor::from_vector(std::vector<float>{3, 4});  // frozen
  sum(a * b).backward();
  expect_values(a.grad(), {3, 4});
  EXPECT_FALSE(b.grad().defined());
  EXPECT_FALSE(b.requires_grad());
}

TEST(Autograd, NoGradGuardAndDetach) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{1, 2}));
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE(GradMode::is_enabled());
  Tensor y = x * 2.0;
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  Tensor d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), y.storage());
  EXPECT_THROW_MSG(y.requires_grad_(false),
                   "[requires_grad_] only leaves can change requires_grad");
  EXPECT_THROW_MSG(Tensor::arange(3).requires_grad_(), "only floating tensors can require grad");
}

TEST(Autograd, GradientsFlowThroughViews) {
  Tensor x = leaf(Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}));
  Tensor y = x.mT().slice(0, 1, 3).reshape({4});  // rows 1..2 of x^T = columns 1..2 of x
  sum(y * Tensor::from_vector(std::vector<double>{1, 2, 3, 4})).backward();
  // y = [x01, x11, x02, x12]
  expect_values(x.grad(), {0, 1, 3, 0, 2, 4});
}

TEST(Autograd, BackwardReleasesSavedTensors) {
  Tensor w1 = leaf(testing::test_tensor({64, 128}, 1, DType::f32));
  Tensor w2 = leaf(testing::test_tensor({128, 32}, 2, DType::f32));
  const Tensor x = testing::test_tensor({16, 64}, 3, DType::f32);
  const int64_t params_and_input = cpu_memory_stats().current_bytes;
  Tensor loss = [&] {
    Tensor h = tanh(matmul(x, w1));
    Tensor y = sigmoid(matmul(h, w2));
    return mean(y * y);  // the activations are now held only by the graph
  }();
  EXPECT_GT(cpu_memory_stats().current_bytes, params_and_input + 16 * 128 * 4);
  loss.backward();
  const int64_t grads = (64 * 128 + 128 * 32) * 4;
  const int64_t loss_bytes = 4;
  EXPECT_EQ(cpu_memory_stats().current_bytes, params_and_input + grads + loss_bytes);
  EXPECT_TRUE(w1.grad().defined());
  EXPECT_TRUE(w2.grad().defined());
}

}  // namespace
TEST(Autograd, SetGradChecksDtype) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{1, 2, 3}));
  EXPECT_THROW_MSG(x.set_grad(Tensor::zeros({3}, DType::f64)),
                   "[set_grad] gradient dtype f64 differs from the tensor's f32");
  EXPECT_FALSE(x.grad().defined());
}

// A gradient set from a broadcast view (stride 0) must not be accumulated into in place:
// its elements share one memory cell.
TEST(Autograd, AccumulatesIntoAStridedGivenGradient) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{1, 2, 3}));
  x.set_grad(kernels::expand(Tensor::zeros({1}), Shape{3}));
  sum(x * Tensor::from_vector(std::vector<float>{1, 2, 3})).backward();
  expect_values(x.grad(), {1, 2, 3});
  EXPECT_TRUE(x.grad().is_contiguous());
}

// Destroying a graph must not recurse once per node: a loss summed over many steps
// without detach makes a chain as long as the run.
TEST(Autograd, LongGraphsDestroyWithoutDeepRecursion) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{1}));
  const Tensor c = Tensor::from_vector(std::vector<float>{1});
  for (bool run_backward : {true, false}) {
    Tensor y = x;
    for (int i = 0; i < 300000; ++i) y = i % 2 ? y * 1.0 : y * c;  // mul saves y itself
    if (run_backward) sum(y).backward();
  }
  expect_values(x.grad(), {1});
}

// In-place writes after a forward: refused at backward when the op saved the tensor for it,
// allowed when it did not (as PyTorch's version counter).
TEST(Autograd, BackwardRefusesASavedInputWrittenInPlace) {
  Tensor a = leaf(Tensor::from_vector(std::vector<float>{1, 2}));
  Tensor b = Tensor::from_vector(std::vector<float>{3, 4});
  Tensor y = sum(a * b);  // a's gradient reads b
  kernels::fill_(b, 5.0);
  EXPECT_THROW_MSG(y.backward(),
                   "[backward] mul: a tensor saved for its backward ([2] f32) was modified in "
                   "place after the forward (storage version 1, saved at version 0)");
}

TEST(Autograd, BackwardRefusesAWriteThroughAnotherView) {
  Tensor w = leaf(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, Shape{2, 2}));
  Tensor x = Tensor::from_vector(std::vector<float>{1, 1, 1, 1}, Shape{2, 2});
  Tensor y = sum(matmul(x, w));  // w's gradient reads x
  Tensor row = kernels::select(x, 0, 1);
  kernels::copy_(row, Tensor::from_vector(std::vector<float>{7, 7}));
  EXPECT_THROW_MSG(y.backward(), "[backward] matmul: a tensor saved for its backward");
}

TEST(Autograd, BackwardRefusesASavedOutputWrittenInPlace) {
  Tensor x = leaf(Tensor::from_vector(std::vector<float>{0, 1}));
  Tensor e = exp(x);  // exp's gradient reads its output
  Tensor y = sum(e);
  kernels::fill_(e, 0.0);
  EXPECT_THROW_MSG(y.backward(), "[backward] exp: a tensor saved for its backward");
}

TEST(Autograd, WritesToTensorsBackwardDoesNotReadAreAllowed) {
  Tensor a = leaf(Tensor::from_vector(std::vector<float>{1, 2}));
  Tensor b = Tensor::from_vector(std::vector<float>{3, 4});
  Tensor y = sum(a + b) + sum(a * b);  // add saves nothing; a's gradient in mul reads only b
  {
    NoGradGuard no_grad;
    kernels::fill_(a, 9.0);
  }
  y.backward();
  expect_values(a.grad(), {4, 5});
}

TEST(Autograd, AnOptimizerStepBeforeBackwardIsRefused) {
  Tensor w = leaf(Tensor::from_vector(std::vector<float>{1, 2}));
  optim::SGD opt({w});
  sum(w * w).backward();  // a gradient for the first step
  Tensor pending = sum(w * w);
  const uint64_t before = w.storage()->version();
  opt.step(0.1);
  EXPECT_EQ(w.storage()->version(), before + 1);
  EXPECT_THROW_MSG(pending.backward(), "[backward] mul: a tensor saved for its backward");
  opt.zero_grad();
  sum(w * w).backward();  // a new forward after the step is fine
  expect_values(w.grad(), {2 * 0.8f, 2 * 1.6f});
}

}  // namespace sp
