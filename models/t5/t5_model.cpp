#include "models/t5/t5_model.h"

#include <cmath>
#include <tuple>

#include "autograd/ops.h"
#include "nn/init.h"
#include "nn/mixed_dtype.h"
#include "tensor/kernels.h"

namespace sp {

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
  const double low = t5_mask_lowest(dtype);
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

namespace {

Tensor on(const Tensor& t, Device device) {
  return t.defined() && t.device() != device ? t.to(device) : t;
}

// Every tensor of in on device (batches are built on the host; the model may not be).
T5Inputs inputs_on(const T5Inputs& in, Device device) {
  T5Inputs out;
  out.input_ids = on(in.input_ids, device);
  out.inputs_embeds = on(in.inputs_embeds, device);
  out.attention_mask = on(in.attention_mask, device);
  out.decoder_input_ids = on(in.decoder_input_ids, device);
  out.decoder_attention_mask = on(in.decoder_attention_mask, device);
  out.labels = on(in.labels, device);
  out.encoder_segment_ids = on(in.encoder_segment_ids, device);
  out.decoder_segment_ids = on(in.decoder_segment_ids, device);
  out.encoder_positions = on(in.encoder_positions, device);
  out.decoder_positions = on(in.decoder_positions, device);
  out.task_ids = on(in.task_ids, device);
  return out;
}

}  // namespace

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
                        const Tensor& enc_mask, T5Cache* cache, const T5Segments& segments,
                        const Tensor& enc_segment_ids) const {
  SP_CHECK(inputs_embeds.dim() == 3, "[T5Stack] expected inputs_embeds as [B, T, D], got ",
           describe(inputs_embeds));
  SP_CHECK(!is_decoder_ || enc.defined(), "[T5Stack] the decoder needs encoder hidden states");
  // Masks and encoder states of another batch size would broadcast (a [1, S] mask over
  // every row) instead of failing.
  const int64_t B = inputs_embeds.size(0);
  SP_CHECK(!mask.defined() || (mask.dim() == 2 && mask.size(0) == B),
           "[T5Stack] attention mask is ", describe(mask),
           ", expected one row per example of the batch of ", B);
  SP_CHECK(!is_decoder_ || (enc.dim() == 3 && enc.size(0) == B), "[T5Stack] encoder states are ",
           describe(enc), ", expected [", B, ", S, D] for a decoder batch of ", B);
  SP_CHECK(!enc_mask.defined() || (enc_mask.dim() == 2 && enc_mask.size(0) == B),
           "[T5Stack] encoder attention mask is ", describe(enc_mask),
           ", expected one row per example of the batch of ", B);
  const int64_t T = inputs_embeds.size(1);
  const int64_t past = cache ? cache->length : 0;
  const int64_t K = past + T;
  const T5Attention& first = block[0]->self_attention->SelfAttention;
  const DType dtype = inputs_embeds.dtype();  // the stream's; a trained f32 bias is cast to it
  const Device device = inputs_embeds.device();

  // One bias (relative positions + mask) for every layer of the stack.
  Tensor bias, cross_bias;
  if (segments.packed()) {
    // Per row: biases from per-segment positions, masks from segment ids.
    const char* side = is_decoder_ ? "decoder" : "encoder";
    SP_CHECK(!cache, "[T5Stack] packed rows (segment ids) cannot decode with a cache");
    SP_CHECK(!is_decoder_ || enc_segment_ids.defined(),
             "[T5Stack] packed decoder rows need the encoder's segment ids");
    const T5Segments s = resolve_segments(segments, inputs_embeds.size(0), T, side);
    // Only position differences inside a segment matter: where they equal index
    // differences (rows from pack_examples) the cached per-shape table serves.
    Tensor rel = positions_follow_indices(s)
                     ? first.compute_bias(T, T, /*bidirectional=*/!is_decoder_)
                     : first.compute_bias(s.positions, s.positions, /*bidirectional=*/!is_decoder_);
    bias = cast_if_needed(rel, dtype) +
           t5_segment_mask(s.segment_ids, s.segment_ids, is_decoder_, mask, dtype, device);
    if (is_decoder_) {
      resolve_segments({enc_segment_ids, Tensor()}, enc.size(0), enc.size(1), "encoder");
      cross_bias = t5_segment_mask(s.segment_ids, enc_segment_ids, false, enc_mask, dtype, device);
    }
  } else {
    SP_CHECK(!enc_segment_ids.defined(),
             "[T5Stack] encoder segment ids were given without decoder segment ids");
    bias = cast_if_needed(first.compute_bias(T, K, /*bidirectional=*/!is_decoder_, past), dtype);
    Tensor m = t5_additive_mask(mask, T, K, is_decoder_, past, dtype, device);
    if (m.defined()) bias = bias + m;
    if (is_decoder_ && enc_mask.defined())
      cross_bias = t5_additive_mask(enc_mask, 1, enc.size(1), false, 0, dtype, device);
  }

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

void T5ForConditionalGeneration::set_compute_dtype(DType dtype) {
  SP_CHECK(is_floating(dtype), "[T5] the compute dtype must be floating, got ", dtype_name(dtype));
  compute_dtype_ = dtype;
}

DType T5ForConditionalGeneration::dtype() const {
  DType d = compute_dtype_.value_or(shared.weight.dtype());
  for_each_parameter([&d](const Tensor& t) {
    if (t.defined() && is_floating(t.dtype())) d = narrower_dtype(d, t.dtype());
  });
  return d;
}

Tensor T5ForConditionalGeneration::embed(const Tensor& ids) const {
  SP_CHECK(ids.dim() == 2, "[T5] expected input ids as [batch, length], got ", describe(ids));
  return cast_if_needed(shared.forward(on(ids, device())), dtype());
}

Tensor T5ForConditionalGeneration::encode(const Tensor& inputs_embeds,
                                          const Tensor& attention_mask,
                                          const T5Segments& segments) const {
  SP_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config_.d_model,
           "[T5] expected inputs_embeds as [batch, length, ", config_.d_model, "], got ",
           describe(inputs_embeds));
  Tensor x = cast_if_needed(inputs_embeds, dtype());
  return encoder.forward(x, attention_mask, Tensor(), Tensor(), nullptr, segments);
}

