#include "models/t5/feed_forward.h"

#include "autograd/ops.h"

namespace sp {

namespace {
Tensor activate(T5Activation a, const Tensor& x) {
  switch (a) {
    case T5Activation::relu: return relu(x);
    case T5Activation::gelu: return gelu(x, GeluApprox::none);
    case T5Activation::gelu_new: return gelu(x, GeluApprox::tanh);
    case T5Activation::silu: return silu(x);
  }
  return x;
}
}  // namespace

T5DenseActDense::T5DenseActDense(const T5Config& c, DType dtype, Generator* dropout_gen)
    : wo(c.d_ff, c.d_model, false, dtype),
      gated_(c.is_gated()),
      act_(c.activation()),
      dropout_(c.dropout_rate, dropout_gen) {
  if (gated_) {
    wi_0 = std::make_unique<Linear>(c.d_model, c.d_ff, false, dtype);
    wi_1 = std::make_unique<Linear>(c.d_model, c.d_ff, false, dtype);
    register_module("wi_0", wi_0.get());
    register_module("wi_1", wi_1.get());
  } else {
    wi = std::make_unique<Linear>(c.d_model, c.d_ff, false, dtype);
    register_module("wi", wi.get());
  }
  register_module("wo", &wo);
  register_module("dropout", &dropout_);
}

Tensor T5DenseActDense::forward(const Tensor& x) const {
  Tensor h =
      gated_ ? activate(act_, wi_0->forward(x)) * wi_1->forward(x) : activate(act_, wi->forward(x));
  h = dropout_.forward(h);
  // A bf16 wo behind f32 activations computes in bf16, as transformers' cast to wo's dtype
  // here does: Linear computes in the 16-bit dtype.
  return wo.forward(h);
}

}  // namespace sp
