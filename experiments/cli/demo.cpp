#include "experiments/cli/demo.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "experiments/cli/command.h"
#include "tensor/kernels.h"

namespace sp::cli {
namespace {

struct Dataset {
  Tensor x;  // [N, 2] f32
  Tensor y;  // [N] i64, 0 or 1
};

// Four Gaussian blobs at (+-1, +-1); the label is the XOR of the two coordinates' signs,
// so no line separates the classes and the hidden layer has to earn its keep.
Dataset make_xor_blobs(int64_t n, double noise, Generator& gen) {
  NoGradGuard no_grad;
  Tensor bits = cast(bernoulli({n, 2}, 0.5, &gen), DType::f32);  // [N, 2] of 0/1
  Tensor a = bits.select(1, 0);
  Tensor b = bits.select(1, 1);
  Tensor label = a + b - 2.0 * a * b;  // xor, exact in f32
  Tensor x = (bits * 2.0 - 1.0) + normal({n, 2}, 0, noise, DType::f32, &gen);
  return {x, cast(label, DType::i64)};
}

// x: [B, 2] -> logits [B, 2]; tanh(x W1^T + b1) W2^T + b2.
struct Mlp {
  Tensor w1, b1, w2, b2;

  Mlp(int hidden, Generator& gen) {
    // PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
    const double k1 = 1.0 / std::sqrt(2.0);
    const double k2 = 1.0 / std::sqrt(static_cast<double>(hidden));
    w1 = uniform({hidden, 2}, -k1, k1, DType::f32, &gen).requires_grad_();
    b1 = uniform({hidden}, -k1, k1, DType::f32, &gen).requires_grad_();
    w2 = uniform({2, hidden}, -k2, k2, DType::f32, &gen).requires_grad_();
    b2 = uniform({2}, -k2, k2, DType::f32, &gen).requires_grad_();
  }
  std::vector<Tensor*> parameters() { return {&w1, &b1, &w2, &b2}; }
  Tensor forward(const Tensor& x) const { return linear(tanh(linear(x, w1, b1)), w2, b2); }
};

// SGD with momentum, PyTorch's form: v = momentum * v + g; p -= lr * v.
// A stand-in until nn/optim lands.
class Sgd {
 public:
  Sgd(std::vector<Tensor*> params, double lr, double momentum)
      : params_(std::move(params)), lr_(lr), momentum_(momentum) {
    for (Tensor* p : params_) velocity_.push_back(Tensor::zeros(p->shape(), p->dtype()));
  }
  void step() {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      Tensor& p = *params_[i];
      velocity_[i] = velocity_[i] * momentum_ + p.grad();
      kernels::copy_(p, p - velocity_[i] * lr_);
      p.zero_grad();
    }
  }

 private:
  std::vector<Tensor*> params_;
  std::vector<Tensor> velocity_;
  double lr_, momentum_;
};

// The fraction of points whose arg-max logit is the label.
double accuracy(const Mlp& model, const Dataset& data) {
  NoGradGuard no_grad;
  Tensor predicted = cast(argmax(model.forward(data.x), 1), DType::f32);
  return mean(cast(eq(predicted, cast(data.y, DType::f32)), DType::f32)).item();
}

}  // namespace

int run_demo(const DemoOptions& o, std::ostream& out) {
  const auto start = std::chrono::steady_clock::now();
  Generator gen(o.seed);
  constexpr int64_t kTrain = 1024, kTest = 1024;
  constexpr double kNoise = 0.3;
  const Dataset train = make_xor_blobs(kTrain, kNoise, gen);
  const Dataset test = make_xor_blobs(kTest, kNoise, gen);
  Mlp model(o.hidden, gen);
  Sgd optimizer(model.parameters(), o.lr, o.momentum);

  out << "Training a 2 -> " << o.hidden << " -> 2 tanh MLP on XOR blobs (" << kTrain
      << " training points, noise " << kNoise << ", seed " << o.seed << "), batch " << o.batch
      << ", SGD lr " << o.lr << " momentum " << o.momentum << "\n";
  double loss_sum = 0;
  int loss_count = 0;
  for (int step = 1; step <= o.steps; ++step) {
    Tensor idx = randint({o.batch}, 0, kTrain, DType::i64, &gen);
    Tensor loss =
        cross_entropy(model.forward(index_select(train.x, 0, idx)), index_select(train.y, 0, idx));
    loss.backward();
    optimizer.step();
    loss_sum += loss.item();
    ++loss_count;
    if (step % o.log_every == 0 || step == o.steps) {
      char line[128];
      std::snprintf(line, sizeof line, "step %5d  loss %.4f  held-out accuracy %5.1f%%\n", step,
                    loss_sum / loss_count, 100 * accuracy(model, test));
      out << line;
      loss_sum = 0;
      loss_count = 0;
    }
  }

  const double acc = accuracy(model, test);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[160];
  std::snprintf(line, sizeof line,
                "final held-out accuracy %.1f%% (%s %.0f%%) after %d steps in %.2f s\n", 100 * acc,
                acc >= o.min_accuracy ? "reaches" : "BELOW", 100 * o.min_accuracy, o.steps,
                seconds);
  out << line;
  return acc >= o.min_accuracy ? 0 : 1;
}

namespace {

std::function<int()> setup_demo(CLI::App& sub) {
  auto options = std::make_shared<DemoOptions>();
  sub.add_option("--steps", options->steps, "Training steps")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--seed", options->seed, "Seed for data, initialisation and batches")
      ->capture_default_str();
  sub.add_option("--lr", options->lr, "Learning rate")->check(positive())->capture_default_str();
  sub.add_option("--hidden", options->hidden, "Hidden units")
      ->check(positive())
      ->capture_default_str();
  sub.add_option("--batch", options->batch, "Batch size")->check(positive())->capture_default_str();
  sub.add_option("--log-every", options->log_every, "Print every this many steps")
      ->check(positive())
      ->capture_default_str();
  return [options] { return run_demo(*options, std::cout); };
}

}  // namespace

SP_REGISTER_COMMAND(demo, "Train a two-layer MLP on XOR-like data (exit 1 below 95% accuracy)",
                    setup_demo);

}  // namespace sp::cli
