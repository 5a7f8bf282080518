#pragma once
// The tiny T5 the model, packing and PEFT tests build: 40 tokens, d_model 16, 2 heads of 6,
// d_ff 24, 2 + 2 layers, no dropout, 8 relative buckets (4 per direction, so distances >= 2
// take the logarithmic branch). Gated: T5 1.1's gated-GELU with an untied, unscaled head.
#include "models/t5/config.h"

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

}  // namespace sp
