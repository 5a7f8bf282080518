#include "experiments/data/unigram_baseline.h"

#include <cmath>

#include "tensor/error.h"

namespace sp {

UnigramModel UnigramModel::fit(const std::vector<Seq2SeqExample>& examples, int64_t vocab_size,
                               double smoothing) {
  SP_CHECK(vocab_size > 0 && smoothing > 0, "[unigram] vocab_size and smoothing must be ",
           "positive, got ", vocab_size, " and ", smoothing);
  std::vector<double> counts(static_cast<size_t>(vocab_size), smoothing);
  UnigramModel m;
  for (const Seq2SeqExample& ex : examples) {
    for (int32_t id : ex.targets) {
      SP_CHECK(id >= 0 && id < vocab_size, "[unigram] target id ", id, " outside [0, ",
               vocab_size, ")");
      counts[static_cast<size_t>(id)] += 1;
      ++m.tokens_;
    }
  }
  const double total = static_cast<double>(m.tokens_) + smoothing * static_cast<double>(vocab_size);
  m.log_probs_.resize(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) m.log_probs_[i] = std::log(counts[i] / total);
  return m;
}

double UnigramModel::log_prob(int32_t id) const {
  SP_CHECK(id >= 0 && id < vocab_size(), "[unigram] id ", id, " outside [0, ", vocab_size(), ")");
  return log_probs_[static_cast<size_t>(id)];
}

double UnigramModel::cross_entropy(const std::vector<Seq2SeqExample>& examples) const {
  double sum = 0;
  int64_t n = 0;
  for (const Seq2SeqExample& ex : examples) {
    for (int32_t id : ex.targets) {
      sum -= log_prob(id);
      ++n;
    }
  }
  SP_CHECK(n > 0, "[unigram] no target tokens to score");
  return sum / static_cast<double>(n);
}

}  // namespace sp
