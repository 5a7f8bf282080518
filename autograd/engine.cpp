// The backward pass: runs nodes in reverse creation order once all their consumers ran,
// sums gradients per node, accumulates into leaves, and releases each node's saved tensors
// as soon as it has run.
#include <queue>
#include <unordered_map>
#include <vector>

#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {
namespace {

// A leaf keeps its own contiguous gradient; later contributions are added in place.
void accumulate_into_leaf(AutogradMeta& leaf, Tensor g) {
  if (!leaf.grad.defined()) {
    // Steal g when nothing else can see its storage; otherwise copy it, so that two leaves
    // never share a gradient buffer (add's backward hands the same tensor to both inputs).
    const bool owned = g.storage().use_count() == 1 && g.is_contiguous() && g.offset() == 0 &&
                       static_cast<size_t>(g.nbytes()) == g.storage()->nbytes();
    leaf.grad = owned ? std::move(g) : kernels::clone(g);
    return;
  }
  // A gradient given with set_grad may be strided, even a broadcast view whose elements
  // share memory: adding into it in place would be wrong, so replace it by a fresh sum.
  if (!leaf.grad.is_contiguous()) {
    leaf.grad = kernels::binary(BinaryOp::add, leaf.grad, g);
    return;
  }
  backend_for(leaf.grad).binary(BinaryOp::add, leaf.grad, leaf.grad, g);
  leaf.grad.storage()->bump_version();
}

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence() < b->sequence(); }
};

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad) {
  SP_CHECK(root.requires_grad(), "[backward] the tensor does not require grad: no input of the ",
           "computation that made it requires grad (or it was made under NoGradGuard)");
  SP_CHECK(grad.shape() == root.shape(), "[backward] gradient shape ", grad.shape(),
           " differs from the tensor's shape ", root.shape());
  NoGradGuard no_grad;
  const Tensor g0 = kernels::cast(grad, root.dtype());
  const auto& meta = root.autograd_meta();
  if (!meta->grad_fn) {
    accumulate_into_leaf(*meta, g0);
    return;
  }

  // Count, for every node reachable from the root, how many edges lead into it.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{meta->grad_fn.get()};
  pending[meta->grad_fn.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (Edge& e : n->edges()) {
      if (!e.node) continue;
      auto [it, inserted] = pending.try_emplace(e.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, Tensor> buffers;
  buffers[meta->grad_fn.get()] = g0;
  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  ready.push(meta->grad_fn.get());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    Tensor g;
    if (auto it = buffers.find(n); it != buffers.end()) {
      g = std::move(it->second);
      buffers.erase(it);
    }
    std::vector<Tensor> grads;
    if (g.defined()) grads = n->apply(g);
    n->release();
    g = Tensor();
    for (size_t i = 0; i < n->edges().size(); ++i) {
      Edge& e = n->edges()[i];
      Tensor gi = i < grads.size() ? std::move(grads[i]) : Tensor();
      if (e.leaf) {
        if (gi.defined()) accumulate_into_leaf(*e.leaf, std::move(gi));
      } else if (e.node) {
        Node* next = e.node.get();
        if (gi.defined()) {
          Tensor& buf = buffers[next];
          buf = buf.defined() ? kernels::binary(BinaryOp::add, buf, gi) : std::move(gi);
        }
        if (--pending[next] == 0) ready.push(next);
      }
    }
  }
}

}  // namespace sp
