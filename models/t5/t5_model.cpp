#include "models/t5/t5_model.h"

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "nn/init.h"
#include "tensor/kernels.h"

namespace sp {

namespace {
double lowest(DType dtype) {
  switch (dtype) {
    case DType::f32: return std::numeric_limits<float>::lowest();
    case DType::bf16: return -3.3895313892515355e38;  // 0xff7f
    case DType::f16: return -65504.0;
    case DType::f64: return std::numeric_limits<double>::lowest();
    default: fail(str_cat("[T5] attention masks need a floating dtype, got ", dtype_name(dtype)));
  }
}
}  // namespace

Tensor t5_additive_mask(const Tensor& mask, int64_t q_len, int64_t k_len, bool causal,
                        int64_t q_offset, DType dtype, Device device) {
  if (!mask.defined() && !causal) return Tensor();
  int64_t B = 1;
  std::vector<double> keep;
  if (mask.defined()) {
    SP_CHECK(mask.dim() == 2 && mask.size(1) == k_len, "[T5] attention mask is ", describe(mask),
             ", expected [batch, ", k_len, "]");
    B = mask.size(0);
    keep = mask.to_vector<double>();
  }
  const int64_t rows = causal ? q_len : 1;
  const double low = lowest(dtype);
  std::vector<double> m(static_cast<size_t>(B * rows * k_len));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < k_len; ++j) {
        bool ok = !mask.defined() || keep[b * k_len + j] != 0;
        if (causal && j > i + q_offset) ok = false;
        m[(b * rows + i) * k_len + j] = ok ? 0.0 : low;
      }
  Tensor t = Tensor::from_vector(m, Shape{B, 1, rows, k_len}, dtype);
  return device.is_cpu() ? t : t.to(device);
}

// --- layers ----------------------------------------------------------------------------

T5LayerSelfAttention::T5LayerSelfAttention(const T5Config& c, bool has_bias, DType dtype,
                                           Generator* gen)
    : SelfAttention(c, has_bias, dtype, gen),
      layer_norm(c.d_model, c.layer_norm_epsilon, dtype),
      dropout_(c.dropout_rate, gen) {
  register_module("SelfAttention", &SelfAttention);
  register_module("layer_norm", &layer_norm);
  register_module("dropout", &dropout_);
}

Tensor T5LayerSelfAttention::forward(const Tensor& h, const Tensor& position_bias,
                                     AttentionCache* cache) const {
  return h + dropout_.forward(
                 SelfAttention.forward(layer_norm.forward(h), position_bias, Tensor(), cache));
}

T5LayerCrossAttention::T5LayerCrossAttention(const T5Config& c, DType dtype, Generator* gen)
    : EncDecAttention(c, false, dtype, gen),
      layer_norm(c.d_model, c.layer_norm_epsilon, dtype),
      dropout_(c.dropout_rate, gen) {
  register_module("EncDecAttention", &EncDecAttention);
  register_module("layer_norm", &layer_norm);
  register_module("dropout", &dropout_);
}

Tensor T5LayerCrossAttention::forward(const Tensor& h, const Tensor& enc, const Tensor& bias,
                                      AttentionCache* cache) const {
  return h + dropout_.forward(EncDecAttention.forward(layer_norm.forward(h), bias, enc, cache));
}

T5LayerFF::T5LayerFF(const T5Config& c, DType dtype, Generator* gen)
    : DenseReluDense(c, dtype, gen),
      layer_norm(c.d_model, c.layer_norm_epsilon, dtype),
      dropout_(c.dropout_rate, gen) {
  register_module("DenseReluDense", &DenseReluDense);
  register_module("layer_norm", &layer_norm);
  register_module("dropout", &dropout_);
}

Tensor T5LayerFF::forward(const Tensor& h) const {
  return h + dropout_.forward(DenseReluDense.forward(layer_norm.forward(h)));
}

T5Block::T5Block(const T5Config& c, bool is_decoder, bool has_bias, DType dtype, Generator* gen) {
  self_attention = std::make_unique<T5LayerSelfAttention>(c, has_bias, dtype, gen);
  register_module("layer.0", self_attention.get());
  if (is_decoder) {
    cross_attention = std::make_unique<T5LayerCrossAttention>(c, dtype, gen);
    register_module("layer.1", cross_attention.get());
  }
  ff = std::make_unique<T5LayerFF>(c, dtype, gen);
  register_module(is_decoder ? "layer.2" : "layer.1", ff.get());
}

Tensor T5Block::forward(const Tensor& h, const Tensor& position_bias, const Tensor& enc,
                        const Tensor& cross_bias, AttentionCache* self_cache,
                        AttentionCache* cross_cache) const {
  Tensor x = self_attention->forward(h, position_bias, self_cache);
  if (cross_attention) x = cross_attention->forward(x, enc, cross_bias, cross_cache);
  return ff->forward(x);
}

