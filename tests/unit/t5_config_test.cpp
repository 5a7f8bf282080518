// T5Config parsing, presets; the relative position bucket function; attention masks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

#include "models/t5/config.h"
#include "models/t5/relative_position.h"
#include "models/t5/t5_model.h"
#include "test_util.h"

namespace sp {
namespace {

TEST(T5Config, transformers4_config_derives_scale_from_tying) {
  T5Config c = T5Config::from_json(R"({"model_type": "t5", "d_model": 64, "d_kv": 16, "d_ff": 128,
      "num_layers": 3, "num_heads": 2, "vocab_size": 100, "feed_forward_proj": "gated-gelu",
      "tie_word_embeddings": false})");
  EXPECT_EQ(c.num_decoder_layers, 3);  // defaults to num_layers
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.scale_decoder_outputs);
  EXPECT_TRUE(c.is_gated());
  EXPECT_EQ(c.activation(), T5Activation::gelu_new);
  EXPECT_EQ(c.inner_dim(), 32);
  T5Config tied =
      T5Config::from_json(R"({"d_model": 8, "num_heads": 2, "d_kv": 4, "num_decoder_layers": 1})");
  EXPECT_TRUE(tied.tie_word_embeddings);  // transformers' default
  EXPECT_TRUE(tied.scale_decoder_outputs);
  EXPECT_EQ(tied.num_decoder_layers, 1);
  EXPECT_EQ(tied.activation(), T5Activation::relu);
}

// transformers' gelu_new, gelu_pytorch_tanh and gelu_fast are the same tanh approximation.
TEST(T5Config, tanh_gelu_spellings_are_one_activation) {
  for (const char* act : {"gelu_new", "gelu_pytorch_tanh", "gelu_fast"}) {
    for (const std::string prefix : {"", "gated-"}) {
      const std::string proj = prefix + act;
      const T5Config c = T5Config::from_json(R"({"feed_forward_proj": ")" + proj + R"("})");
      EXPECT_EQ(c.activation(), T5Activation::gelu_new) << proj;
      EXPECT_EQ(c.is_gated(), !prefix.empty()) << proj;
      EXPECT_EQ(T5Config::from_json(c.to_json()).activation(), T5Activation::gelu_new) << proj;
    }
  }
}

// transformers' T5Config sets config.json's is_gated_act and dense_act_fn over the values
// it derives from feed_forward_proj: they decide the feed-forward here too.
TEST(T5Config, saved_is_gated_act_and_dense_act_fn_decide_the_feed_forward) {
  const T5Config agree = T5Config::from_json(
      R"({"feed_forward_proj": "gated-gelu", "is_gated_act": true, "dense_act_fn": "gelu_new"})");
  EXPECT_EQ(agree.feed_forward_proj, "gated-gelu");
  const T5Config relu = T5Config::from_json(
      R"({"feed_forward_proj": "gated-gelu", "is_gated_act": false, "dense_act_fn": "relu"})");
  EXPECT_FALSE(relu.is_gated());
  EXPECT_EQ(relu.activation(), T5Activation::relu);
  const T5Config exact =
      T5Config::from_json(R"({"feed_forward_proj": "relu", "dense_act_fn": "gelu"})");
  EXPECT_FALSE(exact.is_gated());
  EXPECT_EQ(exact.activation(), T5Activation::gelu);
  const T5Config gated =
      T5Config::from_json(R"({"feed_forward_proj": "silu", "is_gated_act": true})");
  EXPECT_TRUE(gated.is_gated());
  EXPECT_EQ(gated.activation(), T5Activation::silu);
  EXPECT_EQ(T5Config::from_json(gated.to_json()).feed_forward_proj, gated.feed_forward_proj);
  EXPECT_THROW_MSG(
      T5Config::from_json(R"({"feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu"})",
                          "c.json"),
      "c.json: is_gated_act true with dense_act_fn \"gelu\" (a gated exact GELU) is not supported");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"dense_act_fn": "tanh"})", "c.json"),
                   "c.json: dense_act_fn \"tanh\" is not supported");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"is_gated_act": "yes"})", "c.json"),
                   "key \"is_gated_act\" has the wrong type");
}

