// T5's attention layers as PEFT methods see them (PeftHost::attention_sites). The KV hook
// plumbing itself (what T5Attention does with kv_hook) lives in models/t5/attention.cpp.
#include <string>

#include "models/t5/t5_model.h"

namespace sp {

std::vector<AttentionSite> T5ForConditionalGeneration::attention_sites() {
  std::vector<AttentionSite> sites;
  auto add = [&](const std::string& name, T5Attention& a, bool is_decoder, bool is_cross) {
    AttentionSite s;
    s.name = name;
    s.num_heads = config_.num_heads;
    s.d_kv = config_.d_kv;
    s.is_decoder = is_decoder;
    s.is_cross_attention = is_cross;
    T5Attention* layer = &a;
    s.set_kv_hook = [layer](std::shared_ptr<const KvHook> hook) { layer->kv_hook = std::move(hook); };
    s.has_kv_hook = [layer] { return layer->kv_hook != nullptr; };
    sites.push_back(std::move(s));
  };
  for (T5Stack* stack : {&encoder, &decoder}) {
    const std::string prefix = stack->is_decoder() ? "decoder.block." : "encoder.block.";
    for (size_t i = 0; i < stack->block.size(); ++i) {
      T5Block& b = *stack->block[i];
      const std::string block = prefix + std::to_string(i) + ".layer.";
      add(block + "0.SelfAttention", b.self_attention->SelfAttention, stack->is_decoder(), false);
      if (b.cross_attention)
        add(block + "1.EncDecAttention", b.cross_attention->EncDecAttention, true, true);
    }
  }
  return sites;
}

}  // namespace sp
