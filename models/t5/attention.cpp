#include "models/t5/attention.h"

#include <tuple>

#include "autograd/ops.h"
#include "models/t5/relative_position.h"

namespace sp {

T5Attention::T5Attention(const T5Config& c, bool has_relative_attention_bias, DType dtype,
                         Generator* dropout_gen)
    : q(c.d_model, c.inner_dim(), false, dtype),
      k(c.d_model, c.inner_dim(), false, dtype),
      v(c.d_model, c.inner_dim(), false, dtype),
      o(c.inner_dim(), c.d_model, false, dtype),
      num_heads_(c.num_heads),
      d_kv_(c.d_kv),
      num_buckets_(c.relative_attention_num_buckets),
      max_distance_(c.relative_attention_max_distance),
      has_bias_(has_relative_attention_bias),
      dropout_(c.dropout_rate, dropout_gen) {
  register_module("q", &q);
  register_module("k", &k);
  register_module("v", &v);
  register_module("o", &o);
  if (has_bias_) {
    relative_attention_bias = std::make_unique<Embedding>(num_buckets_, num_heads_, dtype);
    register_module("relative_attention_bias", relative_attention_bias.get());
  }
  register_module("dropout", &dropout_);
}

Tensor T5Attention::split_heads(const Tensor& x) const {
  return x.view(Shape{x.size(0), x.size(1), num_heads_, d_kv_}).transpose(1, 2);
}

Tensor T5Attention::compute_bias(int64_t q_len, int64_t k_len, bool bidirectional,
                                 int64_t q_offset) const {
  SP_CHECK(has_bias_, "[T5Attention] compute_bias on a layer without relative_attention_bias");
  const Tensor& w = relative_attention_bias->weight;
  const Tensor buckets = relative_position_buckets(q_len, k_len, bidirectional, num_buckets_,
                                                   max_distance_, q_offset, w.device());
  // [q, k, H] -> [1, H, q, k]
  return embedding(w, buckets).permute(Shape{2, 0, 1}).unsqueeze(0);
}

Tensor T5Attention::compute_bias(const Tensor& q_pos, const Tensor& k_pos,
                                 bool bidirectional) const {
  SP_CHECK(has_bias_, "[T5Attention] compute_bias on a layer without relative_attention_bias");
  Tensor buckets =
      relative_position_buckets(q_pos, k_pos, bidirectional, num_buckets_, max_distance_);
  const Tensor& w = relative_attention_bias->weight;
  if (buckets.device() != w.device()) buckets = buckets.to(w.device());
  // [B, q, k, H] -> [B, H, q, k]
  return embedding(w, buckets).permute(Shape{0, 3, 1, 2});
}

Tensor T5Attention::forward(const Tensor& x, const Tensor& position_bias, const Tensor& kv_input,
                            AttentionCache* cache) const {
  SP_CHECK(x.dim() == 3, "[T5Attention] expected x as [B, T, D], got ", describe(x));
  const int64_t B = x.size(0), T = x.size(1);
  const bool cross = kv_input.defined();
  Tensor qh = split_heads(q.forward(x));  // [B, H, T, dk]
  Tensor kh, vh;
  if (cross && cache && cache->k.defined()) {
    kh = cache->k;
    vh = cache->v;
  } else {
    const Tensor& src = cross ? kv_input : x;
    kh = split_heads(k.forward(src));  // [B, H, S, dk]
    vh = split_heads(v.forward(src));
    if (cache) {
      if (!cross && cache->k.defined()) {
        kh = cat({cache->k, kh}, 2);
        vh = cat({cache->v, vh}, 2);
      }
      cache->k = kh;
      cache->v = vh;
    }
  }
  Tensor bias = position_bias;
  if (kv_hook) {
    const int64_t S = kh.size(2);
    std::tie(kh, vh) = kv_hook->forward(kh, vh);  // [B, H, P + S, dk]
    const int64_t P = kh.size(2) - S;
    SP_CHECK(P >= 0 && vh.size(2) == kh.size(2), "[T5Attention] the kv hook returned keys ",
             describe(kh), " and values ", describe(vh), " for ", S, " positions");
    if (bias.defined() && P > 0) {
      Shape zeros_shape = bias.shape();
      zeros_shape[zeros_shape.size() - 1] = P;
      bias = cat({Tensor::zeros(zeros_shape, bias.dtype(), bias.device()), bias}, -1);
    }
  }
  Tensor scores = matmul(qh, kh.mT());  // [B, H, T, S], no 1/sqrt(d_kv): T5 folds it into init
  // softmax(scores + bias), the sum rounded to the model dtype as HF's is, in one pass.
  Tensor probs = dropout_.forward(bias.defined() ? add_softmax(scores, bias) : softmax(scores, -1));
  Tensor ctx = matmul(probs, vh);  // [B, H, T, dk]
  ctx = ctx.transpose(1, 2).reshape(Shape{B, T, num_heads_ * d_kv_});
  return o.forward(ctx);
}

}  // namespace sp
