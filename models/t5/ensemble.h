#pragma once
// Prompt ensembles on T5 (nn/peft/prompt_ensemble.h): one forward pass for N prompts, then a
// majority vote. The model carries a multi-prompt method (load_prompt_ensemble) whose task
// ids 0..N-1 are the members.
#include <cstdint>
#include <vector>

#include "models/t5/generation.h"

namespace sp {

// input_ids: [B, S], attention_mask: [B, S] or undefined -> per example the majority of the
// N members' greedy outputs (ties: the lowest-index member's). members, when given,
// receives members[k][b], member k's output for example b.
std::vector<std::vector<int64_t>> ensemble_generate(
    const T5ForConditionalGeneration& model, int64_t num_members, const Tensor& input_ids,
    const Tensor& attention_mask, const GenerateOptions& options = {},
    std::vector<std::vector<std::vector<int64_t>>>* members = nullptr);

// Rank classification by every member in one pass (N * C decoder rows) -> the candidate
// most members chose (ties: the lowest-index member's). members receives each one's choice.
int64_t ensemble_rank_classify(const T5ForConditionalGeneration& model, int64_t num_members,
                               const std::vector<int64_t>& input_ids,
                               const std::vector<std::vector<int64_t>>& candidates,
                               std::vector<int64_t>* members = nullptr);

}  // namespace sp
