#pragma once
// Greedy decoding with the key/value cache, and rank classification by log-likelihood.
#include <cstdint>
#include <vector>

#include "models/t5/t5_model.h"

namespace sp {

struct GenerateOptions {
  int64_t max_new_tokens = 20;
};

// input_ids: [B, S], attention_mask: [B, S] or undefined, task_ids: [B] i64 (each
// example's prompt in a mixed-task batch or an ensemble) or undefined -> per example the
// generated ids without the start token, ending with eos when it was generated. Runs
// without recording the graph; a row that reached eos stops growing while the others
// continue. The input goes through model.encode_inputs, so PEFT input hooks apply.
std::vector<std::vector<int64_t>> greedy_generate(const T5ForConditionalGeneration& model,
                                                  const Tensor& input_ids,
                                                  const Tensor& attention_mask,
                                                  const GenerateOptions& options = {},
                                                  const Tensor& task_ids = Tensor());

struct SequenceScore {
  double logprob = 0;      // sum of the target tokens' log-probabilities
  int64_t num_tokens = 0;  // targets that are not -100
  double loss() const { return num_tokens ? -logprob / static_cast<double>(num_tokens) : 0; }
};

// input_ids: [B, S], attention_mask: [B, S] or undefined, labels: [B, T] (-100 = padding),
// task_ids: [B] i64 or undefined -> one score per example (teacher forcing, no graph).
std::vector<SequenceScore> score_sequences(const T5ForConditionalGeneration& model,
                                           const Tensor& input_ids, const Tensor& attention_mask,
                                           const Tensor& labels, const Tensor& task_ids = Tensor());

// The candidates as label rows for scoring, [copies * C, T] i64 on the model's device:
// copy k's candidate i at row k * C + i, padded with -100 to the longest (T). Every id must
// be a token of the model's vocabulary (a -100 would be scored as padding); op names the
// caller in errors.
Tensor candidate_labels(const T5ForConditionalGeneration& model,
                        const std::vector<std::vector<int64_t>>& candidates, int64_t copies,
                        const char* op);

// Rank classification: for one input (ids without padding) and candidate target sequences,
// the index of the candidate with the highest total log-likelihood; scores (when given)
// receives every candidate's score. task_id >= 0 picks the input's prompt (mixed-task
// methods); -1 runs without task ids.
int64_t rank_classify(const T5ForConditionalGeneration& model,
                      const std::vector<int64_t>& input_ids,
                      const std::vector<std::vector<int64_t>>& candidates,
                      std::vector<SequenceScore>* scores = nullptr, int64_t task_id = -1);

}  // namespace sp