// --- stacks ----------------------------------------------------------------------------

T5Stack::T5Stack(const T5Config& c, bool is_decoder, DType dtype, Generator* gen)
    : final_layer_norm(c.d_model, c.layer_norm_epsilon, dtype),
      is_decoder_(is_decoder),
      dropout_(c.dropout_rate, gen) {
  const int64_t n = is_decoder ? c.num_decoder_layers : c.num_layers;
  for (int64_t i = 0; i < n; ++i) {
    block.push_back(std::make_unique<T5Block>(c, is_decoder, i == 0, dtype, gen));
    register_module("block." + std::to_string(i), block.back().get());
  }
  register_module("final_layer_norm", &final_layer_norm);
  register_module("dropout", &dropout_);
}

Tensor T5Stack::forward(const Tensor& inputs_embeds, const Tensor& mask, const Tensor& enc,
                        const Tensor& enc_mask, T5Cache* cache) const {
  SP_CHECK(inputs_embeds.dim() == 3, "[T5Stack] expected inputs_embeds as [B, T, D], got ",
           describe(inputs_embeds));
  SP_CHECK(!is_decoder_ || enc.defined(), "[T5Stack] the decoder needs encoder hidden states");
  const int64_t T = inputs_embeds.size(1);
  const int64_t past = cache ? cache->length : 0;
  const int64_t K = past + T;
  const T5Attention& first = block[0]->self_attention->SelfAttention;
  const DType dtype = first.relative_attention_bias->weight.dtype();
  const Device device = inputs_embeds.device();

  // One bias (relative positions + mask) for every layer of the stack.
  Tensor bias = first.compute_bias(T, K, /*bidirectional=*/!is_decoder_, past);
  Tensor m = t5_additive_mask(mask, T, K, is_decoder_, past, dtype, device);
  if (m.defined()) bias = bias + m;
  Tensor cross_bias;
  if (is_decoder_ && enc_mask.defined())
    cross_bias = t5_additive_mask(enc_mask, 1, enc.size(1), false, 0, dtype, device);

  Tensor h = dropout_.forward(inputs_embeds);
  for (size_t i = 0; i < block.size(); ++i) {
    AttentionCache* sc = cache ? &cache->self[i] : nullptr;
    AttentionCache* cc = cache ? &cache->cross[i] : nullptr;
    h = block[i]->forward(h, bias, enc, cross_bias, sc, cc);
  }
  if (cache) cache->length = K;
  return dropout_.forward(final_layer_norm.forward(h));
}

// --- the model -------------------------------------------------------------------------

T5ForConditionalGeneration::T5ForConditionalGeneration(const T5Config& config, DType dtype,
                                                       Generator* dropout_gen)
    : shared((config.validate(), config.vocab_size), config.d_model, dtype),
      encoder(config, false, dtype, dropout_gen),
      decoder(config, true, dtype, dropout_gen),
      config_(config) {
  register_module("shared", &shared);
  register_module("encoder", &encoder);
  register_module("decoder", &decoder);
  if (!config.tie_word_embeddings) {
    lm_head = std::make_unique<Linear>(config.d_model, config.vocab_size, false, dtype);
    register_module("lm_head", lm_head.get());
  }
}

void T5ForConditionalGeneration::init_weights(Generator* gen) {
  const T5Config& c = config_;
  const double f = c.initializer_factor;
  const double d = static_cast<double>(c.d_model);
  init::normal_(shared.weight, 0, f, gen);
  auto attention = [&](T5Attention& a) {
    init::normal_(a.q.weight, 0, f * std::pow(d * c.d_kv, -0.5), gen);
    init::normal_(a.k.weight, 0, f * std::pow(d, -0.5), gen);
    init::normal_(a.v.weight, 0, f * std::pow(d, -0.5), gen);
    init::normal_(a.o.weight, 0, f * std::pow(static_cast<double>(c.inner_dim()), -0.5), gen);
    if (a.relative_attention_bias)
      init::normal_(a.relative_attention_bias->weight, 0, f * std::pow(d, -0.5), gen);
  };
  auto ff = [&](T5LayerFF& l) {
    T5DenseActDense& m = l.DenseReluDense;
    if (m.gated()) {
      init::normal_(m.wi_0->weight, 0, f * std::pow(d, -0.5), gen);
      init::normal_(m.wi_1->weight, 0, f * std::pow(d, -0.5), gen);
    } else {
      init::normal_(m.wi->weight, 0, f * std::pow(d, -0.5), gen);
    }
    init::normal_(m.wo.weight, 0, f * std::pow(static_cast<double>(c.d_ff), -0.5), gen);
    init::ones_(l.layer_norm.weight);
  };
  for (T5Stack* s : {&encoder, &decoder}) {
    for (auto& b : s->block) {
      attention(b->self_attention->SelfAttention);
      init::ones_(b->self_attention->layer_norm.weight);
      if (b->cross_attention) {
        attention(b->cross_attention->EncDecAttention);
        init::ones_(b->cross_attention->layer_norm.weight);
      }
      ff(*b->ff);
    }
    init::ones_(s->final_layer_norm.weight);
  }
  if (lm_head) init::normal_(lm_head->weight, 0, f, gen);
}

