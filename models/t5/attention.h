#pragma once
// T5Attention: bias-free q, k, v, o with inner dim num_heads * d_kv, no 1/sqrt(d) scaling,
// an additive position bias (relative bias plus mask, built once per stack), softmax in fp32,
// dropout on the probabilities.
#include <cstdint>
#include <memory>

#include "models/t5/config.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/peft/peft_host.h"

namespace sp {

// Keys and values of one attention layer, [B, H, S, d_kv], for incremental decoding.
// Self-attention appends each step's keys; cross-attention computes them once.
struct AttentionCache {
  Tensor k;
  Tensor v;
};

class T5Attention : public Module {
 public:
  T5Attention(const T5Config& c, bool has_relative_attention_bias, DType dtype,
              Generator* dropout_gen = nullptr);

  // x: [B, T, D]; kv_input: [B, S, D] for cross-attention, undefined for self-attention;
  // position_bias: broadcastable to [B, H, T, S_total] or undefined -> [B, T, D].
  // With cache, self-attention attends to the cached keys plus the new ones (and appends
  // them); cross-attention reuses cached keys when present.
  Tensor forward(const Tensor& x, const Tensor& position_bias, const Tensor& kv_input = Tensor(),
                 AttentionCache* cache = nullptr) const;

  // -> [1, H, q_len, k_len] from relative_attention_bias, queries at q_offset.
  Tensor compute_bias(int64_t q_len, int64_t k_len, bool bidirectional, int64_t q_offset = 0) const;
  // Packed rows: q_pos: [B, q_len], k_pos: [B, k_len] per-segment positions
  // -> [B, H, q_len, k_len].
  Tensor compute_bias(const Tensor& q_pos, const Tensor& k_pos, bool bidirectional) const;

  // -> [B, H, S, d_kv]
  Tensor split_heads(const Tensor& x) const;

  bool has_relative_attention_bias() const { return has_bias_; }

  // Prefix tuning's hook (peft_host.h), or null. It runs on every forward after the cache
  // logic, so the cache holds only the layer's own keys and values and the P prefix
  // positions are prepended afresh at each decoding step (cross-attention's cached keys
  // too); the position bias and mask get P zero columns in front, so every query
  // attends to the prefix whatever the padding, causality or decoding offset.
  std::shared_ptr<const KvHook> kv_hook;

  Linear q, k, v, o;
  std::unique_ptr<Embedding> relative_attention_bias;  // [num_buckets, H], block 0 only

 private:
  int64_t num_heads_;
  int64_t d_kv_;
  int64_t num_buckets_;
  int64_t max_distance_;
  bool has_bias_;
  Dropout dropout_;
};

}  // namespace sp
