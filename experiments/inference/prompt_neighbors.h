#pragma once
// The paper's interpretability analysis of a tuned prompt: per prompt position, the k
// vocabulary pieces nearest by cosine similarity, and which class labels are among them (a
// label counts when its head, its first piece other than a bare "▁", is a neighbour; a
// head that is <unk> never counts, nor do later pieces, word endings such as "ment"). Used by
// `softprompt neighbors` and by the eval stage's `prompt_neighbors` key.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/tokenizer/t5_tokenizer.h"
#include "nn/peft/neighbors.h"
#include "tensor/tensor.h"

namespace sp {

struct PromptPositionNeighbors {
  int64_t prompt = 0;    // which of the method's prompts
  int64_t position = 0;  // position within it
  std::vector<Neighbor> neighbors;  // nearest first
  std::vector<std::string> labels;  // the class labels among the neighbours, in label order
  // {"prompt", "position", "labels", "neighbors": [{"id", "piece", "cosine"}]}
  nlohmann::json to_json(const T5Tokenizer& tokenizer) const;
};

// prompts: [P, p, D]; embedding: [V, D] -> P * p entries, prompt-major. Only ids below the
// tokenizer's vocab_size() (pieces with text) are candidates. Throws naming the prompt and
// position when a value is not finite (a diverged prompt).
std::vector<PromptPositionNeighbors> prompt_neighbors(const Tensor& prompts,
                                                      const Tensor& embedding,
                                                      const T5Tokenizer& tokenizer, int64_t k,
                                                      const std::vector<std::string>& labels);

}  // namespace sp