// transformers' aliases (T5Config.attribute_map) read as transformers reads them, checked
// against T5Config.from_dict in transformers 5.24: an alias wins over its key, and
// num_hidden_layers leaves num_decoder_layers at its default.
TEST(T5Config, attribute_map_aliases_read_as_transformers_reads_them) {
  const T5Config c = T5Config::from_json(
      R"({"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "head_dim": 16})");
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_decoder_layers, 6);
  EXPECT_EQ(c.d_kv, 16);
  EXPECT_EQ(T5Config::from_json(R"({"d_model": 64, "hidden_size": 32})").d_model, 32);
  EXPECT_EQ(T5Config::from_json(R"({"num_layers": 3})").num_decoder_layers, 3);
  EXPECT_THROW_MSG(T5Config::from_json(R"({"hidden_size": "wide"})", "x.json"),
                   "[T5Config] x.json: key \"hidden_size\" must be an integer");
}

TEST(T5Config, transformers5_config_keeps_both_fields) {
  T5Config c = T5Config::from_json(R"({"tie_word_embeddings": true, "scale_decoder_outputs": false,
      "feed_forward_proj": "gated-silu"})");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.scale_decoder_outputs);
  EXPECT_EQ(c.activation(), T5Activation::silu);
  T5Config back = T5Config::from_json(c.to_json());
  EXPECT_FALSE(back.scale_decoder_outputs);
  EXPECT_TRUE(back.tie_word_embeddings);
  T5Config v4 = T5Config::from_json(T5Config::preset("t5-v1_1-base").to_json());
  EXPECT_EQ(v4.d_ff, 2048);
  EXPECT_FALSE(v4.scale_decoder_outputs);
  EXPECT_EQ(T5Config::preset("t5-small").to_json().find("scale_decoder_outputs"),
            std::string::npos);
}

// mT5 is T5 1.1 with its own model_type and MT5Config's defaults (vocabulary 250112,
// gated-gelu, untied); its weights use T5's names and layout.
TEST(T5Config, mt5_configs_load_with_mt5_defaults) {
  // google/mt5-small's config.json.
  const T5Config small = T5Config::from_json(
      R"({"_name_or_path": "/home/patrick/hugging_face/t5/mt5-small",
      "architectures": ["MT5ForConditionalGeneration"], "d_ff": 1024, "d_kv": 64, "d_model": 512,
      "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
      "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true,
      "layer_norm_epsilon": 1e-06, "model_type": "mt5", "num_decoder_layers": 8, "num_heads": 6,
      "num_layers": 8, "pad_token_id": 0, "relative_attention_num_buckets": 32,
      "tie_word_embeddings": false, "tokenizer_class": "T5Tokenizer",
      "transformers_version": "4.10.0.dev0", "use_cache": true, "vocab_size": 250112})",
      "mt5-small/config.json");
  EXPECT_EQ(small.vocab_size, 250112);
  EXPECT_EQ(small.inner_dim(), 384);
  EXPECT_EQ(small.relative_attention_max_distance, 128);
  EXPECT_EQ(small.activation(), T5Activation::gelu_new);
  EXPECT_TRUE(small.is_gated());
  EXPECT_FALSE(small.tie_word_embeddings);
  EXPECT_FALSE(small.scale_decoder_outputs);
  // Keys left out take MT5Config's defaults, not T5Config's.
  const T5Config bare = T5Config::from_json(R"({"model_type": "mt5"})");
  EXPECT_EQ(bare.vocab_size, 250112);
  EXPECT_EQ(bare.d_model, 512);
  EXPECT_EQ(bare.d_ff, 1024);
  EXPECT_EQ(bare.num_layers, 8);
  EXPECT_EQ(bare.num_decoder_layers, 8);
  EXPECT_EQ(bare.num_heads, 6);
  EXPECT_EQ(bare.feed_forward_proj, "gated-gelu");
  EXPECT_FALSE(bare.tie_word_embeddings);
  EXPECT_FALSE(bare.scale_decoder_outputs);
  // Written back as a T5 config that reads the same.
  EXPECT_EQ(T5Config::from_json(small.to_json()).to_json(), small.to_json());
  // transformers 5 writes mT5 configs tied; mT5 still never scales its decoder output.
  const T5Config tied =
      T5Config::from_json(R"({"model_type": "mt5", "tie_word_embeddings": true})");
  EXPECT_TRUE(tied.tie_word_embeddings);
  EXPECT_FALSE(tied.scale_decoder_outputs);
  EXPECT_EQ(T5Config::from_json(tied.to_json()).to_json(), tied.to_json());
  // umT5 has a relative position table in every layer: not a T5 layout.
  EXPECT_THROW_MSG(T5Config::from_json(R"({"model_type": "umt5"})", "c.json"),
                   "model_type is \"umt5\"");
}

