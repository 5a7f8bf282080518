#include "experiments/data/batching.h"

#include <algorithm>

namespace sp {

namespace {

double share(int64_t tokens, int64_t slots) {
  return slots > 0 ? static_cast<double>(tokens) / static_cast<double>(slots) : 0.0;
}

}  // namespace

const char* over_length_name(OverLength policy) {
  switch (policy) {
    case OverLength::error: return "error";
    case OverLength::truncate: return "truncate";
    case OverLength::drop: return "drop";
  }
  return "?";
}

OverLength over_length_from_name(const std::string& name) {
  for (OverLength p : {OverLength::error, OverLength::truncate, OverLength::drop})
    if (name == over_length_name(p)) return p;
  fail(str_cat("[data] unknown over-length policy \"", name,
               "\", expected error, truncate or drop"));
}

double BatchStats::efficiency() const {
  return share(input_tokens + target_tokens, input_slots + target_slots);
}
double BatchStats::input_efficiency() const { return share(input_tokens, input_slots); }
double BatchStats::target_efficiency() const { return share(target_tokens, target_slots); }

BatchStats& BatchStats::operator+=(const BatchStats& o) {
  examples += o.examples;
  rows += o.rows;
  dropped += o.dropped;
  truncated += o.truncated;
  input_tokens += o.input_tokens;
  target_tokens += o.target_tokens;
  input_slots += o.input_slots;
  target_slots += o.target_slots;
  return *this;
}

FitResult fit_length(std::vector<int32_t>& seq, int64_t length, OverLength policy, const char* what,
                     size_t index) {
  SP_CHECK(length > 0, "[batch] ", what, " length must be positive, got ", length);
  if (static_cast<int64_t>(seq.size()) <= length) return FitResult::fits;
  switch (policy) {
    case OverLength::error:
      fail(str_cat("[batch] example ", index, " has ", seq.size(), " ", what, " tokens, more than ",
                   what, " length ", length,
                   " (choose over_length truncate or drop, or a longer length)"));
    case OverLength::truncate: {
      // The last token (EOS for our objectives) stays last: the model still learns to stop.
      const int32_t last = seq.back();
      seq.resize(static_cast<size_t>(length));
      seq.back() = last;
      return FitResult::truncated;
    }
    case OverLength::drop: return FitResult::dropped;
  }
  return FitResult::fits;
}

Batch make_padded_batch(const std::vector<Seq2SeqExample>& examples, const PaddedBatchOptions& options) {
  SP_CHECK(options.inputs_length >= 0 && options.targets_length >= 0,
           "[batch] lengths must be >= 0 (0 = longest in batch), got inputs ",
           options.inputs_length, " and targets ", options.targets_length);
  Batch batch;
  BatchStats& st = batch.stats;
  std::vector<Seq2SeqExample> kept;
  kept.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    Seq2SeqExample e = examples[i];
    SP_CHECK(!e.inputs.empty() && !e.targets.empty(), "[batch] example ", i, " has empty ",
             e.inputs.empty() ? "inputs" : "targets");
    FitResult fi = FitResult::fits, ft = FitResult::fits;
    if (options.inputs_length > 0)
      fi = fit_length(e.inputs, options.inputs_length, options.over_length, "inputs", i);
    if (options.targets_length > 0)
      ft = fit_length(e.targets, options.targets_length, options.over_length, "targets", i);
    if (fi == FitResult::dropped || ft == FitResult::dropped) {
      ++st.dropped;
      continue;
    }
    if (fi == FitResult::truncated || ft == FitResult::truncated) ++st.truncated;
    kept.push_back(std::move(e));
  }
  SP_CHECK(!kept.empty(), "[batch] no example left to batch (", examples.size(), " given, ",
           st.dropped, " dropped as too long)");

  int64_t S = options.inputs_length, T = options.targets_length;
  if (S == 0)
    for (const auto& e : kept) S = std::max<int64_t>(S, static_cast<int64_t>(e.inputs.size()));
  if (T == 0)
    for (const auto& e : kept) T = std::max<int64_t>(T, static_cast<int64_t>(e.targets.size()));
  const int64_t B = static_cast<int64_t>(kept.size());
  std::vector<int64_t> ids(B * S, options.pad_id), mask(B * S, 0);
  std::vector<int64_t> labels(B * T, -100), dec_mask(B * T, 0);
  for (int64_t b = 0; b < B; ++b) {
    const Seq2SeqExample& e = kept[b];
    for (size_t t = 0; t < e.inputs.size(); ++t) {
      ids[b * S + t] = e.inputs[t];
      mask[b * S + t] = 1;
    }
    for (size_t t = 0; t < e.targets.size(); ++t) {
      labels[b * T + t] = e.targets[t];
      dec_mask[b * T + t] = 1;
    }
    st.input_tokens += static_cast<int64_t>(e.inputs.size());
    st.target_tokens += static_cast<int64_t>(e.targets.size());
  }
  st.examples = st.rows = B;
  st.input_slots = B * S;
  st.target_slots = B * T;
  T5Inputs& in = batch.inputs;
  in.input_ids = Tensor::from_vector(ids, Shape{B, S});
  in.attention_mask = Tensor::from_vector(mask, Shape{B, S});
  in.labels = Tensor::from_vector(labels, Shape{B, T});
  in.decoder_attention_mask = Tensor::from_vector(dec_mask, Shape{B, T});
  return batch;
}

}  // namespace sp
