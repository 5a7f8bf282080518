#pragma once
// The unigram baseline of a pretraining objective: a model that ignores the inputs and
// every previous target token and predicts each target token from its frequency among the
// train examples' targets (sentinels and EOS included). A seq2seq model that has learned
// anything about the text beats its cross-entropy; that is the yardstick of the
// "it learns" demo.
#include <cstdint>
#include <vector>

#include "experiments/objectives/example.h"

namespace sp {

class UnigramModel {
 public:
  // Counts the target tokens of examples; add-`smoothing` (Laplace) over vocab_size ids so
  // that a token never seen in train still has a finite cost.
  static UnigramModel fit(const std::vector<Seq2SeqExample>& examples, int64_t vocab_size,
                          double smoothing = 1.0);
  // Mean cross-entropy in nats per target token over examples' targets (what a seq2seq
  // loss averaged over target tokens reports). Throws on an id outside the vocabulary.
  double cross_entropy(const std::vector<Seq2SeqExample>& examples) const;
  double log_prob(int32_t id) const;
  int64_t vocab_size() const { return static_cast<int64_t>(log_probs_.size()); }
  int64_t tokens_counted() const { return tokens_; }

 private:
  std::vector<double> log_probs_;
  int64_t tokens_ = 0;
};

}  // namespace sp
