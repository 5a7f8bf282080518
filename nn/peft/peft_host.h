#pragma once
// The hook points a model offers PEFT methods. nn/ knows no T5: T5ForConditionalGeneration
// implements PeftHost, and a method sees only these:
//
//   - the embedded encoder input, before the encoder runs    (prompt tuning)   InputHook
//   - the keys and values of every attention layer           (prefix tuning)   KvHook
//   - every Linear, by its Hugging Face module name          (LoRA, IA3)       Linear::adapter
//
// A hook is installed by handle (shared_ptr); installing nullptr removes it. Hooks run in
// every forward, with autograd, in training and in inference.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/linear.h"
#include "nn/module.h"
#include "tensor/tensor.h"

namespace sp {

// Rewrites the embedded encoder input (prompt tuning prepends or appends its prompt).
// embeds: [B, S, D] in the model dtype; mask: [B, S] (1 = token, 0 = padding; always
// defined); task_ids: [B] i64, the per-example prompt id of a mixed-task batch, or
// undefined -> {embeds' [B, S', D] in the model dtype, mask' [B, S']}.
class InputHook {
 public:
  virtual ~InputHook() = default;
  virtual std::pair<Tensor, Tensor> forward(const Tensor& embeds, const Tensor& mask,
                                            const Tensor& task_ids) const = 0;
};

// Adds positions to one attention layer's keys and values (prefix tuning).
// k, v: [B, H, S, d_kv] -> {k' [B, H, P + S, d_kv], v' [B, H, P + S, d_kv]} with the P new
// positions first. The layer attends to them from every query (the mask and the position
// bias get zeros for them), so they are never padding and never causal-masked.
class KvHook {
 public:
  virtual ~KvHook() = default;
  virtual std::pair<Tensor, Tensor> forward(const Tensor& k, const Tensor& v) const = 0;
};

// One attention layer as PEFT methods see it.
struct AttentionSite {
  std::string name;  // "decoder.block.2.layer.1.EncDecAttention"
  int64_t num_heads = 0;
  int64_t d_kv = 0;
  bool is_decoder = false;
  bool is_cross_attention = false;
  std::function<void(std::shared_ptr<const KvHook>)> set_kv_hook;
  std::function<bool()> has_kv_hook;  // whether a method already set one
};

class PeftHost {
 public:
  virtual ~PeftHost() = default;

  // The whole model, with Hugging Face parameter names.
  virtual Module& module() = 0;
  virtual int64_t model_dim() const = 0;
  // The vocabulary embedding [V, D] (prompt inits, nearest-neighbour interpretation).
  virtual Tensor input_embedding() const = 0;
  // The dtype the backbone computes in (f32 or bf16).
  virtual DType compute_dtype() const = 0;
  // Makes the backbone compute in dtype (or in a narrower parameter dtype) whatever its
  // other parameters' dtypes: a bf16 run keeps what trains in f32 and computes in bf16
  // (nn/mixed_dtype.h).
  virtual void set_compute_dtype(DType dtype) = 0;

  virtual void set_input_hook(std::shared_ptr<const InputHook> hook) = 0;
  virtual bool has_input_hook() const = 0;
  virtual std::vector<AttentionSite> attention_sites() = 0;
};

// Every Linear under root by its dotted module name, in registration order.
std::vector<std::pair<std::string, Linear*>> named_linears(Module& root);

}  // namespace sp
