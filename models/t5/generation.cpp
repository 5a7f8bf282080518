#include "models/t5/generation.h"

#include <algorithm>

#include "autograd/ops.h"

namespace sp {

std::vector<std::vector<int64_t>> greedy_generate(const T5ForConditionalGeneration& model,
                                                  const Tensor& input_ids,
                                                  const Tensor& attention_mask,
                                                  const GenerateOptions& options,
                                                  const Tensor& task_ids) {
  SP_CHECK(input_ids.dim() == 2, "[generate] expected input ids as [batch, length], got ",
           describe(input_ids));
  SP_CHECK(options.max_new_tokens >= 0, "[generate] max_new_tokens must be >= 0, got ",
           options.max_new_tokens);
  NoGradGuard no_grad;
  const T5Config& c = model.config();
  const int64_t B = input_ids.size(0);
  T5Inputs in;
  in.input_ids = input_ids;
  in.attention_mask = attention_mask;
  in.task_ids = task_ids;
  const T5Encoded encoded = model.encode_inputs(in);
  const Tensor& enc = encoded.hidden;
  T5Cache cache = model.make_cache();
  std::vector<std::vector<int64_t>> out(B);
  std::vector<bool> done(B, false);
  std::vector<int64_t> next(B, c.decoder_start_token_id);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    Tensor cur = Tensor::from_vector(next, Shape{B, 1});
    if (!enc.device().is_cpu()) cur = cur.to(enc.device());
    Tensor logits =
        model.lm_logits(model.decode(cur, enc, encoded.mask, Tensor(), &cache));  // [B, 1, V]
    std::vector<int64_t> best = argmax(logits, -1).to_vector<int64_t>();
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) {
        next[b] = c.pad_token_id;  // as transformers: finished rows keep feeding pad
        continue;
      }
      next[b] = best[b];
      out[b].push_back(best[b]);
      if (best[b] == c.eos_token_id) done[b] = true;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  return out;
}

std::vector<SequenceScore> score_sequences(const T5ForConditionalGeneration& model,
                                           const Tensor& input_ids, const Tensor& attention_mask,
                                           const Tensor& labels, const Tensor& task_ids) {
  NoGradGuard no_grad;
  T5Inputs in;
  in.input_ids = input_ids;
  in.attention_mask = attention_mask;
  in.labels = labels;
  in.task_ids = task_ids;
  T5Output out = model.forward(in);
  CrossEntropyOptions ce;
  ce.reduction = Reduction::none;
  const Tensor labels_on =
      labels.device() == out.logits.device() ? labels : labels.to(out.logits.device());
  std::vector<double> nll = cross_entropy(out.logits, labels_on, ce).to_vector<double>();  // [B, T]
  std::vector<int64_t> l = labels.to_vector<int64_t>();
  const int64_t B = labels.size(0), T = labels.size(1);
  std::vector<SequenceScore> scores(B);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (l[b * T + t] != -100) {
        scores[b].logprob -= nll[b * T + t];
        ++scores[b].num_tokens;
      }
  return scores;
}

Tensor candidate_labels(const T5ForConditionalGeneration& model,
                        const std::vector<std::vector<int64_t>>& candidates, int64_t copies,
                        const char* op) {
  const int64_t C = static_cast<int64_t>(candidates.size());
  const int64_t V = model.config().vocab_size;
  size_t T = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    SP_CHECK(!candidates[i].empty(), "[", op, "] an empty candidate");
    for (int64_t id : candidates[i])
      SP_CHECK(id >= 0 && id < V, "[", op, "] candidate ", i, " holds token id ", id,
               ", outside the vocabulary [0, ", V, ")");
    T = std::max(T, candidates[i].size());
  }
  std::vector<int64_t> labels(copies * C * T, -100);
  for (int64_t k = 0; k < copies; ++k)
    for (int64_t i = 0; i < C; ++i)
      std::copy(candidates[i].begin(), candidates[i].end(), labels.begin() + (k * C + i) * T);
  Tensor out = Tensor::from_vector(labels, Shape{copies * C, static_cast<int64_t>(T)});
  return model.device().is_cpu() ? out : out.to(model.device());
}

int64_t rank_classify(const T5ForConditionalGeneration& model,
                      const std::vector<int64_t>& input_ids,
                      const std::vector<std::vector<int64_t>>& candidates,
                      std::vector<SequenceScore>* scores, int64_t task_id) {
  SP_CHECK(!candidates.empty(), "[rank_classify] no candidates");
  SP_CHECK(!input_ids.empty(), "[rank_classify] empty input");
  const int64_t C = static_cast<int64_t>(candidates.size());
  const int64_t S = static_cast<int64_t>(input_ids.size());
  const Tensor label_t = candidate_labels(model, candidates, 1, "rank_classify");

  // The input is encoded once and shared by every candidate.
  NoGradGuard no_grad;
  T5Inputs in;
  in.input_ids = Tensor::from_vector(input_ids, Shape{1, S});
  if (task_id >= 0) in.task_ids = Tensor::from_vector(std::vector<int64_t>{task_id}, Shape{1});
  const T5Encoded encoded = model.encode_inputs(in);
  const int64_t S_enc = encoded.hidden.size(1);
  Tensor enc = encoded.hidden.expand(Shape{C, S_enc, encoded.hidden.size(2)});
  Tensor enc_mask = encoded.mask.defined() ? encoded.mask.expand(Shape{C, S_enc}) : Tensor();
  Tensor logits = model.lm_logits(model.decode(model.shift_right(label_t), enc, enc_mask));
  CrossEntropyOptions ce;
  ce.reduction = Reduction::none;
  std::vector<double> nll = cross_entropy(logits, label_t, ce).to_vector<double>();  // [C, T]
  const int64_t T = label_t.size(1);
  std::vector<SequenceScore> s(C);
  for (int64_t i = 0; i < C; ++i)
    for (size_t t = 0; t < candidates[i].size(); ++t) {  // the padding follows
      s[i].logprob -= nll[i * T + t];
      ++s[i].num_tokens;
    }
  int64_t best = 0;
  for (int64_t i = 1; i < C; ++i)
    if (s[i].logprob > s[best].logprob) best = i;
  if (scores) *scores = std::move(s);
  return best;
}

}  // namespace sp
