#pragma once
// T5Config: the fields of a Hugging Face T5 config.json (transformers' configuration_t5.py).
#include <cstdint>
#include <string>
#include <vector>

namespace sp {

enum class T5Activation { relu, gelu, gelu_new, silu };

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_decoder_layers = 6;
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;
  double layer_norm_epsilon = 1e-6;
  double initializer_factor = 1.0;
  std::string feed_forward_proj =
      "relu";  // relu | gated-gelu | gated-silu | gelu | silu | gated-relu
  // Whether the output projection is shared.weight (no lm_head.weight).
  bool tie_word_embeddings = true;
  // Whether the decoder output is multiplied by d_model^-0.5 before the head.
  bool scale_decoder_outputs = true;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;

  int64_t inner_dim() const { return num_heads * d_kv; }
  bool is_gated() const;
  T5Activation activation() const;

  // Throws "[T5Config] <label>: <key> ..." on a bad or inconsistent value.
  void validate(const std::string& label = "config") const;

  // Parses config.json text. transformers 4 configs lack scale_decoder_outputs: it then
  // equals tie_word_embeddings (what 4.x computes). model_type "mt5" (T5 1.1's layout) is
  // read too, its missing keys taking MT5Config's defaults. label names the source in errors.
  static T5Config from_json(const std::string& text, const std::string& label = "config.json");
  static T5Config from_file(const std::string& path);
  // transformers-4 layout (no scale_decoder_outputs key) when scale_decoder_outputs ==
  // tie_word_embeddings, which every transformers version reads the same way; otherwise
  // the key is written too.
  std::string to_json() const;

  // t5-small/base/large/3b/11b (v1.0: relu, tied) and
  // t5-v1_1-small/base/large/xl/xxl (gated-gelu, untied).
  static T5Config preset(const std::string& name);
  static std::vector<std::string> preset_names();
};

}  // namespace sp
