#pragma once
// The tiny T5 the model, packing and PEFT tests build: 40 tokens, d_model 16, 2 heads of 6,
// d_ff 24, 2 + 2 layers, no dropout, 8 relative buckets (4 per direction, so distances >= 2
// take the logarithmic branch). Gated: T5 1.1's gated-GELU with an untied, unscaled head.
#include "models/t5/config.h"
#include "models/t5/t5_model.h"

namespace sp {

inline T5Config tiny_t5_config(bool gated = false) {
  T5Config c;
  c.vocab_size = 40;
  c.d_model = 16;
  c.d_kv = 6;
  c.num_heads = 2;
  c.d_ff = 24;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  c.dropout_rate = 0.0;
  if (gated) {
    c.feed_forward_proj = "gated-gelu";
    c.tie_word_embeddings = c.scale_decoder_outputs = false;
  }
  return c;
}

// A batch for it: two examples of 5 input tokens (the second ends in padding) and 3 labels
// (the second's last ignored).
inline T5Inputs tiny_t5_batch() {
  T5Inputs in;
  in.input_ids = Tensor::from_vector<int64_t>({5, 9, 13, 2, 1, 7, 3, 11, 1, 0}, Shape{2, 5});
  in.attention_mask = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, Shape{2, 5});
  in.labels = Tensor::from_vector<int64_t>({4, 8, 1, 6, 1, -100}, Shape{2, 3});
  return in;
}

}  // namespace sp