Tensor T5ForConditionalGeneration::embed(const Tensor& ids) const {
  SP_CHECK(ids.dim() == 2, "[T5] expected input ids as [batch, length], got ", describe(ids));
  return shared.forward(ids);
}

Tensor T5ForConditionalGeneration::encode(const Tensor& inputs_embeds,
                                          const Tensor& attention_mask) const {
  SP_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config_.d_model,
           "[T5] expected inputs_embeds as [batch, length, ", config_.d_model, "], got ",
           describe(inputs_embeds));
  Tensor x = inputs_embeds.dtype() == dtype() ? inputs_embeds : cast(inputs_embeds, dtype());
  return encoder.forward(x, attention_mask);
}

Tensor T5ForConditionalGeneration::decode(const Tensor& decoder_input_ids,
                                          const Tensor& encoder_hidden_states,
                                          const Tensor& encoder_attention_mask,
                                          const Tensor& decoder_attention_mask,
                                          T5Cache* cache) const {
  return decoder.forward(embed(decoder_input_ids), decoder_attention_mask, encoder_hidden_states,
                         encoder_attention_mask, cache);
}

Tensor T5ForConditionalGeneration::lm_logits(const Tensor& decoder_hidden) const {
  Tensor h = decoder_hidden;
  if (config_.scale_decoder_outputs) h = h * std::pow(static_cast<double>(config_.d_model), -0.5);
  return linear(h, output_weight());
}

Tensor T5ForConditionalGeneration::shift_right(const Tensor& labels) const {
  SP_CHECK(labels.dim() == 2, "[T5] expected labels as [batch, length], got ", describe(labels));
  const int64_t B = labels.size(0), T = labels.size(1);
  std::vector<int64_t> l = labels.to_vector<int64_t>();
  std::vector<int64_t> out(l.size());
  for (int64_t b = 0; b < B; ++b) {
    out[b * T] = config_.decoder_start_token_id;
    for (int64_t t = 1; t < T; ++t) {
      const int64_t v = l[b * T + t - 1];
      out[b * T + t] = v == -100 ? config_.pad_token_id : v;
    }
  }
  Tensor r = Tensor::from_vector(out, Shape{B, T});
  return labels.device().is_cpu() ? r : r.to(labels.device());
}

T5Output T5ForConditionalGeneration::forward(const T5Inputs& in) const {
  SP_CHECK(in.input_ids.defined() != in.inputs_embeds.defined(),
           "[T5] give exactly one of input_ids and inputs_embeds");
  SP_CHECK(in.decoder_input_ids.defined() || in.labels.defined(),
           "[T5] give decoder_input_ids or labels");
  T5Output out;
  Tensor embeds = in.inputs_embeds.defined() ? in.inputs_embeds : embed(in.input_ids);
  out.encoder_hidden_states = encode(embeds, in.attention_mask);
  Tensor dec_ids = in.decoder_input_ids.defined() ? in.decoder_input_ids : shift_right(in.labels);
  Tensor h =
      decode(dec_ids, out.encoder_hidden_states, in.attention_mask, in.decoder_attention_mask);
  out.logits = lm_logits(h);
  if (in.labels.defined()) {
    SP_CHECK(in.labels.shape() == dec_ids.shape(), "[T5] labels ", describe(in.labels),
             " and decoder inputs ", describe(dec_ids), " differ in shape");
    out.loss = cross_entropy(out.logits, in.labels);
  }
  return out;
}

T5Cache T5ForConditionalGeneration::make_cache() const {
  T5Cache c;
  c.self.resize(decoder.block.size());
  c.cross.resize(decoder.block.size());
  return c;
}

int64_t T5ForConditionalGeneration::count_parameters(const T5Config& c) {
  const int64_t D = c.d_model, I = c.inner_dim();
  const int64_t attention = 4 * D * I;
  const int64_t ff = (c.is_gated() ? 3 : 2) * D * c.d_ff;
  const int64_t rel = c.relative_attention_num_buckets * c.num_heads;
  const int64_t enc = c.num_layers * (attention + ff + 2 * D) + rel + D;
  const int64_t dec = c.num_decoder_layers * (2 * attention + ff + 3 * D) + rel + D;
  const int64_t emb = c.vocab_size * D;
  return emb * (c.tie_word_embeddings ? 1 : 2) + enc + dec;
}

}  // namespace sp
