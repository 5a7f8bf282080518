#pragma once
// The graph: one Node per recorded op output, and record(), the one way ops join it.
//
//   Tensor out = kernels::matmul(a, b);
//   record("matmul", out, {a, b},
//          [sa = SavedTensor(a), sb = SavedTensor(b)](const Tensor& g, Inputs& in) {
//            if (in.needs_grad(0)) in.accumulate(0, matmul(g, sb.get().mT()));
//            if (in.needs_grad(1)) in.accumulate(1, matmul(sa.get().mT(), g));  // skipped when
//            frozen
//          });
//
// The lambda captures what backward needs; the engine destroys it right after it runs,
// which releases it. Every tensor whose values backward reads (inputs, index tensors, the
// op's own output) is captured as a SavedTensor, which detaches it (no cycle through the
// output's node) and checks at get() that no in-place write changed it since the forward.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <vector>

#include "autograd/grad_mode.h"
#include "tensor/tensor.h"

namespace sp {

class Node;

// Where an input's gradient goes: an earlier node, a leaf, or nowhere (no grad needed).
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<AutogradMeta> leaf;
  Shape shape;  // the input's shape and dtype, to check and cast what backward produces
  DType dtype = DType::f32;
  bool active() const { return node || leaf; }
};

// A tensor saved by a forward for its backward, with its storage's version at that time.
// Saved tensors share storage with the forward's tensors; get() throws, naming the op
// whose backward is running, when an in-place write (kernels::copy_, fill_, random_,
// matmul_into, an optimizer step) changed that storage since, which would otherwise make
// the gradients silently wrong (PyTorch's "modified by an inplace operation" check).
// Step only after backward, or save a clone.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t)
      : tensor_(t.defined() ? t.detach() : Tensor()),
        version_(t.defined() ? t.storage()->version() : 0) {}
  const Tensor& get() const;  // undefined when an undefined tensor was saved

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

// What a backward function sees of its inputs.
class Inputs {
 public:
  Inputs(const char* op, std::vector<Edge>& edges, std::vector<Tensor>& grads)
      : op_(op), edges_(edges), grads_(grads) {}
  int size() const { return static_cast<int>(edges_.size()); }
  bool needs_grad(int i) const { return edges_[i].active(); }
  // Adds g to input i's gradient. g must have the input's shape; it is cast to its dtype.
  void accumulate(int i, Tensor g);

 private:
  const char* op_;
  std::vector<Edge>& edges_;
  std::vector<Tensor>& grads_;
};

using BackwardFn = std::function<void(const Tensor& grad, Inputs& inputs)>;

class Node {
 public:
  Node(const char* name, std::vector<Edge> edges, BackwardFn fn, uint64_t sequence)
      : name_(name), edges_(std::move(edges)), fn_(std::move(fn)), sequence_(sequence) {}
  ~Node();  // iterative: a graph millions of nodes deep must not overflow the stack
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  const char* name() const { return name_; }
  std::vector<Edge>& edges() { return edges_; }
  uint64_t sequence() const { return sequence_; }  // creation order; later runs first
  bool released() const { return !fn_; }
  // Runs backward for grad; returns the gradient of each input (undefined if none).
  std::vector<Tensor> apply(const Tensor& grad);
  void release() { fn_ = nullptr; }

 private:
  const char* name_;
  std::vector<Edge> edges_;
  BackwardFn fn_;
  uint64_t sequence_;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                    // leaves: the accumulated gradient
  std::shared_ptr<Node> grad_fn;  // non-leaves: the node that made this tensor
};

// True when grad mode is on and some input requires grad: only then is recording worth it.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Attaches out to the graph with a node whose inputs are `inputs`. A no-op when
// !any_requires_grad(inputs).
void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

// Runs the backward pass from root with gradient grad (engine.cpp).
void run_backward(const Tensor& root, const Tensor& grad);

}  // namespace sp
