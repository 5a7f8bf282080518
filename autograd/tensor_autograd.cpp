// Tensor's autograd members.
#include "autograd/node.h"
#include "tensor/kernels.h"

namespace sp {

bool Tensor::requires_grad() const { return autograd_ && autograd_->requires_grad; }

Tensor& Tensor::requires_grad_(bool enabled) {
  SP_CHECK(defined(), "[requires_grad_] undefined tensor");
  SP_CHECK(is_leaf(), "[requires_grad_] only leaves can change requires_grad; this tensor was ",
           "made by ", autograd_->grad_fn->name(), " (use detach() first)");
  if (enabled) SP_CHECK(is_floating(dtype_), "[requires_grad_] only floating tensors can require grad, this one is ",
                         dtype_name(dtype_));
  if (!autograd_) autograd_ = std::make_shared<AutogradMeta>();
  autograd_->requires_grad = enabled;
  return *this;
}

bool Tensor::is_leaf() const { return !autograd_ || !autograd_->grad_fn; }

Tensor Tensor::grad() const { return autograd_ ? autograd_->grad : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  SP_CHECK(is_leaf(), "[set_grad] only leaves hold gradients");
  if (g.defined()) {
    SP_CHECK(g.shape() == shape_, "[set_grad] gradient shape ", g.shape(), " differs from ",
             shape_);
    // Backward adds into the gradient in place, reading it as the tensor's dtype.
    SP_CHECK(g.dtype() == dtype_, "[set_grad] gradient dtype ", dtype_name(g.dtype()),
             " differs from the tensor's ", dtype_name(dtype_));
    SP_CHECK(g.device() == device(), "[set_grad] gradient device ", g.device(),
             " differs from the tensor's ", device());
  }
  if (!autograd_) autograd_ = std::make_shared<AutogradMeta>();
  autograd_->grad = g;
}

void Tensor::zero_grad() {
  if (autograd_) autograd_->grad = Tensor();
}

void Tensor::backward() const {
  SP_CHECK(defined(), "[backward] undefined tensor");
  SP_CHECK(numel() == 1, "[backward] a gradient can be implied only for a one-element tensor; ",
           "this one has shape ", shape_, ": pass the gradient");
  run_backward(*this, Tensor::ones(shape_, dtype_, device()));
}

void Tensor::backward(const Tensor& gradient) const {
  SP_CHECK(defined() && gradient.defined(), "[backward] undefined tensor");
  run_backward(*this, gradient);
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.autograd_.reset();
  return t;
}

}  // namespace sp
