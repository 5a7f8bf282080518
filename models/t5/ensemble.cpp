#include "models/t5/ensemble.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/peft/prompt_ensemble.h"

namespace sp {

std::vector<std::vector<int64_t>> ensemble_generate(
    const T5ForConditionalGeneration& model, int64_t num_members, const Tensor& input_ids,
    const Tensor& attention_mask, const GenerateOptions& options,
    std::vector<std::vector<std::vector<int64_t>>>* members) {
  SP_CHECK(num_members >= 1, "[ensemble] num_members must be >= 1, got ", num_members);
  SP_CHECK(input_ids.dim() == 2, "[ensemble] expected input ids as [batch, length], got ",
           describe(input_ids));
  NoGradGuard no_grad;
  const int64_t B = input_ids.size(0);
  Tensor tasks = ensemble_task_ids(B, num_members);
  if (tasks.device() != input_ids.device()) tasks = tasks.to(input_ids.device());
  std::vector<std::vector<int64_t>> all = greedy_generate(
      model, replicate_rows(input_ids, num_members),
      attention_mask.defined() ? replicate_rows(attention_mask, num_members) : Tensor(), options,
      tasks);
  std::vector<std::vector<std::vector<int64_t>>> per(num_members);
  for (int64_t k = 0; k < num_members; ++k)
    per[k].assign(all.begin() + k * B, all.begin() + (k + 1) * B);
  std::vector<std::vector<int64_t>> voted = majority_vote(per);
  if (members) *members = std::move(per);
  return voted;
}

int64_t ensemble_rank_classify(const T5ForConditionalGeneration& model, int64_t num_members,
                               const std::vector<int64_t>& input_ids,
                               const std::vector<std::vector<int64_t>>& candidates,
                               std::vector<int64_t>* members) {
  SP_CHECK(num_members >= 1, "[ensemble] num_members must be >= 1, got ", num_members);
  SP_CHECK(!candidates.empty(), "[ensemble] no candidates");
  SP_CHECK(!input_ids.empty(), "[ensemble] empty input");
  const int64_t N = num_members, C = static_cast<int64_t>(candidates.size());
  const int64_t S = static_cast<int64_t>(input_ids.size());
  // Rows k * C + i: member k scoring candidate i.
  const Tensor label_t = candidate_labels(model, candidates, N, "ensemble");

  NoGradGuard no_grad;
  // The input is encoded once per member and shared by that member's candidates.
  T5Inputs in;
  in.input_ids = replicate_rows(Tensor::from_vector(input_ids, Shape{1, S}), N);
  in.task_ids = ensemble_task_ids(1, N);
  const T5Encoded encoded = model.encode_inputs(in);
  std::vector<int64_t> rows(N * C);
  for (int64_t r = 0; r < N * C; ++r) rows[r] = r / C;
  Tensor row_idx = Tensor::from_vector(rows, Shape{N * C});
  if (row_idx.device() != encoded.hidden.device()) row_idx = row_idx.to(encoded.hidden.device());
  Tensor enc = index_select(encoded.hidden, 0, row_idx);
  Tensor enc_mask = encoded.mask.defined() ? index_select(encoded.mask, 0, row_idx) : Tensor();
  Tensor logits = model.lm_logits(model.decode(model.shift_right(label_t), enc, enc_mask));
  CrossEntropyOptions ce;
  ce.reduction = Reduction::none;
  std::vector<double> nll = cross_entropy(logits, label_t, ce).to_vector<double>();  // [N*C, T]
  const int64_t T = label_t.size(1);
  std::vector<std::vector<int64_t>> choice(N, std::vector<int64_t>(1));
  for (int64_t k = 0; k < N; ++k) {
    std::vector<double> logprob(C, 0.0);
    for (int64_t i = 0; i < C; ++i)
      for (size_t t = 0; t < candidates[i].size(); ++t)  // the padding follows
        logprob[i] -= nll[(k * C + i) * T + t];
    int64_t best = 0;
    for (int64_t i = 1; i < C; ++i)
      if (logprob[i] > logprob[best]) best = i;
    choice[k][0] = best;
  }
  if (members) {
    members->clear();
    for (const auto& c : choice) members->push_back(c[0]);
  }
  return majority_vote(choice)[0];
}

}  // namespace sp
