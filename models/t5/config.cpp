#include "models/t5/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tensor/error.h"

namespace sp {

namespace {
using json = nlohmann::ordered_json;

struct Activation {
  bool gated;
  T5Activation act;
};

// As transformers' T5Config: "[gated-]<act>", with gated-gelu meaning gelu_new. key names
// the setting in errors.
Activation parse_activation(const std::string& proj, const std::string& label,
                            const char* key = "feed_forward_proj") {
  std::string act = proj;
  bool gated = false;
  if (proj.rfind("gated-", 0) == 0) {
    gated = true;
    act = proj.substr(6);
  }
  if (act == "relu") return {gated, T5Activation::relu};
  if (act == "gelu") return {gated, gated ? T5Activation::gelu_new : T5Activation::gelu};
  // transformers' NewGELU, PytorchGELUTanh and FastGELU are one function: the tanh
  // approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast")
    return {gated, T5Activation::gelu_new};
  if (act == "silu" || act == "swish") return {gated, T5Activation::silu};
  fail(str_cat("[T5Config] ", label, ": ", key, " \"", proj,
               "\" is not supported; expected relu, gelu, gelu_new (or gelu_pytorch_tanh, "
               "gelu_fast), silu",
               std::string(key) == "feed_forward_proj" ? " or gated-<one of those>" : ""));
}

// transformers' name of an activation (dense_act_fn).
const char* activation_name(T5Activation act) {
  switch (act) {
    case T5Activation::relu: return "relu";
    case T5Activation::gelu: return "gelu";
    case T5Activation::silu: return "silu";
    default: return "gelu_new";
  }
}

template <typename T>
void read(const json& j, const char* key, T& out, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const std::exception&) {
    fail(str_cat("[T5Config] ", label, ": key \"", key, "\" has the wrong type: ", it->dump()));
  }
}

// Integers in hub configs are sometimes written as 1.0; accept them when integral. Values
// outside int64 are refused: read as int64, 2^64 - 1 would wrap to -1, and casting a double
// of 2^63 or more is undefined.
void read_int(const json& j, const char* key, int64_t& out, const std::string& label) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  constexpr double kTwo63 = 9223372036854775808.0;
  if (it->is_number_unsigned()) {
    if (it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      out = static_cast<int64_t>(it->get<uint64_t>());
      return;
    }
  } else if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return;
  } else if (it->is_number_float()) {
    const double v = it->get<double>();
    if (v >= -kTwo63 && v < kTwo63 && v == std::trunc(v)) {
      out = static_cast<int64_t>(v);
      return;
    }
  }
  fail(str_cat("[T5Config] ", label, ": key \"", key, "\" must be an integer, got ", it->dump()));
}

// transformers' T5Config derives is_gated_act and dense_act_fn from feed_forward_proj, then
// PretrainedConfig sets the keys config.json holds over them: those decide the feed-forward.
// proj becomes the feed_forward_proj that means what they say (one that says otherwise
// would be silently ignored); gated exact GELU has no such name ("gated-gelu" is gelu_new)
// and is refused.
void read_saved_activation(const json& j, std::string& proj, const std::string& label) {
  if (!j.contains("is_gated_act") && !j.contains("dense_act_fn")) return;
  const Activation derived = parse_activation(proj, label);
  bool gated = derived.gated;
  std::string act_name = activation_name(derived.act);
  read(j, "is_gated_act", gated, label);
  read(j, "dense_act_fn", act_name, label);
  const T5Activation act = parse_activation(act_name, label, "dense_act_fn").act;
  if (gated == derived.gated && act == derived.act) return;
  SP_CHECK(!(gated && act == T5Activation::gelu), "[T5Config] ", label,
           ": is_gated_act true with dense_act_fn \"", act_name,
           "\" (a gated exact GELU) is not supported; feed_forward_proj is \"", proj, "\"");
  proj = str_cat(gated ? "gated-" : "", activation_name(act));
}
}  // namespace

bool T5Config::is_gated() const { return parse_activation(feed_forward_proj, "config").gated; }
T5Activation T5Config::activation() const {
  return parse_activation(feed_forward_proj, "config").act;
}

