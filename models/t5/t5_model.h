#pragma once
// T5ForConditionalGeneration with Hugging Face's module tree and parameter names:
//   shared, encoder.block.{i}.layer.{0: SelfAttention, 1: DenseReluDense},
//   decoder.block.{i}.layer.{0: SelfAttention, 1: EncDecAttention, 2: DenseReluDense},
//   {encoder,decoder}.final_layer_norm, lm_head (untied only).
// encoder.embed_tokens / decoder.embed_tokens are the shared embedding, not registered.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "models/t5/attention.h"
#include "models/t5/config.h"
#include "models/t5/feed_forward.h"
#include "models/t5/segments.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/peft/peft_host.h"
#include "nn/rms_norm.h"

namespace sp {

// Keys and values of every decoder layer for incremental decoding.
struct T5Cache {
  std::vector<AttentionCache> self;
  std::vector<AttentionCache> cross;
  int64_t length = 0;  // decoder positions already processed
};

class T5LayerSelfAttention : public Module {
 public:
  T5LayerSelfAttention(const T5Config& c, bool has_relative_attention_bias, DType dtype,
                       Generator* gen);
  // h: [B, T, D] -> h + dropout(attn(norm(h)))
  Tensor forward(const Tensor& h, const Tensor& position_bias, AttentionCache* cache) const;
  T5Attention SelfAttention;
  RMSNorm layer_norm;

 private:
  Dropout dropout_;
};

class T5LayerCrossAttention : public Module {
 public:
  T5LayerCrossAttention(const T5Config& c, DType dtype, Generator* gen);
  // h: [B, T, D], enc: [B, S, D] -> [B, T, D]
  Tensor forward(const Tensor& h, const Tensor& enc, const Tensor& bias,
                 AttentionCache* cache) const;
  T5Attention EncDecAttention;
  RMSNorm layer_norm;

 private:
  Dropout dropout_;
};

class T5LayerFF : public Module {
 public:
  T5LayerFF(const T5Config& c, DType dtype, Generator* gen);
  Tensor forward(const Tensor& h) const;  // [B, T, D] -> [B, T, D]
  T5DenseActDense DenseReluDense;
  RMSNorm layer_norm;

 private:
  Dropout dropout_;
};

class T5Block : public Module {
 public:
  T5Block(const T5Config& c, bool is_decoder, bool has_relative_attention_bias, DType dtype,
          Generator* gen);
  Tensor forward(const Tensor& h, const Tensor& position_bias, const Tensor& enc,
                 const Tensor& cross_bias, AttentionCache* self_cache,
                 AttentionCache* cross_cache) const;
  std::unique_ptr<T5LayerSelfAttention> self_attention;    // layer.0
  std::unique_ptr<T5LayerCrossAttention> cross_attention;  // layer.1 (decoder)
  std::unique_ptr<T5LayerFF> ff;                           // layer.1 (encoder) / layer.2 (decoder)
};

class T5Stack : public Module {
 public:
  T5Stack(const T5Config& c, bool is_decoder, DType dtype, Generator* gen);
  // inputs_embeds: [B, T, D]; mask: [B, K] (nonzero = attend) over all K keys (for the
  // decoder K = cache length + T) or undefined; enc: [B, S, D] and enc_mask: [B, S] for
  // the decoder -> [B, T, D]. Packed rows (segments.h): segments of these T tokens and, for
  // the decoder, enc_segment_ids [B, S]; no cache then.
  Tensor forward(const Tensor& inputs_embeds, const Tensor& mask, const Tensor& enc = Tensor(),
                 const Tensor& enc_mask = Tensor(), T5Cache* cache = nullptr,
                 const T5Segments& segments = {}, const Tensor& enc_segment_ids = Tensor()) const;
  bool is_decoder() const { return is_decoder_; }

  std::vector<std::unique_ptr<T5Block>> block;
  RMSNorm final_layer_norm;

 private:
  bool is_decoder_;
  Dropout dropout_;
};

// The additive mask for attention: 0 where mask != 0 (and, causal, key <= query), the
// lowest finite value of dtype elsewhere (transformers' finfo(dtype).min).
// mask: [B, K] or undefined -> [B | 1, 1, q_len | 1, K] in dtype, or undefined when
// neither a mask nor causality applies.
Tensor t5_additive_mask(const Tensor& mask, int64_t q_len, int64_t k_len, bool causal,
                        int64_t q_offset, DType dtype, Device device);

// Every member defaults to undefined; the {} keep -Wmissing-field-initializers quiet when
// an initializer names only some ({.input_ids = ids, .labels = labels}).
struct T5Inputs {
  Tensor input_ids{};               // [B, S] or undefined when inputs_embeds is given
  Tensor inputs_embeds{};           // [B, S, D] (prompt tuning prepends here)
  Tensor attention_mask{};          // [B, S], 1 = token, 0 = padding; undefined = all tokens
  Tensor decoder_input_ids{};       // [B, T]; undefined: labels shifted right
  Tensor decoder_attention_mask{};  // [B, T] or undefined
  Tensor labels{};                  // [B, T] with -100 ignored, or undefined
  // Packed rows (segments.h; give both sides or neither): segment ids, 0 = padding,
  // 1..n = the example; positions within each example (undefined: derived from the ids).
  Tensor encoder_segment_ids{};  // [B, S]
  Tensor decoder_segment_ids{};  // [B, T]; labels shift right per segment
  Tensor encoder_positions{};    // [B, S]
  Tensor decoder_positions{};    // [B, T]
  Tensor task_ids{};             // [B] i64: each example's prompt / adapter id (mixed-task
                                 // batches, ensembles), or undefined; read by the PEFT
                                 // input hook (an error without one)
};

// The encoder's output as the decoder sees it: after a PEFT input hook the sequence may be
// longer than the input ids (a prompt), and the mask covers every position.
struct T5Encoded {
  Tensor hidden;  // [B, S', D]
  Tensor mask;  // [B, S'] (1 = attend), or undefined when the input had no padding and no hook ran
};

struct T5Output {
  Tensor logits;                 // [B, T, V]
  Tensor loss;                   // scalar f32 when labels were given
  Tensor encoder_hidden_states;  // [B, S, D]
};

class T5ForConditionalGeneration : public Module, public PeftHost {
 public:
  // Weights start as zeros / ones: call init_weights or load a checkpoint. dropout_gen
  // drives every dropout (the default generator when null) and must outlive the model.
  explicit T5ForConditionalGeneration(const T5Config& config, DType dtype = DType::f32,
                                      Generator* dropout_gen = nullptr);