TEST(T5Config, errors_name_the_file_and_key) {
  EXPECT_THROW_MSG(T5Config::from_json(R"({"d_model": "big"})", "dir/config.json"),
                   "[T5Config] dir/config.json: key \"d_model\" must be an integer");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"feed_forward_proj": "gated-tanh"})", "c.json"),
                   "feed_forward_proj \"gated-tanh\" is not supported");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"num_heads": 0})", "c.json"),
                   "c.json: num_heads must be positive");
  EXPECT_THROW_MSG(T5Config::from_json("{", "c.json"), "[T5Config] c.json: not valid JSON");
  try {  // the parser quotes the token it stopped at: a 100 kB one is cut
    T5Config::from_json("{\"" + std::string(100000, 'a') + "\xff\"}", "c.json");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u);
    EXPECT_NE(std::string(e.what()).find("c.json: not valid JSON"), std::string::npos);
  }
  EXPECT_THROW_MSG(T5Config::from_json(R"({"model_type": "bert"})", "c.json"),
                   "model_type is \"bert\"");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"tie_word_embeddings": 3})", "c.json"),
                   "key \"tie_word_embeddings\" has the wrong type");
  EXPECT_THROW_MSG(T5Config::from_file("/nonexistent/config.json"),
                   "/nonexistent/config.json: cannot open");
  // A checkpoint directory instead of its config.json: not "not valid JSON".
  const std::string tmp = std::filesystem::temp_directory_path().string();
  EXPECT_THROW_MSG(T5Config::from_file(tmp),
                   "[T5Config] " + tmp + ": is a directory; expected its config.json");
  EXPECT_THROW_MSG(T5Config::preset("t5-huge"), "unknown preset \"t5-huge\"; known: t5-small");
}

TEST(T5Config, integers_that_do_not_fit_int64_are_refused) {
  // 2^64 - 1 is a JSON unsigned integer: read as int64 it wrapped to -1, silently.
  EXPECT_THROW_MSG(T5Config::from_json(R"({"eos_token_id": 18446744073709551615})", "c.json"),
                   "c.json: key \"eos_token_id\" must be an integer, got 18446744073709551615");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"d_model": 1e30})", "c.json"),
                   "key \"d_model\" must be an integer, got 1e+30");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"d_model": 9.3e18})", "c.json"),
                   "key \"d_model\" must be an integer");
  EXPECT_EQ(T5Config::from_json(R"({"d_model": 512.0})").d_model, 512);
}

TEST(T5Config, token_ids_must_lie_in_the_vocabulary) {
  EXPECT_THROW_MSG(T5Config::from_json(R"({"eos_token_id": -3})", "c.json"),
                   "c.json: eos_token_id -3 outside the vocabulary of 32128");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"vocab_size": 100, "eos_token_id": 100})", "c.json"),
                   "eos_token_id 100 outside the vocabulary of 100");
}

TEST(T5Config, sizes_whose_products_overflow_are_refused) {
  // num_heads * d_kv overflowed int64 (undefined behaviour) and inner_dim() came out 0.
  EXPECT_THROW_MSG(
      T5Config::from_json(R"({"num_heads": 4294967296, "d_kv": 4294967296})", "c.json"),
      "c.json: d_kv must be at most 16777216, got 4294967296");
  EXPECT_THROW_MSG(T5Config::from_json(R"({"num_heads": 65536, "d_kv": 65536})", "c.json"),
                   "c.json: num_heads * d_kv (the attention width) must be at most 16777216, "
                   "got 4294967296");
  // t5-11b, the widest T5, is well inside the limits.
  EXPECT_NO_THROW(T5Config::preset("t5-11b").validate());
}

TEST(T5Config, max_distance_must_exceed_the_causal_exact_buckets) {
  // The decoder's causal buckets are exact below num_buckets / 2 = 16; beyond that the
  // log-spaced formula divides by log(max_distance / 16): 0 for 16 (NaN and infinite
  // buckets), negative for 12, where far keys land in a negative bucket.
  EXPECT_LT(relative_position_bucket(-1000, /*bidirectional=*/false, 32, 12), 0);
  for (const char* md : {"16", "12", "9"}) {
    SCOPED_TRACE(md);
    EXPECT_THROW_MSG(
        T5Config::from_json(std::string(R"({"relative_attention_max_distance": )") + md + "}",
                            "c.json"),
        std::string("c.json: relative_attention_max_distance (") + md +
            ") must exceed relative_attention_num_buckets / 2 (16)");
  }
  EXPECT_EQ(T5Config::from_json(R"({"relative_attention_max_distance": 17})")
                .relative_attention_max_distance,
            17);
}

