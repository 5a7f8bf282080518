// Prompt tuning in Hugging Face PEFT's format (nn/peft/hf_peft_format.h has the mapping).
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/peft/hf_peft_format.h"
#include "nn/peft/prompt_tuning.h"
#include "tensor/error.h"

namespace sp {
namespace {

// PEFT's seq2seq prompt learning sizes the embedding for encoder and decoder.
constexpr int64_t kSeq2SeqSubmodules = 2;

HfPeftAdapter prompt_tuning_to_hf(const PeftMethod& m, const HfPeftModelInfo& info) {
  const auto& pt = dynamic_cast<const PromptTuning&>(m);
  SP_CHECK(pt.prompt().defined(), "[hf_peft:prompt_tuning] export needs an attached method");
  SP_CHECK(pt.num_prompts() == 1, "[hf_peft:prompt_tuning] PEFT holds one prompt per adapter; ",
           "this method holds ", pt.num_prompts(), " (export each prompt separately)");
  SP_CHECK(pt.position() == PromptPosition::prefix,
           "[hf_peft:prompt_tuning] PEFT prepends its prompt: a suffix prompt "
           "has no PEFT equivalent");
  const std::string init = m.settings()["init"].get<std::string>();  // PeftMethod::settings
  HfPeftAdapter a;
  // Field for field what PromptTuningConfig.save_pretrained writes (inference_mode true:
  // PEFT then skips its own init, so TEXT needs no tokenizer at load).
  a.config = {
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", info.base_model_name_or_path.empty()
                                      ? nlohmann::json(nullptr)
                                      : nlohmann::json(info.base_model_name_or_path)},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"num_attention_heads", info.num_attention_heads},
      {"num_layers", info.num_layers},
      {"num_transformer_submodules", kSeq2SeqSubmodules},
      {"num_virtual_tokens", pt.length()},
      {"peft_type", "PROMPT_TUNING"},
      {"peft_version", kHfPeftVersion},
      {"prompt_tuning_init", init == "sampled_vocab" ? "SAMPLE_VOCAB" : "RANDOM"},
      {"prompt_tuning_init_text", nullptr},
      {"revision", nullptr},
      {"task_type", "SEQ_2_SEQ_LM"},
      {"token_dim", info.token_dim},
      {"tokenizer_kwargs", nullptr},
      {"tokenizer_name_or_path", nullptr},
  };
  NoGradGuard no_grad;
  Tensor p = pt.prompt().detach().select(0, 0);  // [p, D]
  a.tensors = {{"prompt_embeddings", cat({p, p}, 0).contiguous()}};
  return a;
}

std::pair<nlohmann::json, NamedTensors> prompt_tuning_from_hf(const HfPeftAdapter& a,
                                                              const HfPeftModelInfo& info) {
  // PEFT writes null for the fields it leaves unset: absent and null mean the same.
  auto field = [&](const char* key) {
    return a.config.contains(key) ? a.config[key] : nlohmann::json();
  };
  const nlohmann::json task = field("task_type");
  SP_CHECK(task == "SEQ_2_SEQ_LM", "[hf_peft:prompt_tuning] task_type ", task.dump(),
           " is not SEQ_2_SEQ_LM (a T5 adapter)");
  const nlohmann::json tokens = field("num_virtual_tokens");
  SP_CHECK(tokens.is_number_integer(),
           "[hf_peft:prompt_tuning] adapter_config.json has no integer num_virtual_tokens");
  const int64_t p = tokens.get<int64_t>();
  const nlohmann::json subs_field = field("num_transformer_submodules");
  SP_CHECK(subs_field.is_null() || subs_field.is_number_integer(),
           "[hf_peft:prompt_tuning] num_transformer_submodules must be an integer, got ",
           subs_field.dump());
  const int64_t subs = subs_field.is_null() ? kSeq2SeqSubmodules : subs_field.get<int64_t>();
  const nlohmann::json dim = field("token_dim");
  SP_CHECK(dim.is_null() || (dim.is_number_integer() && dim.get<int64_t>() == info.token_dim),
           "[hf_peft:prompt_tuning] token_dim ", dim.dump(), " differs from the model's ",
           "d_model ", info.token_dim);
  const Tensor* emb = nullptr;
  for (const auto& [n, t] : a.tensors)
    if (n == "prompt_embeddings") emb = &t;
  SP_CHECK(emb != nullptr, "[hf_peft:prompt_tuning] adapter_model.safetensors has no ",
           "prompt_embeddings");
  SP_CHECK(emb->dim() == 2 && emb->size(0) == p * subs && emb->size(1) == info.token_dim,
           "[hf_peft:prompt_tuning] prompt_embeddings is ", describe(*emb), ", expected [",
           p * subs, ", ", info.token_dim, "]");
  nlohmann::json settings = {{"length", p}, {"position", "prefix"}, {"init", "random_uniform"}};
  NoGradGuard no_grad;
  Tensor prompt = cast(emb->slice(0, 0, p), DType::f32).unsqueeze(0).contiguous();
  return {settings, {{"prompt", prompt}}};
}

}  // namespace

SP_REGISTER_HF_PEFT(prompt_tuning, (HfPeftConverter{"prompt_tuning", "PROMPT_TUNING",
                                                    prompt_tuning_to_hf, prompt_tuning_from_hf}));

}  // namespace sp