  const T5Config& config() const { return config_; }
  // The dtype the model computes in: its narrowest parameter dtype, or set_compute_dtype's
  // when that is narrower (bf16 for a bf16 backbone even when a bf16 run keeps the tensors
  // it trains in f32: nn/mixed_dtype.h).
  DType dtype() const;
  // Where the model's weights live; forward, encode_inputs and embed move host inputs
  // (ids, masks, labels, segments, task ids) there.
  Device device() const { return shared.weight.device(); }

  // transformers' T5PreTrainedModel._init_weights (modeling_t5.py), in named_parameters order.
  void init_weights(Generator* gen = nullptr);

  // ids: [B, S] -> [B, S, D]
  Tensor embed(const Tensor& ids) const;
  // inputs_embeds: [B, S, D] (cast to the model dtype), attention_mask: [B, S] -> [B, S, D]
  Tensor encode(const Tensor& inputs_embeds, const Tensor& attention_mask = Tensor(),
                const T5Segments& segments = {}) const;
  // decoder_input_ids: [B, T] -> decoder hidden states [B, T, D]. With cache, the ids are
  // the new positions only and decoder_attention_mask (if any) covers cache + new.
  Tensor decode(const Tensor& decoder_input_ids, const Tensor& encoder_hidden_states,
                const Tensor& encoder_attention_mask = Tensor(),
                const Tensor& decoder_attention_mask = Tensor(), T5Cache* cache = nullptr,
                const T5Segments& segments = {},
                const Tensor& encoder_segment_ids = Tensor()) const;
  // hidden: [B, T, D] -> logits [B, T, V] (scaled by d_model^-0.5 first when
  // scale_decoder_outputs)
  Tensor lm_logits(const Tensor& decoder_hidden) const;
  T5Output forward(const T5Inputs& in) const;
  // Embeds input_ids (or takes inputs_embeds), runs the PEFT input hook with task_ids and
  // encodes: the one path from inputs to encoder states, used by forward(), generation,
  // scoring and rank classification. Reads input_ids / inputs_embeds, attention_mask,
  // task_ids and the encoder segments.
  T5Encoded encode_inputs(const T5Inputs& in) const;

  // PeftHost (nn/peft/peft_host.h).
  Module& module() override { return *this; }
  int64_t model_dim() const override { return config_.d_model; }
  Tensor input_embedding() const override { return shared.weight; }
  DType compute_dtype() const override { return dtype(); }
  // Embeddings, the position bias and every layer's output in dtype (or in a narrower
  // parameter dtype), wider weights cast where used: f32 weights with dtype bf16 is mixed
  // precision. Stays set through to() and loading.
  void set_compute_dtype(DType dtype) override;
  void set_input_hook(std::shared_ptr<const InputHook> hook) override {
    input_hook_ = std::move(hook);
  }
  const std::shared_ptr<const InputHook>& input_hook() const { return input_hook_; }
  bool has_input_hook() const override { return input_hook_ != nullptr; }
  // One site per attention layer, in module order (models/t5/attention_sites.cpp; the KV
  // hook plumbing is T5Attention::kv_hook).
  std::vector<AttentionSite> attention_sites() override;

  // labels: [B, T] -> [B, T]: decoder_start_token_id first (and first in every segment when
  // decoder_segment_ids [B, T] is given), -100 -> pad_token_id.
  Tensor shift_right(const Tensor& labels, const Tensor& decoder_segment_ids = Tensor()) const;
  // The head's weight: lm_head.weight, or shared.weight when tied.
  const Tensor& output_weight() const { return lm_head ? lm_head->weight : shared.weight; }
  T5Cache make_cache() const;
  // The parameter count a model of this configuration has, without building it.
  static int64_t count_parameters(const T5Config& config);

  Embedding shared;
  T5Stack encoder;
  T5Stack decoder;
  std::unique_ptr<Linear> lm_head;  // untied only

 private:
  T5Config config_;
  std::optional<DType> compute_dtype_;  // set_compute_dtype's; none: the parameters'
  std::shared_ptr<const InputHook> input_hook_;
};

}  // namespace sp