TEST(T5Config, presets) {
  T5Config s = T5Config::preset("t5-v1_1-small");
  EXPECT_EQ(s.d_model, 512);
  EXPECT_EQ(s.inner_dim(), 384);
  EXPECT_EQ(s.num_layers, 8);
  EXPECT_FALSE(s.tie_word_embeddings);
  T5Config b = T5Config::preset("t5-3b");
  EXPECT_EQ(b.d_kv, 128);
  EXPECT_EQ(b.num_heads, 32);
  EXPECT_EQ(T5Config::preset("t5-v1_1-xxl").d_ff, 10240);
  EXPECT_EQ(T5Config::preset_names().size(), 12u);
}

TEST(T5RelativePosition, bidirectional_buckets_by_hand) {
  // nb 32 -> 16 per direction, max_exact 8: 8 + trunc(log(|rel| / 8) / log(16) * 8)
  EXPECT_EQ(relative_position_bucket(0, true, 32, 128), 0);
  EXPECT_EQ(relative_position_bucket(-1, true, 32, 128), 1);
  EXPECT_EQ(relative_position_bucket(1, true, 32, 128), 17);
  EXPECT_EQ(relative_position_bucket(-7, true, 32, 128), 7);
  EXPECT_EQ(relative_position_bucket(-8, true, 32, 128), 8);
  EXPECT_EQ(relative_position_bucket(-20, true, 32, 128), 10);  // 2.64 -> 2
  EXPECT_EQ(relative_position_bucket(20, true, 32, 128), 26);
  EXPECT_EQ(relative_position_bucket(-200, true, 32, 128), 15);  // capped
  EXPECT_EQ(relative_position_bucket(200, true, 32, 128), 31);
}

TEST(T5RelativePosition, causal_buckets_by_hand) {
  EXPECT_EQ(relative_position_bucket(5, false, 32, 128), 0);  // the future folds to 0
  EXPECT_EQ(relative_position_bucket(-3, false, 32, 128), 3);
  EXPECT_EQ(relative_position_bucket(-16, false, 32, 128), 16);
  EXPECT_EQ(relative_position_bucket(-40, false, 32, 128), 23);   // 16 + 7.05
  EXPECT_EQ(relative_position_bucket(-127, false, 32, 128), 31);  // 16 + 15.94
  EXPECT_EQ(relative_position_bucket(-1000, false, 32, 128), 31);
}

TEST(T5RelativePosition, table_is_cached_and_offset) {
  Tensor a = relative_position_buckets(3, 5, false, 32, 128);
  Tensor b = relative_position_buckets(3, 5, false, 32, 128);
  EXPECT_TRUE(a.is_same(b));
  EXPECT_EQ(a.shape(), (Shape{3, 5}));
  // query 1 against keys 0..4: rel = -1, 0, 1, 2, 3
  std::vector<int64_t> v = a.to_vector<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(v.begin() + 5, v.begin() + 10),
            (std::vector<int64_t>{1, 0, 0, 0, 0}));
  // the last query of a 5-long sequence, decoded alone at offset 4
  Tensor last = relative_position_buckets(1, 5, false, 32, 128, 4);
  EXPECT_EQ(last.to_vector<int64_t>(), (std::vector<int64_t>{4, 3, 2, 1, 0}));
}

TEST(T5Mask, additive_mask_uses_the_lowest_finite_value) {
  const float low = std::numeric_limits<float>::lowest();
  Tensor m = t5_additive_mask(Tensor::from_vector<int64_t>({1, 1, 0}, Shape{1, 3}), 2, 3, true, 0,
                              DType::f32, Device::cpu());
  EXPECT_EQ(m.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(m.to_vector<float>(), (std::vector<float>{0, low, low, 0, 0, low}));
  Tensor enc = t5_additive_mask(Tensor::from_vector<int64_t>({1, 0}, Shape{1, 2}), 4, 2, false, 0,
                                DType::bf16, Device::cpu());
  EXPECT_EQ(enc.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_FLOAT_EQ(enc.to_vector<float>()[1], -3.3895313892515355e38f);
  EXPECT_FALSE(t5_additive_mask(Tensor(), 2, 2, false, 0, DType::f32, Device::cpu()).defined());
  EXPECT_THROW_MSG(
      t5_additive_mask(Tensor::zeros(Shape{2, 4}), 1, 3, false, 0, DType::f32, Device::cpu()),
      "[T5] attention mask is [2, 4] f32, expected [batch, 3]");
}

}  // namespace
}  // namespace sp