void T5Config::validate(const std::string& label) const {
  // Far above any T5 (t5-11b: d_ff 65536, 128 heads of 128; mT5's vocabulary: 250112), and
  // small enough that every weight's element count, a product of two such sizes, fits int64.
  constexpr int64_t kMaxSize = int64_t{1} << 24;
  auto positive = [&](const char* key, int64_t v) {
    SP_CHECK(v > 0, "[T5Config] ", label, ": ", key, " must be positive, got ", v);
    SP_CHECK(v <= kMaxSize, "[T5Config] ", label, ": ", key, " must be at most ", kMaxSize,
             ", got ", v);
  };
  positive("vocab_size", vocab_size);
  positive("d_model", d_model);
  positive("d_kv", d_kv);
  positive("d_ff", d_ff);
  positive("num_layers", num_layers);
  positive("num_decoder_layers", num_decoder_layers);
  positive("num_heads", num_heads);
  SP_CHECK(inner_dim() <= kMaxSize, "[T5Config] ", label,
           ": num_heads * d_kv (the attention width) must be at most ", kMaxSize, ", got ",
           inner_dim());
  positive("relative_attention_num_buckets", relative_attention_num_buckets);
  SP_CHECK(relative_attention_num_buckets >= 4, "[T5Config] ", label,
           ": relative_attention_num_buckets must be at least 4, got ",
           relative_attention_num_buckets);
  // The decoder's causal buckets are exact below num_buckets / 2 and log-spaced up to
  // max_distance beyond: a max_distance not above num_buckets / 2 divides by log(<= 1), which
  // gives negative or NaN buckets (the encoder's halved table alone needs only / 4).
  SP_CHECK(relative_attention_max_distance > relative_attention_num_buckets / 2, "[T5Config] ",
           label, ": relative_attention_max_distance (", relative_attention_max_distance,
           ") must exceed relative_attention_num_buckets / 2 (", relative_attention_num_buckets / 2,
           ")");
  SP_CHECK(dropout_rate >= 0 && dropout_rate < 1, "[T5Config] ", label,
           ": dropout_rate must be in [0, 1), got ", dropout_rate);
  SP_CHECK(layer_norm_epsilon >= 0, "[T5Config] ", label, ": layer_norm_epsilon must be >= 0");
  parse_activation(feed_forward_proj, label);
  SP_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, "[T5Config] ", label, ": pad_token_id ",
           pad_token_id, " outside the vocabulary of ", vocab_size);
  SP_CHECK(eos_token_id >= 0 && eos_token_id < vocab_size, "[T5Config] ", label, ": eos_token_id ",
           eos_token_id, " outside the vocabulary of ", vocab_size);
  SP_CHECK(decoder_start_token_id >= 0 && decoder_start_token_id < vocab_size, "[T5Config] ", label,
           ": decoder_start_token_id ", decoder_start_token_id, " outside the vocabulary");
}

T5Config T5Config::from_json(const std::string& text, const std::string& label) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail(str_cat("[T5Config] ", label, ": not valid JSON: ", parse_error_text(e)));
  }
  SP_CHECK(j.is_object(), "[T5Config] ", label, ": expected a JSON object");
  // mT5 (MT5ForConditionalGeneration) is T5 1.1 with other defaults; umT5 is not T5's layout.
  bool mt5 = false;
  if (j.contains("model_type") && j["model_type"].is_string()) {
    mt5 = j["model_type"] == "mt5";
    SP_CHECK(j["model_type"] == "t5" || mt5, "[T5Config] ", label, ": model_type is \"",
             j["model_type"].get<std::string>(), "\", expected \"t5\" or \"mt5\"");
  }
  T5Config c;
  if (mt5) {  // MT5Config's defaults
    c.vocab_size = 250112;
    c.d_ff = 1024;
    c.num_layers = c.num_decoder_layers = 8;
    c.num_heads = 6;
    c.feed_forward_proj = "gated-gelu";
    c.tie_word_embeddings = false;
  }
  read_int(j, "vocab_size", c.vocab_size, label);
  read_int(j, "d_model", c.d_model, label);
  read_int(j, "d_kv", c.d_kv, label);
  read_int(j, "d_ff", c.d_ff, label);
  read_int(j, "num_layers", c.num_layers, label);
  c.num_decoder_layers = c.num_layers;
  read_int(j, "num_decoder_layers", c.num_decoder_layers, label);
  read_int(j, "num_heads", c.num_heads, label);
  read_int(j, "relative_attention_num_buckets", c.relative_attention_num_buckets, label);
  read_int(j, "relative_attention_max_distance", c.relative_attention_max_distance, label);
  read(j, "dropout_rate", c.dropout_rate, label);
  read(j, "layer_norm_epsilon", c.layer_norm_epsilon, label);
  read(j, "initializer_factor", c.initializer_factor, label);
  read(j, "feed_forward_proj", c.feed_forward_proj, label);
  read_saved_activation(j, c.feed_forward_proj, label);
  read(j, "tie_word_embeddings", c.tie_word_embeddings, label);
  // T5 scales the decoder output by d_model^-0.5 when the head is tied; mT5 never does
  // (MT5ForConditionalGeneration), though transformers 5 writes its configs tied.
  c.scale_decoder_outputs = c.tie_word_embeddings && !mt5;
  read(j, "scale_decoder_outputs", c.scale_decoder_outputs, label);
  read_int(j, "pad_token_id", c.pad_token_id, label);
  read_int(j, "eos_token_id", c.eos_token_id, label);
  read_int(j, "decoder_start_token_id", c.decoder_start_token_id, label);
  // transformers' attribute_map aliases, set after the keys above as PretrainedConfig sets
  // them: an alias wins over its key, and num_hidden_layers leaves num_decoder_layers as it
  // was (the default 6 when absent), as T5Config(num_hidden_layers=2) does.
  read_int(j, "hidden_size", c.d_model, label);
  read_int(j, "num_attention_heads", c.num_heads, label);
  read_int(j, "num_hidden_layers", c.num_layers, label);
  read_int(j, "head_dim", c.d_kv, label);
  c.validate(label);
  return c;
}

