#pragma once
// Prompt tuning (Lester et al. 2021): p trainable vectors joined to the embedded encoder
// input of a frozen model; the encoder mask gets ones for them.
//
//   auto pt = make_peft("prompt_tuning", {{"length", 100}, {"init", "class_labels"},
//                                         {"class_label_ids", {{1176}, {6136}}}});
//   pt->attach(model);              // freezes the model, logs the parameter count
//   // trainable(): {"prompt", [num_prompts, length, d_model] f32}
//
// Settings (defaults as in the paper's default run: Lester et al. 2021, sections 2.1 and 3):
//   length           p, the number of prompt positions (100)
//   position         "prefix" (before the input, the paper) | "suffix" (right after each
//                    example's last token, its EOS, before its padding) |
//                    "suffix_before_eos" (between the last token and the one before it:
//                    the paper's code's default for a suffix prompt, suffix_prompt in
//                    prompt_tuning/train/prompts.py; its combine default is a prefix)
//   init             "class_labels" (default) | "sampled_vocab" | "random_uniform" | "text"
//   init_range       random_uniform draws from [-init_range, init_range] (0.5)
//   vocab_top_n      sampled_vocab draws rows of the N most frequent pieces (5000)
//   vocab_ids        the vocabulary ranked by frequency, most frequent first; empty: ids
//                    0, 1, 2, ... (SentencePiece stores a unigram model's pieces by
//                    descending score, i.e. log-probability, so id order is frequency
//                    order for T5's vocabulary and for ours trained with train_vocab)
//   class_label_ids  one list of token ids per class label (the runner fills it from the
//                    task's labels and the tokenizer); each label's rows are averaged into
//                    one position, first labels first; the remaining positions are sampled
//                    vocab; labels beyond p are dropped with a warning. Empty with
//                    init class_labels: sampled vocab, with a warning (generative tasks)
//   init_text_ids    the token ids of init text: their rows, repeated or cut to p (as
//                    PEFT's TEXT init does)
//   seed             drives every init (0)
//   num_prompts      P prompts for mixed-task batches and ensembles (1); the batch's
//                    task_ids pick each example's prompt
//
// Sampling: without replacement when p <= N, with replacement when p > N. The prompt is
// f32 whatever the backbone's dtype: the hook casts it to the model dtype and the cast's
// backward returns f32 gradients.
#include <cstdint>
#include <string>
#include <vector>

#include "nn/peft/peft.h"

namespace sp {

enum class PromptPosition { prefix, suffix, suffix_before_eos };

class PromptTuning : public PeftMethod {
 public:
  static std::vector<PeftSetting> settings();
  explicit PromptTuning(const nlohmann::json& settings);

  std::string name() const override { return "prompt_tuning"; }
  void attach(PeftHost& host) override;
  NamedTensors trainable() const override { return {{"prompt", prompt_}}; }

  int64_t length() const { return length_; }
  int64_t num_prompts() const { return num_prompts_; }
  PromptPosition position() const { return position_; }
  // [num_prompts, length, d_model] f32, a leaf requiring grad (after attach).
  const Tensor& prompt() const { return prompt_; }
  // Per prompt and position, the vocabulary id whose row initialised it (sampled_vocab,
  // text and the sampled part of class_labels); -1 elsewhere. For tests and reports.
  const std::vector<std::vector<int64_t>>& init_ids() const { return init_ids_; }

 private:
  Tensor initial_prompt(const Tensor& embedding);  // embedding: [V, D] -> [P, p, D] f32

  int64_t length_;
  int64_t num_prompts_;
  PromptPosition position_;
  std::string init_;
  Tensor prompt_;
  std::vector<std::vector<int64_t>> init_ids_;
};

// The joining itself, for methods or tests that hold a prompt tensor (position: see the
// setting above; a suffix needs right-padded rows):
// prompts: [P, p, D], embeds: [B, S, D], mask: [B, S] (right-padded), task_ids: [B] i64 in
// [0, P) or undefined (then P must be 1) -> {[B, S + p, D] in embeds' dtype, [B, S + p] in
// mask's dtype}.
std::pair<Tensor, Tensor> join_prompt(const Tensor& prompts, const Tensor& embeds,
                                      const Tensor& mask, const Tensor& task_ids,
                                      PromptPosition position);

}  // namespace sp
