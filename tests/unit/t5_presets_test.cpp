// The tiny presets used to pretrain from scratch on a CPU.
#include <gtest/gtest.h>

#include "models/t5/config.h"
#include "models/t5/t5_model.h"

namespace sp {
namespace {

TEST(T5TinyPresets, shapes) {
  const T5Config tiny = T5Config::preset("t5-tiny");
  EXPECT_EQ(tiny.d_model, 64);
  EXPECT_EQ(tiny.num_layers, 2);
  EXPECT_EQ(tiny.num_decoder_layers, 2);
  EXPECT_EQ(tiny.inner_dim(), 64);
  EXPECT_TRUE(tiny.is_gated());
  EXPECT_TRUE(tiny.tie_word_embeddings);
  tiny.validate("t5-tiny");
  const T5Config mini = T5Config::preset("t5-mini");
  EXPECT_EQ(mini.d_model, 256);
  EXPECT_EQ(mini.d_ff, 1024);
  EXPECT_EQ(mini.num_layers, 4);
  EXPECT_EQ(mini.num_decoder_layers, 4);
  EXPECT_EQ(mini.inner_dim(), 256);
  mini.validate("t5-mini");
  // Round trip through config.json.
  EXPECT_EQ(T5Config::from_json(mini.to_json()).to_json(), mini.to_json());
  // Per encoder layer: q, k, v, o (4 d^2) + gated FF (3 d ff) + 2 norms; decoder adds
  // cross-attention and a norm; plus the tied embedding, relative biases and final norms.
  T5Config c = tiny;
  c.vocab_size = 128;
  const int64_t d = 64, ff = 256, h = 4, buckets = 32;
  const int64_t enc = 4 * d * d + 3 * d * ff + 2 * d;
  const int64_t dec = 8 * d * d + 3 * d * ff + 3 * d;
  EXPECT_EQ(T5ForConditionalGeneration::count_parameters(c),
            128 * d + 2 * enc + 2 * dec + 2 * h * buckets + 2 * d);
}

}  // namespace
}  // namespace sp
