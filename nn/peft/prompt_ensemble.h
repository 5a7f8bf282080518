#pragma once
// Prompt ensembling (the paper's Table 3): N prompts trained for one frozen model run over
// the same batch in one forward pass (the batch replicated per prompt, task ids 0..N-1),
// and the N predictions vote.
//
//   auto pt = load_prompt_ensemble({"runs/a/prompt", "runs/b/prompt"}, model);
//   // T5: ensemble_generate / ensemble_rank_classify (models/t5/ensemble.h) do the
//   // replication, the pass and the vote; or by hand:
//   Tensor ids = replicate_rows(batch_ids, N), tasks = ensemble_task_ids(B, N);
//   ... predictions[n][b] ...
//   std::vector<std::string> answers = majority_vote(predictions);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/peft/prompt_tuning.h"
#include "tensor/error.h"

namespace sp {

// Prompts saved by PromptTuning::save, one per directory, each of the same length, position
// and d_model, loaded as one multi-prompt method attached to host: task id n is dirs[n]'s
// prompt. Throws naming the directory that differs or holds several prompts.
std::unique_ptr<PromptTuning> load_prompt_ensemble(const std::vector<std::string>& dirs,
                                                   PeftHost& host);

// x: [B, ...] -> [n * B, ...]: copy k at rows k * B .. (k + 1) * B - 1.
Tensor replicate_rows(const Tensor& x, int64_t n);
// -> [n * batch] i64: batch zeros, then batch ones, ... (the task ids of replicate_rows).
Tensor ensemble_task_ids(int64_t batch, int64_t n);

// predictions[k][b]: member k's prediction for example b -> per example the prediction most
// members made. A tie goes to the tied prediction of the lowest-index member (with two
// members that disagree: member 0's).
template <typename T>
std::vector<T> majority_vote(const std::vector<std::vector<T>>& predictions) {
  if (predictions.empty()) return {};
  const size_t B = predictions[0].size();
  for (const auto& p : predictions)
    SP_CHECK(p.size() == B, "[ensemble] member predictions differ in count: ", p.size(), " vs ", B);
  std::vector<T> out;
  out.reserve(B);
  for (size_t b = 0; b < B; ++b) {
    size_t best = 0, best_count = 0;
    for (size_t k = 0; k < predictions.size(); ++k) {
      size_t count = 0;
      for (const auto& p : predictions) count += p[b] == predictions[k][b];
      if (count > best_count) {  // strict: the earliest member wins a tie
        best = k;
        best_count = count;
      }
    }
    out.push_back(predictions[best][b]);
  }
  return out;
}

}  // namespace sp
