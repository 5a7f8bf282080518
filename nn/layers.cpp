// Linear, Embedding, RMSNorm, Dropout.
#include "autograd/ops.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/mixed_dtype.h"
#include "nn/rms_norm.h"

namespace sp {

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias, DType dtype)
    : in_features_(in_features), out_features_(out_features) {
  SP_CHECK(in_features > 0 && out_features > 0, "[Linear] sizes must be positive, got in ",
           in_features, ", out ", out_features);
  weight = Tensor::zeros(Shape{out_features, in_features}, dtype);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::zeros(Shape{out_features}, dtype);
    register_parameter("bias", &bias);
  }
}

Tensor Linear::forward(const Tensor& x) const {
  return adapter ? adapter->forward(x, *this) : base_forward(x);
}

Tensor Linear::base_forward(const Tensor& x) const {
  SP_CHECK(x.dim() >= 1 && x.size(-1) == in_features_, "[Linear] input is ", describe(x),
           ", expected last dim ", in_features_);
  return mixed_linear(x, weight, bias);
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, DType dtype) {
  SP_CHECK(num_embeddings > 0 && embedding_dim > 0, "[Embedding] sizes must be positive, got ",
           num_embeddings, " x ", embedding_dim);
  weight = Tensor::zeros(Shape{num_embeddings, embedding_dim}, dtype);
  register_parameter("weight", &weight);
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

RMSNorm::RMSNorm(int64_t dim, double eps, DType dtype) : eps_(eps) {
  SP_CHECK(dim > 0, "[RMSNorm] dim must be positive, got ", dim);
  weight = Tensor::ones(Shape{dim}, dtype);
  register_parameter("weight", &weight);
}

Tensor RMSNorm::forward(const Tensor& x) const {
  // The output has the weight's dtype, as Hugging Face's; an f32 weight (trained inside a
  // bf16 model) must not widen a bf16 stream, so that output is cast back to x's.
  Tensor y = rms_norm(x, weight, eps_);
  const std::optional<DType> d = meeting_dtype(weight.dtype(), x.dtype());
  return d ? cast_if_needed(y, *d) : y;
}

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  SP_CHECK(p >= 0 && p < 1, "[Dropout] p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p_ == 0) return x;
  return dropout(x, p_, true, gen_);
}

}  // namespace sp