T5Config T5Config::from_file(const std::string& path) {
  std::error_code ec;
  SP_CHECK(!std::filesystem::is_directory(path, ec), "[T5Config] ", path,
           ": is a directory; expected its config.json");
  std::ifstream in(path);
  SP_CHECK(in.good(), "[T5Config] ", path, ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

std::string T5Config::to_json() const {
  json j;
  j["architectures"] = json::array({"T5ForConditionalGeneration"});
  j["model_type"] = "t5";
  j["vocab_size"] = vocab_size;
  j["d_model"] = d_model;
  j["d_kv"] = d_kv;
  j["d_ff"] = d_ff;
  j["num_layers"] = num_layers;
  j["num_decoder_layers"] = num_decoder_layers;
  j["num_heads"] = num_heads;
  j["relative_attention_num_buckets"] = relative_attention_num_buckets;
  j["relative_attention_max_distance"] = relative_attention_max_distance;
  j["dropout_rate"] = dropout_rate;
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["initializer_factor"] = initializer_factor;
  j["feed_forward_proj"] = feed_forward_proj;
  j["is_gated_act"] = is_gated();
  j["dense_act_fn"] = activation_name(activation());
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (scale_decoder_outputs != tie_word_embeddings)
    j["scale_decoder_outputs"] = scale_decoder_outputs;
  j["is_encoder_decoder"] = true;
  j["use_cache"] = true;
  j["pad_token_id"] = pad_token_id;
  j["eos_token_id"] = eos_token_id;
  j["decoder_start_token_id"] = decoder_start_token_id;
  return j.dump(2) + "\n";
}

T5Config T5Config::preset(const std::string& name) {
  T5Config c;
  auto v10 = [&](int64_t d, int64_t ff, int64_t kv, int64_t h, int64_t l) {
    c.d_model = d, c.d_ff = ff, c.d_kv = kv, c.num_heads = h,
    c.num_layers = c.num_decoder_layers = l;
    c.feed_forward_proj = "relu";
    c.tie_word_embeddings = c.scale_decoder_outputs = true;
  };
  auto v11 = [&](int64_t d, int64_t ff, int64_t h, int64_t l) {
    c.d_model = d, c.d_ff = ff, c.d_kv = 64, c.num_heads = h,
    c.num_layers = c.num_decoder_layers = l;
    c.feed_forward_proj = "gated-gelu";
    c.tie_word_embeddings = c.scale_decoder_outputs = false;
  };
  if (name == "t5-small")
    v10(512, 2048, 64, 8, 6);
  else if (name == "t5-base")
    v10(768, 3072, 64, 12, 12);
  else if (name == "t5-large")
    v10(1024, 4096, 64, 16, 24);
  else if (name == "t5-3b")
    v10(1024, 16384, 128, 32, 24);
  else if (name == "t5-11b")
    v10(1024, 65536, 128, 128, 24);
  else if (name == "t5-v1_1-small")
    v11(512, 1024, 6, 8);
  else if (name == "t5-v1_1-base")
    v11(768, 2048, 12, 12);
  else if (name == "t5-v1_1-large")
    v11(1024, 2816, 16, 24);
  else if (name == "t5-v1_1-xl")
    v11(2048, 5120, 32, 24);
  else if (name == "t5-v1_1-xxl")
    v11(4096, 10240, 64, 24);
  // Tiny models to pretrain from scratch on a CPU (softprompt pretrain): T5 1.1's gated-GELU
  // but a tied head, which saves V x d_model parameters and, with its d_model^-0.5 output
  // scaling, starts the loss near ln(V) (an untied head initialised as transformers does
  // starts near 30 nats). vocab_size stays 32128 here; pretraining takes the tokenizer's.
  else if (name == "t5-tiny")
    v11(64, 256, 4, 2), c.d_kv = 16, c.tie_word_embeddings = c.scale_decoder_outputs = true;
  else if (name == "t5-mini")
    v11(256, 1024, 8, 4), c.d_kv = 32, c.tie_word_embeddings = c.scale_decoder_outputs = true;
  else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail(str_cat("[T5Config] unknown preset \"", name, "\"; known: ", known));
  }
  return c;
}

std::vector<std::string> T5Config::preset_names() {
  return {"t5-small",      "t5-base",      "t5-large",      "t5-3b",      "t5-11b",
          "t5-v1_1-small", "t5-v1_1-base", "t5-v1_1-large", "t5-v1_1-xl", "t5-v1_1-xxl",
          "t5-tiny",       "t5-mini"};
}

}  // namespace sp
