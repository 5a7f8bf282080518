// Module registration, state dicts, modes, conversion; Linear, Embedding, RMSNorm, Dropout, init.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "autograd/ops.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/rms_norm.h"
#include "test_util.h"

namespace sp {
namespace {

using sp::testing::expect_values;
using sp::testing::test_tensor;

// Names as in Hugging Face: "layer.0.q.weight", "norm.weight", "scale" (a buffer).
class Block : public Module {
 public:
  Block() : q(3, 2, false), norm(2) {
    register_module("q", &q);
    register_module("norm", &norm);
  }
  Linear q;
  RMSNorm norm;
};

class Net : public Module {
 public:
  Net() : emb(5, 3), drop(0.5) {
    register_module("emb", &emb);
    for (int i = 0; i < 2; ++i) {
      blocks.push_back(std::make_unique<Block>());
      register_module("layer." + std::to_string(i), blocks.back().get());
    }
    register_module("drop", &drop);
    scale = Tensor::full(Shape{2}, 2.0);
    register_buffer("scale", &scale);
  }
  Embedding emb;
  std::vector<std::unique_ptr<Block>> blocks;
  Dropout drop;
  Tensor scale;
};

std::vector<std::string> names_of(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

TEST(Module, named_parameters_are_dotted_in_registration_order) {
  Net net;
  EXPECT_EQ(names_of(net.named_parameters()),
            (std::vector<std::string>{"emb.weight", "layer.0.q.weight", "layer.0.norm.weight",
                                      "layer.1.q.weight", "layer.1.norm.weight"}));
  EXPECT_EQ(
      names_of(net.state_dict()),
      (std::vector<std::string>{"scale", "emb.weight", "layer.0.q.weight", "layer.0.norm.weight",
                                "layer.1.q.weight", "layer.1.norm.weight"}));
  EXPECT_EQ(net.num_parameters(), 15 + 2 * (6 + 2));
  EXPECT_EQ(net.named_modules().size(), 1u + 1 + 2 * 3 + 1);
  EXPECT_EQ(net.named_modules()[3].first, "layer.0.q");
}

TEST(Module, state_dict_round_trip_keeps_handles) {
  Net a, b;
  init::normal_(a.emb.weight, 0, 1);
  init::uniform_(a.blocks[1]->q.weight, -1, 1);
  Tensor held = b.emb.weight;  // as an optimizer would hold it
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(held.to_vector<float>(), a.emb.weight.to_vector<float>());
  EXPECT_EQ(b.blocks[1]->q.weight.to_vector<float>(), a.blocks[1]->q.weight.to_vector<float>());
  EXPECT_TRUE(held.is_same(b.emb.weight));
}

TEST(Module, strict_load_lists_every_problem) {
  Net net;
  NamedTensors sd = net.state_dict();
  sd.erase(sd.begin() + 2);                                         // layer.0.q.weight missing
  sd.emplace_back("layer.7.q.weight", Tensor::zeros(Shape{2, 3}));  // unexpected
  sd[1].second = Tensor::zeros(Shape{4, 3});                        // emb.weight mis-shaped
  try {
    net.load_state_dict(sd);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("[load_state_dict]"), std::string::npos) << m;
    EXPECT_NE(m.find("1 missing:\n    layer.0.q.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("1 unexpected:\n    layer.7.q.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("emb.weight: expected [5, 3], got [4, 3]"), std::string::npos) << m;
  }
  LoadStateDictResult r = net.load_state_dict(sd, /*strict=*/false);
  EXPECT_EQ(r.missing, std::vector<std::string>{"layer.0.q.weight"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"layer.7.q.weight"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_FALSE(r.ok());
}

TEST(Module, load_converts_dtype) {
  Net net;
  NamedTensors sd = net.state_dict();
  for (auto& [n, t] : sd) t = Tensor::full(t.shape(), 1.5, DType::bf16);
  net.load_state_dict(sd);
  EXPECT_EQ(net.emb.weight.dtype(), DType::f32);
  EXPECT_FLOAT_EQ(net.emb.weight.to_vector<float>()[4], 1.5f);
}

TEST(Module, train_eval_recurse) {
  Net net;
  EXPECT_TRUE(net.blocks[1]->norm.is_training());
  net.eval();
  EXPECT_FALSE(net.blocks[1]->norm.is_training());
  EXPECT_FALSE(net.drop.is_training());
  net.train();
  EXPECT_TRUE(net.drop.is_training());
}

TEST(Module, requires_grad_freezes_recursively) {
  Net net;
  EXPECT_EQ(net.num_parameters(true), net.num_parameters());
  net.requires_grad_(false);
  EXPECT_EQ(net.num_parameters(true), 0);
  net.blocks[0]->q.requires_grad_(true);
  EXPECT_EQ(net.num_parameters(true), 6);
  EXPECT_TRUE(net.blocks[0]->q.weight.requires_grad());
  EXPECT_FALSE(net.emb.weight.requires_grad());
}

TEST(Module, to_dtype_rebinds_and_keeps_flags) {
  Net net;
  init::constant_(net.emb.weight, 0.25);
  net.blocks[0]->norm.requires_grad_(false);
  net.to(DType::bf16);
  EXPECT_EQ(net.emb.weight.dtype(), DType::bf16);
  EXPECT_EQ(net.scale.dtype(), DType::bf16);
  EXPECT_FLOAT_EQ(net.emb.weight.to_vector<float>()[0], 0.25f);
  EXPECT_TRUE(net.emb.weight.requires_grad());
  EXPECT_FALSE(net.blocks[0]->norm.weight.requires_grad());
  EXPECT_EQ(net.named_parameters()[0].second.dtype(), DType::bf16);
}

TEST(Module, duplicate_names_throw) {
  struct Bad : Module {
    Bad() : a(Tensor::zeros(Shape{1})) {
      register_parameter("a", &a);
      register_parameter("a", &a);
    }
    Tensor a;
  };
  EXPECT_THROW_MSG(Bad(), "[Module] name registered twice: a");
}

// An unset (undefined) buffer is in neither the state dict nor what load_state_dict wants.
TEST(Module, undefined_buffer_round_trips) {
  struct WithOptional : Module {
    WithOptional() : lin(2, 2) {
      register_module("lin", &lin);
      register_buffer("cache", &cache);
    }
    Linear lin;
    Tensor cache;  // filled later, maybe never
  };
  WithOptional m;
  const NamedTensors sd = m.state_dict();
  EXPECT_EQ(names_of(sd), (std::vector<std::string>{"lin.weight", "lin.bias"}));
  EXPECT_TRUE(m.load_state_dict(sd).ok());
  EXPECT_EQ(m.tensor_slots().size(), sd.size());
}

TEST(Module, find_parameter) {
  Net net;
  EXPECT_EQ(net.find_parameter("layer.1.norm.weight"), &net.blocks[1]->norm.weight);
  EXPECT_EQ(net.find_parameter("scale"), nullptr);
  EXPECT_EQ(net.find_tensor("scale"), &net.scale);
}

TEST(Layers, linear_matches_hand_computation) {
  Linear lin(2, 3, true);
  lin.load_state_dict(
      {{"weight", Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, Shape{3, 2}, DType::f32)},
       {"bias", Tensor::from_vector<double>({0.5, -1, 0}, Shape{3}, DType::f32)}});
  Tensor x = Tensor::from_vector<double>({1, -1, 2, 0.5}, Shape{2, 2}, DType::f32);
  // row 0: [1-2+.5, 3-4-1, 5-6]; row 1: [2+1+.5, 6+2-1, 10+3]
  expect_values(lin.forward(x), {-0.5, -2, -1, 3.5, 7, 13});
  EXPECT_THROW_MSG(lin.forward(Tensor::zeros(Shape{2, 3})),
                   "[Linear] input is [2, 3] f32, expected last dim 2");
  Linear nb(2, 3, false);
  EXPECT_EQ(nb.named_parameters().size(), 1u);
}

TEST(Layers, embedding_and_rms_norm) {
  Embedding emb(3, 2);
  emb.load_state_dict(
      {{"weight", Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, Shape{3, 2}, DType::f32)}});
  expect_values(emb.forward(Tensor::from_vector<int64_t>({2, 0}, Shape{2})), {5, 6, 1, 2});
  RMSNorm norm(2, 0.0);
  Tensor x = Tensor::from_vector<double>({3, 4}, Shape{1, 2}, DType::f32);
  const double r = 1 / std::sqrt(12.5);
  expect_values(norm.forward(x), {3 * r, 4 * r}, 1e-6);
}

TEST(Layers, dropout_follows_training_flag) {
  Generator gen(7);
  Dropout d(0.5, &gen);
  Tensor x = Tensor::ones(Shape{4000});
  std::vector<float> y = d.forward(x).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros += v == 0.0f;
  }
  EXPECT_NEAR(zeros / 4000.0, 0.5, 0.05);
  d.eval();
  EXPECT_EQ(d.forward(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW_MSG(Dropout(1.0), "[Dropout] p must be in [0, 1)");
}

TEST(Init, normal_uniform_constant) {
  Generator gen(3);
  Tensor t = Tensor::zeros(Shape{200, 50});
  t.requires_grad_(true);
  Tensor held = t;
  init::normal_(t, 1.0, 2.0, &gen);
  EXPECT_TRUE(held.is_same(t));
  EXPECT_TRUE(t.requires_grad());
  std::vector<double> v = t.to_vector<double>();
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= v.size();
  for (double x : v) s += (x - m) * (x - m);
  s = std::sqrt(s / v.size());
  EXPECT_NEAR(m, 1.0, 0.1);
  EXPECT_NEAR(s, 2.0, 0.1);
  init::uniform_(t, 2, 3, &gen);
  for (double x : t.to_vector<double>()) EXPECT_TRUE(x >= 2 && x < 3);
  init::constant_(t, -4);
  EXPECT_EQ(t.to_vector<double>()[9999], -4);
  Generator g1(11), g2(11);
  Tensor a = Tensor::zeros(Shape{8}), b = Tensor::zeros(Shape{8});
  init::normal_(a, 0, 1, &g1);
  init::normal_(b, 0, 1, &g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  Tensor ints = Tensor::zeros(Shape{2}, DType::i64);
  EXPECT_THROW_MSG(init::normal_(ints), "needs a floating tensor");
}

}  // namespace
}  // namespace sp
