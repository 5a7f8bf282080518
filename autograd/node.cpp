#include "autograd/node.h"

#include <atomic>

#include "tensor/kernels.h"

namespace sp {

void Inputs::accumulate(int i, Tensor g) {
  Edge& e = edges_[i];
  if (!e.active() || !g.defined()) return;
  SP_CHECK(g.shape() == e.shape, "[autograd] backward of ", op_, " gave a gradient of shape ",
           g.shape(), " for input ", i, " of shape ", e.shape);
  g = kernels::cast(g, e.dtype);
  Tensor& acc = grads_[i];
  acc = acc.defined() ? kernels::binary(BinaryOp::add, acc, g) : g;
}

Node::~Node() {
  // Destroying a node would destroy the nodes only it holds, one stack frame each: a chain
  // as long as a training run (a loss summed over steps without detach) overflows the
  // stack. Take those nodes out here and destroy them one at a time instead. The saved
  // tensors go first, since they may hold the same nodes through their grad_fn.
  std::vector<std::shared_ptr<Node>> orphans;
  auto take = [&orphans](Node& n) {
    n.fn_ = nullptr;
    for (Edge& e : n.edges_)
      if (e.node && e.node.use_count() == 1) orphans.push_back(std::move(e.node));
  };
  take(*this);
  while (!orphans.empty()) {
    std::shared_ptr<Node> n = std::move(orphans.back());
    orphans.pop_back();
    take(*n);
  }
}

namespace {
// The op whose backward is running on this thread, for SavedTensor's message.
thread_local const char* running_backward = nullptr;
}  // namespace

const Tensor& SavedTensor::get() const {
  if (!tensor_.defined()) return tensor_;
  const uint64_t now = tensor_.storage()->version();
  SP_CHECK(now == version_, "[backward] ", running_backward ? running_backward : "an op",
           ": a tensor saved for its backward (", describe(tensor_),
           ") was modified in place after the forward (storage version ", now,
           ", saved at version ", version_,
           "), so the gradients would be wrong. Run backward before the in-place write "
           "(copy_, fill_, an optimizer step), or give the op a clone");
  return tensor_;
}

std::vector<Tensor> Node::apply(const Tensor& grad) {
  SP_CHECK(fn_, "[backward] the graph through ", name_,
           " was already used by a backward pass and its saved tensors are released");
  std::vector<Tensor> grads(edges_.size());
  Inputs inputs(name_, edges_, grads);
  const char* outer = running_backward;
  running_backward = name_;
  try {
    fn_(grad, inputs);
  } catch (...) {
    running_backward = outer;
    throw;
  }
  running_backward = outer;
  return grads;
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* op, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!any_requires_grad(inputs)) return;
  static std::atomic<uint64_t> sequence{0};
  std::vector<Edge> edges(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) continue;
    edges[i].shape = t.shape();
    edges[i].dtype = t.dtype();
    if (!t.requires_grad()) continue;
    const auto& meta = t.autograd_meta();
    if (meta->grad_fn) {
      edges[i].node = meta->grad_fn;
    } else {
      edges[i].leaf = meta;
    }
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::make_shared<Node>(op, std::move(edges), std::move(fn), sequence++);
  out.set_autograd_meta(std::move(meta));
}

}  // namespace sp