Tensor T5ForConditionalGeneration::decode(const Tensor& decoder_input_ids,
                                          const Tensor& encoder_hidden_states,
                                          const Tensor& encoder_attention_mask,
                                          const Tensor& decoder_attention_mask,
                                          T5Cache* cache, const T5Segments& segments,
                                          const Tensor& encoder_segment_ids) const {
  return decoder.forward(embed(decoder_input_ids), decoder_attention_mask, encoder_hidden_states,
                         encoder_attention_mask, cache, segments, encoder_segment_ids);
}

Tensor T5ForConditionalGeneration::lm_logits(const Tensor& decoder_hidden) const {
  Tensor h = decoder_hidden;
  if (config_.scale_decoder_outputs) h = h * std::pow(static_cast<double>(config_.d_model), -0.5);
  // An untied head is a Linear: through its forward, so an adapter on lm_head applies.
  return lm_head ? lm_head->forward(h) : mixed_linear(h, shared.weight);
}

Tensor T5ForConditionalGeneration::shift_right(const Tensor& labels,
                                               const Tensor& decoder_segment_ids) const {
  return shift_right_segments(labels, decoder_segment_ids, config_.decoder_start_token_id,
                              config_.pad_token_id);
}

T5Output T5ForConditionalGeneration::forward(const T5Inputs& host_in) const {
  const T5Inputs in = inputs_on(host_in, device());
  SP_CHECK(in.input_ids.defined() != in.inputs_embeds.defined(),
           "[T5] give exactly one of input_ids and inputs_embeds");
  SP_CHECK(in.decoder_input_ids.defined() || in.labels.defined(),
           "[T5] give decoder_input_ids or labels");
  T5Output out;
  const T5Segments enc_segments{in.encoder_segment_ids, in.encoder_positions};
  const T5Segments dec_segments{in.decoder_segment_ids, in.decoder_positions};
  SP_CHECK(enc_segments.packed() == dec_segments.packed(),
           "[T5] packed rows need both encoder_segment_ids and decoder_segment_ids, got only ",
           enc_segments.packed() ? "encoder_segment_ids" : "decoder_segment_ids");
  const T5Encoded enc = encode_inputs(in);
  out.encoder_hidden_states = enc.hidden;
  Tensor dec_ids = in.decoder_input_ids.defined() ? in.decoder_input_ids
                                                  : shift_right(in.labels, in.decoder_segment_ids);
  Tensor h = decode(dec_ids, out.encoder_hidden_states, enc.mask, in.decoder_attention_mask,
                    nullptr, dec_segments, in.encoder_segment_ids);
  out.logits = lm_logits(h);
  if (in.labels.defined()) {
    SP_CHECK(in.labels.shape() == dec_ids.shape(), "[T5] labels ", describe(in.labels),
             " and decoder inputs ", describe(dec_ids), " differ in shape");
    out.loss = cross_entropy(out.logits, in.labels);
  }
  return out;
}

T5Encoded T5ForConditionalGeneration::encode_inputs(const T5Inputs& host_in) const {
  const T5Inputs in = inputs_on(host_in, device());
  SP_CHECK(in.input_ids.defined() != in.inputs_embeds.defined(),
           "[T5] give exactly one of input_ids and inputs_embeds");
  const T5Segments segments{in.encoder_segment_ids, in.encoder_positions};
  Tensor embeds = in.inputs_embeds.defined() ? in.inputs_embeds : embed(in.input_ids);
  // Only an input hook reads task ids: without one, an ensemble's members would all be the
  // bare model.
  SP_CHECK(!in.task_ids.defined() || input_hook_,
           "[T5] task_ids pick each example's prompt, but the model has no PEFT input hook "
           "(prompt tuning) to read them");
  T5Encoded out;
  out.mask = in.attention_mask;
  if (input_hook_) {
    // Segment ids and positions describe the input tokens; a hook that adds positions
    // would leave them out of step.
    SP_CHECK(!segments.packed(), "[T5] a PEFT input hook (prompt tuning) cannot run on packed "
             "rows: turn packing off for this method");
    SP_CHECK(embeds.dim() == 3, "[T5] expected inputs_embeds as [batch, length, ",
             config_.d_model, "], got ", describe(embeds));
    if (!out.mask.defined())
      out.mask = Tensor::ones(Shape{embeds.size(0), embeds.size(1)}, DType::i64, embeds.device());
    SP_CHECK(!in.task_ids.defined() ||
                 (in.task_ids.dim() == 1 && in.task_ids.size(0) == embeds.size(0)),
             "[T5] task_ids must be [", embeds.size(0), "] (one per example), got ",
             describe(in.task_ids));
    Tensor x = cast_if_needed(embeds, dtype());
    std::tie(embeds, out.mask) = input_hook_->forward(x, out.mask, in.task_ids);
  }
  out.hidden = encode(embeds, out.mask, segments);
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
